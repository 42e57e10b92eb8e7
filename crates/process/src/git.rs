//! Hermetic git: the one way issueloop starts the git command line, through [`Launch`], with an
//! environment built from an allowlist and the switches that keep configuration from running a
//! program or reaching the network.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::launch::Launch;

/// Configuration given on the command line, which wins over every file git reads.
pub const GIT_SAFETY_CONFIG: &[&str] = &[
    // A configured fsmonitor is a program git runs on every status.
    "core.fsmonitor=false",
    // Hooks (`post-index-change`, `reference-transaction`, …) are programs; this holds none.
    "core.hooksPath=/dev/null",
    // The untracked cache is state in the index an agent can write.
    "core.untrackedCache=false",
    // Attributes come from the repository's files only, never a file named by configuration.
    "core.attributesFile=/dev/null",
    // Submodules are not entered (their configuration is not issueloop's).
    "submodule.recurse=false",
    // No transport at all: a partial clone would otherwise fetch missing objects.
    "protocol.allow=never",
];

/// Default wall-clock limit of a git command.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole environment of a git command: `PATH` (to find git) and fixed values; nothing else
/// of issueloop's passes — no credential, no `HOME` (so no `~/.gitconfig` nor XDG ignore or
/// attributes file), no inherited `GIT_*` variable that would point git at another repository,
/// index, configuration or program.
pub fn git_environment(path: Option<&str>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        // Stable, untranslated messages.
        ("LC_ALL", "C"),
        // Neither the machine's nor the user's configuration.
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_ATTR_NOSYSTEM", "1"),
        // Never wait for a password on a terminal.
        ("GIT_TERMINAL_PROMPT", "0"),
        // A partial clone never fetches what it lacks.
        ("GIT_NO_LAZY_FETCH", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(path) = path {
        env.insert("PATH".to_owned(), path.to_owned());
    }
    env
}

/// `git -c … -C dir` with [`git_environment`] and [`GIT_SAFETY_CONFIG`], a [`GIT_TIMEOUT`] and
/// a short kill grace; add the subcommand with [`Launch::args`] and run it with
/// [`Launch::output`]. `path` is the `PATH` git is found on (the caller's environment snapshot).
pub fn git(dir: &Path, path: Option<&str>) -> Launch {
    let mut launch = Launch::new("git")
        .env(git_environment(path))
        .timeout(GIT_TIMEOUT)
        .kill_grace(Duration::from_secs(1));
    for setting in GIT_SAFETY_CONFIG {
        launch = launch.arg("-c").arg(setting);
    }
    launch.arg("-C").arg(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_the_allowlist_only() {
        let env = git_environment(Some("/usr/bin:/bin"));
        assert_eq!(env.get("PATH").map(String::as_str), Some("/usr/bin:/bin"));
        assert_eq!(
            env.get("GIT_CONFIG_GLOBAL").map(String::as_str),
            Some("/dev/null")
        );
        assert!(!env.contains_key("HOME"));
        assert_eq!(env.len(), 7, "{env:?}");
        assert!(!git_environment(None).contains_key("PATH"));
    }
}
