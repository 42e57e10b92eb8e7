//! Errors of building and running an agent invocation. Each says what, where and what to do.

use std::path::PathBuf;

use issueloop_config::BackendKind;

use crate::format::Format;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the `command` backend has no `argv`; set `[backends.command] argv = [\"program\", \"arg\"]`"
    )]
    MissingArgv,

    #[error("`[backends.{backend}] binary` is empty; name the program or remove the key")]
    EmptyBinary { backend: BackendKind },

    #[error(
        "unknown output format `{format}` for the `command` backend; use one of {}",
        Format::names()
    )]
    UnknownFormat { format: String },

    #[error(
        "cannot find `{program}` for the `{backend}` backend (searched `PATH` = `{search_path}`); install it or set `[backends.{backend}] binary` to its path"
    )]
    NotFound {
        backend: BackendKind,
        program: String,
        search_path: String,
    },

    #[error("the worktree `{}` is not a directory", .0.display())]
    Worktree(PathBuf),

    #[error(
        "the brief file `{}` is inside the worktree `{}`; write it outside, where the agent's changes cannot touch it",
        .path.display(),
        .worktree.display()
    )]
    BriefInWorktree { path: PathBuf, worktree: PathBuf },

    #[error("cannot write the brief file in `{}`", .dir.display())]
    BriefFile {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot start `{argv}` in `{}`", .worktree.display())]
    Spawn {
        argv: String,
        worktree: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot sandbox the agent: {0}")]
    Sandbox(String),
}
