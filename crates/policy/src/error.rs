//! Errors compiling a policy: a glob or a secret pattern that does not compile.

/// A policy that cannot be compiled. Configuration validation rejects these first; this is the
/// backstop for policies built in code.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("glob `{pattern}` in {key} does not compile: {reason}")]
    InvalidGlob {
        key: String,
        pattern: String,
        reason: String,
    },
    #[error("secret pattern `{name}` (`{pattern}`) does not compile: {reason}")]
    InvalidSecretPattern {
        name: String,
        pattern: String,
        reason: String,
    },
}
