//! Errors of repository scanning, gate preparation and gate execution set-up.

use std::path::PathBuf;

/// Why a repository could not be scanned, a gate could not be prepared (it fails closed and is
/// never run), or gates could not be started.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("a gate needs at least a program; the argv is empty")]
    EmptyArgv,

    #[error(
        "`{}`{}: {message}; fix the file so that both uv and issueloop can read it",
        path.display(),
        line.map(|l| format!(" line {l}")).unwrap_or_default()
    )]
    MalformedFile {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },

    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse the `uv` options of `{argv}`: {message}")]
    UvOption { argv: String, message: String },

    #[error(
        "`{argv}` names no command after `uv run`'s options; write the command to run, e.g. `uv run pytest`"
    )]
    NoCommand { argv: String },

    #[error("`{argv}` {why}; remove `{option}`: issueloop selects the dev set itself")]
    ExcludesDevSet {
        argv: String,
        option: String,
        why: String,
    },

    #[error("scratch directory `{}`: {message}", path.display())]
    Scratch { path: PathBuf, message: String },
}

impl GateError {
    /// A stable name for the error, used as `error.kind` in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            GateError::EmptyArgv => "empty_argv",
            GateError::MalformedFile { .. } => "malformed_file",
            GateError::Io { .. } => "io",
            GateError::UvOption { .. } => "uv_option",
            GateError::NoCommand { .. } => "no_command",
            GateError::ExcludesDevSet { .. } => "excludes_dev_set",
            GateError::Scratch { .. } => "scratch",
        }
    }
}
