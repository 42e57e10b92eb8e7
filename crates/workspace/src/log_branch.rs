//! A branch kept as an append-only log of text files: a bare local clone that fetches the
//! branch, reads files and folders at a commit, writes a commit appending text to files, and
//! pushes it by compare-and-swap ([`crate::refcas`]). For the `github` state backend's ledger.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use git2::{ErrorCode, FileMode, Oid, Repository, Signature, Tree, TreeBuilder};

use crate::error::WorkspaceError;
use crate::refcas::{CasOutcome, fetch_branch, push_branch_cas};
use crate::remote::RemoteSpec;

/// The author and committer of every commit written by [`LogClone::commit_appends`].
const AUTHOR_NAME: &str = "issueloop";
const AUTHOR_EMAIL: &str = "issueloop@users.noreply.github.com";

/// A commit of a [`LogClone`] (opaque; shown as its full hexadecimal id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitId(Oid);

impl std::fmt::Display for CommitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The bare local clone a log branch is fetched into and its commits are written in.
pub struct LogClone {
    repo: Repository,
}

impl std::fmt::Debug for LogClone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogClone")
            .field("path", &self.repo.path())
            .finish()
    }
}

/// The files of a log branch at one commit (or none: the branch does not exist yet).
pub struct LogTree<'r> {
    repo: &'r Repository,
    tree: Option<Tree<'r>>,
}

impl LogClone {
    /// Open the bare repository at `dir`, or create an empty one there when none opens (the
    /// directory is created if missing).
    pub fn open_or_init(dir: &Path) -> Result<LogClone, WorkspaceError> {
        crate::hermetic::init()?;
        std::fs::create_dir_all(dir).map_err(WorkspaceError::io("cannot create", dir))?;
        let repo = match Repository::open_bare(dir) {
            Ok(repo) => repo,
            Err(_) => Repository::init_bare(dir).map_err(WorkspaceError::git(format!(
                "cannot create a bare repository in `{}`",
                dir.display()
            )))?,
        };
        Ok(LogClone { repo })
    }

    /// Fetch `refs/heads/{branch}` of `remote` into the local ref `into` and return the remote's
    /// tip, `None` when the remote has no such branch. See [`fetch_branch`].
    pub fn fetch(
        &self,
        remote: &RemoteSpec,
        branch: &str,
        into: &str,
        timeout: Duration,
    ) -> Result<Option<CommitId>, WorkspaceError> {
        Ok(fetch_branch(&self.repo, remote, branch, into, timeout)?.map(CommitId))
    }

    /// Move `refs/heads/{branch}` of `remote` to `new` if it still points at `expected` (`None`:
    /// the branch must not exist yet), never forced. See [`push_branch_cas`].
    pub fn push_cas(
        &self,
        remote: &RemoteSpec,
        branch: &str,
        new: CommitId,
        expected: Option<CommitId>,
        timeout: Duration,
    ) -> Result<CasOutcome, WorkspaceError> {
        push_branch_cas(
            &self.repo,
            remote,
            branch,
            new.0,
            expected.map(|c| c.0),
            timeout,
        )
    }

