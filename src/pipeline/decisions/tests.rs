//! Table tests of the run's decisions.

use std::time::Duration;

use issueloop_triage::{ClaimFacts, Issue, PrRef};

use super::*;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_dead_runs_claim_is_stale_at_once() {
    let hour = Duration::from_secs(3600);
    assert_eq!(claim_stale_after(true, hour), Duration::ZERO);
    assert_eq!(claim_stale_after(false, hour), hour);
}

#[test]
fn held_by_dead_run_table() {
    let lease = LeaseFacts {
        holder: "run-1".into(),
        expires: Timestamp::UNIX_EPOCH,
        ttl: SEC,
    };
    let table = [
        (Some(&lease), Some("run-1"), true),
        (Some(&lease), Some("run-2"), false),
        (Some(&lease), None, false),
        (None, Some("run-1"), false),
        (None, None, false),
    ];
    for (lease, dead, expected) in table {
        assert_eq!(
            held_by_dead_run(lease, dead),
            expected,
            "{lease:?} {dead:?}"
        );
    }
}

#[test]
fn may_start_stage_table() {
    let lost = RunFailure::new(Reason::LeaseLost, "taken over");
    let facts = |stopping, lease: &Result<(), RunFailure>, remaining, time_left| StageFacts {
        stopping,
        lease: lease.clone(),
        remaining_usd: Usd::from_dollars(remaining),
        time_left,
    };
    let held = Ok(());
    let gone = Err(lost.clone());
    let table = [
        (facts(false, &held, 1.0, SEC), None),
        (facts(true, &held, 1.0, SEC), Some(Reason::ShuttingDown)),
        // Stopping wins over everything else; the lease over money and time.
        (
            facts(true, &gone, 0.0, Duration::ZERO),
            Some(Reason::ShuttingDown),
        ),
        (
            facts(false, &gone, 0.0, Duration::ZERO),
            Some(Reason::LeaseLost),
        ),
        (facts(false, &held, 0.0, SEC), Some(Reason::BudgetExhausted)),
        (
            facts(false, &held, -0.5, SEC),
            Some(Reason::BudgetExhausted),
        ),
        (
            facts(false, &held, 0.0, Duration::ZERO),
            Some(Reason::BudgetExhausted),
        ),
        (
            facts(false, &held, 0.01, Duration::ZERO),
            Some(Reason::TimedOut),
        ),
    ];
    for (facts, expected) in table {
        let got = may_start_stage(Stage::Reflect, facts.clone());
        assert_eq!(got.as_ref().err().map(|f| f.reason), expected, "{facts:?}");
    }
    assert_eq!(
        may_start_stage(Stage::Execute, facts(false, &held, 0.0, SEC))
            .unwrap_err()
            .detail,
        "no budget left for stage `execute`"
    );
    assert_eq!(
        may_start_stage(Stage::Execute, facts(false, &gone, 1.0, SEC)).unwrap_err(),
        lost
    );
}

#[test]
fn the_repair_rule() {
    use Repair::{Attempt, Stop};
    use StopRepair::{AttemptsUsed, BudgetTooLow, OutOfTime};
    let limits = RepairLimits {
        attempts: 2,
        min_useful_usd: Usd::from_dollars(0.25),
    };
    let table = [
        (0, 1.0, SEC, Attempt(1)),
        (1, 1.0, SEC, Attempt(2)),
        (2, 1.0, SEC, Stop(AttemptsUsed)),
        (3, 1.0, SEC, Stop(AttemptsUsed)),
        // Exactly the minimum is still useful; a cent less is not.
        (0, 0.25, SEC, Attempt(1)),
        (0, 0.24, SEC, Stop(BudgetTooLow)),
        (1, 0.0, SEC, Stop(BudgetTooLow)),
        (0, 1.0, Duration::ZERO, Stop(OutOfTime)),
        // Checked in order: attempts, then money, then time.
        (2, 0.0, Duration::ZERO, Stop(AttemptsUsed)),
        (0, 0.0, Duration::ZERO, Stop(BudgetTooLow)),
    ];
    for (attempt, remaining, time_left, expected) in table {
        assert_eq!(
            may_repair(attempt, limits, Usd::from_dollars(remaining), time_left),
            expected,
            "attempt {attempt}, ${remaining}, {time_left:?}"
        );
    }
    let none = RepairLimits {
        attempts: 0,
        min_useful_usd: Usd::ZERO,
    };
    assert_eq!(
        may_repair(0, none, Usd::from_dollars(5.0), SEC),
        Stop(AttemptsUsed)
    );
}

