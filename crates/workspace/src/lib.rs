//! Workspaces for runs: a bare mirror per repository under the cache directory, one git
//! worktree per run and repository on the run's branch, the change facts the diff policy
//! judges, the commit of an approved change and a fast-forward-only push. All through libgit2,
//! hermetic: inherited `GIT_*` variables and the user's git configuration change nothing.
//!
//! A run: [`Workspace::cleanup_stale`] at start-up, then per repository
//! [`Workspace::prepare_worktree`] → agent and gates in [`Worktree::path`] →
//! [`Worktree::run_change_facts`] → `issueloop_policy::approve` → [`Worktree::commit`] →
//! [`Worktree::push`] → [`Worktree::remove`] (also on drop).

mod commit;
mod contain;
mod error;
mod facts;
pub mod hermetic;
mod history;
mod lock;
mod names;
mod owner;
mod push;
mod refcas;
mod remote;
mod seed;
mod stale;
mod workspace;
mod worktree;

pub use commit::CommitOutcome;
pub use error::WorkspaceError;
pub use facts::{
    IGNORED_SCAN_LIMIT, SCAN_LIMIT_BYTES, change_facts_at, origin_repo_name, repo_name_from_url,
};
pub use history::FileDiffStat;
pub use names::{branch_name, commit_message, protected_reason, slug};
pub use push::PushOutcome;
pub use refcas::{CasOutcome, fetch_branch, push_branch_cas};
pub use remote::{Credentials, RemoteSpec};
pub use seed::seed_bare_repository;
pub use stale::StaleReport;
pub use workspace::{BaseRef, CheckpointHook, Identity, Workspace};
pub use worktree::Worktree;
