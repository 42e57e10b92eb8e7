//! Hermetic git: libgit2 reads no global, XDG or system configuration and gets network
//! timeouts; the git command line, where it is used (benchmarks, tests), runs without inherited
//! repository variables or user configuration.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use git2::ConfigLevel;

use crate::error::WorkspaceError;

/// How long libgit2 waits to connect to a server, and for any read or write on the connection.
const SERVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(120);

static INIT: OnceLock<Result<(), String>> = OnceLock::new();

/// Make libgit2 hermetic for this process: configuration is read from the repository alone
/// (a user's `~/.gitconfig` with `core.autocrlf`, `core.excludesFile`, `url.*.insteadOf` or
/// `http.*` settings must not change what a run sees or where it pushes), and every network
/// operation has a timeout. Runs once; every entry point of this crate calls it first.
pub fn init() -> Result<(), WorkspaceError> {
    INIT.get_or_init(|| {
        let empty = OsStr::new("");
        for level in [
            ConfigLevel::System,
            ConfigLevel::XDG,
            ConfigLevel::Global,
            ConfigLevel::ProgramData,
        ] {
            // SAFETY: libgit2's global options are process-wide and not synchronized; this
            // runs once under the `OnceLock`, and the crate opens no repository before it.
            unsafe { git2::opts::set_search_path(level, empty) }
                .map_err(|e| format!("cannot clear the git {level:?} configuration path: {e}"))?;
        }
        // Like git, trust objects read back from the repository's own store instead of
        // re-hashing every blob on read (a checkout of 20,000 files spends much of its time
        // there). Objects received from a remote are still checked when indexed.
        git2::opts::strict_hash_verification(false);
        // SAFETY: as above, once, before any network operation of this crate.
        unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(millis(SERVER_CONNECT_TIMEOUT))
                .and_then(|()| {
                    git2::opts::set_server_timeout_in_milliseconds(millis(SERVER_IO_TIMEOUT))
                })
        }
        .map_err(|e| format!("cannot set git network timeouts: {e}"))
    })
    .clone()
    .map_err(|message| WorkspaceError::Git {
        op: "setting up libgit2".into(),
        source: git2::Error::from_str(&message),
    })
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// A `git` command running in `dir`, hermetic like the library: its whole environment is the
/// process crate's allowlist ([`issueloop_process::git_environment`]: `PATH` and fixed values;
/// no inherited repository variable, no global or system configuration, no prompts, no
/// credential). For benchmarks and tests that compare with or set up through the git command
/// line. It stays a `std::process::Command` rather than an [`issueloop_process::Launch`]: the
/// benchmark streams a generated repository into `git fast-import`'s stdin and times git alone,
/// and the tests need git's exit status, stdout and stderr as `std::process::Output`. It omits
/// the `-c` safety switches ([`issueloop_process::GIT_SAFETY_CONFIG`]): `protocol.allow=never`
/// would refuse the clones and fetches the benchmark and the tests make.
#[expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "git's own exit status and output for benchmarks and tests (above); PATH finds git"
)]
pub fn git_command(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    let path = std::env::var("PATH").ok();
    cmd.env_clear()
        .envs(issueloop_process::git_environment(path.as_deref()))
        .current_dir(dir);
    cmd
}
