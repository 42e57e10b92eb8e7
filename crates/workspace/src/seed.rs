//! A new bare repository holding one commit of given files on `main`: how the `demo` sandbox
//! makes the remote its forge serves.

use std::path::Path;

use git2::{IndexEntry, IndexTime, Oid, Repository, RepositoryInitOptions, Signature};

use crate::error::WorkspaceError;
use crate::workspace::Identity;

/// Create a bare repository at `path` whose `main` branch holds one commit, by `author`, of
/// `files` (path, text; regular files, mode 644). Returns the commit's id.
pub fn seed_bare_repository(
    path: &Path,
    files: &[(&str, &str)],
    author: &Identity,
    message: &str,
) -> Result<String, WorkspaceError> {
    let op = || format!("cannot create the repository `{}`", path.display());
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let repo = Repository::init_opts(path, &opts).map_err(WorkspaceError::git(op()))?;
    let mut index = repo.index().map_err(WorkspaceError::git(op()))?;
    for (name, text) in files {
        let entry = IndexEntry {
            ctime: IndexTime::new(0, 0),
            mtime: IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100_644,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: Oid::ZERO_SHA1,
            flags: 0,
            flags_extended: 0,
            path: name.as_bytes().to_vec(),
        };
        index
            .add_frombuffer(&entry, text.as_bytes())
            .map_err(WorkspaceError::git(op()))?;
    }
    let tree = index
        .write_tree()
        .and_then(|id| repo.find_tree(id))
        .map_err(WorkspaceError::git(op()))?;
    let who = Signature::now(&author.name, &author.email).map_err(WorkspaceError::git(op()))?;
    let commit = repo
        .commit(Some("HEAD"), &who, &who, message, &tree, &[])
        .map_err(WorkspaceError::git(op()))?;
    Ok(commit.to_string())
}
