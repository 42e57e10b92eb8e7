//! The workspace under the cache directory: one bare mirror per repository (cloned once,
//! fetched under a file lock) and one worktree per run and repository on the run's branch.
//!
//! ```text
//! <cache_dir>/mirrors/<owner>/<name>.git          bare mirror; remote branches in refs/remotes/origin/*
//! <cache_dir>/mirrors/<owner>/<name>.lock         flock: fetches, branch and ref updates
//! <cache_dir>/worktrees/<owner>/<name>/<wt>/      a run's checkout
//! <cache_dir>/worktrees/<owner>/<name>/<wt>.owner.json   owning process, written first, removed last
//! <cache_dir>/worktrees/<owner>/<name>/<wt>.ready        written once the checkout is complete
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use git2::build::CheckoutBuilder;
use git2::{AutotagOption, FetchOptions, Oid, Repository, RepositoryInitOptions};
use issueloop_config::{GitConfig, RepoName};

use crate::contain;
use crate::error::WorkspaceError;
use crate::hermetic;
use crate::lock::FileLock;
use crate::names::protected_reason;
use crate::owner::{OwnerRecord, this_process};
use crate::remote::{Deadline, RemoteSpec, callbacks};
use crate::worktree::{Guard, Worktree};

/// Where remote branches live in a mirror.
pub(crate) const REMOTE_REFS: &str = "refs/remotes/origin/";
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";

/// The identity commits are made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// Named points of preparing, committing and removing a worktree. A test hook receives them,
/// so a crash test can kill a run exactly there.
pub type CheckpointHook = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) struct Settings {
    pub cache_dir: PathBuf,
    pub identity: Identity,
    pub protected_branches: Vec<String>,
    pub network_timeout: Duration,
    pub lock_timeout: Duration,
    pub hook: Option<CheckpointHook>,
}

impl Settings {
    pub(crate) fn checkpoint(&self, name: &str) {
        if let Some(hook) = &self.hook {
            hook(name);
        }
    }
}

/// Where a new branch starts when the remote does not have the run's branch yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseRef {
    /// The remote's default branch (its `HEAD`).
    DefaultBranch,
    /// A branch of the remote.
    Branch(String),
    /// A commit id that the remote has.
    Commit(String),
}

/// Mirrors and worktrees under one cache directory. Cheap to clone; every method blocks (call
/// it from a blocking task in async code).
#[derive(Clone)]
pub struct Workspace {
    pub(crate) settings: Arc<Settings>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("cache_dir", &self.settings.cache_dir)
            .finish_non_exhaustive()
    }
}