#[test]
fn gates_still_failing_says_how_many_repairs() {
    let f = gates_still_failing(1, &["cargo test"]);
    assert_eq!(f.reason, Reason::GatesFailed);
    assert_eq!(
        f.detail,
        "gates still failing after 1 repair attempt: cargo test"
    );
    assert_eq!(
        gates_still_failing(2, &["a", "b"]).detail,
        "gates still failing after 2 repair attempts: a, b"
    );
}

#[test]
fn a_silent_repair_keeps_the_summary() {
    assert!(replaces_summary("Fixed the failing test."));
    assert!(!replaces_summary(""));
    assert!(!replaces_summary(" \n\t"));
}

#[test]
fn a_trust_comment_is_written_only_when_its_words_changed() {
    assert!(comment_is_new(None, "abc"));
    assert!(comment_is_new(Some("old"), "abc"));
    assert!(!comment_is_new(Some("abc"), "abc"));
}

#[test]
fn carried_over_base_table() {
    let table = [
        (true, Some("fork"), "start", Some("fork")),
        (true, Some("start"), "start", None),
        (false, Some("fork"), "start", None),
        (false, None, "start", None),
        (true, None, "start", None),
    ];
    for (continued, fork, start, expected) in table {
        assert_eq!(
            carried_over_base(continued, fork, start),
            expected,
            "{continued} {fork:?}"
        );
    }
}

#[test]
fn commit_and_push_outcomes() {
    assert_eq!(
        commit_failure(&CommitOutcome::Committed {
            id: "b".into(),
            parent: "a".into()
        }),
        None
    );
    assert_eq!(
        commit_failure(&CommitOutcome::NothingToCommit).map(|f| f.reason),
        Some(Reason::NoChanges)
    );
    let table = [
        (PushOutcome::Created { commit: "a".into() }, None),
        (
            PushOutcome::FastForwarded {
                from: "a".into(),
                to: "b".into(),
            },
            None,
        ),
        (PushOutcome::UpToDate { commit: "a".into() }, None),
        (
            PushOutcome::Diverged {
                remote: "r".into(),
                local: "l".into(),
            },
            Some(Reason::PushDiverged),
        ),
        (
            PushOutcome::Rejected {
                reason: "protected".into(),
            },
            Some(Reason::PushDiverged),
        ),
    ];
    for (outcome, expected) in table {
        assert_eq!(
            push_failure(&outcome, "loop/1-x").map(|f| f.reason),
            expected,
            "{outcome:?}"
        );
    }
    assert_eq!(
        push_failure(
            &PushOutcome::Diverged {
                remote: "r".into(),
                local: "l".into()
            },
            "loop/1-x"
        )
        .unwrap()
        .detail,
        "branch `loop/1-x` has commits this run does not include (remote r, ours l); nothing was pushed"
    );
}

#[test]
fn a_refused_draft_is_not_a_forge_failure() {
    let repo: issueloop_config::RepoName = "acme/app".parse().expect("repo name");
    assert_eq!(
        forge_failure(ForgeError::DraftRefused { repo: repo.clone() }).reason,
        Reason::DraftRefused
    );
    assert_eq!(
        forge_failure(ForgeError::IssueNotFound { repo, issue: 1 }).reason,
        Reason::ForgeError
    );
}

