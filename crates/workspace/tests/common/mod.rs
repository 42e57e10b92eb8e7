//! Shared fixtures: a bare "remote" repository built with the git command line (hermetic: no
//! user configuration), a cache directory, and helpers to change a worktree like an agent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use issueloop_config::RepoName;
use issueloop_workspace::hermetic::git_command;
use issueloop_workspace::{BaseRef, RemoteSpec, Workspace, Worktree};

/// Run git in `dir`; panics with its output when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_command(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .expect("git runs")
}

pub fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn set_executable(dir: &Path, rel: &str, exec: bool) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(rel);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_mode(if exec { 0o755 } else { 0o644 });
    std::fs::set_permissions(path, perms).unwrap();
}

pub fn symlink(dir: &Path, rel: &str, target: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A remote with a `main` branch, a submodule and an ignore file; a cache directory.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub remote: PathBuf,
    pub cache: PathBuf,
    /// The commits of the submodule's own repository, oldest first.
    pub lib_commits: Vec<String>,
}

pub const FILES: &[(&str, &str)] = &[
    ("README.md", "# demo\n\nA small project.\n"),
    ("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n"),
    ("scripts/run.sh", "#!/bin/sh\necho run\n"),
    ("docs/ci.yml", "name: ci\non: push\njobs: {}\n"),
    (".github/workflows/ci.yml", "name: ci\non: push\njobs: {}\n"),
    (".gitignore", ".env\n*.log\n/target/\n/build/\n/.venv/\n"),
    (
        ".gitmodules",
        "[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n",
    ),
];

impl Fixture {
    pub fn new() -> Self {
        Self::with_default_branch("main")
    }

    pub fn with_default_branch(default: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // The submodule's repository, with two commits.
        let lib = root.join("lib-src");
        std::fs::create_dir_all(&lib).unwrap();
        git(&lib, &["init", "-q", "-b", "main"]);
        let mut lib_commits = Vec::new();
        for n in 1..=2 {
            write(&lib, "lib.txt", format!("version {n}\n"));
            git(&lib, &["add", "."]);
            git(&lib, &["commit", "-q", "-m", &format!("lib {n}")]);
            lib_commits.push(git(&lib, &["rev-parse", "HEAD"]));
        }
        git(root, &["clone", "-q", "--bare", "lib-src", "lib.git"]);

        let remote = root.join("remote.git");
        git(root, &["init", "-q", "--bare", "-b", default, "remote.git"]);
        let seed = root.join("seed");
        git(root, &["init", "-q", "-b", default, "seed"]);
        for (path, content) in FILES {
            write(&seed, path, content);
        }
        git(&seed, &["add", "."]);
        let gitlink = format!("160000,{},vendor/lib", lib_commits[0]);
        git(&seed, &["update-index", "--add", "--cacheinfo", &gitlink]);
        git(&seed, &["commit", "-q", "-m", "initial"]);
        git(&seed, &["push", "-q", remote.to_str().unwrap(), default]);
        Self {
            remote,
            cache: root.join("cache"),
            lib_commits,
            tmp,
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn spec(&self) -> RemoteSpec {
        RemoteSpec::new(self.remote.to_str().unwrap(), None)
    }

    pub fn workspace(&self) -> Workspace {
        Workspace::new(&self.cache)
    }

    pub fn repo() -> RepoName {
        "acme/api".parse().unwrap()
    }

    pub fn prepare(&self, ws: &Workspace, branch: &str) -> Worktree {
        ws.prepare_worktree(&Self::repo(), &self.spec(), branch, &BaseRef::DefaultBranch)
            .unwrap()
    }

    /// The commit `rev` names in the remote.
    pub fn remote_rev(&self, rev: &str) -> Option<String> {
        let out = git_output(&self.remote, &["rev-parse", "--verify", "-q", rev]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Commit `files` to `branch` of the remote from a fresh clone, as another person would.
    pub fn push_as_someone_else(&self, branch: &str, files: &[(&str, &str)]) -> String {
        let dir = self
            .root()
            .join(format!("other-{}", branch.replace('/', "-")));
        if !dir.exists() {
            git(
                self.root(),
                &[
                    "clone",
                    "-q",
                    self.remote.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            );
        }
        git(&dir, &["fetch", "-q", "origin"]);
        let exists = self.remote_rev(&format!("refs/heads/{branch}")).is_some();
        if exists {
            git(
                &dir,
                &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
            );
        } else {
            git(&dir, &["checkout", "-q", "-B", branch, "origin/HEAD"]);
        }
        for (path, content) in files {
            write(&dir, path, content);
        }
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "-q", "-m", "someone else"]);
        git(&dir, &["push", "-q", "origin", branch]);
        git(&dir, &["rev-parse", "HEAD"])
    }

    /// Every file and directory under the cache, relative to it, except mirror internals that
    /// a healthy mirror always has.
    pub fn cache_listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        list(&self.cache, &self.cache, &mut out);
        out.sort();
        out
    }
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.push(rel);
        if path.is_dir() && !path.is_symlink() {
            list(root, &path, out);
        }
    }
}

/// Branches of a bare repository (`refs/heads/*`), short names.
pub fn branches(git_dir: &Path) -> Vec<String> {
    let out = git(
        git_dir,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
    );
    out.lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}
