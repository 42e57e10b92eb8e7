//! The in-memory repository model behind the fake: issues, labels with who applied them,
//! comments, pull requests, collaborators and git refs (in memory, or in a real bare repository so
//! pushes and the API see the same branches).

#![expect(
    clippy::disallowed_types,
    reason = "a test double: it reads its bare repository with the git command line, unsandboxed"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;

/// A commit id used for the default branch of repositories without a git directory.
pub const MEMORY_HEAD_SHA: &str = "aa218f56b14c9653891f9e74264a383fa43fefbd";

#[derive(Clone, Debug)]
pub enum EventKind {
    Labeled(String),
    Unlabeled(String),
    Renamed { from: String, to: String },
    Closed,
    Reopened,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub id: u64,
    pub kind: EventKind,
    pub actor: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub author: String,
    pub open: bool,
    pub labels: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub events: Vec<Event>,
    pub is_pull: bool,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub author: String,
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Pull {
    pub id: u64,
    pub number: u64,
    pub head: String,
    pub base: String,
    pub draft: bool,
}

/// Where a repository's refs live.
#[derive(Clone, Debug)]
pub enum RefStore {
    Memory(BTreeMap<String, String>),
    /// A bare repository: `clone_url` points at it and `git push` updates it.
    Git(PathBuf),
}

/// Why a ref operation was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RefError {
    AlreadyExists,
    Missing,
    UnknownObject,
    NotFastForward,
    Git(String),
}

impl RefStore {
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            RefStore::Memory(refs) => refs.get(name).cloned(),
            RefStore::Git(dir) => git(dir, &["rev-parse", "--verify", "-q", name])
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        }
    }

    pub fn create(&mut self, name: &str, sha: &str) -> Result<(), RefError> {
        if self.get(name).is_some() {
            return Err(RefError::AlreadyExists);
        }
        match self {
            RefStore::Memory(refs) => {
                if !is_sha(sha) {
                    return Err(RefError::UnknownObject);
                }
                refs.insert(name.to_owned(), sha.to_owned());
                Ok(())
            }
            RefStore::Git(dir) => {
                if git(dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_err() {
                    return Err(RefError::UnknownObject);
                }
                // An empty old value makes git refuse when the ref exists: the same atomic
                // create GitHub offers.
                git(dir, &["update-ref", name, sha, ""]).map_err(|e| {
                    if self_exists(dir, name) {
                        RefError::AlreadyExists
                    } else {
                        RefError::Git(e)
                    }
                })?;
                Ok(())
            }
        }
    }

    pub fn update(&mut self, name: &str, sha: &str, force: bool) -> Result<(), RefError> {
        let Some(old) = self.get(name) else {
            return Err(RefError::Missing);
        };
        match self {
            RefStore::Memory(refs) => {
                if !is_sha(sha) {
                    return Err(RefError::UnknownObject);
                }
                refs.insert(name.to_owned(), sha.to_owned());
                Ok(())
            }
            RefStore::Git(dir) => {
                if git(dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_err() {
                    return Err(RefError::UnknownObject);
                }
                if !force && git(dir, &["merge-base", "--is-ancestor", &old, sha]).is_err() {
                    return Err(RefError::NotFastForward);
                }
                git(dir, &["update-ref", name, sha, &old]).map_err(RefError::Git)?;
                Ok(())
            }
        }
    }

    pub fn delete(&mut self, name: &str) -> Result<(), RefError> {
        if self.get(name).is_none() {
            return Err(RefError::Missing);
        }
        match self {
            RefStore::Memory(refs) => {
                refs.remove(name);
                Ok(())
            }
            RefStore::Git(dir) => git(dir, &["update-ref", "-d", name])
                .map(|_| ())
                .map_err(RefError::Git),
        }
    }

    /// Whether `head` has commits `base` lacks (`None` when unknown: refs kept in memory).
    pub fn has_commits_beyond(&self, base: &str, head: &str) -> Option<bool> {
        match self {
            RefStore::Memory(_) => None,
            RefStore::Git(dir) => {
                let out = git(dir, &["rev-list", "--count", &format!("{base}..{head}")]).ok()?;
                Some(out.trim() != "0")
            }
        }
    }
}

fn self_exists(dir: &Path, name: &str) -> bool {
    git(dir, &["rev-parse", "--verify", "-q", name]).is_ok()
}

fn fnv(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs git in `dir` isolated from the user's configuration and from inherited repository
/// variables.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[derive(Clone, Debug)]
pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub private: bool,
    pub drafts_supported: bool,
    pub issues: BTreeMap<u64, Issue>,
    pub pulls: BTreeMap<u64, Pull>,
    pub comments: BTreeMap<u64, Comment>,
    /// login → role (`admin`, `maintain`, `write`, `triage`, `read`, `none` or a custom role).
    pub collaborators: BTreeMap<String, String>,
    pub refs: RefStore,
    /// Commits made through the API in a repository whose refs are kept in memory.
    pub commits: BTreeMap<String, Commit>,
}

/// A commit as the Git database API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub date: Timestamp,
}

