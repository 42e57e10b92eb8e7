//! Shared helpers of the gate integration tests: throwaway git repositories and the
//! environment snapshot gates run with.

#![allow(clippy::expect_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use issueloop_config::Env;
use issueloop_gates::RunOptions;

/// A git repository in a temporary folder, with every file committed.
pub struct Repo {
    pub dir: tempfile::TempDir,
    /// Holds the empty git configuration, outside the repository.
    _config_dir: tempfile::TempDir,
    git_config: PathBuf,
}

impl Repo {
    pub fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config_dir = tempfile::tempdir().expect("temporary folder");
        let git_config = config_dir.path().join("gitconfig");
        std::fs::write(&git_config, "").expect("empty git config");
        let repo = Repo {
            dir,
            _config_dir: config_dir,
            git_config,
        };
        for (path, text) in files {
            repo.write(path, text);
        }
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(full, text).expect("write file");
    }

    pub fn commit_all(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "initial"]);
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", &self.git_config)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain", "--untracked-files=all"])
    }

    /// The environment gates get in these tests: the process's, with git pointed at an empty
    /// configuration.
    pub fn env(&self) -> Env {
        let mut env = Env::from_process();
        env.set("GIT_CONFIG_GLOBAL", self.git_config.display().to_string());
        env.set("GIT_CONFIG_NOSYSTEM", "1");
        env
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            timeout: Duration::from_secs(120),
            kill_grace: Duration::from_secs(2),
            output_limit_bytes: 16 * 1024,
            env: self.env(),
            scratch_dir: None,
            git_timeout: Duration::from_secs(30),
            sandbox: None,
        }
    }
}
