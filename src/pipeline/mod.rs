//! One tick, DESIGN.md §1 from candidates to report. This module only sequences: every
//! decision is made by a pure function of another part (triage's selection, the budget
//! derivation, gate preparation, the diff policy) and recorded with its reason.
//!
//! Order within a tick: expire stale reservations → clean stale worktrees → list candidates
//! per repository → select → derive and reserve budgets **in selection order** (so the daily cap
//! decides deterministically which issue runs) → run the reserved issues, at most
//! `max_concurrent_runs` at once → report.

mod contain;
pub mod decisions;
mod heartbeat;
mod outcome;
mod run;

use std::collections::BTreeMap;
use std::sync::Arc;

use issueloop_config::{Config, Env, ErrorChain as _, RepoName};
use issueloop_forge::{Forge, PollState, RepoInfo};
use issueloop_ledger::{
    BudgetDecision, Event, ReserveOutcome, ReserveRequest, RunId, RunStatus as JournalStatus,
    StateStore, Usd, derive, utc_day,
};
use issueloop_triage::{CandidateFacts, Selected};
use issueloop_workspace::Workspace;
use jiff::Timestamp;

use crate::report::{LedgerSummary, RunStatus, RunSummary, TickReport};
use crate::shutdown::ShutdownSignal;

pub use outcome::{
    Ending, INFRASTRUCTURE_REASONS, Reason, RunFailure, SKIPS_WORTH_A_WARNING, TickVerdict,
    agent_failure, agent_start_failure, ending, judge_tick,
};

/// Key of the forge's poll state in the state store.
const POLL_STATE_KEY: &str = "forge.poll_state";
/// Named value: fingerprints of the trust comments posted, so an unchanged one is not re-sent.
const POSTED_COMMENTS_KEY: &str = "forge.posted_comments";

/// Everything a tick works with, opened once per process.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub env: Env,
    pub forge: Arc<Forge>,
    /// The ledger, journal and named values of the configured `[state] backend`.
    pub store: Arc<dyn StateStore>,
    pub workspace: Workspace,
}

/// Which issue(s) a tick may take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueFilter {
    pub repo: Option<RepoName>,
    pub number: u64,
}

impl std::str::FromStr for IssueFilter {
    type Err = String;

    /// `42`, `#42` or `owner/name#42`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (repo, number) = match s.rsplit_once('#') {
            Some((repo, n)) if !repo.is_empty() => (Some(repo.parse::<RepoName>()?), n),
            Some((_, n)) => (None, n),
            None => (None, s),
        };
        let number = number
            .parse()
            .map_err(|_| format!("`{s}` is not an issue; write `42` or `owner/name#42`"))?;
        Ok(IssueFilter { repo, number })
    }
}

impl IssueFilter {
    fn matches(&self, repo: &RepoName, number: u64) -> bool {
        self.number == number && self.repo.as_ref().is_none_or(|r| r == repo)
    }
}

/// How one tick runs.
#[derive(Clone, Debug)]
pub struct TickOptions {
    /// Read everything, write nothing (no labels, refs, PRs, comments, ledger entries, journal).
    pub dry_run: bool,
    pub only: Option<IssueFilter>,
    pub shutdown: ShutdownSignal,
}

/// The tick itself could not run (as opposed to one issue's run failing, which is a designed
/// outcome recorded in the report).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("the state store failed")]
    State(#[from] issueloop_ledger::LedgerError),
}

