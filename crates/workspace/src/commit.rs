//! Committing an approved change: exactly the judged paths, with the judged content, on the
//! run's branch only, with the bot identity.

use git2::{Index, IndexEntry, IndexTime, Oid, Signature};
use issueloop_config::ErrorChain as _;
use issueloop_policy::{ApprovedChange, ChangeKind, FileMode};

use crate::error::WorkspaceError;
use crate::facts::{blob_id, repository_head};
use crate::lock::FileLock;
use crate::workspace::{mirror_lock_path, refuse_protected};
use crate::worktree::Worktree;

/// What [`Worktree::commit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A commit on the run's branch.
    Committed { id: String, parent: String },
    /// The approved change is empty (or restores the tip exactly): nothing to commit.
    NothingToCommit,
}

impl Worktree {
    /// Commit `change` on the run's branch: one commit on top of the tip (the start commit,
    /// or this method's previous commit), holding exactly the judged paths with the content
    /// they had when judged, authored by the configured identity.
    ///
    /// Commits the agent made itself are replaced by this one (their content is part of the
    /// judged change); commits that were on the remote branch stay, since the tip includes
    /// them. Refuses a protected branch, facts measured against another base, and a path whose
    /// content changed after it was judged.
    pub fn commit(
        &mut self,
        change: &ApprovedChange,
        message: &str,
    ) -> Result<CommitOutcome, WorkspaceError> {
        let settings = self.guard.settings.clone();
        refuse_protected(&settings, self.branch(), self.default_branch())?;
        let facts = change.facts();
        if facts.base.as_deref() != Some(self.tip_commit().as_str()) {
            return Err(WorkspaceError::FactsBaseMismatch {
                judged: facts.base.clone().unwrap_or_else(|| "(no commit)".into()),
                start: self.tip_commit(),
            });
        }
        let repo = self.open()?;
        let root = self.path().to_owned();
        let tip = repo
            .find_commit(self.tip)
            .map_err(WorkspaceError::git(format!(
                "cannot read commit `{}`",
                self.tip
            )))?;
        let base_tree = tip
            .tree()
            .map_err(WorkspaceError::git("cannot read the tip's tree"))?;
        let op = || format!("cannot build the commit in `{}`", root.display());

        let mut index = Index::new().map_err(WorkspaceError::git(op()))?;
        index
            .read_tree(&base_tree)
            .map_err(WorkspaceError::git(op()))?;
        for changed in facts.tracked() {
            if changed.path_not_utf8 {
                return Err(WorkspaceError::NonUtf8Path {
                    path: changed.path.clone(),
                });
            }
            if let ChangeKind::Renamed { from } = &changed.kind {
                remove_entry(&mut index, from).map_err(WorkspaceError::git(op()))?;
            }
            if changed.kind == ChangeKind::Deleted {
                remove_entry(&mut index, &changed.path).map_err(WorkspaceError::git(op()))?;
                continue;
            }
            let abs = root.join(&changed.path);
            let changed_since = || WorkspaceError::ChangedSinceJudged {
                path: changed.path.clone(),
            };
            let (mode, id) = match changed.new_mode {
                Some(FileMode::Submodule) => {
                    let id = repository_head(&abs)
                        .map(|id| id.to_string())
                        .or_else(|| changed.new_id.clone());
                    if id != changed.new_id {
                        return Err(changed_since());
                    }
                    let id = id
                        .and_then(|id| Oid::from_str(&id).ok())
                        .ok_or_else(changed_since)?;
                    (0o160000, id)
                }
                Some(FileMode::Symlink) => {
                    let target = std::fs::read_link(&abs)
                        .map_err(WorkspaceError::io("cannot read", &abs))?;
                    let bytes = {
                        use std::os::unix::ffi::OsStrExt;
                        target.as_os_str().as_bytes().to_vec()
                    };
                    (
                        0o120000,
                        judged_blob(&repo, &bytes, changed, &changed_since)?,
                    )
                }
                Some(mode @ (FileMode::Regular | FileMode::Executable)) => {
                    // Never open a FIFO or device the path may have become: reading could block.
                    let is_file = std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_file());
                    if !is_file {
                        return Err(changed_since());
                    }
                    let bytes =
                        std::fs::read(&abs).map_err(WorkspaceError::io("cannot read", &abs))?;
                    let octal = if mode == FileMode::Executable {
                        0o100755
                    } else {
                        0o100644
                    };
                    (octal, judged_blob(&repo, &bytes, changed, &changed_since)?)
                }
                None => return Err(changed_since()),
            };
            // A path that became a directory or stopped being one: drop what was there.
            remove_entry(&mut index, &changed.path).map_err(WorkspaceError::git(op()))?;
            index
                .add(&entry(&changed.path, mode, id))
                .map_err(WorkspaceError::git(op()))?;
        }
        let tree_id = index
            .write_tree_to(&repo)
            .map_err(WorkspaceError::git(op()))?;
        if tree_id == base_tree.id() {
            return Ok(CommitOutcome::NothingToCommit);
        }
        let tree = repo.find_tree(tree_id).map_err(WorkspaceError::git(op()))?;
        settings.checkpoint("commit_tree_written");
        let identity = &settings.identity;
        let author = Signature::now(&identity.name, &identity.email).map_err(
            WorkspaceError::git(format!(
                "`{} <{}>` is not a usable identity",
                identity.name, identity.email
            )),
        )?;
        let id = repo
            .commit(None, &author, &author, message, &tree, &[&tip])
            .map_err(WorkspaceError::git(op()))?;
        settings.checkpoint("commit_written");