static WORKTREE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Workspace {
    /// A workspace under `cache_dir` with the default bot identity, protected branches
    /// (`main`, `master`, `production`, `prod`) and timeouts (10 minutes per network
    /// operation).
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self::with_settings(Settings {
            cache_dir: cache_dir.into(),
            identity: Identity {
                name: "issueloop[bot]".into(),
                email: "issueloop[bot]@users.noreply.github.com".into(),
            },
            protected_branches: ["main", "master", "production", "prod"]
                .map(String::from)
                .to_vec(),
            network_timeout: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(660),
            hook: None,
        })
    }

    /// A workspace as configured in `[git]`.
    pub fn from_config(git: &GitConfig) -> Self {
        Self::new(&git.cache_dir)
            .with_identity(Identity {
                name: git.author_name.clone(),
                email: git.author_email.clone(),
            })
            .with_protected_branches(git.protected_branches.clone())
    }

    fn with_settings(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    fn edit(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = match Arc::try_unwrap(self.settings) {
            Ok(s) => s,
            Err(shared) => Settings {
                cache_dir: shared.cache_dir.clone(),
                identity: shared.identity.clone(),
                protected_branches: shared.protected_branches.clone(),
                network_timeout: shared.network_timeout,
                lock_timeout: shared.lock_timeout,
                hook: shared.hook.clone(),
            },
        };
        f(&mut s);
        Self::with_settings(s)
    }

    pub fn with_identity(self, identity: Identity) -> Self {
        self.edit(|s| s.identity = identity)
    }

    /// Branch names never committed to or pushed (the repository's default branch always is).
    pub fn with_protected_branches(self, branches: Vec<String>) -> Self {
        self.edit(|s| s.protected_branches = branches)
    }

    /// Limit of each fetch or push; waiting for another run's lock gets a minute more.
    pub fn with_network_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| {
            s.network_timeout = timeout;
            s.lock_timeout = timeout + Duration::from_secs(60);
        })
    }

    /// Receive named checkpoints (`owner_written`, `fetched`, `worktree_added`, …); for crash
    /// tests.
    #[doc(hidden)]
    pub fn with_checkpoint_hook(self, hook: CheckpointHook) -> Self {
        self.edit(|s| s.hook = Some(hook))
    }

    pub fn cache_dir(&self) -> &Path {
        &self.settings.cache_dir
    }

    pub(crate) fn mirror_path(&self, repo: &RepoName) -> PathBuf {
        self.settings
            .cache_dir
            .join("mirrors")
            .join(&repo.owner)
            .join(format!("{}.git", repo.name))
    }

    pub(crate) fn worktrees_dir(&self, repo: &RepoName) -> PathBuf {
        self.settings
            .cache_dir
            .join("worktrees")
            .join(&repo.owner)
            .join(&repo.name)
    }

    /// Fetch the remote into the repository's mirror (cloning it the first time) and create a
    /// worktree on `branch` for one run. The branch starts at the remote's `branch` when it
    /// exists (a rerun continues on top of what is there, whoever pushed it), else at `base`.
    ///
    /// The worktree is removed when the returned [`Worktree`] is removed or dropped; if this
    /// process dies first, [`Workspace::cleanup_stale`] removes it at the next start-up.
    pub fn prepare_worktree(
        &self,
        repo: &RepoName,
        remote: &RemoteSpec,
        branch: &str,
        base: &BaseRef,
    ) -> Result<Worktree, WorkspaceError> {
        hermetic::init()?;
        let url = remote.checked_url()?;
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(WorkspaceError::InvalidBranchName {
                branch: branch.to_owned(),
            });
        }
        self.refuse_protected(branch, None)?;

        let s = &self.settings;
        let dir = self.worktrees_dir(repo);
        std::fs::create_dir_all(&dir).map_err(WorkspaceError::io("cannot create", &dir))?;
        let name = worktree_name(branch);
        let me = this_process();
        let record = OwnerRecord {
            pid: me.pid,
            process_token: me.token.clone(),
            start_ticks: me.start_ticks,
            boot_id: me.boot_id.clone(),
            repo: repo.full(),
            branch: branch.to_owned(),
            mirror: self.mirror_path(repo),
            worktree_name: name.clone(),
            worktree: dir.join(&name),
        };
        // The record comes first and goes last: whatever exists of this worktree, a record
        // names it for `cleanup_stale`.
        let mut guard = Guard::new(record, dir.clone(), self.settings.clone())?;
        s.checkpoint("owner_written");

        let lock = FileLock::acquire(&mirror_lock_path(&guard.record.mirror), s.lock_timeout)?;
        s.checkpoint("mirror_locked");
        let mirror = self.sync_mirror(&guard.record.mirror, url, remote)?;
        let default_branch = mirror.default_branch;
        self.refuse_protected(branch, default_branch.as_deref())?;
        let repo_git = mirror.repo;
        let (start, continued) =
            resolve_start(&repo_git, branch, base, default_branch.as_deref(), url)?;
        let start_commit = repo_git
            .find_commit(start)
            .map_err(WorkspaceError::git(format!("cannot read commit `{start}`")))?;
        refuse_checked_out(&guard.record.mirror, branch)?;
        guard.mirror_touched = true;
        let local = repo_git
            .branch(branch, &start_commit, true)
            .map_err(WorkspaceError::git(format!(
                "cannot create branch `{branch}` in `{}` (is another run working on it?)",
                guard.record.mirror.display()
            )))?;
        s.checkpoint("branch_created");
        drop(local);
        // Registered under the lock, so a second run on the same branch sees it; checked out
        // after, so concurrent runs check out in parallel.
        register_worktree(&guard.record.mirror, &guard.record)?;
        s.checkpoint("worktree_registered");
        drop(lock);
        checkout_worktree(s, &guard.record, &dir, start)?;
        s.checkpoint("worktree_added");
        guard.mark_ready()?;
        s.checkpoint("ready");
        // The claim creates the remote branch at the default branch's head, so "the branch
        // existed" alone does not mean earlier work is continued: say so only when it holds more.
        let at_default_head = default_branch
            .as_deref()
            .and_then(|d| repo_git.find_reference(&format!("{REMOTE_REFS}{d}")).ok())
            .and_then(|r| r.peel_to_commit().ok())
            .is_some_and(|c| c.id() == start);
        tracing::info!(
            repo = %repo,
            branch,
            worktree = %guard.record.worktree.display(),
            start = %start,
            continued = continued && !at_default_head,
            "worktree ready"
        );
        Ok(Worktree::new(
            repo.clone(),
            branch.to_owned(),
            default_branch,
            start,
            continued,
            guard,
        ))
    }

    pub(crate) fn refuse_protected(
        &self,
        branch: &str,
        default_branch: Option<&str>,
    ) -> Result<(), WorkspaceError> {
        refuse_protected(&self.settings, branch, default_branch)
    }

    /// Clone (the first time) or fetch the mirror. The caller holds the mirror lock.
    fn sync_mirror(
        &self,
        mirror: &Path,
        url: &str,
        remote: &RemoteSpec,
    ) -> Result<Mirror, WorkspaceError> {
        let s = &self.settings;
        if mirror.exists() {
            // Repaired and read with no configuration: an `insteadOf` the agent of an earlier
            // run wrote into the mirror does not redirect this fetch.
            let repo = contain::open_mirror(mirror)?;
            let default_branch = fetch(s, &repo, mirror, url, remote)?;
            return Ok(Mirror {
                repo,
                default_branch,
            });
        }
        // A first clone goes into a temporary directory renamed into place once fetched, so a
        // crash never leaves a half-cloned mirror under the final name.
        let file_name = mirror
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = mirror.with_file_name(format!(
            "{file_name}.tmp-{}-{}",
            std::process::id(),
            WORKTREE_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let repo = Repository::init_opts(
            &tmp,
            RepositoryInitOptions::new()
                .bare(true)
                .mkpath(true)
                // No hooks or other files from a system template directory.
                .external_template(false),
        )
        .map_err(WorkspaceError::git(format!(
            "cannot create the mirror `{}`",
            tmp.display()
        )))?;
        s.checkpoint("mirror_initialized");
        contain::detach_config(&repo, &tmp)?;
        let default_branch = match fetch(s, &repo, &tmp, url, remote) {
            Ok(d) => d,
            Err(e) => {
                drop(repo);
                if let Err(cleanup) = crate::worktree::remove_path(&tmp) {
                    tracing::warn!("{cleanup} (the next start-up removes it)");
                }
                return Err(e);
            }
        };
        drop(repo);
        // What issueloop's mirrors hold as configuration, whatever the library wrote.
        contain::replace_file(&tmp.join("config"), contain::MIRROR_CONFIG.as_bytes())?;
        std::fs::rename(&tmp, mirror)
            .map_err(WorkspaceError::io("cannot move the mirror to", mirror))?;
        let repo = contain::open_mirror(mirror)?;
        Ok(Mirror {
            repo,
            default_branch,
        })
    }
}

pub(crate) fn refuse_protected(
    settings: &Settings,
    branch: &str,
    default_branch: Option<&str>,
) -> Result<(), WorkspaceError> {
    match protected_reason(branch, &settings.protected_branches, default_branch) {
        Some(reason) => Err(WorkspaceError::ProtectedBranch {
            branch: branch.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

struct Mirror {
    repo: Repository,
    default_branch: Option<String>,
}

pub(crate) fn mirror_lock_path(mirror: &Path) -> PathBuf {
    mirror.with_extension("lock")
}

/// A worktree name unique across processes: the branch's last segment, the PID and a counter.
fn worktree_name(branch: &str) -> String {
    let last: String = branch
        .rsplit('/')
        .next()
        .unwrap_or(branch)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let n = WORKTREE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{last}-{:x}-{n:x}{:x}", std::process::id(), nanos & 0xfff)
}

/// Fetch every branch of `url` into `refs/remotes/origin/*` (pruning deleted ones) and return
/// the remote's default branch.
fn fetch(
    s: &Settings,
    repo: &Repository,
    git_dir: &Path,
    url: &str,
    remote: &RemoteSpec,
) -> Result<Option<String>, WorkspaceError> {
    let deadline = Deadline::after(s.network_timeout);
    let halfway_reported = std::cell::Cell::new(false);
    let on_progress = |received: usize, total: usize| {
        if total > 0 && received * 2 >= total && !halfway_reported.replace(true) {
            s.checkpoint("fetch_progress");
        }
    };
    let mut anonymous = repo
        .remote_anonymous(url)
        .map_err(WorkspaceError::git(format!(
            "`{url}` is not a usable remote URL"
        )))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(
            remote.credentials.as_ref(),
            deadline,
            Some(&on_progress),
        ))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    let op = format!("cannot fetch `{url}` into `{}`", git_dir.display());
    anonymous
        .fetch(
            &[FETCH_REFSPEC],
            Some(&mut options),
            Some("issueloop: fetch"),
        )
        .map_err(deadline.error(op.clone()))?;
    // The advertisement stays available after the fetch disconnected.
    let heads: Vec<(String, Oid)> = anonymous
        .list()
        .map_err(WorkspaceError::git(op.clone()))?
        .iter()
        .map(|h| (h.name().to_owned(), h.oid()))
        .collect();
    let default_branch = anonymous
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_owned))
        .and_then(|b| b.strip_prefix("refs/heads/").map(str::to_owned));
    prune_remote_refs(repo, &heads).map_err(WorkspaceError::git(op))?;
    s.checkpoint("fetched");
    Ok(default_branch)
}

/// Delete `refs/remotes/origin/*` of branches the remote no longer has.
fn prune_remote_refs(repo: &Repository, heads: &[(String, Oid)]) -> Result<(), git2::Error> {
    let mut stale = Vec::new();
    for reference in repo.references_glob(&format!("{REMOTE_REFS}*"))? {
        let reference = reference?;
        let Ok(name) = reference.name() else {
            continue;
        };
        let branch = &name[REMOTE_REFS.len()..];
        if !heads
            .iter()
            .any(|(h, _)| h.strip_prefix("refs/heads/") == Some(branch))
        {
            stale.push(name.to_owned());
        }
    }
    for name in stale {
        repo.find_reference(&name)?.delete()?;
    }
    Ok(())
}

/// The commit a run's branch starts at: the remote's branch when it exists (`true`: continued),
/// else the base.
fn resolve_start(
    repo: &Repository,
    branch: &str,
    base: &BaseRef,
    default_branch: Option<&str>,
    url: &str,
) -> Result<(Oid, bool), WorkspaceError> {
    let peel = |name: &str| -> Option<Oid> {
        repo.find_reference(name)
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.id())
            .ok()
    };
    if let Some(id) = peel(&format!("{REMOTE_REFS}{branch}")) {
        return Ok((id, true));
    }
    let not_found = |base: &str| WorkspaceError::BaseNotFound {
        base: base.to_owned(),
        url: url.to_owned(),
    };
    let id = match base {
        BaseRef::DefaultBranch => {
            let default = default_branch.ok_or_else(|| WorkspaceError::NoDefaultBranch {
                url: url.to_owned(),
            })?;
            peel(&format!("{REMOTE_REFS}{default}")).ok_or_else(|| not_found(default))?
        }
        BaseRef::Branch(b) => peel(&format!("{REMOTE_REFS}{b}")).ok_or_else(|| not_found(b))?,
        BaseRef::Commit(c) => Oid::from_str(c)
            .ok()
            .and_then(|id| repo.find_commit(id).ok())
            .map(|c| c.id())
            .ok_or_else(|| not_found(c))?,
    };
    Ok((id, false))
}

/// Refuse a branch that a worktree of the mirror has checked out. The caller holds the mirror
/// lock, under which every worktree is registered.
fn refuse_checked_out(mirror: &Path, branch: &str) -> Result<(), WorkspaceError> {
    let wanted = format!("ref: refs/heads/{branch}");
    let Ok(entries) = std::fs::read_dir(mirror.join("worktrees")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let head = std::fs::read_to_string(entry.path().join("HEAD")).unwrap_or_default();
        if head.trim_end() == wanted {
            let gitdir = std::fs::read_to_string(entry.path().join("gitdir")).unwrap_or_default();
            let worktree = Path::new(gitdir.trim_end())
                .parent()
                .map(Path::to_owned)
                .unwrap_or_else(|| entry.path());
            return Err(WorkspaceError::BranchInUse {
                branch: branch.to_owned(),
                worktree,
            });
        }
    }
    Ok(())
}

/// Register a worktree for `record` in the mirror: the files `git worktree add` writes (see
/// gitrepository-layout), the admin directory `<mirror>/worktrees/<name>` with `gitdir`,
/// `commondir` and `HEAD`, and the checkout's `.git` file pointing back to it.
fn register_worktree(mirror: &Path, record: &OwnerRecord) -> Result<(), WorkspaceError> {
    use std::os::unix::ffi::OsStrExt;
    let admin = mirror.join("worktrees").join(&record.worktree_name);
    let checkout = &record.worktree;
    let write = |path: &Path, content: &[u8]| {
        std::fs::write(path, content).map_err(WorkspaceError::io("cannot write", path))
    };
    let line = |parts: &[&[u8]]| {
        let mut v = parts.concat();
        v.push(b'\n');
        v
    };
    for dir in [&admin, checkout] {
        std::fs::create_dir_all(dir).map_err(WorkspaceError::io("cannot create", dir))?;
    }
    write(
        &admin.join("gitdir"),
        &line(&[checkout.join(".git").as_os_str().as_bytes()]),
    )?;
    write(&admin.join("commondir"), b"../..\n")?;
    write(
        &admin.join("HEAD"),
        &line(&[b"ref: refs/heads/", record.branch.as_bytes()]),
    )?;
    write(
        &checkout.join(".git"),
        &line(&[b"gitdir: ", admin.as_os_str().as_bytes()]),
    )
}

/// Check the branch out into the registered worktree. The checkout is libgit2's, without
/// smudge filters: looking up attributes for every file costs more than the checkout itself,
/// and the change facts apply the clean filters, so a file checked out without `eol=crlf`
/// conversion still compares equal. It goes through issueloop's own handle on the mirror, so
/// the stat data lands in the private index; the worktree's gitdir gets a copy of it, for the
/// agent's own git.
fn checkout_worktree(
    s: &Settings,
    record: &OwnerRecord,
    dir: &Path,
    start: Oid,
) -> Result<(), WorkspaceError> {
    let checkout = &record.worktree;
    let op = || {
        format!(
            "cannot check `{}` out into `{}`",
            record.branch,
            checkout.display()
        )
    };
    let index = contain::private_index_path(dir, &record.worktree_name);
    let repo = contain::open_contained(&record.mirror, checkout, &index, None)?;
    let commit = repo.find_commit(start).map_err(WorkspaceError::git(op()))?;
    let halfway_reported = std::cell::Cell::new(false);
    let mut options = CheckoutBuilder::new();
    options
        .force()
        .disable_filters(true)
        .progress(|_, done, total| {
            if total > 0 && done * 2 >= total && !halfway_reported.replace(true) {
                s.checkpoint("checkout_progress");
            }
        });
    repo.checkout_tree(commit.as_object(), Some(&mut options))
        .map_err(WorkspaceError::git(op()))?;
    // Record the tree cache in the private index, so that checking it against the tip's tree
    // before each comparison costs nothing.
    let mut private = repo.index().map_err(WorkspaceError::git(op()))?;
    private
        .write_tree_to(&repo)
        .and_then(|_| private.write())
        .map_err(WorkspaceError::git(op()))?;
    let bytes = std::fs::read(&index).map_err(WorkspaceError::io("cannot read", &index))?;
    contain::replace_file(
        &contain::admin_dir(&record.mirror, &record.worktree_name).join("index"),
        &bytes,
    )
}