impl Pipeline {
    /// One tick. Per-issue failures never stop the other issues; an error here means the tick
    /// could not look at its work at all.
    pub async fn tick(&self, opts: &TickOptions) -> Result<TickReport, TickError> {
        let started = std::time::Instant::now();
        let started_at = Timestamp::now();
        let mut report = TickReport {
            started_at,
            duration: Default::default(),
            dry_run: opts.dry_run,
            runs: Vec::new(),
            ledger: LedgerSummary {
                day: utc_day(started_at),
                cap_usd: self.config.budget.daily_cap_usd,
                spent_usd: Usd::ZERO,
                reserved_usd: Usd::ZERO,
                remaining_usd: Usd::ZERO,
            },
            would: Vec::new(),
            errors: Vec::new(),
        };
        let requests_before = self.forge.stats();

        // Issues whose last run is known dead (same host, process gone): their claim is taken
        // over now instead of after the wall clock.
        let mut dead_runs: BTreeMap<(String, u64), String> = BTreeMap::new();
        if !opts.dry_run {
            dead_runs = self.expire_reservations(started_at)?;
            match self.workspace.cleanup_stale() {
                Ok(r) => tracing::debug!(?r, "stale worktrees checked"),
                Err(e) => report
                    .errors
                    .push(format!("cleaning stale worktrees: {e}", e = e.chain())),
            }
        }

        let mut poll = self.load_poll_state();
        // Outside text is data: titles and bodies lose control and bidi characters here, before
        // selection, so nothing downstream (logs, commits, the PR, the agent) sees them, and an
        // issue left with no usable title is refused before any money is reserved.
        let candidates: Vec<CandidateFacts> = self
            .candidates(&mut poll, opts, &mut report)
            .await
            .into_iter()
            .map(CandidateFacts::normalized)
            .collect();
        // A lease held by a run known dead on this host holds nothing: selection judges that
        // claim by the (zero) age rule below, and the claim by `dead_holder`.
        let mut selection_view = candidates.clone();
        for facts in &mut selection_view {
            let dead = dead_runs.get(&(facts.issue.repo.full(), facts.issue.number));
            if let Some(claim) = &mut facts.claim
                && decisions::held_by_dead_run(claim.lease.as_ref(), dead.map(String::as_str))
            {
                claim.lease = None;
            }
        }
        if !opts.dry_run {
            self.save_poll_state(&poll, &mut report);
        }

        let selection = issueloop_triage::select(
            &selection_view,
            &self.config.labels,
            started_at,
            |f| {
                decisions::claim_stale_after(
                    dead_runs.contains_key(&(f.issue.repo.full(), f.issue.number)),
                    issueloop_triage::claim_stale_after(
                        &self.config.budget,
                        &self.config.labels,
                        f,
                    ),
                )
            },
            self.config.service.max_concurrent_runs as usize,
        );
        tracing::info!(
            candidates = candidates.len(),
            selected = selection.selected.len(),
            skipped = selection.skipped.len(),
            "selection made"
        );
        for skipped in &selection.skipped {
            let dead_holder = dead_runs
                .get(&(skipped.repo.full(), skipped.number))
                .map(String::as_str);
            self.report_triage_skip(skipped, &candidates, dead_holder, opts, &mut report)
                .await;
        }

        let mut repo_infos: BTreeMap<RepoName, RepoInfo> = BTreeMap::new();
        let mut reserved = Vec::new();
        for selected in &selection.selected {
            let Some(facts) = candidates
                .iter()
                .find(|c| c.issue.repo == selected.repo && c.issue.number == selected.number)
            else {
                continue;
            };
            if opts.shutdown.is_stopping() {
                report.runs.push(skip_row(
                    facts,
                    Reason::ShuttingDown,
                    "the service is stopping",
                    None,
                ));
                continue;
            }
            let info = match repo_infos.get(&selected.repo) {
                Some(i) => i.clone(),
                None => match self.forge.repo_info(&selected.repo).await {
                    Ok(i) => {
                        repo_infos.insert(selected.repo.clone(), i.clone());
                        i
                    }
                    Err(e) => {
                        report.errors.push(format!("`{}`: {e}", selected.repo));
                        continue;
                    }
                },
            };
            let dead_holder = dead_runs
                .get(&(facts.issue.repo.full(), facts.issue.number))
                .cloned();
            if let Some(mut item) = self.reserve(selected, facts, info, opts, &mut report)? {
                item.claim_owner_dead = dead_holder.is_some();
                item.dead_holder = dead_holder;
                reserved.push(item);
            }
        }

        let semaphore = Arc::new(tokio::sync::Semaphore::new(
            self.config.service.max_concurrent_runs.max(1) as usize,
        ));
        let mut runs = Vec::new();
        for item in reserved {
            let permit = semaphore.clone();
            let shutdown = opts.shutdown.clone();
            runs.push(async move {
                let _permit = permit.acquire_owned().await;
                self.run_issue(item, shutdown).await
            });
        }
        for finished in futures_util::future::join_all(runs).await {
            // A ledger that could not record a run's cost fails the tick (exit 1).
            report.errors.extend(finished.state_error);
            report.runs.push(finished.row);
        }
        // One row per issue, in a stable order a person can scan.
        report
            .runs
            .sort_by(|a, b| (&a.repo, a.issue).cmp(&(&b.repo, b.issue)));

        let now = Timestamp::now();
        let usage = self.store.day_usage(utc_day(now))?;
        let cap = self.config.budget.daily_cap_usd;
        report.ledger = LedgerSummary {
            day: usage.day,
            cap_usd: cap,
            spent_usd: usage.spent,
            reserved_usd: usage.reserved,
            remaining_usd: usage.left(cap),
        };
        let requests = self.forge.stats().since(&requests_before);
        tracing::info!(requests = requests.billable(), "forge requests this tick");
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Charge the reservations of runs that will never settle: those whose process is seen
    /// dead on this host (at once), and those past their wall clock plus grace (any host).
    /// Returns the issues of the runs seen dead, with their run ids: claims (and leases) those
    /// runs hold may be taken over now.
    fn expire_reservations(
        &self,
        now: Timestamp,
    ) -> Result<BTreeMap<(String, u64), String>, TickError> {
        let mut dead = BTreeMap::new();
        for expired in self.store.expire_dead(now)? {
            tracing::warn!(
                run = %expired.run_id,
                "the process of a run on this host is gone; its reservation is charged in full \
                 and its claim released now: {expired}"
            );
            let _ = self.store.append(
                &expired.run_id,
                now,
                &Event::Note {
                    message: "the run's process died on this host; reservation charged at its \
                              full amount before its expiry"
                        .into(),
                },
            );
            dead.insert((expired.repo, expired.issue), expired.run_id.to_string());
        }
        for expired in self.store.expire(now)? {
            tracing::warn!(
                run = %expired.run_id,
                "a reservation was never settled (its process died); charged in full: {expired}"
            );
            let _ = self.store.append(
                &expired.run_id,
                now,
                &Event::Note {
                    message: "reservation expired unsettled; charged at its full amount".into(),
                },
            );
        }
        Ok(dead)
    }

    fn load_poll_state(&self) -> PollState {
        match self.store.get_value(POLL_STATE_KEY) {
            Ok(Some(text)) => PollState::from_json(&text).unwrap_or_else(|e| {
                tracing::warn!("the stored poll state is unreadable ({e}); polling from scratch");
                PollState::default()
            }),
            Ok(None) => PollState::default(),
            Err(e) => {
                tracing::warn!(
                    "cannot read the stored poll state ({e}); polling from scratch",
                    e = e.chain()
                );
                PollState::default()
            }
        }
    }

    /// Fingerprints of the trust comments this state file has seen posted, by issue and marker.
    fn posted_comments(&self) -> BTreeMap<String, String> {
        self.store
            .get_value(POSTED_COMMENTS_KEY)
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn save_posted_comments(&self, posted: &BTreeMap<String, String>) {
        let text = serde_json::to_string(posted).unwrap_or_default();
        if let Err(e) = self.store.set_value(POSTED_COMMENTS_KEY, &text) {
            // Only costs a re-read and a compare next tick.
            tracing::warn!(
                "cannot record a posted comment's fingerprint: {e}",
                e = e.chain()
            );
        }
    }

    fn save_poll_state(&self, poll: &PollState, report: &mut TickReport) {
        if let Err(e) = self.store.set_value(POLL_STATE_KEY, &poll.to_json()) {
            report
                .errors
                .push(format!("saving the poll state: {e}", e = e.chain()));
        }
    }

    async fn candidates(
        &self,
        poll: &mut PollState,
        opts: &TickOptions,
        report: &mut TickReport,
    ) -> Vec<CandidateFacts> {
        let mut all = Vec::new();
        for repo in &self.config.repos {
            if opts
                .only
                .as_ref()
                .is_some_and(|f| f.repo.as_ref().is_some_and(|r| r != repo))
            {
                continue;
            }
            match self.forge.candidates(repo, poll.repo_mut(repo)).await {
                Ok(found) => {
                    tracing::info!(repo = %repo, candidates = found.len(), "candidates listed");
                    all.extend(found.into_iter().filter(|c| {
                        opts.only
                            .as_ref()
                            .is_none_or(|f| f.matches(&c.issue.repo, c.issue.number))
                    }));
                }
                Err(e) => {
                    let e = e.with_hint();
                    tracing::error!(repo = %repo, "listing candidates failed: {e}");
                    report.errors.push(format!("`{repo}`: {e}"));
                }
            }
        }
        all
    }

    async fn report_triage_skip(
        &self,
        skipped: &issueloop_triage::Skipped,
        candidates: &[CandidateFacts],
        dead_holder: Option<&str>,
        opts: &TickOptions,
        report: &mut TickReport,
    ) {
        let Some(facts) = candidates
            .iter()
            .find(|c| c.issue.repo == skipped.repo && c.issue.number == skipped.number)
        else {
            return;
        };
        tracing::info!(
            repo = %skipped.repo,
            issue = skipped.number,
            reason = Reason::from(skipped.reason).as_str(),
            "skipped: {}",
            skipped.detail
        );
        if let Some(distrust) = skipped.distrust.as_ref().filter(|d| d.say_so_in_comment) {
            let body = issueloop_publish::trust_comment(skipped.number, distrust);
            let marker = issueloop_publish::trust_comment_marker(skipped.number);
            if opts.dry_run {
                report.would.push(format!(
                    "would comment on {}#{} that the body was edited after labelling",
                    skipped.repo, skipped.number
                ));
            } else {
                // Said before with the same words: no read, no write (a write per tick would
                // also bump the issue's `updated_at` forever).
                let key = format!("{}#{} {marker}", skipped.repo, skipped.number);
                let print = issueloop_triage::fingerprint(&body);
                let mut posted = self.posted_comments();
                if !decisions::comment_is_new(posted.get(&key).map(String::as_str), &print) {
                    tracing::debug!(
                        repo = %skipped.repo,
                        issue = skipped.number,
                        "trust comment already says this; not rewritten"
                    );
                } else {
                    match self
                        .forge
                        .upsert_comment(&skipped.repo, skipped.number, &marker, &body)
                        .await
                    {
                        Ok(_) => {
                            posted.insert(key, print);
                            self.save_posted_comments(&posted);
                        }
                        Err(e) => report
                            .errors
                            .push(format!("{}#{}: {e}", skipped.repo, skipped.number)),
                    }
                }
            }
        }
        self.release_leftover_claim(skipped, facts, dead_holder, opts, report)
            .await;
        report.runs.push(skip_row(
            facts,
            skipped.reason.into(),
            &skipped.detail,
            None,
        ));
    }

    /// A run that died after its outcome was decided (its PR opened, or `loop:failed` set)
    /// leaves its claim on an issue no later run takes; once the claim is stale, finish what
    /// the dead run would have done: label a published issue and give the claim back.
    async fn release_leftover_claim(
        &self,
        skipped: &issueloop_triage::Skipped,
        facts: &CandidateFacts,
        dead_holder: Option<&str>,
        opts: &TickOptions,
        report: &mut TickReport,
    ) {
        let stale_after =
            issueloop_triage::claim_stale_after(&self.config.budget, &self.config.labels, facts);
        let Some(leftover) = decisions::leftover_claim(
            skipped.reason,
            facts,
            stale_after,
            Timestamp::now(),
            dead_holder,
            &self.config.labels.pr_opened,
        ) else {
            return;
        };
        let (repo, number) = (&facts.issue.repo, facts.issue.number);
        if opts.dry_run {
            report.would.push(format!(
                "would release the stale claim a dead run left on {repo}#{number}"
            ));
            return;
        }
        tracing::warn!(
            repo = %repo,
            issue = number,
            reason = Reason::from(skipped.reason).as_str(),
            "releasing the stale claim of a run that died after deciding its outcome"
        );
        let branch = issueloop_workspace::branch_name(
            &self.config.git.branch_prefix,
            number,
            &issueloop_triage::redact(&facts.issue.title),
        );
        // Release reads the repository, issue, branch and takeover lock of a claim.
        let claim = decisions::leftover_claim_to_release(facts, branch, report.started_at);
        let result = async {
            if leftover.tell_published
                && let Some(pr) = &facts.open_pr
            {
                // The dead run opened the PR but never told the issue: say it now, naming the
                // run (its journal shows it `interrupted`).
                let run_id = self
                    .store
                    .runs(200)
                    .ok()
                    .and_then(|runs| {
                        runs.into_iter().find(|r| {
                            r.repo.as_deref() == Some(repo.full().as_str())
                                && r.issue == Some(number)
                        })
                    })
                    .map_or_else(|| "(unknown)".to_owned(), |r| r.run_id.to_string());
                let comment =
                    issueloop_publish::outcome_comment(&issueloop_publish::CommentInput {
                        issue_number: number,
                        run_id,
                        outcome: issueloop_publish::RunOutcome::Published {
                            pr_number: pr.number,
                            pr_url: pr.url.clone(),
                            draft: pr.draft,
                            updated: false,
                            budget: None,
                        },
                    });
                let marker = issueloop_publish::comment_marker(number);
                self.forge
                    .upsert_comment(repo, number, &marker, &comment)
                    .await?;
                self.forge
                    .add_labels(
                        repo,
                        number,
                        std::slice::from_ref(&self.config.labels.pr_opened),
                    )
                    .await?;
            }
            self.forge.release(&claim, leftover.release).await
        }
        .await;
        if let Err(e) = result {
            report
                .errors
                .push(format!("{repo}#{number}: releasing a stale claim: {e}"));
        }
    }

    /// Derive the run's budget from what is left today and reserve it, or record the skip.
    fn reserve(
        &self,
        selected: &Selected,
        facts: &CandidateFacts,
        repo_info: RepoInfo,
        opts: &TickOptions,
        report: &mut TickReport,
    ) -> Result<Option<run::Reserved>, TickError> {
        let now = Timestamp::now();
        let usage = self.store.day_usage(utc_day(now))?;
        let decision = derive(&selected.trusted_labels, &self.config.budget, &usage);
        tracing::info!(
            repo = %selected.repo,
            issue = selected.number,
            "budget: {}",
            decision.explanation()
        );
        let (budget, explanation) = match &decision {
            BudgetDecision::Skip {
                reason,
                explanation,
            } => {
                if !opts.dry_run {
                    let run_id = RunId::generate(now, &selected.repo.full(), selected.number);
                    self.journal_all(
                        &run_id,
                        now,
                        &[
                            Event::RunStarted {
                                repo: selected.repo.full(),
                                issue: selected.number,
                                branch: None,
                            },
                            Event::BudgetDecided {
                                decision: decision.to_json(),
                            },
                            Event::RunFinished {
                                status: JournalStatus::Skipped,
                                reason: Some(Reason::from(*reason).as_str().to_owned()),
                            },
                        ],
                    );
                }
                report.runs.push(skip_row(
                    facts,
                    (*reason).into(),
                    "",
                    Some(explanation.clone()),
                ));
                return Ok(None);
            }
            BudgetDecision::Run {
                budget,
                explanation,
                ..
            } => (budget.clone(), explanation.clone()),
        };
        if opts.dry_run {
            report.would.push(format!(
                "would reserve ${:.2} and run `{}` on {}#{} ({explanation})",
                budget.cost_usd.dollars(),
                self.config
                    .runtime_profile
                    .resolve(issueloop_config::Stage::Execute),
                selected.repo,
                selected.number
            ));
            let mut row = skip_row(
                facts,
                Reason::DryRun,
                "dry run: nothing was written",
                Some(explanation),
            );
            row.budget_usd = budget.cost_usd;
            report.runs.push(row);
            return Ok(None);
        }
        let run_id = RunId::generate(now, &selected.repo.full(), selected.number);
        let request = ReserveRequest::new(
            run_id.clone(),
            selected.repo.full(),
            selected.number,
            &budget,
            &self.config.budget,
            // Until this run's forge claim and lease take over, its reservation is the issue's
            // soft claim: another run that selected the same issue moves on to the next one.
            self.config.service.lease_ttl,
            now,
        );
        // Named from the title with secrets masked: a ref is as public as the PR.
        let branch = issueloop_workspace::branch_name(
            &self.config.git.branch_prefix,
            selected.number,
            &issueloop_triage::redact(&facts.issue.title),
        );
        self.journal_all(
            &run_id,
            now,
            &[
                Event::RunStarted {
                    repo: selected.repo.full(),
                    issue: selected.number,
                    branch: Some(branch.clone()),
                },
                Event::BudgetDecided {
                    decision: decision.to_json(),
                },
            ],
        );
        match self.store.reserve(&request)? {
            ReserveOutcome::Reserved(_) => {
                crate::failpoint::hit(&self.env, "after_reserve");
                Ok(Some(run::Reserved {
                    claim_owner_dead: false,
                    dead_holder: None,
                    run_id,
                    facts: facts.clone(),
                    selected: selected.clone(),
                    budget,
                    explanation,
                    branch,
                    repo_info,
                }))
            }
            ReserveOutcome::Refused { reason, .. } => {
                self.journal_all(
                    &run_id,
                    now,
                    &[Event::RunFinished {
                        status: JournalStatus::Skipped,
                        reason: Some(Reason::from(reason).as_str().to_owned()),
                    }],
                );
                let detail = match reason {
                    issueloop_ledger::SkipReason::ReservedElsewhere => {
                        "another run reserved a budget for this issue first and is claiming it"
                    }
                    _ => "another run reserved what was left of today's budget first",
                };
                report
                    .runs
                    .push(skip_row(facts, reason.into(), detail, Some(explanation)));
                Ok(None)
            }
        }
    }

    /// Journal events; a journal write that fails is logged, never allowed to stop a run that
    /// is spending money (the ledger, not the journal, guards the money).
    fn journal_all(&self, run_id: &RunId, at: Timestamp, events: &[Event]) {
        for event in events {
            if let Err(e) = self.store.append(run_id, at, event) {
                tracing::error!(run = %run_id, "cannot write to the journal: {e}", e = e.chain());
            }
        }
    }
}

fn skip_row(
    facts: &CandidateFacts,
    reason: Reason,
    detail: &str,
    explanation: Option<String>,
) -> RunSummary {
    RunSummary {
        repo: facts.issue.repo.full(),
        issue: facts.issue.number,
        title: facts.issue.title.clone(),
        status: RunStatus::Skipped,
        reason: Some(reason.as_str().to_owned()),
        detail: Some(detail.to_owned()).filter(|d| !d.is_empty()),
        budget_usd: Usd::ZERO,
        cost_usd: Usd::ZERO,
        pr: None,
        budget_explanation: explanation,
    }
}
