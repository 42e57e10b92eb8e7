//! Start-up cleaning: worktrees, mirror entries, branches, lock files and temporary files left
//! by runs that died (killed, crashed, machine rebooted). Each removal is logged.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::Repository;
use issueloop_config::ErrorChain as _;

use crate::error::WorkspaceError;
use crate::lock::FileLock;
use crate::owner::{OwnerRecord, is_alive};
use crate::workspace::{Workspace, mirror_lock_path};
use crate::worktree::{Removal, ready_path, remove_path, remove_worktree};

/// A lock or temporary file in a mirror this old is abandoned even while other runs work with
/// the mirror (git holds such files for moments, not minutes).
const ABANDONED_AFTER: Duration = Duration::from_secs(10 * 60);

/// What [`Workspace::cleanup_stale`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleReport {
    /// One line per removed thing, as logged.
    pub removed: Vec<String>,
}

impl Workspace {
    /// Remove what dead runs left: their worktrees (checkout, mirror entry, local branch,
    /// markers), checkouts and mirror entries without an owner, half-cloned mirrors, and lock
    /// and temporary files in mirrors. Worktrees of live runs (this or another process) are
    /// left alone. Call it at start-up.
    pub fn cleanup_stale(&self) -> Result<StaleReport, WorkspaceError> {
        crate::hermetic::init()?;
        let mut report = StaleReport::default();
        let mut failures = Vec::new();
        let worktrees = self.cache_dir().join("worktrees");
        for dir in two_levels(&worktrees) {
            if let Err(e) = self.clean_worktrees_dir(&dir, &mut report, &mut failures) {
                failures.push(e.chain().to_string());
            }
        }
        let mirrors = self.cache_dir().join("mirrors");
        for owner_dir in children(&mirrors) {
            for path in children(&owner_dir) {
                let name = file_name(&path);
                let result = if name.ends_with(".git") && path.is_dir() {
                    self.clean_mirror(&path, &mut report)
                } else if name.contains(".git.tmp-") {
                    self.remove_unfinished_clone(&owner_dir, &path, &mut report)
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    failures.push(e.chain().to_string());
                }
            }
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            for f in &failures {
                tracing::warn!("{f}");
            }
            Err(WorkspaceError::CleanupIncomplete {
                removed: report.removed.len(),
                failures,
            })
        }
    }

    /// A first clone that never completed; its final name does not exist yet, and creating it
    /// happens under the mirror lock.
    fn remove_unfinished_clone(
        &self,
        owner_dir: &Path,
        path: &Path,
        report: &mut StaleReport,
    ) -> Result<(), WorkspaceError> {
        let name = file_name(path);
        let mirror = owner_dir.join(name.split(".tmp-").next().unwrap_or_default());
        let _lock = FileLock::acquire(&mirror_lock_path(&mirror), self.settings.lock_timeout)?;
        remove_path(path)?;
        log(
            report,
            format!("removed the unfinished clone `{}`", path.display()),
        );
        Ok(())
    }

    /// Worktrees of one repository: records of dead owners, and checkouts without a record.
    fn clean_worktrees_dir(
        &self,
        dir: &Path,
        report: &mut StaleReport,
        failures: &mut Vec<String>,
    ) -> Result<(), WorkspaceError> {
        let entries = children(dir);
        let mut names_with_record = Vec::new();
        for path in &entries {
            let file = file_name(path);
            let Some(name) = file.strip_suffix(".owner.json") else {
                continue;
            };
            names_with_record.push(name.to_owned());
            match OwnerRecord::read(path) {
                Some(record) if is_alive(&record) => {}
                Some(record) => {
                    let ready = ready_path(dir, name).exists();
                    if let Err(e) = remove_worktree(&record, dir, &self.settings, Removal::DeadRun)
                    {
                        failures.push(e.chain().to_string());
                        continue;
                    }
                    log(
                        report,
                        format!(
                            "removed the stale worktree `{}` on `{}` of dead run (pid {}, {})",
                            record.worktree.display(),
                            record.branch,
                            record.pid,
                            if ready {
                                "set up"
                            } else {
                                "interrupted during set-up"
                            }
                        ),
                    );
                }
                None => {
                    // Unreadable: a live run writes its record whole before anything else.
                    remove_path(&dir.join(name))?;
                    remove_path(&crate::contain::private_index_path(dir, name))?;
                    remove_path(&ready_path(dir, name))?;
                    remove_path(path)?;
                    log(
                        report,
                        format!("removed the unreadable owner record `{}`", path.display()),
                    );
                }
            }
        }
        for path in entries {
            let file = file_name(&path);
            let name = file
                .strip_suffix(".ready")
                .or_else(|| file.strip_suffix(".index"))
                .or_else(|| file.split_once(".owner.json.tmp-").map(|(n, _)| n))
                .unwrap_or(&file);
            if names_with_record.iter().any(|n| n == name) || file.ends_with(".owner.json") {
                continue;
            }
            if file.contains(".owner.json.tmp-") && !older_than(&path, Duration::from_secs(60)) {
                continue; // a record being written right now
            }
            // No record: the record is written first and removed last, so nothing live is here.
            remove_path(&path)?;
            log(
                report,
                format!("removed `{}`, which no run owns", path.display()),
            );
        }
        Ok(())
    }

