//! One branch of a remote as a compare-and-swap register: fetch its tip, and move it from the
//! commit last read to a new one only if it still points there (fast-forward only, never
//! forced). For state kept on a branch, such as the `github` state backend's log.

use std::path::Path;
use std::time::Duration;

use git2::{AutotagOption, ErrorCode, FetchOptions, Oid, Repository};

use crate::error::WorkspaceError;
use crate::remote::{Deadline, RemoteSpec, callbacks, push_one};

/// What [`push_branch_cas`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The remote branch now points at the new commit.
    Updated,
    /// The remote branch no longer held the expected commit (another writer moved it first), or
    /// the remote refused the update; nothing changed.
    Rejected { reason: String },
}

/// Fetch `refs/heads/{branch}` of `remote` into the local ref `into` of `repo` and return the
/// remote's tip, or `None` when the remote has no such branch (then `into` is left as it was).
pub fn fetch_branch(
    repo: &Repository,
    remote: &RemoteSpec,
    branch: &str,
    into: &str,
    timeout: Duration,
) -> Result<Option<Oid>, WorkspaceError> {
    crate::hermetic::init()?;
    let url = remote.checked_url()?;
    let deadline = Deadline::after(timeout);
    let op = format!("cannot fetch `{branch}` from `{url}`");
    let mut anonymous = repo
        .remote_anonymous(url)
        .map_err(WorkspaceError::git(format!(
            "`{url}` is not a usable remote URL"
        )))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(remote.credentials.as_ref(), deadline, None))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    anonymous
        .fetch(
            &[format!("+refs/heads/{branch}:{into}")],
            Some(&mut options),
            Some("issueloop: fetch state"),
        )
        .map_err(deadline.error(op.clone()))?;
    // The advertisement stays available after the fetch disconnected.
    let refname = format!("refs/heads/{branch}");
    let tip = anonymous
        .list()
        .map_err(WorkspaceError::git(op))?
        .iter()
        .find(|h| h.name() == refname)
        .map(|h| h.oid());
    Ok(tip)
}

/// Copy `commit`, and every object of its tree that `to` lacks, from `from` to `to`. The commit's
/// parents must already be in `to` (they are the tip it is compared against).
fn copy_missing(from: &Repository, to: &Repository, commit: Oid) -> Result<(), git2::Error> {
    let (src, dst) = (from.odb()?, to.odb()?);
    let mut pending = vec![commit];
    let mut missing = Vec::new();
    while let Some(id) = pending.pop() {
        if dst.exists(id) {
            continue;
        }
        let object = src.read(id)?;
        match object.kind() {
            git2::ObjectType::Commit => pending.push(from.find_commit(id)?.tree_id()),
            git2::ObjectType::Tree => {
                pending.extend(from.find_tree(id)?.iter().map(|e| e.id()));
            }
            _ => {}
        }
        missing.push(object);
    }
    // Contents before what refers to them: an interrupted copy never leaves a commit whose
    // tree is missing.
    for object in missing.iter().rev() {
        dst.write(object.kind(), object.data())?;
    }
    Ok(())
}

/// Move `refs/heads/{branch}` of `remote` to `new` (a commit of `repo`) if it still points at
/// `expected` (`None`: the branch must not exist yet). Never forced: a remote that moved meanwhile
/// answers [`CasOutcome::Rejected`], and the caller fetches, decides again and retries.
///
/// Over HTTPS (GitHub) the server's `receive-pack` compares and updates the ref atomically. A
/// remote on a local path is updated by libgit2 directly, which does not compare; there the
/// missing objects are copied into the remote repository and the branch is then moved (or
/// created) with a compare-and-swap made under the ref's lock in that repository itself.
pub fn push_branch_cas(
    repo: &Repository,
    remote: &RemoteSpec,
    branch: &str,
    new: Oid,
    expected: Option<Oid>,
    timeout: Duration,
) -> Result<CasOutcome, WorkspaceError> {
    crate::hermetic::init()?;
    let url = remote.checked_url()?;
    let refname = format!("refs/heads/{branch}");
    match local_path(url) {
        Some(path) => push_local(repo, remote, url, path, &refname, new, expected, timeout),
        None => push_refspec(
            repo,
            remote,
            url,
            &format!("{new}:{refname}"),
            &refname,
            timeout,
        ),
    }
}

/// The repository path of a local remote (`/srv/x.git`, `file:///srv/x.git`), `None` otherwise.
fn local_path(url: &str) -> Option<&Path> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(Path::new(path));
    }
    (!url.contains("://") && !url.contains('@')).then(|| Path::new(url))
}

/// Push one refspec (no `+`), mapping a refusal (by the server, or libgit2's own fast-forward
/// check) to [`CasOutcome::Rejected`].
fn push_refspec(
    repo: &Repository,
    remote: &RemoteSpec,
    url: &str,
    refspec: &str,
    refname: &str,
    timeout: Duration,
) -> Result<CasOutcome, WorkspaceError> {
    let deadline = Deadline::after(timeout);
    let answer = push_one(repo, remote, url, refspec, deadline)?;
    match answer.pushed {
        Ok(()) => {}
        // libgit2 checks the advertised tip first: a remote that moved to commits we lack.
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            return Ok(CasOutcome::Rejected {
                reason: e.message().to_owned(),
            });
        }
        Err(e) => {
            return Err(deadline
                .error(format!("cannot push `{refname}` to `{url}`"))(
                e
            ));
        }
    }
    Ok(match answer.rejection {
        Some(reason) => CasOutcome::Rejected { reason },
        None => CasOutcome::Updated,
    })
}

#[expect(
    clippy::too_many_arguments,
    reason = "the compare-and-swap push needs every fact of the update; a struct would only rename them"
)]
fn push_local(
    repo: &Repository,
    remote: &RemoteSpec,
    url: &str,
    path: &Path,
    refname: &str,
    new: Oid,
    expected: Option<Oid>,
    timeout: Duration,
) -> Result<CasOutcome, WorkspaceError> {
    let _ = (remote, timeout);
    let target = Repository::open_bare(path).map_err(WorkspaceError::git(format!(
        "cannot open the repository `{url}`"
    )))?;
    // Objects first: the commit and whatever of its tree the remote lacks.
    copy_missing(repo, &target, new).map_err(WorkspaceError::git(format!(
        "cannot copy objects to `{url}`"
    )))?;
    // The comparison must be made under the ref's lock, which only `reference_matching` does:
    // libgit2's non-forced create checks that the branch is absent *before* taking the lock, so
    // two writers creating it at once could both succeed, the second overwriting the first's
    // commit. The zero id, compared under the lock, means "must not exist yet".
    let current = expected.unwrap_or(Oid::ZERO_SHA1);
    let moved = target
        .reference_matching(refname, new, true, current, "issueloop: compare-and-swap")
        .map(|_| ());
    match moved {
        Ok(()) => Ok(CasOutcome::Updated),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::Exists | ErrorCode::Modified | ErrorCode::Locked | ErrorCode::NotFound
            ) =>
        {
            Ok(CasOutcome::Rejected {
                reason: e.message().to_owned(),
            })
        }
        Err(e) => Err(WorkspaceError::Git {
            op: format!("cannot move `{refname}` in `{url}`"),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_told_from_network_urls() {
        assert_eq!(local_path("/srv/a.git"), Some(Path::new("/srv/a.git")));
        assert_eq!(
            local_path("file:///srv/a.git"),
            Some(Path::new("/srv/a.git"))
        );
        assert_eq!(local_path("https://github.com/a/b.git"), None);
        assert_eq!(local_path("git@github.com:a/b.git"), None);
    }
}