/// The tree of commits the in-memory model did not make (git's empty tree).
pub const EMPTY_TREE_SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

impl Repo {
    /// Writes a commit object (`git commit-tree` in a real repository).
    pub fn create_commit(&mut self, mut commit: Commit) -> Result<String, RefError> {
        match &self.refs {
            RefStore::Memory(_) => {
                if !is_sha(&commit.tree) || !commit.parents.iter().all(|p| is_sha(p)) {
                    return Err(RefError::UnknownObject);
                }
                let text = format!(
                    "{}|{}|{}|{}|{}|{}",
                    commit.tree,
                    commit.parents.join(","),
                    commit.author_name,
                    commit.author_email,
                    commit.date.as_second(),
                    commit.message
                );
                let a = fnv(text.as_bytes(), 0xcbf2_9ce4_8422_2325);
                let b = fnv(text.as_bytes(), 0x8422_2325_cbf2_9ce4);
                let c = fnv(text.as_bytes(), 0x1234_5678_9abc_def0);
                commit.sha = format!("{a:016x}{b:016x}{:08x}", c >> 32);
                self.commits.insert(commit.sha.clone(), commit.clone());
                Ok(commit.sha)
            }
            RefStore::Git(dir) => {
                if git(
                    dir,
                    &["cat-file", "-e", &format!("{}^{{tree}}", commit.tree)],
                )
                .is_err()
                    || commit
                        .parents
                        .iter()
                        .any(|p| git(dir, &["cat-file", "-e", &format!("{p}^{{commit}}")]).is_err())
                {
                    return Err(RefError::UnknownObject);
                }
                let mut args = vec!["commit-tree".to_owned(), commit.tree.clone()];
                for p in &commit.parents {
                    args.push("-p".into());
                    args.push(p.clone());
                }
                args.push("-m".into());
                args.push(commit.message.clone());
                let date = format!("{} +0000", commit.date.as_second());
                let out = Command::new("git")
                    .arg("--git-dir")
                    .arg(dir)
                    .args(&args)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_AUTHOR_NAME", &commit.author_name)
                    .env("GIT_AUTHOR_EMAIL", &commit.author_email)
                    .env("GIT_AUTHOR_DATE", &date)
                    .env("GIT_COMMITTER_NAME", &commit.author_name)
                    .env("GIT_COMMITTER_EMAIL", &commit.author_email)
                    .env("GIT_COMMITTER_DATE", &date)
                    .env_remove("GIT_DIR")
                    .env_remove("GIT_WORK_TREE")
                    .env_remove("GIT_INDEX_FILE")
                    .output()
                    .map_err(|e| RefError::Git(format!("cannot run git: {e}")))?;
                if !out.status.success() {
                    return Err(RefError::Git(
                        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    ));
                }
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
            }
        }
    }

