//! The local forge: a folder per repository holding issues as Markdown files with TOML front
//! matter, PR records, claim lock files, and the path of a git repository used as the remote.
//! Everything issueloop writes (labels with who and when, comments, PRs, claims) lands in files a
//! person can read and edit. The format is documented in `docs/forges.md`.

mod files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use issueloop_config::{Config, ForgeKind, Labels, RepoName};
use issueloop_publish::{
    ensure_marker, ensure_pr_body, marked_issue, replace_bot_section, takeover_comment_marker,
};
use issueloop_triage::{
    BodyEdit, CandidateFacts, ClaimFacts, Issue, LabelEvent, Permission, PrRef,
};
use jiff::Timestamp;

use files::{
    ClaimFile, CommentRecord, Document, FolderLock, IssueFront, LabelRecord, PullFront, RepoFile,
    read_document, write_atomic, write_document,
};

use crate::claim::{
    Claim, ClaimOutcome, ClaimRequest, Contested, Release, Renewal, decide_contested, new_lease,
};
use crate::clock::{Clock, SystemClock};
use crate::error::ForgeError;
use crate::poll::RepoPoll;
use crate::stats::RequestStats;
use crate::{CommentRef, PrAction, PrOutcome, PrRequest, PushTarget, RepoInfo};

const DEFAULT_BOT: &str = "issueloop";

/// The local forge rooted at `forge.local_path`.
#[derive(Debug)]
pub struct LocalForge {
    root: PathBuf,
    labels: Labels,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl LocalForge {
    pub fn new(config: &Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            root: config.forge.local_path.to_path_buf(),
            labels: config.labels.clone(),
            timeout: config.forge.request_timeout,
            clock,
        }
    }

    fn dir(&self, repo: &RepoName) -> PathBuf {
        self.root.join(&repo.owner).join(&repo.name)
    }

    fn issue_path(&self, repo: &RepoName, n: u64) -> PathBuf {
        self.dir(repo).join("issues").join(format!("{n}.md"))
    }

    fn pull_path(&self, repo: &RepoName, n: u64) -> PathBuf {
        self.dir(repo).join("pulls").join(format!("{n}.md"))
    }

    fn claim_path(&self, repo: &RepoName, n: u64) -> PathBuf {
        self.dir(repo).join("claims").join(format!("{n}.lock"))
    }