#[test]
fn run_end_table() {
    let published = run_end(Ok(()));
    assert_eq!(
        published,
        RunEnd {
            status: RunStatus::PrOpened,
            journal: JournalStatus::Succeeded,
            reason: None,
            tells_issue: true,
            releases_claim: true,
            release: Release::KeepBranch,
        }
    );
    // (reason, report status, journal status, tells the issue, releases the claim)
    use JournalStatus as J;
    let table = [
        (
            Reason::GatesFailed,
            RunStatus::Failed,
            J::Failed,
            true,
            true,
        ),
        (
            Reason::PolicyViolation,
            RunStatus::Failed,
            J::Failed,
            true,
            true,
        ),
        (Reason::ForgeError, RunStatus::Failed, J::Failed, true, true),
        (
            Reason::AgentNotStarted,
            RunStatus::Failed,
            J::Failed,
            true,
            true,
        ),
        (Reason::Claimed, RunStatus::Skipped, J::Skipped, false, true),
        (
            Reason::ShuttingDown,
            RunStatus::Skipped,
            J::Skipped,
            false,
            true,
        ),
        // Another run holds the issue now: its claim is not ours to release.
        (
            Reason::LeaseLost,
            RunStatus::Skipped,
            J::Skipped,
            false,
            false,
        ),
    ];
    for (reason, status, journal, tells, releases) in table {
        let end = run_end(Err(reason));
        assert_eq!(
            (end.status, end.journal, end.tells_issue, end.releases_claim),
            (status, journal, tells, releases),
            "{reason}"
        );
        assert_eq!(end.reason, Some(reason));
        assert_eq!(end.release, Release::DeleteBranch, "{reason}");
    }
}

#[test]
fn no_agent_no_charge() {
    assert_eq!(settlement(true), Settlement::Settle);
    assert_eq!(settlement(false), Settlement::Release);
}

fn facts(claimed_at: Option<&str>) -> CandidateFacts {
    CandidateFacts {
        issue: Issue {
            repo: "acme/app".parse().expect("repo name"),
            number: 1,
            title: "Add feature".into(),
            body: String::new(),
            labels: vec!["loop:approved".into(), "loop:in-progress".into()],
            author: "bob".into(),
            created_at: "2025-01-01T00:00:00Z".parse().expect("timestamp"),
            updated_at: "2025-01-01T00:00:00Z".parse().expect("timestamp"),
        },
        label_events: Vec::new(),
        body_edits: Vec::new(),
        permissions: Default::default(),
        open_pr: None,
        claim: claimed_at.map(|at| ClaimFacts {
            at: at.parse().expect("timestamp"),
            by_us: false,
            lease: None,
        }),
    }
}

fn release_of(
    reason: SkipReason,
    facts: &CandidateFacts,
    now: Timestamp,
    dead: Option<&str>,
) -> Option<Release> {
    leftover_claim(
        reason,
        facts,
        Duration::from_secs(3600),
        now,
        dead,
        "loop:pr-opened",
    )
    .map(|l| l.release)
}

