//! The git command line for test fixtures: hermetic (no user or system configuration), a
//! fixed author, and a panic with git's stderr when it fails.

#![allow(
    clippy::expect_used,
    reason = "test support: a failed step fails the test loudly"
)]
#![allow(
    clippy::disallowed_types,
    reason = "test support sets up and observes bare remotes through the git command line"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

fn command(dir: &Path, author: (&str, &str)) -> std::process::Command {
    let mut cmd = issueloop::workspace::hermetic::git_command(dir);
    cmd.env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .env("GIT_COMMITTER_NAME", author.0)
        .env("GIT_COMMITTER_EMAIL", author.1);
    cmd
}

/// `git args…` in `dir`, its output (any exit status).
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    command(dir, ("acme", "acme@example.invalid"))
        .args(args)
        .output()
        .expect("git runs")
}

/// `git args…` in `dir`: its trimmed stdout; panics when git fails.
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

/// `git args…` in `dir`: its stdout, or `None` when git fails.
pub fn git_ok(dir: &Path, args: &[&str]) -> Option<String> {
    let out = git_output(dir, args);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `git args…` in `dir` with `input` on stdin and `author` as author and committer: its trimmed
/// stdout; panics when git fails.
pub fn git_with_input(dir: &Path, args: &[&str], input: &[u8], author: (&str, &str)) -> String {
    let mut child = command(dir, author)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("git reads its input");
    let out = child.wait_with_output().expect("git ends");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Local branches of the bare repository at `repo` other than `main`, sorted.
pub fn branches_except_main(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = git(
        repo,
        &["for-each-ref", "--format=%(refname)", "refs/heads/"],
    )
    .lines()
    .filter_map(|n| n.strip_prefix("refs/heads/"))
    .filter(|n| *n != "main")
    .map(str::to_owned)
    .collect();
    names.sort();
    names
}

/// Every object id in the repository at `repo`, reachable or not, with its type.
pub fn all_objects(repo: &Path) -> Vec<(String, String)> {
    git(
        repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(id, kind)| (id.to_owned(), kind.to_owned()))
    .collect()
}

/// Add a commit to `branch` of the bare repository at `repo` that sets `path` (`dir/file`
/// allowed) to `text`, on top of the branch's tip. Returns the new commit's id.
pub fn commit_file_to_bare(
    repo: &Path,
    branch: &str,
    path: &str,
    text: &str,
    message: &str,
    author: (&str, &str),
) -> String {
    let refname = format!("refs/heads/{branch}");
    let parent = git(repo, &["rev-parse", &format!("{refname}^{{commit}}")]);
    let blob = git_with_input(
        repo,
        &["hash-object", "-w", "--stdin"],
        text.as_bytes(),
        author,
    );
    // A temporary index holding the parent's tree and the new blob gives the new tree.
    let index = tempfile::NamedTempFile::new().expect("temporary index");
    let index_path = index.path().to_str().expect("utf-8 path").to_owned();
    let with_index = |args: &[&str]| {
        let out = command(repo, author)
            .env("GIT_INDEX_FILE", &index_path)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    with_index(&["read-tree", &parent]);
    with_index(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("100644,{blob},{path}"),
    ]);
    let tree = with_index(&["write-tree"]);
    let commit = git_with_input(
        repo,
        &["commit-tree", &tree, "-p", &parent, "-F", "-"],
        message.as_bytes(),
        author,
    );
    git(repo, &["update-ref", &refname, &commit, &parent]);
    commit
}
