//! One issue's run, after its budget is reserved: claim → worktree → agent (execute) → gates,
//! with repairs (reflect) → optional review (evaluate) → diff policy → commit → push → one
//! draft PR → comment and labels; or, on any failure, the comment with the evidence, the failed
//! label and the claim released. Whatever happens, the ledger is settled (or the reservation
//! released when no agent ran), the journal gets `run_finished`, and the worktree is removed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use issueloop_config::{RunBudget, Stage};
use issueloop_forge::{Claim, ClaimOutcome, ClaimRequest, PrRequest, Release, RepoInfo};
use issueloop_gates::{GateReport, GateStatus};
use issueloop_ledger::{Event, RunId, RunStatus as JournalStatus, Usd};
use issueloop_policy::{CompiledPolicy, Verdict};
use issueloop_publish::{
    BudgetSummary, CommentInput, DiffStat, Failure, FileStat, GateRow, PolicyVerdict, PrBodyInput,
    RunOutcome, StageRow, TakeoverCommentInput,
};
use issueloop_runtime::{BackendOutcome, Brief, RunLimits};
use issueloop_triage::{CandidateFacts, Selected};
use issueloop_workspace::{BaseRef, CommitOutcome, Credentials, PushOutcome, RemoteSpec, Worktree};
use jiff::Timestamp;
use tracing::Instrument;

use super::Pipeline;
use super::contain::Containment;
use super::heartbeat::Heartbeat;
use super::outcome::{Reason, RunFailure, agent_failure, agent_start_failure};
use crate::brief::{BriefInput, GateFailure, evaluate_brief, execute_brief, reflect_brief};
use crate::report::{RunStatus, RunSummary};
use crate::service::ShutdownSignal;

/// A change the diff policy approved: the facts judged, and the only thing a commit accepts.
type Judged = (
    issueloop_policy::ChangeFacts,
    issueloop_policy::ApprovedChange,
);

/// An issue whose budget is reserved, ready to run.
pub(crate) struct Reserved {
    pub run_id: RunId,
    pub facts: CandidateFacts,
    pub selected: Selected,
    pub budget: RunBudget,
    pub explanation: String,
    pub branch: String,
    pub repo_info: RepoInfo,
    /// The issue's claim belongs to a run whose process is known dead on this host: take it
    /// over now rather than once it is stale by the clock.
    pub claim_owner_dead: bool,
    /// That dead run's id: a lease it holds may be taken over now.
    pub dead_holder: Option<String>,
}

/// What a run accumulates as it goes, for the ledger, the PR body and the comment.
struct RunState {
    started: Instant,
    /// Dollars charged so far (an unknown cost counts as the whole remaining budget).
    spent: f64,
    agent_started: bool,
    cost_source: String,
    stages: Vec<StageRow>,
    gate_rows: Vec<GateRow>,
    verdict: Option<Verdict>,
    summary: String,
    claim: Option<Claim>,
    /// The run directory and sandboxes of its agents and gates (set with the worktree).
    containment: Option<Containment>,
    /// Renews the claim's lease while the run lives (stopped when it finishes).
    heartbeat: Option<Heartbeat>,
}

/// How a run ended, and a failure of the state store while recording it (which fails the tick:
/// the reservation then expires and is charged in full, but an operator should know).
pub(crate) struct Finished {
    pub row: RunSummary,
    pub state_error: Option<String>,
}

/// A published PR.
struct Published {
    number: u64,
    url: String,
    draft: bool,
    updated: bool,
}

impl Pipeline {
    pub(crate) async fn run_issue(&self, item: Reserved, shutdown: ShutdownSignal) -> Finished {
        let repo = item.selected.repo.clone();
        let number = item.selected.number;
        let span = tracing::info_span!("run", run = %item.run_id, repo = %repo, issue = number);
        self.run_issue_in_span(item, shutdown)
            .instrument(span)
            .await
    }

    async fn run_issue_in_span(&self, item: Reserved, shutdown: ShutdownSignal) -> Finished {
        let mut state = RunState {
            started: Instant::now(),
            spent: 0.0,
            agent_started: false,
            cost_source: "reported".into(),
            stages: Vec::new(),
            gate_rows: Vec::new(),
            verdict: None,
            summary: String::new(),
            claim: None,
            containment: None,
            heartbeat: None,
        };
        let mut worktree = None;
        let result = self
            .run_steps(&item, &mut state, &mut worktree, &shutdown)
            .await;
        let summary = self.finish(&item, &mut state, result).await;
        if let Some(wt) = worktree.take()
            && let Err(e) = blocking(|| wt.remove())
        {
            tracing::warn!("cannot remove the worktree (the next start-up will): {e}");
        }
        summary
    }

