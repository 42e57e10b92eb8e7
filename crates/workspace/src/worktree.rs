//! A run's worktree: its checkout, branch and start commit, and the guard that removes it with
//! everything it added to the mirror when the run ends (or when it is dropped on an error).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::{Oid, Repository};
use issueloop_config::{ErrorChain as _, RepoName};
use issueloop_policy::ChangeFacts;

use crate::error::WorkspaceError;
use crate::lock::FileLock;
use crate::owner::{OwnerRecord, is_alive};
use crate::workspace::{Settings, mirror_lock_path};

/// One run's checkout of one repository, on the run's branch. Removed by [`Worktree::remove`],
/// or when dropped.
#[derive(Debug)]
pub struct Worktree {
    repo: RepoName,
    branch: String,
    default_branch: Option<String>,
    start: Oid,
    /// The start commit, or the last commit made by [`Worktree::commit`].
    pub(crate) tip: Oid,
    continued: bool,
    pub(crate) guard: Guard,
}

impl Worktree {
    pub(crate) fn new(
        repo: RepoName,
        branch: String,
        default_branch: Option<String>,
        start: Oid,
        continued: bool,
        guard: Guard,
    ) -> Self {
        Self {
            repo,
            branch,
            default_branch,
            start,
            tip: start,
            continued,
            guard,
        }
    }

    /// The checkout's root directory (where the agent and the gates run).
    pub fn path(&self) -> &Path {
        &self.guard.record.worktree
    }

    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// The worktree's own git directory in the mirror (`<mirror>/worktrees/<name>`: its index,
    /// `HEAD`, logs), from what issueloop recorded when it created the worktree — never from the
    /// checkout's `.git` file, which the agent can rewrite. The rest of the mirror (config,
    /// hooks, refs, objects) is not in here.
    pub fn private_gitdir(&self) -> PathBuf {
        self.mirror()
            .join("worktrees")
            .join(&self.guard.record.worktree_name)
    }

    /// The run's branch (`loop/<issue>-<slug>`).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The remote's default branch, when it advertises one.
    pub fn default_branch(&self) -> Option<&str> {
        self.default_branch.as_deref()
    }

    /// The commit the run started from.
    pub fn start_commit(&self) -> String {
        self.start.to_string()
    }

    /// The start commit, or the commit [`Worktree::commit`] made last: what the next change is
    /// measured against.
    pub fn tip_commit(&self) -> String {
        self.tip.to_string()
    }

    /// True when the remote already had the run's branch and the run continues on top of it.
    pub fn continued_existing_branch(&self) -> bool {
        self.continued
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.guard.settings
    }

    pub(crate) fn mirror(&self) -> &Path {
        &self.guard.record.mirror
    }

    pub(crate) fn open(&self) -> Result<Repository, WorkspaceError> {
        self.repository()
    }

    /// The run's change: everything in the worktree that differs from the tip commit,
    /// including commits the agent made itself, untracked files and ignored denied files. This
    /// is what [`Worktree::commit`] commits once approved.
    pub fn run_change_facts(&self) -> Result<ChangeFacts, WorkspaceError> {
        let repo = self.open()?;
        let tip = repo
            .find_commit(self.tip)
            .map_err(WorkspaceError::git(format!(
                "cannot read commit `{}`",
                self.tip
            )))?;
        crate::facts::collect(&repo, Some(&tip), true)
    }

    /// The change in the worktree against `base` (a revision; `None`: the tip commit).
    pub fn change_facts(&self, base: Option<&str>) -> Result<ChangeFacts, WorkspaceError> {
        let Some(base) = base else {
            return self.run_change_facts();
        };
        crate::facts::collect_against(&self.repository_at(base)?, Some(base))
    }

    /// Remove the checkout, its entry in the mirror and its local branch. Pushed commits stay
    /// on the remote.
    pub fn remove(mut self) -> Result<(), WorkspaceError> {
        self.guard.remove()
    }
}

/// Owns the files of one worktree: removes them all on [`Guard::remove`] or drop.
pub(crate) struct Guard {
    pub(crate) record: OwnerRecord,
    /// `<cache_dir>/worktrees/<owner>/<name>`, holding the checkout and its marker files.
    pub(crate) dir: PathBuf,
    pub(crate) settings: Arc<Settings>,
    /// Whether the mirror may hold a branch or an entry of this worktree (cleaning them takes
    /// the mirror lock, which is not worth waiting for when nothing was put there).
    pub(crate) mirror_touched: bool,
    removed: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("worktree", &self.record.worktree)
            .field("removed", &self.removed)
            .finish()
    }
}

