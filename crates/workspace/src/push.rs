//! Pushing the run's branch: fast-forward only, never forced. When the remote branch has
//! commits the run does not have, they are fetched and reported, never overwritten.

use git2::{Direction, Oid, Repository};

use crate::contain::open_mirror;
use crate::error::WorkspaceError;
use crate::lock::FileLock;
use crate::remote::{Deadline, RemoteSpec, callbacks, push_one};
use crate::workspace::{REMOTE_REFS, mirror_lock_path, refuse_protected};
use crate::worktree::Worktree;

/// What [`Worktree::push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote had no such branch; it now points at `commit`.
    Created { commit: String },
    /// The remote branch moved forward from `from` to `to`.
    FastForwarded { from: String, to: String },
    /// The remote branch already pointed at `commit`.
    UpToDate { commit: String },
    /// The remote branch has commits the run does not include; nothing was pushed. A person
    /// (or a rerun, which starts from the remote branch) resolves it.
    Diverged { remote: String, local: String },
    /// The remote refused the update (a protection rule, a hook, a race with another push).
    Rejected { reason: String },
}

impl Worktree {
    /// Push the run's branch to the same branch of `remote`, fast-forward only.
    pub fn push(&self, remote: &RemoteSpec) -> Result<PushOutcome, WorkspaceError> {
        let settings = self.settings();
        let url = remote.checked_url()?;
        refuse_protected(settings, self.branch(), self.default_branch())?;
        let branch = self.branch();
        let refname = format!("refs/heads/{branch}");
        // With no configuration: nothing in a file redirects the push or the fetch before it.
        let repo = open_mirror(self.mirror())?;
        let local = repo
            .find_reference(&refname)
            .and_then(|r| r.peel_to_commit())
            .map_err(WorkspaceError::git(format!(
                "cannot read branch `{branch}`"
            )))?
            .id();

        let remote_id = remote_branch(&repo, url, remote, &refname, settings.network_timeout)?;
        if let Some(theirs) = remote_id {
            if theirs == local {
                return Ok(PushOutcome::UpToDate {
                    commit: local.to_string(),
                });
            }
            if !self.includes(&repo, url, remote, local, theirs)? {
                return Ok(PushOutcome::Diverged {
                    remote: theirs.to_string(),
                    local: local.to_string(),
                });
            }
        }

        let deadline = Deadline::after(settings.network_timeout);
        // No `+`: the remote refuses anything but a fast-forward.
        let answer = push_one(
            &repo,
            remote,
            url,
            &format!("{refname}:{refname}"),
            deadline,
        )?;
        answer
            .pushed
            .map_err(deadline.error(format!("cannot push `{branch}` to `{url}`")))?;
        if let Some(reason) = answer.rejection {
            return Ok(PushOutcome::Rejected { reason });
        }
        {
            let _lock = FileLock::acquire(&mirror_lock_path(self.mirror()), settings.lock_timeout)?;
            repo.reference(
                &format!("{REMOTE_REFS}{branch}"),
                local,
                true,
                "issueloop: pushed",
            )
            .map_err(WorkspaceError::git(format!(
                "cannot record the pushed `{branch}` in the mirror"
            )))?;
        }
        tracing::info!(branch, commit = %local, "pushed");
        Ok(match remote_id {
            None => PushOutcome::Created {
                commit: local.to_string(),
            },
            Some(from) => PushOutcome::FastForwarded {
                from: from.to_string(),
                to: local.to_string(),
            },
        })
    }

    /// Whether `local` includes the remote's `theirs`, fetching `theirs` first if the mirror
    /// does not have it.
    fn includes(
        &self,
        repo: &Repository,
        url: &str,
        remote: &RemoteSpec,
        local: Oid,
        theirs: Oid,
    ) -> Result<bool, WorkspaceError> {
        if repo.find_commit(theirs).is_err() {
            let settings = self.settings();
            let branch = self.branch();
            let _lock = FileLock::acquire(&mirror_lock_path(self.mirror()), settings.lock_timeout)?;
            let deadline = Deadline::after(settings.network_timeout);
            let mut options = git2::FetchOptions::new();
            options
                .remote_callbacks(callbacks(remote.credentials.as_ref(), deadline, None))
                .download_tags(git2::AutotagOption::None)
                .update_fetchhead(false);
            repo.remote_anonymous(url)
                .and_then(|mut r| {
                    r.fetch(
                        &[format!("+refs/heads/{branch}:{REMOTE_REFS}{branch}")],
                        Some(&mut options),
                        Some("issueloop: fetch before push"),
                    )
                })
                .map_err(deadline.error(format!("cannot fetch `{branch}` from `{url}`")))?;
        }
        if repo.find_commit(theirs).is_err() {
            return Ok(false);
        }
        repo.graph_descendant_of(local, theirs)
            .map_err(WorkspaceError::git(
                "cannot compare the local and remote branch",
            ))
    }
}

/// The commit `refname` points to on the remote, if it has it.
fn remote_branch(
    repo: &Repository,
    url: &str,
    remote: &RemoteSpec,
    refname: &str,
    timeout: std::time::Duration,
) -> Result<Option<Oid>, WorkspaceError> {
    let deadline = Deadline::after(timeout);
    let op = format!("cannot list the branches of `{url}`");
    let mut anonymous = repo
        .remote_anonymous(url)
        .map_err(WorkspaceError::git(format!(
            "`{url}` is not a usable remote URL"
        )))?;
    let connection = anonymous
        .connect_auth(
            Direction::Push,
            Some(callbacks(remote.credentials.as_ref(), deadline, None)),
            None,
        )
        .map_err(deadline.error(op.clone()))?;
    let found = connection
        .list()
        .map_err(WorkspaceError::git(op))?
        .iter()
        .find(|h| h.name() == refname)
        .map(|h| h.oid());
    Ok(found)
}
