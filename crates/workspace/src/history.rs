//! What a run's branch holds beyond the default branch: where it left it (the fork point) and
//! the lines its commits add and remove, as `git diff --stat` counts them.

use git2::{Oid, Patch};

use crate::error::WorkspaceError;
use crate::worktree::Worktree;

/// One file's lines added and removed by the branch's commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiffStat {
    pub path: String,
    pub insertions: u64,
    pub deletions: u64,
}

impl Worktree {
    /// The commit where the run's start commit left `base` (a commit id: the default branch's
    /// head): the start commit itself when the branch holds nothing beyond `base`.
    pub fn fork_point(&self, base: &str) -> Result<String, WorkspaceError> {
        let repo = self.repository()?;
        let start = Oid::from_str(&self.start_commit())
            .map_err(WorkspaceError::git("cannot read the start commit"))?;
        let base_id = parse_commit(base)?;
        let fork = repo
            .merge_base(start, base_id)
            .map_err(WorkspaceError::git(format!(
                "cannot find where the branch left `{base}`"
            )))?;
        Ok(fork.to_string())
    }

    /// Files, insertions and deletions of the branch's change, from where its tip left `base`
    /// (a commit id: the default branch's head) to its tip, one row per changed file.
    pub fn committed_diff_stat(&self, base: &str) -> Result<Vec<FileDiffStat>, WorkspaceError> {
        let repo = self.repository()?;
        let op = || format!("cannot measure the change of `{}`", self.branch());
        let tip = repo
            .find_commit(self.tip)
            .map_err(WorkspaceError::git(op()))?;
        let fork = repo
            .merge_base(tip.id(), parse_commit(base)?)
            .map_err(WorkspaceError::git(op()))?;
        let fork_tree = repo
            .find_commit(fork)
            .and_then(|c| c.tree())
            .map_err(WorkspaceError::git(op()))?;
        let tip_tree = tip.tree().map_err(WorkspaceError::git(op()))?;
        let diff = repo
            .diff_tree_to_tree(Some(&fork_tree), Some(&tip_tree), None)
            .map_err(WorkspaceError::git(op()))?;
        let mut files = Vec::new();
        for i in 0..diff.deltas().len() {
            let Some(patch) = Patch::from_diff(&diff, i).map_err(WorkspaceError::git(op()))? else {
                continue;
            };
            let (_, insertions, deletions) =
                patch.line_stats().map_err(WorkspaceError::git(op()))?;
            let delta = patch.delta();
            let path = delta
                .new_file()
                .path()
                .or_else(|| delta.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(FileDiffStat {
                path,
                insertions: insertions as u64,
                deletions: deletions as u64,
            });
        }
        Ok(files)
    }
}

fn parse_commit(id: &str) -> Result<Oid, WorkspaceError> {
    Oid::from_str(id).map_err(WorkspaceError::git(format!("`{id}` is not a commit id")))
}