        let refname = format!("refs/heads/{}", self.branch());
        {
            let _lock = FileLock::acquire(&mirror_lock_path(self.mirror()), settings.lock_timeout)?;
            repo.reference(&refname, id, true, "issueloop: commit the approved change")
                .map_err(WorkspaceError::git(format!("cannot move `{refname}`")))?;
        }
        settings.checkpoint("branch_updated");
        // Leave the worktree clean on its branch: issueloop's index at the new tree, and the
        // agent's gitdir with its branch in HEAD and the same index.
        // Both are conveniences: a stale private index is rebuilt from the tip's tree on the
        // next comparison, and the agent's gitdir is the agent's. Neither undoes the commit.
        if let Err(e) = self.reset_views(&repo, tree_id) {
            tracing::warn!(
                worktree = %root.display(),
                "committed, but cannot reset the worktree's indexes: {e}", e = e.chain()
            );
        }
        let parent = self.tip.to_string();
        self.tip = id;
        tracing::info!(branch = self.branch(), commit = %id, "committed the approved change");
        Ok(CommitOutcome::Committed {
            id: id.to_string(),
            parent,
        })
    }
}

/// Write `bytes` as a blob if they are what was judged.
fn judged_blob(
    repo: &git2::Repository,
    bytes: &[u8],
    changed: &issueloop_policy::ChangedPath,
    changed_since: &dyn Fn() -> WorkspaceError,
) -> Result<Oid, WorkspaceError> {
    if Some(blob_id(bytes).to_string()) != changed.new_id {
        return Err(changed_since());
    }
    repo.blob(bytes).map_err(WorkspaceError::git(format!(
        "cannot store `{}`",
        changed.path
    )))
}

fn remove_entry(index: &mut Index, path: &str) -> Result<(), git2::Error> {
    let p = std::path::Path::new(path);
    if index.get_path(p, 0).is_some() {
        index.remove_path(p)?;
    }
    // A directory replaced by a file: its entries go too.
    index.remove_dir(p, 0)
}

fn entry(path: &str, mode: u32, id: Oid) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: u16::try_from(path.len()).unwrap_or(0xfff).min(0xfff),
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}