    /// A commit by id: read from the real repository, or the in-memory model's (a commit it did
    /// not make, such as the default branch's head, shows as a root commit of the empty tree).
    pub fn commit(&self, sha: &str) -> Option<Commit> {
        match &self.refs {
            RefStore::Memory(_) => {
                if let Some(c) = self.commits.get(sha) {
                    return Some(c.clone());
                }
                is_sha(sha).then(|| Commit {
                    sha: sha.to_owned(),
                    message: "Initial commit".into(),
                    tree: EMPTY_TREE_SHA.into(),
                    parents: Vec::new(),
                    author_name: self.owner.clone(),
                    author_email: format!("{}@users.noreply.github.com", self.owner),
                    date: Timestamp::UNIX_EPOCH,
                })
            }
            RefStore::Git(dir) => {
                let text = git(dir, &["cat-file", "commit", sha]).ok()?;
                let (head, message) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
                let mut commit = Commit {
                    sha: git(
                        dir,
                        &["rev-parse", "--verify", "-q", &format!("{sha}^{{commit}}")],
                    )
                    .ok()?
                    .trim()
                    .to_owned(),
                    message: message.to_owned(),
                    tree: String::new(),
                    parents: Vec::new(),
                    author_name: String::new(),
                    author_email: String::new(),
                    date: Timestamp::UNIX_EPOCH,
                };
                for line in head.lines() {
                    if let Some(t) = line.strip_prefix("tree ") {
                        commit.tree = t.to_owned();
                    } else if let Some(p) = line.strip_prefix("parent ") {
                        commit.parents.push(p.to_owned());
                    } else if let Some(a) = line.strip_prefix("author ") {
                        // `Name <email> 1700000000 +0000`
                        if let Some((name, rest)) = a.split_once(" <")
                            && let Some((email, when)) = rest.split_once("> ")
                        {
                            commit.author_name = name.to_owned();
                            commit.author_email = email.to_owned();
                            commit.date = when
                                .split_whitespace()
                                .next()
                                .and_then(|s| s.parse::<i64>().ok())
                                .and_then(|s| Timestamp::from_second(s).ok())
                                .unwrap_or(Timestamp::UNIX_EPOCH);
                        }
                    }
                }
                Some(commit)
            }
        }
    }

    /// Whether `new` descends from `old`; `None` when the in-memory model cannot tell (a commit
    /// it did not make).
    pub fn is_fast_forward(&self, old: &str, new: &str) -> Option<bool> {
        match &self.refs {
            RefStore::Git(dir) => {
                Some(git(dir, &["merge-base", "--is-ancestor", old, new]).is_ok())
            }
            RefStore::Memory(_) => {
                let mut seen = std::collections::BTreeSet::new();
                let mut todo = vec![new.to_owned()];
                let mut known = false;
                while let Some(sha) = todo.pop() {
                    if sha == old {
                        return Some(true);
                    }
                    if !seen.insert(sha.clone()) {
                        continue;
                    }
                    if let Some(c) = self.commits.get(&sha) {
                        known = true;
                        todo.extend(c.parents.iter().cloned());
                    }
                }
                known.then_some(false)
            }
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn clone_url(&self) -> String {
        match &self.refs {
            RefStore::Git(dir) => dir.display().to_string(),
            RefStore::Memory(_) => format!("https://github.com/{}.git", self.full_name()),
        }
    }

    pub fn next_number(&self) -> u64 {
        self.issues.keys().next_back().copied().unwrap_or(0) + 1
    }

    pub fn open_issue_count(&self) -> usize {
        self.issues.values().filter(|i| i.open).count()
    }

    pub fn comment_count(&self, issue: u64) -> usize {
        self.comments.values().filter(|c| c.issue == issue).count()
    }

    pub fn association(&self, login: &str) -> &'static str {
        if login == self.owner {
            return "OWNER";
        }
        match self.collaborators.get(login).map(String::as_str) {
            Some("none") | None => "NONE",
            Some(_) => "COLLABORATOR",
        }
    }
}