    async fn run_steps(
        &self,
        item: &Reserved,
        state: &mut RunState,
        worktree: &mut Option<Worktree>,
        shutdown: &ShutdownSignal,
    ) -> Result<Published, RunFailure> {
        let repo = &item.selected.repo;
        let number = item.selected.number;

        // Claim before spending anything.
        let stale_after = if item.claim_owner_dead {
            std::time::Duration::ZERO
        } else {
            issueloop_triage::claim_stale_after(
                &self.config.budget,
                &self.config.labels,
                &item.facts,
            )
        };
        let takeover_comment = item.facts.claim.as_ref().map(|c| {
            issueloop_publish::takeover_comment(&TakeoverCommentInput {
                issue_number: number,
                run_id: item.run_id.to_string(),
                claim_label: self.config.labels.in_progress.clone(),
                claimed_at: c.at,
                now: Timestamp::now(),
                stale_after,
                lease: c.lease.clone(),
            })
        });
        let request = ClaimRequest {
            repo: repo.clone(),
            issue: number,
            branch: item.branch.clone(),
            base_sha: item.repo_info.head_sha.clone(),
            current: item.facts.claim.clone(),
            stale_after,
            takeover_comment,
            holder: item.run_id.to_string(),
            lease_ttl: self.config.service.lease_ttl,
            dead_holder: item.dead_holder.clone(),
        };
        match self.forge.claim(&request).await.map_err(forge_failure)? {
            ClaimOutcome::Acquired(claim) => {
                self.journal(
                    &item.run_id,
                    Event::ClaimAcquired {
                        label: self.config.labels.in_progress.clone(),
                    },
                );
                state.heartbeat = Some(Heartbeat::start(
                    Arc::clone(&self.forge),
                    claim.clone(),
                    self.config.service.lease_ttl,
                ));
                state.claim = Some(claim);
            }
            ClaimOutcome::Busy(reason) => {
                return Err(RunFailure::new(
                    Reason::Claimed,
                    format!("another runner holds the issue: {}", reason.describe()),
                ));
            }
        }
        crate::failpoint::hit(&self.env, "after_claim");

        // A worktree on the run's branch (created by the claim at the default branch's head;
        // a rerun continues on whatever that branch already holds).
        let target = self.forge.push_target(repo).await.map_err(forge_failure)?;
        let remote = RemoteSpec::new(
            target.url.clone(),
            target.credentials.map(|c| Credentials {
                username: c.username,
                token: c.password,
            }),
        );
        // The workspace continues on the remote branch when it exists (the claim made it).
        let wt = blocking(|| {
            self.workspace
                .prepare_worktree(repo, &remote, &item.branch, &BaseRef::DefaultBranch)
        })
        .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        let worktree = worktree.insert(wt);
        crate::failpoint::hit(&self.env, "after_worktree");

        // Agents and gates write only the worktree, its private gitdir and the run's directory.
        let support = issueloop_process::support();
        let decision = issueloop_runtime::sandbox_decision(self.config.sandbox.mode, support);
        if decision == issueloop_runtime::SandboxDecision::Refuse {
            return Err(RunFailure::new(
                Reason::WorkspaceError,
                format!(
                    "the agent sandbox is required but this kernel cannot enforce it: {support} (Linux {})",
                    issueloop_process::kernel_release()
                ),
            ));
        }
        if decision == issueloop_runtime::SandboxDecision::Unavailable {
            tracing::warn!(%support, "the agent sandbox is unavailable; the agent runs unsandboxed (`[sandbox] mode = \"best_effort\"`)");
        }
        let containment = Containment::new(
            &self.config,
            &self.env,
            worktree.path(),
            &worktree.private_gitdir(),
            support,
        )
        .map_err(|e| {
            RunFailure::new(
                Reason::WorkspaceError,
                format!("cannot create the run's directory: {e}"),
            )
        })?;
        self.journal(&item.run_id, containment.event.clone());
        state.containment = Some(containment);

        let policy = self.config.policy.for_repo(Some(repo));
        let acceptance =
            issueloop_triage::acceptance_criteria(&item.facts.issue.title, &item.facts.issue.body);
        let mut brief = BriefInput {
            repo: repo.full(),
            issue: number,
            title: item.facts.issue.title.clone(),
            body: issueloop_triage::redact(&item.facts.issue.body),
            acceptance: acceptance.items.clone(),
            branch: item.branch.clone(),
            budget_usd: item.budget.cost_usd,
            wall_clock: item.budget.wall_clock,
            max_turns: item.budget.max_turns,
            allowed_paths: policy.allowed_paths.clone(),
            denied_paths: policy.denied_paths.clone(),
            gates: Vec::new(),
        };
        let deadline = state.started + item.budget.wall_clock;

        // Stage execute.
        let outcome = self
            .stage(
                item,
                state,
                worktree,
                Stage::Execute,
                execute_brief(&brief),
                deadline,
                shutdown,
            )
            .await?;
        state.summary = outcome.final_message.clone();
        crate::failpoint::hit(&self.env, "after_agent");
        let compiled = CompiledPolicy::new(&policy).map_err(|e| {
            RunFailure::new(
                Reason::PolicyViolation,
                format!("the policy does not compile: {e}"),
            )
        })?;
        // A change the policy refuses is refused now: no gate runs on it and no repair is paid for.
        self.judge(item, state, worktree, &compiled)?;

        // Gates, with repairs while attempts and budget remain.
        let mut attempt = 0;
        loop {
            lease_check(state)?;
            let report = self.gates(item, state, worktree).await?;
            if report.passed() {
                break;
            }
            if let Some(r) = report
                .results
                .iter()
                .find(|r| r.status == GateStatus::Rejected)
            {
                return Err(RunFailure::new(
                    Reason::GateRejected,
                    format!(
                        "gate `{}` was not run: {}",
                        r.command,
                        r.reason.as_deref().unwrap_or("rejected by the allowlist")
                    ),
                ));
            }
            let failures: Vec<GateFailure> = report
                .results
                .iter()
                .filter(|r| r.status != GateStatus::Passed || !r.left_files.is_empty())
                .map(|r| GateFailure {
                    argv: r.command.clone(),
                    status: if r.left_files.is_empty() {
                        r.status.as_str().to_owned()
                    } else {
                        format!("left files behind: {}", r.left_files.join(", "))
                    },
                    output: r.output.clone(),
                })
                .collect();
            let remaining = item.budget.cost_usd - state.spent;
            if attempt >= self.config.run.reflect_attempts
                || remaining < self.config.budget.min_useful_usd
                || Instant::now() >= deadline
            {
                let names: Vec<&str> = failures.iter().map(|f| f.argv.as_str()).collect();
                return Err(RunFailure::new(
                    Reason::GatesFailed,
                    format!(
                        "gates still failing after {attempt} repair attempt{}: {}",
                        if attempt == 1 { "" } else { "s" },
                        names.join(", ")
                    ),
                ));
            }
            attempt += 1;
            brief.gates = report.results.iter().map(|r| r.command.clone()).collect();
            let text = reflect_brief(&brief, &failures, attempt, self.config.run.reflect_attempts);
            let outcome = self
                .stage(
                    item,
                    state,
                    worktree,
                    Stage::Reflect,
                    text,
                    deadline,
                    shutdown,
                )
                .await?;
            if !outcome.final_message.trim().is_empty() {
                state.summary = outcome.final_message;
            }
        }
        crate::failpoint::hit(&self.env, "after_gates");

        // The diff policy again, on everything the agent and its repairs left in the worktree.
        let (mut facts, approved) = self.judge(item, state, worktree, &compiled)?;
        // A run that died after pushing left its change on the branch this run continued: when
        // the agent finds nothing left to do, that change, judged whole, is what gets published.
        let carried_over = facts.is_empty();
        if carried_over {
            facts = self
                .carried_over_change(item, state, worktree, &compiled)?
                .ok_or_else(|| RunFailure::new(Reason::NoChanges, "the agent changed no file"))?;
        }

        // Stage evaluate, when configured: a review of the judged change.
        if self.config.run.evaluate {
            let text = evaluate_brief(&brief, &diff_stat_text(&facts));
            let outcome = self
                .stage(
                    item,
                    state,
                    worktree,
                    Stage::Evaluate,
                    text,
                    deadline,
                    shutdown,
                )
                .await?;
            if !crate::brief::evaluation_passed(&outcome.final_message) {
                return Err(RunFailure::new(
                    Reason::EvaluationFailed,
                    "the review found the change does not meet the acceptance criteria",
                ));
            }
        }

        // Commit, push, publish: only while this run still holds the issue.
        lease_check(state)?;
        // A git object outlives everything: the title is already clean, and secrets are masked.
        let message = issueloop_workspace::commit_message(
            number,
            &issueloop_triage::redact(&item.facts.issue.title),
        );
        if !carried_over {
            match blocking(|| worktree.commit(&approved, &message))
                .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?
            {
                CommitOutcome::Committed { .. } => {}
                CommitOutcome::NothingToCommit => {
                    return Err(RunFailure::new(Reason::NoChanges, "the change is empty"));
                }
            }
        }
        crate::failpoint::hit(&self.env, "after_commit");
        lease_check(state)?;
        match blocking(|| worktree.push(&remote))
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?
        {
            PushOutcome::Created { .. }
            | PushOutcome::FastForwarded { .. }
            | PushOutcome::UpToDate { .. } => {}
            PushOutcome::Diverged { remote, local } => {
                return Err(RunFailure::new(
                    Reason::PushDiverged,
                    format!(
                        "branch `{}` has commits this run does not include (remote {remote}, ours {local}); nothing was pushed",
                        item.branch
                    ),
                ));
            }
            PushOutcome::Rejected { reason } => {
                return Err(RunFailure::new(
                    Reason::PushDiverged,
                    format!("the push was refused: {reason}"),
                ));
            }
        }
        crate::failpoint::hit(&self.env, "after_push");

        let body = issueloop_publish::pr_body(&PrBodyInput {
            issue_number: number,
            issue_title: item.facts.issue.title.clone(),
            summary: state.summary.clone(),
            acceptance: acceptance.clone(),
            gates: state.gate_rows.clone(),
            policy: PolicyVerdict {
                ok: true,
                violations: Vec::new(),
            },
            budget: self.budget_summary(item, state),
            stages: state.stages.clone(),
            diff: blocking(|| committed_diff_stat(worktree, &item.repo_info.head_sha))
                .unwrap_or_else(|e| {
                    tracing::warn!(
                        "cannot compute the diff stat from git ({e}); counting added lines"
                    );
                    diff_stat(&facts)
                }),
            run_id: item.run_id.to_string(),
        });
        lease_check(state)?;
        let pr = self
            .forge
            .publish_pr(&PrRequest {
                repo: repo.clone(),
                issue: number,
                branch: item.branch.clone(),
                base: item.repo_info.default_branch.clone(),
                title: issueloop_publish::pr_title(number, &item.facts.issue.title, false),
                body,
                known: item.facts.open_pr.clone(),
            })
            .await
            .map_err(|e| match e {
                issueloop_forge::ForgeError::DraftRefused { .. } => {
                    RunFailure::new(Reason::DraftRefused, e.to_string())
                }
                other => forge_failure(other),
            })?;
        self.journal(
            &item.run_id,
            Event::PrOpened {
                number: pr.pr.number,
                url: pr.pr.url.clone(),
            },
        );
        crate::failpoint::hit(&self.env, "after_pr");
        Ok(Published {
            number: pr.pr.number,
            url: pr.pr.url,
            draft: pr.pr.draft,
            updated: pr.action == issueloop_forge::PrAction::Updated,
        })
    }

