//! Masks secrets in text before it leaves the process in a PR body or an issue comment: the one
//! rule of `issueloop_config::redact`, re-exported where the renderers use it.

pub use issueloop_config::redact::{MIN_TOKEN_TAIL, REDACTED, TOKEN_PREFIXES, redact};