impl Guard {
    /// Write the owner record and take charge of everything that will follow it.
    pub(crate) fn new(
        record: OwnerRecord,
        dir: PathBuf,
        settings: Arc<Settings>,
    ) -> Result<Self, WorkspaceError> {
        record.write(&owner_path(&dir, &record.worktree_name))?;
        Ok(Self {
            record,
            dir,
            settings,
            mirror_touched: false,
            removed: false,
        })
    }

    pub(crate) fn mark_ready(&self) -> Result<(), WorkspaceError> {
        let path = ready_path(&self.dir, &self.record.worktree_name);
        std::fs::write(&path, b"").map_err(WorkspaceError::io("cannot write", &path))
    }

    pub(crate) fn remove(&mut self) -> Result<(), WorkspaceError> {
        if self.removed {
            return Ok(());
        }
        let removal = if self.mirror_touched {
            Removal::Own
        } else {
            Removal::OwnCheckoutOnly
        };
        remove_worktree(&self.record, &self.dir, &self.settings, removal)?;
        self.removed = true;
        tracing::info!(worktree = %self.record.worktree.display(), "worktree removed");
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::error!(
                worktree = %self.record.worktree.display(),
                "cannot remove the worktree (it is removed at the next start-up): {e}", e = e.chain()
            );
        }
    }
}

/// Whose worktree is being removed, which decides what may be touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// This process's worktree, registered in the mirror.
    Own,
    /// This process's worktree that never reached the mirror (prepare failed early).
    OwnCheckoutOnly,
    /// A worktree of a run that died: its leftover lock on its branch goes too.
    DeadRun,
}

pub(crate) fn owner_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.owner.json"))
}

pub(crate) fn ready_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ready"))
}

/// Remove everything of one worktree, in an order that keeps the owner record until last:
/// the checkout, the mirror's admin entry and local branch (under the mirror lock), the ready
/// marker, the record. Every step tolerates what an interrupted earlier attempt left.
pub(crate) fn remove_worktree(
    record: &OwnerRecord,
    dir: &Path,
    settings: &Settings,
    removal: Removal,
) -> Result<(), WorkspaceError> {
    remove_path(&record.worktree)?;
    settings.checkpoint("checkout_removed");
    if removal != Removal::OwnCheckoutOnly && record.mirror.exists() {
        let _lock = FileLock::acquire(&mirror_lock_path(&record.mirror), settings.lock_timeout)?;
        remove_path(&record.mirror.join("worktrees").join(&record.worktree_name))?;
        if !branch_in_live_use(dir, record) {
            if removal == Removal::DeadRun {
                // The dead run may have died while updating its branch.
                let lock = record
                    .mirror
                    .join("refs/heads")
                    .join(format!("{}.lock", record.branch));
                remove_path(&lock)?;
            }
            delete_local_branch(&record.mirror, &record.branch)?;
        }
    }
    settings.checkpoint("mirror_entry_removed");
    remove_path(&crate::contain::private_index_path(
        dir,
        &record.worktree_name,
    ))?;
    remove_path(&ready_path(dir, &record.worktree_name))?;
    remove_path(&owner_path(dir, &record.worktree_name))
}

/// Whether another live run's record names the same branch (its worktree keeps the branch).
fn branch_in_live_use(dir: &Path, record: &OwnerRecord) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        path.to_string_lossy().ends_with(".owner.json")
            && OwnerRecord::read(&path).is_some_and(|other| {
                other.worktree_name != record.worktree_name
                    && other.branch == record.branch
                    && other.mirror == record.mirror
                    && is_alive(&other)
            })
    })
}

fn delete_local_branch(mirror: &Path, branch: &str) -> Result<(), WorkspaceError> {
    let repo = Repository::open_bare(mirror).map_err(WorkspaceError::git(format!(
        "cannot open the mirror `{}`",
        mirror.display()
    )))?;
    match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(mut r) => r.delete().map_err(WorkspaceError::git(format!(
            "cannot delete branch `{branch}` in `{}`",
            mirror.display()
        ))),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
        Err(e) => Err(WorkspaceError::Git {
            op: format!("cannot read branch `{branch}` in `{}`", mirror.display()),
            source: e,
        }),
    }
}

/// Remove a file, a symlink or a directory tree; missing is fine. Read-only directories
/// (some tools make their caches read-only) are made writable and the removal retried.
pub(crate) fn remove_path(path: &Path) -> Result<(), WorkspaceError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WorkspaceError::io("cannot inspect", path)(e)),
    };
    if !meta.is_dir() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(WorkspaceError::io("cannot remove", path)(e))
            }
            _ => Ok(()),
        };
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            std::fs::remove_dir_all(path).map_err(WorkspaceError::io("cannot remove", path))
        }
        Err(e) => Err(WorkspaceError::io("cannot remove", path)(e)),
    }
}

fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = std::fs::set_permissions(path, perms);
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}