    /// Judge the worktree's change against the diff policy (journaled); the approved change, or
    /// the violations as a failure.
    fn judge(
        &self,
        item: &Reserved,
        state: &mut RunState,
        worktree: &Worktree,
        compiled: &CompiledPolicy,
    ) -> Result<Judged, RunFailure> {
        let facts = blocking(|| worktree.run_change_facts())
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        self.judge_facts(item, state, facts, compiled)
    }

    /// What the run's branch already holds beyond the default branch (commits a run that died
    /// after pushing left), judged by the diff policy; `None` when it holds nothing.
    fn carried_over_change(
        &self,
        item: &Reserved,
        state: &mut RunState,
        worktree: &Worktree,
        compiled: &CompiledPolicy,
    ) -> Result<Option<issueloop_policy::ChangeFacts>, RunFailure> {
        if !worktree.continued_existing_branch() {
            return Ok(None);
        }
        let fork = blocking(|| fork_point(worktree, &item.repo_info.head_sha)).map_err(|e| {
            RunFailure::new(
                Reason::WorkspaceError,
                format!(
                    "cannot find where branch `{}` left the default branch: {e}",
                    item.branch
                ),
            )
        })?;
        if fork == worktree.start_commit() {
            return Ok(None);
        }
        let facts = blocking(|| worktree.change_facts(Some(&fork)))
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        if facts.is_empty() {
            return Ok(None);
        }
        let (facts, _) = self.judge_facts(item, state, facts, compiled)?;
        Ok(Some(facts))
    }

