//! A [`World`] whose forge is a fake GitHub running in the test process: the binary talks to it
//! over HTTP with the fake's token, and the repository's `clone_url` is the world's bare remote,
//! so pushes and the API's refs agree.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::process::Output;

use issueloop_fake_github::{FakeGithub, FakeOptions, LoggedRequest, RepoSpec, TOKEN};

use super::{Knobs, MAINTAINER, REPO, World};

pub struct GithubWorld {
    // Dropped before the runtime that serves it.
    pub fake: FakeGithub,
    pub world: World,
    _runtime: tokio::runtime::Runtime,
}

impl GithubWorld {
    pub fn new(knobs: Knobs) -> GithubWorld {
        GithubWorld::with_options(knobs, FakeOptions::default())
    }

    /// A world on a fake started with `options` (e.g. other tokens it accepts).
    pub fn with_options(knobs: Knobs, options: FakeOptions) -> GithubWorld {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(FakeGithub::start_with(options));
        let world = World::new(Knobs {
            forge_toml: Some(format!(
                "[forge]\nkind = \"github\"\napi_url = \"{}\"\nrequest_timeout = \"10s\"\n",
                fake.api_url()
            )),
            ..knobs
        });
        fake.add_repo(RepoSpec::new(REPO).git_dir(&world.remote));
        fake.set_permission(REPO, MAINTAINER, "maintain");
        fake.set_permission(REPO, "mallory", "triage");
        fake.set_permission(REPO, "bob", "read");
        GithubWorld {
            fake,
            world,
            _runtime: runtime,
        }
    }

    /// An issue opened by bob two hours ago and labelled `loop:approved` by `labeller` an hour
    /// ago; returns its number.
    pub fn approved_issue(&self, title: &str, body: &str, labeller: &str) -> u64 {
        let ago = |secs| self.fake.now() - jiff::SignedDuration::from_secs(secs);
        let n = self
            .fake
            .add_issue(REPO, title, body, "bob", Some(ago(7200)));
        self.fake
            .label(REPO, n, "loop:approved", labeller, Some(ago(3600)));
        n
    }

    pub fn labels(&self, n: u64) -> Vec<String> {
        self.fake
            .issue(REPO, n)
            .unwrap_or_else(|| panic!("no issue {n}"))
            .labels
    }

    /// The binary with the fake's token in its environment.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = self.world.command();
        cmd.env("GITHUB_TOKEN", TOKEN);
        cmd
    }

    /// `issueloop --json run --once [extra…]`: the exit code, the parsed report, and everything
    /// the process printed (checked for the token here).
    pub fn run_once(&self, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
        let out: Output = self
            .command()
            .args(["--json", "run", "--once"])
            .args(extra)
            .output()
            .unwrap();
        let printed = printed(&out);
        assert_token_absent(&printed);
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{printed}"));
        (out.status.code(), json, printed)
    }

    /// Requests that are not reads.
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .collect()
    }
}

/// stdout and stderr of a finished process, one after the other.
pub fn printed(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
pub fn assert_token_absent(text: &str) {
    assert!(
        !text.contains(TOKEN),
        "the token appears in the output:\n{text}"
    );
}