    /// The files at `commit`; `None`: no files (a branch not created yet).
    pub fn tree_at(&self, commit: Option<CommitId>) -> Result<LogTree<'_>, WorkspaceError> {
        let tree = match commit {
            None => None,
            Some(id) => Some(
                self.repo
                    .find_commit(id.0)
                    .and_then(|c| c.tree())
                    .map_err(WorkspaceError::git(format!("cannot read the commit {id}")))?,
            ),
        };
        Ok(LogTree {
            repo: &self.repo,
            tree,
        })
    }

    /// Write a commit whose parent is `parent` (`None`: an orphan, the first of a branch) and
    /// whose files are the parent's with `appends` applied in order: each `(path, text)` adds
    /// `text` at the end of the file at `path` (`/`-separated, folders created as needed),
    /// creating the file when missing. Before the first text appended to an existing file, a
    /// line break is added if the file does not end with one. Moves no ref: the commit is
    /// published by [`LogClone::push_cas`].
    pub fn commit_appends(
        &self,
        parent: Option<CommitId>,
        appends: &[(String, String)],
        message: &str,
    ) -> Result<CommitId, WorkspaceError> {
        let op = "cannot write a commit of the log branch";
        let err = || WorkspaceError::git(op);
        let base = self.tree_at(parent)?;
        // path → new content, in first-appended order.
        let mut files: Vec<(Vec<&str>, String)> = Vec::new();
        for (path, text) in appends {
            let parts = split_path(path)?;
            if let Some((_, content)) = files.iter_mut().find(|(p, _)| *p == parts) {
                content.push_str(text);
                continue;
            }
            let mut content = match base.read(path)? {
                Some(bytes) => String::from_utf8(bytes)
                    .map_err(|_| WorkspaceError::LogFileNotUtf8 { path: path.clone() })?,
                None => String::new(),
            };
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str(text);
            files.push((parts, content));
        }
        let tree_id = self.write_tree(base.tree.as_ref(), &files, 0)?;
        let tree = self.repo.find_tree(tree_id).map_err(err())?;
        let sig = Signature::now(AUTHOR_NAME, AUTHOR_EMAIL).map_err(err())?;
        let parent = match parent {
            Some(id) => Some(self.repo.find_commit(id.0).map_err(err())?),
            None => None,
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(None, &sig, &sig, message, &tree, &parents)
            .map(CommitId)
            .map_err(err())
    }

    /// The tree `existing` with `files` (paths split, looked at from component `depth` on)
    /// written into it; returns the new tree's id.
    fn write_tree(
        &self,
        existing: Option<&Tree<'_>>,
        files: &[(Vec<&str>, String)],
        depth: usize,
    ) -> Result<Oid, WorkspaceError> {
        let err = || WorkspaceError::git("cannot write a tree of the log branch");
        let mut builder: TreeBuilder<'_> = self.repo.treebuilder(existing).map_err(err())?;
        let mut folders: BTreeMap<&str, Vec<(Vec<&str>, String)>> = BTreeMap::new();
        for (parts, content) in files {
            match parts.get(depth..) {
                Some([name]) => {
                    let blob = self.repo.blob(content.as_bytes()).map_err(err())?;
                    builder
                        .insert(name, blob, FileMode::Blob.into())
                        .map_err(err())?;
                }
                Some([folder, _, ..]) => folders
                    .entry(folder)
                    .or_default()
                    .push((parts.clone(), content.clone())),
                _ => {}
            }
        }
        for (folder, inside) in folders {
            let sub = existing
                .and_then(|t| t.get_name(folder))
                .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                .and_then(|e| self.repo.find_tree(e.id()).ok());
            let id = self.write_tree(sub.as_ref(), &inside, depth + 1)?;
            builder
                .insert(folder, id, FileMode::Tree.into())
                .map_err(err())?;
        }
        builder.write().map_err(err())
    }
}

impl LogTree<'_> {
    /// The content of the file at `path` (`/`-separated), `None` when there is no such file.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, WorkspaceError> {
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(WorkspaceError::git(format!("cannot look up `{path}`"))(e)),
        };
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(WorkspaceError::git(format!("cannot read `{path}`")))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// The names of the entries of the folder at `path` (`/`-separated), in git's order; empty
    /// when there is no such folder. Names that are not UTF-8 are left out.
    pub fn list(&self, path: &str) -> Result<Vec<String>, WorkspaceError> {
        let Some(tree) = &self.tree else {
            return Ok(Vec::new());
        };
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WorkspaceError::git(format!("cannot look up `{path}`"))(e)),
        };
        if entry.kind() != Some(git2::ObjectType::Tree) {
            return Ok(Vec::new());
        }
        let folder = self
            .repo
            .find_tree(entry.id())
            .map_err(WorkspaceError::git(format!(
                "cannot read the folder `{path}`"
            )))?;
        Ok(folder
            .iter()
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect())
    }
}