    fn repo_file(&self, repo: &RepoName) -> Result<RepoFile, ForgeError> {
        let path = self.dir(repo).join("repo.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ForgeError::Local {
                    path: path.clone(),
                    message: format!(
                        "repository `{repo}` not found: create this file with `remote = \"<path of a git repository>\"`"
                    ),
                }
            } else {
                ForgeError::Local {
                    path: path.clone(),
                    message: format!("cannot read: {e}"),
                }
            }
        })?;
        toml::from_str(&text).map_err(|e| ForgeError::Local {
            path,
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    fn bot(&self, repo: &RepoName) -> Result<String, ForgeError> {
        Ok(self
            .repo_file(repo)?
            .bot
            .unwrap_or_else(|| DEFAULT_BOT.to_owned()))
    }

    fn remote(&self, repo: &RepoName) -> Result<PathBuf, ForgeError> {
        let file = self.repo_file(repo)?;
        let remote = self.dir(repo).join(&file.remote);
        Ok(std::fs::canonicalize(&remote).unwrap_or(remote))
    }

    async fn git(&self, dir: &Path, args: &[&str]) -> Result<Option<String>, ForgeError> {
        // Hermetic: only the repository's own configuration, no inherited variable (no
        // credential, no `GIT_*`), and nothing configuration could make git run (fsmonitor,
        // hooks) or fetch.
        #[expect(
            clippy::disallowed_methods,
            reason = "git is found on the PATH issueloop started with; the launcher passes on only that"
        )]
        let path = std::env::var("PATH").ok();
        let argv = format!("git {}", args.join(" "));
        let out = issueloop_process::git(dir, path.as_deref())
            .args(args)
            .timeout(self.timeout)
            .output()
            .await
            .map_err(|e| ForgeError::Git {
                argv: argv.clone(),
                dir: dir.to_owned(),
                message: format!("cannot run git: {e}"),
            })?;
        if out.timed_out {
            return Err(ForgeError::Git {
                argv,
                dir: dir.to_owned(),
                message: format!("no answer within {:?}", self.timeout),
            });
        }
        if out.success() {
            Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
        } else {
            Ok(None)
        }
    }

    async fn branch_sha(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<String>, ForgeError> {
        let remote = self.remote(repo)?;
        self.git(
            &remote,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}^{{commit}}"),
            ],
        )
        .await
    }

    fn issue_numbers(&self, repo: &RepoName, sub: &str) -> Result<Vec<u64>, ForgeError> {
        let dir = self.dir(repo).join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ForgeError::Local {
                    path: dir,
                    message: format!("cannot list: {e}"),
                });
            }
        };
        let mut numbers: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".md")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn read_issue(
        &self,
        repo: &RepoName,
        n: u64,
    ) -> Result<Option<Document<IssueFront>>, ForgeError> {
        let path = self.issue_path(repo, n);
        if !path.exists() {
            return Ok(None);
        }
        read_document(&path).map(Some)
    }

    fn pulls(&self, repo: &RepoName) -> Result<Vec<Document<PullFront>>, ForgeError> {
        self.issue_numbers(repo, "pulls")?
            .into_iter()
            .map(|n| read_document(&self.pull_path(repo, n)))
            .collect()
    }

    fn open_pr_for(
        &self,
        pulls: &[Document<PullFront>],
        issue: u64,
        repo: &RepoName,
    ) -> Option<PrRef> {
        pulls
            .iter()
            .filter(|p| p.front.state == "open")
            .find(|p| p.front.issue == issue || marked_issue(&p.body) == Some(issue))
            .map(|p| self.pr_ref(repo, p))
    }

    fn pr_ref(&self, repo: &RepoName, p: &Document<PullFront>) -> PrRef {
        PrRef {
            number: p.front.number,
            url: self.pull_path(repo, p.front.number).display().to_string(),
            branch: p.front.branch.clone(),
            draft: p.front.draft,
        }
    }

    fn claim_file(&self, repo: &RepoName, n: u64) -> Result<Option<ClaimFile>, ForgeError> {
        let path = self.claim_path(repo, n);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| ForgeError::Local {
                    path,
                    message: e.to_string().trim_end().replace('\n', " "),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ForgeError::Local {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    fn facts(
        &self,
        repo: &RepoName,
        n: u64,
        doc: &Document<IssueFront>,
        pulls: &[Document<PullFront>],
        permissions: &BTreeMap<String, String>,
    ) -> Result<CandidateFacts, ForgeError> {
        let f = &doc.front;
        let label_events: Vec<LabelEvent> = {
            let mut e: Vec<LabelEvent> = f
                .events
                .iter()
                .map(|r| LabelEvent {
                    label: r.label.clone(),
                    actor: r.actor.clone(),
                    at: r.at,
                    added: r.action != "unlabeled",
                })
                .collect();
            e.sort_by_key(|e| e.at);
            e
        };
        let body_edits: Vec<BodyEdit> = f
            .edits
            .iter()
            .map(|e| BodyEdit {
                actor: e.actor.clone(),
                at: e.at,
            })
            .collect();
        let actors = label_events
            .iter()
            .map(|e| &e.actor)
            .chain(body_edits.iter().map(|e| &e.actor));
        let permissions: BTreeMap<String, Permission> = actors
            .map(|a| {
                (
                    a.clone(),
                    parse_permission(permissions.get(a).map(String::as_str)),
                )
            })
            .collect();
        let claim = if f
            .labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&self.labels.in_progress))
        {
            let labelled = label_events
                .iter()
                .filter(|e| e.added && e.label.eq_ignore_ascii_case(&self.labels.in_progress))
                .map(|e| e.at)
                .max();
            let file = self.claim_file(repo, n)?;
            let locked = file.as_ref().map(|c| c.at);
            let lease = file.as_ref().and_then(ClaimFile::lease);
            let marker = takeover_comment_marker(n);
            let taken_over = f
                .comments
                .iter()
                .filter(|c| c.body.contains(&marker))
                .map(|c| c.updated_at.unwrap_or(c.at))
                .max();
            let at = [labelled, locked, taken_over]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(f.created_at);
            Some(ClaimFacts {
                at,
                by_us: false,
                lease,
            })
        } else {
            None
        };
        Ok(CandidateFacts {
            issue: Issue {
                repo: repo.clone(),
                number: n,
                title: f.title.clone(),
                body: doc.body.clone(),
                labels: f.labels.clone(),
                author: f.author.clone(),
                created_at: f.created_at,
                updated_at: f.updated_at.unwrap_or(f.created_at),
            },
            label_events,
            body_edits,
            permissions,
            open_pr: self.open_pr_for(pulls, n, repo),
            claim,
        })
    }

    /// Changes an issue file under the folder lock.
    async fn change_issue<T>(
        &self,
        repo: &RepoName,
        n: u64,
        change: impl FnOnce(&mut Document<IssueFront>, Timestamp, &str) -> T,
    ) -> Result<T, ForgeError> {
        let bot = self.bot(repo)?;
        let _lock = FolderLock::acquire(&self.dir(repo), self.timeout).await?;
        let path = self.issue_path(repo, n);
        let mut doc = self
            .read_issue(repo, n)?
            .ok_or_else(|| ForgeError::IssueNotFound {
                repo: repo.clone(),
                issue: n,
            })?;
        let now = self.clock.now();
        let out = change(&mut doc, now, &bot);
        write_document(&path, &doc)?;
        Ok(out)
    }

    pub async fn add_labels(
        &self,
        repo: &RepoName,
        n: u64,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let labels = labels.to_vec();
        self.change_issue(repo, n, move |doc, now, bot| {
            for label in labels {
                if !doc
                    .front
                    .labels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(&label))
                {
                    doc.front.labels.push(label.clone());
                    doc.front.events.push(LabelRecord {
                        label,
                        actor: bot.to_owned(),
                        at: now,
                        action: "labeled".into(),
                    });
                    doc.front.updated_at = Some(now);
                }
            }
        })
        .await
    }

    pub async fn remove_label(
        &self,
        repo: &RepoName,
        n: u64,
        label: &str,
    ) -> Result<(), ForgeError> {
        self.change_issue(repo, n, |doc, now, bot| {
            let before = doc.front.labels.len();
            doc.front.labels.retain(|l| !l.eq_ignore_ascii_case(label));
            if doc.front.labels.len() != before {
                doc.front.events.push(LabelRecord {
                    label: label.to_owned(),
                    actor: bot.to_owned(),
                    at: now,
                    action: "unlabeled".into(),
                });
                doc.front.updated_at = Some(now);
            }
        })
        .await
    }

    pub async fn upsert_comment(
        &self,
        repo: &RepoName,
        n: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentRef, ForgeError> {
        let body = ensure_marker(body, marker);
        let path = self.issue_path(repo, n);
        self.change_issue(repo, n, |doc, now, bot| {
            let comments = &mut doc.front.comments;
            if let Some(c) = comments.iter_mut().find(|c| c.body.contains(marker)) {
                c.body = body;
                c.updated_at = Some(now);
                return CommentRef {
                    id: c.id,
                    url: format!("{}#comment-{}", path.display(), c.id),
                    created: false,
                };
            }
            let id = comments.iter().map(|c| c.id).max().unwrap_or(0) + 1;
            comments.push(CommentRecord {
                id,
                author: bot.to_owned(),
                at: now,
                updated_at: None,
                body,
            });
            doc.front.updated_at = Some(now);
            CommentRef {
                id,
                url: format!("{}#comment-{id}", path.display()),
                created: true,
            }
        })
        .await
    }

    /// Reads every issue file: there is no API quota to save, so `poll` is left as it is.
    pub async fn candidates(
        &self,
        repo: &RepoName,
        _poll: &mut RepoPoll,
    ) -> Result<Vec<CandidateFacts>, ForgeError> {
        let file = self.repo_file(repo)?;
        let pulls = self.pulls(repo)?;
        let mut out = Vec::new();
        for n in self.issue_numbers(repo, "issues")? {
            let Some(doc) = self.read_issue(repo, n)? else {
                continue;
            };
            let labelled = doc.front.state == "open"
                && doc
                    .front
                    .labels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(&self.labels.approved));
            if labelled {
                out.push(self.facts(repo, n, &doc, &pulls, &file.permissions)?);
            }
        }
        Ok(out)
    }

    pub async fn issue_facts(
        &self,
        repo: &RepoName,
        n: u64,
    ) -> Result<Option<CandidateFacts>, ForgeError> {
        let file = self.repo_file(repo)?;
        let Some(doc) = self.read_issue(repo, n)? else {
            return Ok(None);
        };
        let pulls = self.pulls(repo)?;
        self.facts(repo, n, &doc, &pulls, &file.permissions)
            .map(Some)
    }

    pub async fn claim(&self, req: &ClaimRequest) -> Result<ClaimOutcome, ForgeError> {
        let repo = &req.repo;
        let path = self.claim_path(repo, req.issue);
        let existing_branch = self.branch_sha(repo, &req.branch).await?;
        // The claim file is read, judged and written under the folder lock: two runners that
        // both see an expired lease cannot both take it.
        let (now, lease, took_over, held_lease) = {
            let _lock = FolderLock::acquire(&self.dir(repo), self.timeout).await?;
            let now = self.clock.now();
            let lease = new_lease(&req.holder, now, req.lease_ttl);
            let held = self.claim_file(repo, req.issue)?;
            let took_over = match &held {
                None => None,
                Some(held) => {
                    let current = ClaimFacts {
                        at: held.at,
                        by_us: false,
                        lease: held.lease(),
                    };
                    match decide_contested(
                        Some(&current),
                        now,
                        req.stale_after,
                        &req.branch,
                        existing_branch.as_deref(),
                        &req.base_sha,
                        req.dead_holder.as_deref(),
                    ) {
                        Contested::Busy(reason) => return Ok(ClaimOutcome::Busy(reason)),
                        Contested::TakeOver(reason) => Some(reason),
                    }
                }
            };
            let file = ClaimFile {
                branch: req.branch.clone(),
                at: now,
                holder: format!("pid {} at {now}", std::process::id()),
                run: Some(req.holder.clone()),
                expires: Some(lease.expires),
                ttl_secs: Some(req.lease_ttl.as_secs()),
            };
            write_atomic(&path, claim_text(&path, &file)?.as_bytes())?;
            (now, lease, took_over, held.and_then(|h| h.lease()))
        };
        self.add_labels(
            repo,
            req.issue,
            std::slice::from_ref(&self.labels.in_progress),
        )
        .await?;
        if took_over.is_some() {
            let text = req.takeover_comment.clone().unwrap_or_else(|| {
                let expired = held_lease.as_ref().map(|l| (l.holder.as_str(), l.expires));
                issueloop_publish::claims::local_takeover_comment(expired)
            });
            self.upsert_comment(repo, req.issue, &takeover_comment_marker(req.issue), &text)
                .await?;
        }
        Ok(ClaimOutcome::Acquired(Claim {
            repo: repo.clone(),
            issue: req.issue,
            branch: req.branch.clone(),
            base_sha: req.base_sha.clone(),
            at: now,
            remote_head: existing_branch,
            took_over,
            lock_ref: None,
            lease,
        }))
    }

    /// Moves the lease's expiry forward, under the folder lock, if the claim file still names
    /// this run.
    pub async fn renew(&self, claim: &Claim, ttl: Duration) -> Result<Renewal, ForgeError> {
        let path = self.claim_path(&claim.repo, claim.issue);
        let _lock = FolderLock::acquire(&self.dir(&claim.repo), self.timeout).await?;
        let Some(mut file) = self.claim_file(&claim.repo, claim.issue)? else {
            return Ok(Renewal::Lost { holder: None });
        };
        if file.run.as_deref() != Some(claim.lease.holder.as_str()) {
            return Ok(Renewal::Lost { holder: file.run });
        }
        let lease = new_lease(&claim.lease.holder, self.clock.now(), ttl);
        file.expires = Some(lease.expires);
        file.ttl_secs = Some(ttl.as_secs());
        write_atomic(&path, claim_text(&path, &file)?.as_bytes())?;
        Ok(Renewal::Renewed {
            expires: lease.expires,
        })
    }

    pub async fn release(&self, claim: &Claim, release: Release) -> Result<(), ForgeError> {
        let repo = &claim.repo;
        if let Some(file) = self.claim_file(repo, claim.issue)?
            && file.run.as_deref().is_some_and(|r| r != claim.lease.holder)
        {
            tracing::warn!(
                issue = claim.issue,
                holder = ?file.run,
                "the claim is held by another run now: leaving it"
            );
            return Ok(());
        }
        if release == Release::DeleteBranch {
            let used = self
                .pulls(repo)?
                .iter()
                .any(|p| p.front.state == "open" && p.front.branch == claim.branch);
            if used {
                tracing::warn!(branch = %claim.branch, "an open PR uses the branch: keeping it");
            } else {
                let remote = self.remote(repo)?;
                self.git(
                    &remote,
                    &["update-ref", "-d", &format!("refs/heads/{}", claim.branch)],
                )
                .await?;
            }
        }
        self.remove_label(repo, claim.issue, &self.labels.in_progress)
            .await?;
        if let Some(lock) = &claim.lock_ref {
            remove_if_present(Path::new(lock))?;
        }
        remove_if_present(&self.claim_path(repo, claim.issue))
    }

    pub async fn publish_pr(&self, req: &PrRequest) -> Result<PrOutcome, ForgeError> {
        let repo = &req.repo;
        let section = ensure_pr_body(&req.body, req.issue);
        let bot = self.bot(repo)?;
        let _lock = FolderLock::acquire(&self.dir(repo), self.timeout).await?;
        let now = self.clock.now();
        let pulls = self.pulls(repo)?;
        let existing = pulls
            .iter()
            .filter(|p| p.front.state == "open")
            .find(|p| p.front.branch == req.branch)
            .or_else(|| {
                pulls.iter().filter(|p| p.front.state == "open").find(|p| {
                    p.front.issue == req.issue || marked_issue(&p.body) == Some(req.issue)
                })
            });
        if let Some(p) = existing {
            let mut doc = Document {
                front: p.front.clone(),
                body: replace_bot_section(&p.body, &section),
            };
            doc.front.updated_at = now;
            write_document(&self.pull_path(repo, doc.front.number), &doc)?;
            return Ok(PrOutcome {
                pr: self.pr_ref(repo, &doc),
                action: PrAction::Updated,
                draft_fallback: false,
            });
        }
        if self.branch_sha(repo, &req.branch).await?.is_none() {
            return Err(ForgeError::Local {
                path: self.remote(repo)?,
                message: format!(
                    "branch `{}` is not in the remote: push it before opening the PR",
                    req.branch
                ),
            });
        }
        let number = self
            .issue_numbers(repo, "issues")?
            .into_iter()
            .chain(self.issue_numbers(repo, "pulls")?)
            .max()
            .unwrap_or(0)
            + 1;
        let doc = Document {
            front: PullFront {
                number,
                issue: req.issue,
                branch: req.branch.clone(),
                base: req.base.clone(),
                title: req.title.clone(),
                draft: true,
                state: "open".into(),
                author: bot,
                created_at: now,
                updated_at: now,
                labels: Vec::new(),
            },
            body: section,
        };
        write_document(&self.pull_path(repo, number), &doc)?;
        Ok(PrOutcome {
            pr: self.pr_ref(repo, &doc),
            action: PrAction::Created,
            draft_fallback: false,
        })
    }

    pub async fn repo_info(&self, repo: &RepoName) -> Result<RepoInfo, ForgeError> {
        let file = self.repo_file(repo)?;
        let remote = self.remote(repo)?;
        let default_branch = match file.default_branch {
            Some(b) => b,
            None => self
                .git(&remote, &["symbolic-ref", "--short", "HEAD"])
                .await?
                .ok_or_else(|| ForgeError::Local {
                    path: remote.clone(),
                    message: "cannot tell the default branch: set `default_branch` in repo.toml"
                        .into(),
                })?,
        };
        let head_sha = self
            .branch_sha(repo, &default_branch)
            .await?
            .ok_or_else(|| ForgeError::Local {
                path: remote.clone(),
                message: format!("the default branch `{default_branch}` has no commit (is `remote` a git repository?)"),
            })?;
        Ok(RepoInfo {
            repo: repo.clone(),
            default_branch,
            head_sha,
            clone_url: remote.display().to_string(),
            html_url: self.dir(repo).display().to_string(),
            private: false,
        })
    }
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission, ForgeError> {
        let file = self.repo_file(repo)?;
        Ok(parse_permission(
            file.permissions.get(login).map(String::as_str),
        ))
    }

    pub async fn find_pr(
        &self,
        repo: &RepoName,
        issue: u64,
        branch: &str,
    ) -> Result<Option<PrRef>, ForgeError> {
        let pulls = self.pulls(repo)?;
        Ok(pulls
            .iter()
            .filter(|p| p.front.state == "open")
            .find(|p| p.front.branch == branch)
            .map(|p| self.pr_ref(repo, p))
            .or_else(|| self.open_pr_for(&pulls, issue, repo)))
    }

    pub async fn push_target(&self, repo: &RepoName) -> Result<PushTarget, ForgeError> {
        Ok(PushTarget {
            url: self.remote(repo)?.display().to_string(),
            credentials: None,
        })
    }

    pub fn kind(&self) -> ForgeKind {
        ForgeKind::Local
    }

    /// The local forge makes no HTTP requests.
    pub fn stats(&self) -> RequestStats {
        RequestStats::default()
    }
}

fn claim_text(path: &Path, file: &ClaimFile) -> Result<String, ForgeError> {
    toml::to_string(file).map_err(|e| ForgeError::Local {
        path: path.to_owned(),
        message: format!("cannot write the claim: {e}"),
    })
}

fn remove_if_present(path: &Path) -> Result<(), ForgeError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ForgeError::Local {
            path: path.to_owned(),
            message: format!("cannot remove: {e}"),
        }),
    }
}

fn parse_permission(text: Option<&str>) -> Permission {
    match text.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        Some("admin") => Permission::Admin,
        Some("maintain") => Permission::Maintain,
        Some("write") => Permission::Write,
        Some("triage") => Permission::Triage,
        Some("read") => Permission::Read,
        _ => Permission::None,
    }
}
