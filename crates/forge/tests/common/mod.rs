//! Shared set-up of the forge tests: a fake GitHub with one repository backed by a real bare git
//! repository, a configuration pointing at it, and a forge whose clock never sleeps.

#![allow(clippy::expect_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use issueloop_config::{Config, Env, RepoName};
use issueloop_fake_github::{FakeGithub, FakeOptions, RepoSpec, TOKEN};
use issueloop_forge::{GithubForge, ManualClock, Politeness};
use jiff::Timestamp;
use tempfile::TempDir;

pub const REPO: &str = "acme/widgets";

/// Runs a scenario with a deadline, so a hang fails instead of stalling the suite.
pub async fn scenario<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("scenario did not finish within 60 s");
}

pub struct World {
    pub fake: FakeGithub,
    pub dir: TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
    pub config: Config,
    pub env: Env,
    pub clock: Arc<ManualClock>,
    pub repo: RepoName,
}

impl World {
    pub async fn new() -> World {
        Self::with_options(FakeOptions::default()).await
    }

    pub async fn with_options(options: FakeOptions) -> World {
        let fake = FakeGithub::start_with(options).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let bare = dir.path().join("widgets.git");
        let work = dir.path().join("work");
        std::fs::write(dir.path().join("gitconfig"), "").expect("empty git config");
        git(
            dir.path(),
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "widgets.git"],
        );
        git(
            dir.path(),
            dir.path(),
            &["init", "-q", "-b", "main", "work"],
        );
        std::fs::write(work.join("README.md"), "widgets\n").expect("write README");
        git(dir.path(), &work, &["add", "README.md"]);
        git(dir.path(), &work, &["commit", "-q", "-m", "initial"]);
        git(
            dir.path(),
            &work,
            &["push", "-q", bare.to_str().expect("utf-8 path"), "main"],
        );
        fake.add_repo(RepoSpec::new(REPO).git_dir(&bare));
        fake.set_permission(REPO, "alice", "maintain");
        fake.set_permission(REPO, "mallory", "triage");
        fake.set_permission(REPO, "bob", "read");

        let mut config = Config::builtin(dir.path().to_owned());
        config.forge.api_url = fake.api_url();
        config.forge.request_timeout = Duration::from_secs(10);
        config.repos = vec![REPO.parse().expect("repo name")];
        let env = Env::from_pairs([("GITHUB_TOKEN", TOKEN)]);
        let clock = Arc::new(ManualClock::new(fake.now()));
        World {
            repo: REPO.parse().expect("repo name"),
            fake,
            dir,
            bare,
            work,
            config,
            env,
            clock,
        }
    }

    pub async fn forge(&self) -> GithubForge {
        self.forge_with(Politeness::default()).await
    }

    pub async fn forge_with(&self, politeness: Politeness) -> GithubForge {
        GithubForge::connect_with(&self.config, &self.env, self.clock.clone(), politeness)
            .await
            .expect("forge connects")
    }

    /// An issue labelled `loop:approved` by alice an hour ago.
    pub fn approved_issue(&self, title: &str) -> u64 {
        let hour_ago = self.ago(3600);
        let n = self.fake.add_issue(
            REPO,
            title,
            "Make it work.\n\n## Acceptance\n- [ ] it works\n",
            "bob",
            Some(self.ago(7200)),
        );
        self.fake
            .label(REPO, n, "loop:approved", "alice", Some(hour_ago));
        n
    }

    pub fn ago(&self, secs: i64) -> Timestamp {
        self.fake.now() - jiff::SignedDuration::from_secs(secs)
    }

    /// Commits a change on `branch` (from main) in the work clone and pushes it; returns the commit.
    pub fn push_change(&self, branch: &str, file: &str) -> String {
        let root = self.dir.path();
        git(root, &self.work, &["checkout", "-q", "-B", branch, "main"]);
        std::fs::write(self.work.join(file), "change\n").expect("write change");
        git(root, &self.work, &["add", file]);
        git(root, &self.work, &["commit", "-q", "-m", "change"]);
        git(
            root,
            &self.work,
            &[
                "push",
                "-q",
                self.bare.to_str().expect("utf-8 path"),
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
        let sha = git(root, &self.work, &["rev-parse", "HEAD"]);
        git(root, &self.work, &["checkout", "-q", "main"]);
        sha
    }
}

/// Runs git with an empty global configuration and no system one.
pub fn git(root: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", root.join("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