/// `path` split at `/`; refused when empty or holding an empty, `.` or `..` component.
fn split_path(path: &str) -> Result<Vec<&str>, WorkspaceError> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(WorkspaceError::InvalidLogPath { path: path.into() });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appends(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect()
    }

    fn text(tree: &LogTree<'_>, path: &str) -> Option<String> {
        tree.read(path)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn paths_are_split_and_bad_components_refused() {
        assert_eq!(split_path("a.json").unwrap(), vec!["a.json"]);
        assert_eq!(
            split_path("ledger/d.jsonl").unwrap(),
            vec!["ledger", "d.jsonl"]
        );
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b"] {
            assert!(
                matches!(split_path(bad), Err(WorkspaceError::InvalidLogPath { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn an_orphan_commit_creates_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let clone = LogClone::open_or_init(&dir.path().join("log.git")).unwrap();
        let empty = clone.tree_at(None).unwrap();
        assert_eq!(empty.read("a.json").unwrap(), None);
        assert!(empty.list("ledger").unwrap().is_empty());

        let c = clone
            .commit_appends(
                None,
                &appends(&[
                    ("a.json", "{}\n"),
                    ("ledger/2026-12-05.jsonl", "one\n"),
                    ("deep/er/x.txt", "x"),
                ]),
                "first",
            )
            .unwrap();
        let tree = clone.tree_at(Some(c)).unwrap();
        assert_eq!(text(&tree, "a.json").as_deref(), Some("{}\n"));
        assert_eq!(
            text(&tree, "ledger/2026-12-05.jsonl").as_deref(),
            Some("one\n")
        );
        assert_eq!(text(&tree, "deep/er/x.txt").as_deref(), Some("x"));
        assert_eq!(tree.list("ledger").unwrap(), vec!["2026-12-05.jsonl"]);
        assert_eq!(tree.list("deep").unwrap(), vec!["er"]);
        // A folder is not a file, a file is not a folder.
        assert_eq!(tree.read("ledger").unwrap(), None);
        assert!(tree.list("a.json").unwrap().is_empty());
        let commit = clone.repo.find_commit(c.0).unwrap();
        assert_eq!(commit.parent_count(), 0);
        assert_eq!(commit.message().ok(), Some("first"));
        assert_eq!(commit.author().name().ok(), Some(AUTHOR_NAME));
    }

    #[test]
    fn appends_keep_other_files_and_end_lines_before_new_text() {
        let dir = tempfile::tempdir().unwrap();
        let clone = LogClone::open_or_init(&dir.path().join("log.git")).unwrap();
        let first = clone
            .commit_appends(
                None,
                &appends(&[("ledger/a.jsonl", "1"), ("ledger/b.jsonl", "b\n")]),
                "first",
            )
            .unwrap();
        let second = clone
            .commit_appends(
                Some(first),
                &appends(&[
                    ("ledger/a.jsonl", "2\n"),
                    ("ledger/a.jsonl", "3\n"),
                    ("journal/j.jsonl", "j\n"),
                ]),
                "second",
            )
            .unwrap();
        let tree = clone.tree_at(Some(second)).unwrap();
        // "1" had no line break: one is added before the first new text, none between appends.
        assert_eq!(text(&tree, "ledger/a.jsonl").as_deref(), Some("1\n2\n3\n"));
        assert_eq!(text(&tree, "ledger/b.jsonl").as_deref(), Some("b\n"));
        assert_eq!(text(&tree, "journal/j.jsonl").as_deref(), Some("j\n"));
        let mut listed = tree.list("ledger").unwrap();
        listed.sort();
        assert_eq!(listed, vec!["a.jsonl", "b.jsonl"]);
        let commit = clone.repo.find_commit(second.0).unwrap();
        assert_eq!(commit.parent_ids().collect::<Vec<_>>(), vec![first.0]);
        // The parent is unchanged.
        let old = clone.tree_at(Some(first)).unwrap();
        assert_eq!(text(&old, "ledger/a.jsonl").as_deref(), Some("1"));
        assert_eq!(old.read("journal/j.jsonl").unwrap(), None);
    }

    #[test]
    fn opening_twice_finds_the_same_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.git");
        let c = LogClone::open_or_init(&path)
            .unwrap()
            .commit_appends(None, &appends(&[("f", "x\n")]), "m")
            .unwrap();
        let again = LogClone::open_or_init(&path).unwrap();
        assert_eq!(
            text(&again.tree_at(Some(c)).unwrap(), "f").as_deref(),
            Some("x\n")
        );
    }
}