#[test]
fn only_stale_claims_on_finished_issues_are_released() {
    let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("timestamp");
    let stale = Some("2025-01-01T10:00:00Z");
    let live = Some("2025-01-01T11:30:00Z");
    let table = [
        (SkipReason::HasOpenPr, stale, Some(Release::KeepBranch)),
        (
            SkipReason::AlreadyPublished,
            stale,
            Some(Release::KeepBranch),
        ),
        (
            SkipReason::AlreadyFailed,
            stale,
            Some(Release::DeleteBranch),
        ),
        (SkipReason::HasOpenPr, live, None),
        (SkipReason::AlreadyFailed, live, None),
        (SkipReason::HasOpenPr, None, None),
        // Issues that may run again: a run that takes them takes the stale claim over.
        (SkipReason::Blocked, stale, None),
        (SkipReason::NotApproved, stale, None),
        (SkipReason::UntrustedLabel, stale, None),
        (SkipReason::NoFreeSlot, stale, None),
        (SkipReason::Claimed, stale, None),
    ];
    for (reason, claimed_at, expected) in table {
        assert_eq!(
            release_of(reason, &facts(claimed_at), now, None),
            expected,
            "{reason:?} claimed at {claimed_at:?}"
        );
    }
    // A renewed lease keeps an old claim, on a published issue too: its run still lives.
    let mut renewed = facts(stale);
    if let Some(claim) = &mut renewed.claim {
        claim.lease = Some(LeaseFacts {
            holder: "live-run".into(),
            expires: "2025-01-01T12:01:00Z".parse().expect("timestamp"),
            ttl: Duration::from_secs(180),
        });
    }
    assert_eq!(release_of(SkipReason::HasOpenPr, &renewed, now, None), None);
    // Unless its run is known dead on this host.
    assert_eq!(
        release_of(SkipReason::HasOpenPr, &renewed, now, Some("live-run")),
        Some(Release::KeepBranch)
    );
    // Its lease expired: released.
    if let Some(claim) = &mut renewed.claim
        && let Some(lease) = &mut claim.lease
    {
        lease.expires = "2025-01-01T11:00:00Z".parse().expect("timestamp");
    }
    assert_eq!(
        release_of(SkipReason::HasOpenPr, &renewed, now, None),
        Some(Release::KeepBranch)
    );
}

#[test]
fn a_published_issue_the_dead_run_never_labelled_is_told() {
    let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("timestamp");
    let pr = PrRef {
        number: 7,
        url: "https://example.invalid/pr/7".into(),
        branch: "loop/1-add-feature".into(),
        draft: true,
    };
    let tell = |open_pr: Option<&PrRef>, labels: &[&str]| {
        let mut f = facts(Some("2025-01-01T10:00:00Z"));
        f.open_pr = open_pr.cloned();
        f.issue.labels = labels.iter().map(|l| (*l).to_owned()).collect();
        leftover_claim(
            SkipReason::HasOpenPr,
            &f,
            Duration::from_secs(3600),
            now,
            None,
            "loop:pr-opened",
        )
        .map(|l| l.tell_published)
    };
    assert_eq!(tell(Some(&pr), &["loop:approved"]), Some(true));
    assert_eq!(
        tell(Some(&pr), &["loop:approved", "LOOP:PR-OPENED"]),
        Some(false)
    );
    assert_eq!(tell(None, &["loop:approved"]), Some(false));
}

#[test]
fn the_leftover_claim_released_is_the_dead_runs() {
    let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("timestamp");
    let mut f = facts(Some("2025-01-01T10:00:00Z"));
    let claim = leftover_claim_to_release(&f, "loop/1-add-feature".into(), now);
    assert_eq!(claim.branch, "loop/1-add-feature");
    assert_eq!(claim.at, f.claim.as_ref().map(|c| c.at).expect("claimed"));
    assert_eq!(claim.lease.holder, "");
    assert_eq!(claim.lease.expires, claim.at);
    // The open PR's branch, and the dead run's lease.
    f.open_pr = Some(PrRef {
        number: 7,
        url: String::new(),
        branch: "loop/1-renamed".into(),
        draft: true,
    });
    let lease = LeaseFacts {
        holder: "dead-run".into(),
        expires: now,
        ttl: SEC,
    };
    if let Some(c) = &mut f.claim {
        c.lease = Some(lease.clone());
    }
    let claim = leftover_claim_to_release(&f, "loop/1-add-feature".into(), now);
    assert_eq!(claim.branch, "loop/1-renamed");
    assert_eq!(claim.lease, lease);
    // No claim recorded at all: `now` stands in.
    f.claim = None;
    assert_eq!(leftover_claim_to_release(&f, String::new(), now).at, now);
}