    /// One mirror, under its lock: entries of worktrees no live run owns, local branches no
    /// live run works on, and abandoned lock and temporary files.
    fn clean_mirror(&self, mirror: &Path, report: &mut StaleReport) -> Result<(), WorkspaceError> {
        let _lock = FileLock::acquire(&mirror_lock_path(mirror), self.settings.lock_timeout)?;
        let live = self.live_records(mirror);
        for entry in children(&mirror.join("worktrees")) {
            let name = file_name(&entry);
            if live.iter().any(|r| r.worktree_name == name) {
                continue;
            }
            remove_path(&entry)?;
            log(
                report,
                format!(
                    "removed the mirror entry `{}` of a dead run",
                    entry.display()
                ),
            );
        }
        let repo = Repository::open_bare(mirror).map_err(WorkspaceError::git(format!(
            "cannot open the mirror `{}`",
            mirror.display()
        )))?;
        let checked_out: Vec<String> = children(&mirror.join("worktrees"))
            .iter()
            .filter_map(|entry| std::fs::read_to_string(entry.join("HEAD")).ok())
            .filter_map(|head| {
                head.trim_end()
                    .strip_prefix("ref: refs/heads/")
                    .map(str::to_owned)
            })
            .collect();
        let mut stale_branches = Vec::new();
        let branches = repo
            .references_glob("refs/heads/*")
            .map_err(WorkspaceError::git(format!(
                "cannot list branches of `{}`",
                mirror.display()
            )))?;
        for reference in branches.flatten() {
            // Branches of live runs, and any branch a live worktree has checked out (an agent
            // may switch branches), stay.
            if let Some(name) = reference
                .name()
                .ok()
                .and_then(|n| n.strip_prefix("refs/heads/"))
                && !live.iter().any(|r| r.branch == name)
                && !checked_out.iter().any(|b| b == name)
            {
                stale_branches.push(name.to_owned());
            }
        }
        drop(repo);
        let no_live_run = live.is_empty();
        // Lock and temporary files first: a dead run's ref lock would stop the branch deletion.
        for file in leftover_files(mirror) {
            if no_live_run || older_than(&file, ABANDONED_AFTER) {
                remove_path(&file)?;
                log(
                    report,
                    format!("removed the abandoned `{}`", file.display()),
                );
            }
        }
        let repo = Repository::open_bare(mirror).map_err(WorkspaceError::git(format!(
            "cannot open the mirror `{}`",
            mirror.display()
        )))?;
        for name in stale_branches {
            // A lock on a branch no live run works on was left by a dead one.
            let lock = mirror.join("refs/heads").join(format!("{name}.lock"));
            if lock.exists() {
                remove_path(&lock)?;
                log(
                    report,
                    format!("removed the abandoned `{}`", lock.display()),
                );
            }
            if let Ok(mut r) = repo.find_reference(&format!("refs/heads/{name}")) {
                r.delete().map_err(WorkspaceError::git(format!(
                    "cannot delete branch `{name}` in `{}`",
                    mirror.display()
                )))?;
                log(
                    report,
                    format!(
                        "removed the branch `{name}` of a dead run from `{}`",
                        mirror.display()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Owner records of live runs that use `mirror`.
    fn live_records(&self, mirror: &Path) -> Vec<OwnerRecord> {
        two_levels(&self.cache_dir().join("worktrees"))
            .into_iter()
            .flat_map(|dir| children(&dir))
            .filter(|p| file_name(p).ends_with(".owner.json"))
            .filter_map(|p| OwnerRecord::read(&p))
            .filter(|r| r.mirror == mirror && is_alive(r))
            .collect()
    }
}

fn log(report: &mut StaleReport, line: String) {
    tracing::info!("{line}");
    report.removed.push(line);
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// `<dir>/<a>/<b>` directories (`worktrees/<owner>/<name>`).
fn two_levels(dir: &Path) -> Vec<PathBuf> {
    children(dir)
        .into_iter()
        .filter(|p| p.is_dir())
        .flat_map(|p| children(&p))
        .filter(|p| p.is_dir())
        .collect()
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

/// Lock files (`*.lock`) anywhere in the mirror outside `worktrees/` (whose dead entries are
/// removed whole), and libgit2's and git's temporary object and pack files.
fn leftover_files(mirror: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![mirror.to_owned()];
    while let Some(dir) = stack.pop() {
        for path in children(&dir) {
            let name = file_name(&path);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if !(dir == mirror && name == "worktrees") {
                    stack.push(path);
                }
                continue;
            }
            let temporary = name.ends_with(".lock")
                || name.starts_with("tmp_")
                || name.starts_with("pack_git2_")
                || name.contains("_git2_")
                || (name.contains(".issueloop-")
                    && name.ends_with(".tmp")
                    // Another process may be about to rename it into place.
                    && older_than(&path, Duration::from_secs(60)));
            if temporary {
                out.push(path);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_files_are_locks_and_temporaries_outside_worktrees() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        for f in [
            "refs/heads/loop/1-x.lock",
            "packed-refs.lock",
            "objects/pack/pack_git2_abc",
            "objects/ab/tmp_object_git2_x",
            "objects/pack/pack-1.pack",
            "worktrees/w/index.lock",
            "refs/heads/main",
        ] {
            let p = m.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        let mut found: Vec<String> = leftover_files(m)
            .iter()
            .map(|p| p.strip_prefix(m).unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                "objects/ab/tmp_object_git2_x",
                "objects/pack/pack_git2_abc",
                "packed-refs.lock",
                "refs/heads/loop/1-x.lock",
            ]
        );
    }
}
