//! Candidates and their facts: the labelled issues (polled incrementally), their timelines,
//! open PRs and the permissions of the people who labelled or edited them.

use std::collections::{BTreeMap, BTreeSet};

use issueloop_config::RepoName;
use issueloop_triage::{CandidateFacts, Permission};

use super::{GithubForge, PAGE, facts, lock, query, segment, wire};
use crate::error::ForgeError;
use crate::poll::{CachedPermission, RepoPoll, body_digest};

impl GithubForge {
    pub(super) async fn labels_of(
        &self,
        repo: &RepoName,
        issue: u64,
    ) -> Result<Vec<String>, ForgeError> {
        let path = format!("{}/issues/{issue}", Self::base(repo));
        let answer = self.transport.get(&path).await?;
        if answer.status == 404 {
            return Err(ForgeError::IssueNotFound {
                repo: repo.clone(),
                issue,
            });
        }
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        let i: wire::Issue = answer.json("GET", &path)?;
        Ok(i.label_names())
    }

    pub(super) async fn open_pulls(&self, repo: &RepoName) -> Result<Vec<wire::Pull>, ForgeError> {
        let path = format!("{}/pulls?state=open&per_page={PAGE}", Self::base(repo));
        self.list(repo, &path).await
    }

    pub(super) async fn pull_for_branch(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<wire::Pull>, ForgeError> {
        let head = format!("{}:{branch}", repo.owner);
        let path = format!(
            "{}/pulls?state=open&head={}&per_page={PAGE}",
            Self::base(repo),
            query(&head)
        );
        let pulls: Vec<wire::Pull> = self.list(repo, &path).await?;
        Ok(pulls.into_iter().find(|p| p.head.name == branch))
    }

    /// The issue's timeline; `None` when the issue is gone (deleted, transferred).
    pub(super) async fn timeline(
        &self,
        repo: &RepoName,
        issue: u64,
    ) -> Result<Option<Vec<wire::TimelineItem>>, ForgeError> {
        let path = format!(
            "{}/issues/{issue}/timeline?per_page={PAGE}",
            Self::base(repo)
        );
        self.list_or_gone(&path).await
    }

    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission, ForgeError> {
        let path = format!(
            "{}/collaborators/{}/permission",
            Self::base(repo),
            segment(login)
        );
        let answer = self.transport.get(&path).await?;
        match answer.status {
            // Not a collaborator, or no such account.
            404 => Ok(Permission::None),
            s if (200..300).contains(&s) => {
                let level: wire::PermissionLevel = answer.json("GET", &path)?;
                Ok(facts::permission_of(&level))
            }
            _ => Err(Self::refused("GET", &path, &answer)),
        }
    }

    /// Facts of one issue from GitHub; permissions through `poll`'s cache.
    pub(super) async fn build_facts(
        &self,
        repo: &RepoName,
        issue: &wire::Issue,
        pulls: &[wire::Pull],
        poll: &mut RepoPoll,
    ) -> Result<Option<crate::poll::CachedIssue>, ForgeError> {
        let Some(timeline) = self.timeline(repo, issue.number).await? else {
            return Ok(None);
        };
        let events = facts::label_events(&timeline);
        let edits = facts::body_edits(issue, &timeline, poll.issues.get(&issue.number));
        let now = self.clock.now();
        let mut permissions = BTreeMap::new();
        for login in facts::actors_to_check(&events, &edits, &self.labels.prefix) {
            let p = match poll.fresh_permission(&login, now) {
                Some(p) => p,
                None => {
                    let p = self.permission(repo, &login).await?;
                    poll.permissions.insert(
                        login.clone(),
                        CachedPermission {
                            permission: p,
                            fetched_at: now,
                        },
                    );
                    p
                }
            };
            permissions.insert(login, p);
        }
        let open_pr = facts::open_pr_for(pulls, issue.number, &self.branch_prefix);
        Ok(Some(facts::build(
            repo,
            issue,
            &timeline,
            permissions,
            open_pr,
            &self.labels,
            poll.issues.get(&issue.number),
            self.holds(repo, issue.number),
        )))
    }

    pub(super) fn holds(&self, repo: &RepoName, issue: u64) -> bool {
        lock(&self.claimed).contains(&(repo.full(), issue))
    }

    pub async fn candidates(
        &self,
        repo: &RepoName,
        poll: &mut RepoPoll,
    ) -> Result<Vec<CandidateFacts>, ForgeError> {
        let base = Self::base(repo);
        let full = poll.watermark.is_none();
        let path = match poll.watermark {
            None => format!(
                "{base}/issues?state=open&labels={}&sort=updated&direction=asc&per_page={PAGE}",
                query(&self.labels.approved)
            ),
            Some(w) => format!(
                "{base}/issues?state=all&sort=updated&direction=asc&since={}&per_page={PAGE}",
                query(&w.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            ),
        };
        let items: Vec<wire::Issue> = self.list(repo, &path).await?;
        for item in &items {
            poll.advance_watermark(item.updated_at);
        }
        let issues: Vec<wire::Issue> = items
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect();
        if full {
            let listed: BTreeSet<u64> = issues.iter().map(|i| i.number).collect();
            poll.issues.retain(|n, _| listed.contains(n));
        }
        let mut changed = Vec::new();
        for issue in issues {
            let labelled = issue.is_open()
                && issue
                    .label_names()
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(&self.labels.approved));
            if !labelled {
                poll.issues.remove(&issue.number);
                continue;
            }
            let unchanged = poll.issues.get(&issue.number).is_some_and(|c| {
                c.facts.issue.updated_at == issue.updated_at
                    && c.body_digest == body_digest(issue.body.as_deref().unwrap_or(""))
            });
            if !unchanged {
                changed.push(issue);
            }
        }
        if !changed.is_empty() {
            let pulls = self.open_pulls(repo).await?;
            for cached in poll.issues.values_mut() {
                cached.facts.open_pr =
                    facts::open_pr_for(&pulls, cached.facts.issue.number, &self.branch_prefix);
            }
            for issue in &changed {
                match self.build_facts(repo, issue, &pulls, poll).await? {
                    Some(built) => {
                        poll.issues.insert(issue.number, built);
                    }
                    // Deleted or transferred since it was listed.
                    None => {
                        poll.issues.remove(&issue.number);
                    }
                }
            }
        }
        for cached in poll.issues.values_mut() {
            if let Some(claim) = &mut cached.facts.claim {
                claim.by_us =
                    lock(&self.claimed).contains(&(repo.full(), cached.facts.issue.number));
            }
        }
        tracing::debug!(repo = %repo, rebuilt = changed.len(), candidates = poll.issues.len(), "polled");
        let mut facts = poll.facts();
        self.attach_leases(repo, &mut facts).await?;
        Ok(facts)
    }

    pub async fn issue_facts(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<CandidateFacts>, ForgeError> {
        let path = format!("{}/issues/{number}", Self::base(repo));
        let answer = self.transport.get(&path).await?;
        if matches!(answer.status, 404 | 410) {
            return Ok(None);
        }
        if !answer.ok() {
            return Err(Self::refused("GET", &path, &answer));
        }
        let issue: wire::Issue = answer.json("GET", &path)?;
        if issue.pull_request.is_some() {
            return Ok(None);
        }
        let pulls = self.open_pulls(repo).await?;
        let mut scratch = RepoPoll::default();
        let Some(built) = self.build_facts(repo, &issue, &pulls, &mut scratch).await? else {
            return Ok(None);
        };
        let mut facts = [built.facts];
        self.attach_leases(repo, &mut facts).await?;
        let [facts] = facts;
        Ok(Some(facts))
    }
}