    fn judge_facts(
        &self,
        item: &Reserved,
        state: &mut RunState,
        facts: issueloop_policy::ChangeFacts,
        compiled: &CompiledPolicy,
    ) -> Result<Judged, RunFailure> {
        let verdict = issueloop_policy::judge(&facts, compiled);
        self.journal(
            &item.run_id,
            Event::PolicyDecided {
                repo: item.selected.repo.full(),
                allowed: verdict.is_clean(),
                detail: serde_json::to_value(&verdict).unwrap_or_default(),
            },
        );
        state.verdict = Some(verdict);
        let approved = issueloop_policy::approve(facts.clone(), compiled).map_err(|v| {
            RunFailure::new(
                Reason::PolicyViolation,
                format!(
                    "the change breaks the diff policy: {}",
                    v.violations
                        .iter()
                        .map(|x| x.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        })?;
        Ok((facts, approved))
    }

    /// Run one agent stage with what is left of the run's budget and wall clock.
    #[allow(clippy::too_many_arguments)]
    async fn stage(
        &self,
        item: &Reserved,
        state: &mut RunState,
        worktree: &Worktree,
        stage: Stage,
        brief_text: String,
        deadline: Instant,
        shutdown: &ShutdownSignal,
    ) -> Result<BackendOutcome, RunFailure> {
        if shutdown.is_stopping() {
            return Err(RunFailure::new(
                Reason::ShuttingDown,
                format!("the service stopped before stage `{stage}`"),
            ));
        }
        lease_check(state)?;
        let remaining = item.budget.cost_usd - state.spent;
        let wall = deadline.saturating_duration_since(Instant::now());
        if remaining <= 0.0 {
            return Err(RunFailure::new(
                Reason::BudgetExhausted,
                format!("no budget left for stage `{stage}`"),
            ));
        }
        if wall.is_zero() {
            return Err(RunFailure::new(
                Reason::TimedOut,
                format!("no time left for stage `{stage}`"),
            ));
        }
        let limits = RunLimits {
            cost_usd: remaining,
            wall_clock: wall,
            max_turns: item.budget.max_turns,
        };
        let invocation = issueloop_runtime::invocation_for_stage(
            &self.config,
            stage,
            &limits,
            &Brief {
                text: brief_text,
                path: None,
            },
        )
        .map_err(|e| agent_start_failure(stage.as_str(), &e))?;
        let mut invocation = invocation;
        if state
            .containment
            .as_ref()
            .is_some_and(|c| c.agent.is_some())
        {
            super::contain::inside_our_sandbox(&mut invocation);
        }
        self.journal(
            &item.run_id,
            Event::StageStarted {
                stage: stage.to_string(),
                runtime_id: invocation.runtime_id().to_owned(),
            },
        );
        tracing::info!(stage = %stage, backend = invocation.runtime_id(), budget = remaining, "stage started: {invocation}");
        state.agent_started = true;
        let started = Instant::now();
        let (env, sandbox) = match &state.containment {
            Some(c) => (&c.env, c.agent.clone()),
            None => (&self.env, None),
        };
        let options = issueloop_runtime::RunOptions {
            sandbox,
            ..issueloop_runtime::RunOptions::default()
        };
        let run = issueloop_runtime::run_with(&invocation, worktree.path(), &limits, env, options);
        let outcome = tokio::select! {
            outcome = run => outcome,
            () = shutdown.aborting() => {
                // Dropping the run kills the agent's process group. What it spent is unknown:
                // charge the rest of the budget (the safe side).
                state.spent = item.budget.cost_usd;
                state.cost_source = "unknown".into();
                return Err(RunFailure::new(Reason::ShuttingDown, format!("the service stopped during stage `{stage}`")));
            }
        };
        // An error here means the agent never started (a started agent's end is an outcome).
        let outcome = outcome.map_err(|e| agent_start_failure(stage.as_str(), &e))?;
        let cost = outcome.ledger_cost(remaining);
        state.spent += cost;
        if outcome.cost_source.as_str() != "reported" {
            state.cost_source = outcome.cost_source.as_str().to_owned();
        }
        self.journal(
            &item.run_id,
            Event::BackendFinished {
                stage: stage.to_string(),
                status: outcome.status.as_str().to_owned(),
                cost_usd: cost,
                cost_source: outcome.cost_source.as_str().to_owned(),
                usage: serde_json::to_value(outcome.usage).unwrap_or_default(),
                error: outcome.error.clone().filter(|_| !outcome.succeeded()),
            },
        );
        state.stages.push(StageRow {
            stage: stage.to_string(),
            runtime: invocation.runtime_id().to_owned(),
            duration: Some(started.elapsed()),
            cost_usd: Some(cost),
        });
        tracing::info!(stage = %stage, status = outcome.status.as_str(), cost, "stage finished");
        match agent_failure(stage.as_str(), &outcome, remaining, item.budget.wall_clock) {
            Some(failure) => Err(failure),
            None => Ok(outcome),
        }
    }

    /// Select, prepare, check and run the gates of the worktree's repository.
    async fn gates(
        &self,
        item: &Reserved,
        state: &mut RunState,
        worktree: &Worktree,
    ) -> Result<GateReport, RunFailure> {
        let repo = &item.selected.repo;
        let facts = blocking(|| worktree.run_change_facts())
            .map_err(|e| RunFailure::new(Reason::WorkspaceError, e.to_string()))?;
        let changed: Vec<PathBuf> = facts
            .tracked()
            .filter(|p| worktree.path().join(&p.path).exists())
            .map(|p| PathBuf::from(&p.path))
            .collect();
        let repo_facts = issueloop_gates::RepoFacts::scan(worktree.path())
            .map_err(|e| RunFailure::new(Reason::GatesFailed, e.to_string()))?;
        let explicit = self.config.gates.repos.get(repo).map(Vec::as_slice);
        let selected = issueloop_gates::select(&repo_facts, &changed, explicit);
        let allowlist = self.config.policy.for_repo(Some(repo)).allowlist;
        let planned = issueloop_gates::plan(&selected, &repo_facts, &allowlist);
        let mut options = issueloop_gates::RunOptions::new(&self.config.gates, self.env.clone());
        if let Some(c) = &state.containment {
            options.env = c.env.clone();
            options.sandbox = c.gates.clone();
        }
        let report = issueloop_gates::run_gates(worktree.path(), &planned, &options)
            .await
            .map_err(|e| RunFailure::new(Reason::GatesFailed, e.to_string()))?;
        state.gate_rows.clear();
        for r in &report.results {
            tracing::info!(gate = %r.command, status = r.status.as_str(), "gate finished");
            self.journal(
                &item.run_id,
                Event::GateFinished {
                    repo: repo.full(),
                    argv: r.argv.clone(),
                    status: r.status.as_str().to_owned(),
                    exit_code: r.exit_code,
                    duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                    detail: match (&r.reason, r.left_files.is_empty()) {
                        (Some(reason), _) => serde_json::json!({ "reason": reason }),
                        (None, false) => serde_json::json!({ "left_files": r.left_files }),
                        (None, true) => serde_json::Value::Null,
                    },
                },
            );
            state.gate_rows.push(GateRow {
                repo: None,
                name: r.command.clone(),
                status: r.status.as_str().to_owned(),
                duration: r.duration,
                exit_code: r.exit_code,
                excerpt: (r.status != GateStatus::Passed).then(|| r.output.clone()),
            });
        }
        Ok(report)
    }

    /// Settle the money, tell the issue, give the claim back, close the journal.
    async fn finish(
        &self,
        item: &Reserved,
        state: &mut RunState,
        result: Result<Published, RunFailure>,
    ) -> Finished {
        let repo = &item.selected.repo;
        let number = item.selected.number;
        // The outcome is decided: no more renewals (the lease still covers the release).
        state.heartbeat = None;
        crate::failpoint::hit(&self.env, "before_finish");
        let mut row = RunSummary {
            repo: repo.full(),
            issue: number,
            title: item.facts.issue.title.clone(),
            status: RunStatus::PrOpened,
            reason: None,
            detail: None,
            budget_usd: item.budget.cost_usd,
            cost_usd: state.spent,
            pr: None,
            budget_explanation: Some(item.explanation.clone()),
        };
        let journal_status;
        match result {
            Ok(pr) => {
                journal_status = (JournalStatus::Succeeded, None);
                row.pr = Some(pr.url.clone());
                let comment = issueloop_publish::outcome_comment(&CommentInput {
                    issue_number: number,
                    run_id: item.run_id.to_string(),
                    outcome: RunOutcome::Published {
                        pr_number: pr.number,
                        pr_url: pr.url,
                        draft: pr.draft,
                        updated: pr.updated,
                        budget: Some(self.budget_summary(item, state)),
                    },
                });
                self.tell_issue(
                    item,
                    &comment,
                    std::slice::from_ref(&self.config.labels.pr_opened),
                )
                .await;
                self.release_claim(state, Release::KeepBranch).await;
            }
            Err(failure) => {
                tracing::warn!(
                    reason = failure.reason.id(),
                    "run ended without a PR: {}",
                    failure.detail
                );
                row.status = if failure.reason.is_skip() {
                    RunStatus::Skipped
                } else {
                    RunStatus::Failed
                };
                row.reason = Some(failure.reason.id().to_owned());
                row.detail = Some(failure.detail.clone());
                journal_status = (
                    if failure.reason.is_skip() {
                        JournalStatus::Skipped
                    } else {
                        JournalStatus::Failed
                    },
                    Some(failure.reason.id().to_owned()),
                );
                if failure.reason.notifies_issue() {
                    let comment = issueloop_publish::outcome_comment(&CommentInput {
                        issue_number: number,
                        run_id: item.run_id.to_string(),
                        outcome: RunOutcome::Failed(Failure {
                            reason_id: failure.reason.id().to_owned(),
                            reason: failure.detail.clone(),
                            gates: state.gate_rows.clone(),
                            policy: state.verdict.as_ref().filter(|v| !v.is_clean()).map(|v| {
                                PolicyVerdict {
                                    ok: false,
                                    violations: v
                                        .violations
                                        .iter()
                                        .map(|x| format!("{} (fix: {})", x.message, x.fix))
                                        .collect(),
                                }
                            }),
                            budget: Some(self.budget_summary(item, state)),
                            failed_label: self.config.labels.failed.clone(),
                            claim_label: self.config.labels.in_progress.clone(),
                        }),
                    });
                    self.tell_issue(
                        item,
                        &comment,
                        std::slice::from_ref(&self.config.labels.failed),
                    )
                    .await;
                }
                if failure.reason == Reason::LeaseLost {
                    // Another run holds the issue now: its claim is not ours to release.
                    state.claim = None;
                }
                self.release_claim(state, Release::DeleteBranch).await;
            }
        }
        crate::failpoint::hit(&self.env, "before_settle");
        // The money: the actual cost replaces the reservation; no agent, no charge.
        let now = Timestamp::now();
        let ledger_result = if state.agent_started {
            self.store
                .settle(&item.run_id, Usd::from_dollars(state.spent), now)
                .map(|s| {
                    if s.overspent {
                        tracing::warn!("the run cost more than its reservation (recorded as is)");
                    }
                })
        } else {
            self.store.release(&item.run_id, now)
        };
        let state_error = ledger_result.err().map(|e| {
            tracing::error!(
                "cannot settle the ledger (the reservation will expire and be charged in full): {e}"
            );
            format!(
                "{repo}#{number}: cannot settle the ledger (the reservation will expire and be charged in full): {e}"
            )
        });
        self.journal(
            &item.run_id,
            Event::RunFinished {
                status: journal_status.0,
                reason: journal_status.1,
            },
        );
        tracing::info!(
            status = row.status.as_str(),
            cost = state.spent,
            "run finished"
        );
        Finished { row, state_error }
    }

    /// The outcome comment (created or updated, never duplicated) and labels. Failures here are
    /// logged: the run's result stands, and the journal holds it.
    async fn tell_issue(&self, item: &Reserved, comment: &str, labels: &[String]) {
        let repo = &item.selected.repo;
        let number = item.selected.number;
        let marker = issueloop_publish::comment_marker(number);
        if let Err(e) = self
            .forge
            .upsert_comment(repo, number, &marker, comment)
            .await
        {
            tracing::error!("cannot comment on the issue: {e}");
        }
        if let Err(e) = self.forge.add_labels(repo, number, labels).await {
            tracing::error!("cannot label the issue: {e}");
        }
    }

    async fn release_claim(&self, state: &mut RunState, release: Release) {
        let Some(claim) = state.claim.take() else {
            return;
        };
        match self.forge.release(&claim, release).await {
            Ok(()) => {}
            Err(e) => tracing::error!(
                "cannot release the claim (another runner may take it once its lease expires): {e}"
            ),
        }
    }

    fn budget_summary(&self, item: &Reserved, state: &RunState) -> BudgetSummary {
        BudgetSummary {
            budget_usd: item.budget.cost_usd,
            cost_usd: state.spent,
            cost_source: state.cost_source.clone(),
            explanation: Some(item.explanation.clone()),
        }
    }

    fn journal(&self, run_id: &RunId, event: Event) {
        if let Err(e) = self.store.append(run_id, Timestamp::now(), &event) {
            tracing::error!(run = %run_id, "cannot write to the journal: {e}");
        }
    }
}

/// Run blocking work (libgit2: fetches, checkouts, commits, pushes) without stalling the async
/// workers that supervise agents and serve metrics.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The commit where the worktree's start left `base` (the default branch's head).
fn fork_point(worktree: &Worktree, base: &str) -> Result<String, git2::Error> {
    let repo = worktree
        .repository()
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let start = git2::Oid::from_str(&worktree.start_commit())?;
    let base = git2::Oid::from_str(base)?;
    Ok(repo.merge_base(start, base)?.to_string())
}

/// Fails the run when its lease no longer holds.
fn lease_check(state: &RunState) -> Result<(), RunFailure> {
    match &state.heartbeat {
        Some(heartbeat) => heartbeat.check(),
        None => Ok(()),
    }
}

fn forge_failure(e: issueloop_forge::ForgeError) -> RunFailure {
    RunFailure::new(Reason::ForgeError, e.to_string())
}

/// Files, insertions and deletions of the branch's change: from where its tip left `base` (the
/// default branch's head) to its tip, as `git diff --stat` counts them.
fn committed_diff_stat(worktree: &Worktree, base: &str) -> Result<DiffStat, git2::Error> {
    let repo = worktree
        .repository()
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let tip = repo.find_commit(git2::Oid::from_str(&worktree.tip_commit())?)?;
    let fork = repo.merge_base(tip.id(), git2::Oid::from_str(base)?)?;
    let diff = repo.diff_tree_to_tree(
        Some(&repo.find_commit(fork)?.tree()?),
        Some(&tip.tree()?),
        None,
    )?;
    let mut per_file = Vec::new();
    for i in 0..diff.deltas().len() {
        let Some(patch) = git2::Patch::from_diff(&diff, i)? else {
            continue;
        };
        let (_, insertions, deletions) = patch.line_stats()?;
        let delta = patch.delta();
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        per_file.push(FileStat {
            repo: None,
            path,
            insertions: insertions as u64,
            deletions: deletions as u64,
        });
    }
    Ok(DiffStat {
        files: per_file.len() as u64,
        insertions: per_file.iter().map(|f| f.insertions).sum(),
        deletions: per_file.iter().map(|f| f.deletions).sum(),
        per_file,
    })
}

/// A diff stat from the change facts alone (added lines; no deletions known).
fn diff_stat(facts: &issueloop_policy::ChangeFacts) -> DiffStat {
    let per_file: Vec<FileStat> = facts
        .tracked()
        .map(|p| FileStat {
            repo: None,
            path: p.path.clone(),
            insertions: p.added.lines.len() as u64,
            deletions: 0,
        })
        .collect();
    DiffStat {
        files: per_file.len() as u64,
        insertions: per_file.iter().map(|f| f.insertions).sum(),
        deletions: 0,
        per_file,
    }
}

fn diff_stat_text(facts: &issueloop_policy::ChangeFacts) -> String {
    facts
        .tracked()
        .map(|p| format!("{:?} {}", p.kind, p.path))
        .collect::<Vec<_>>()
        .join("\n")
}
