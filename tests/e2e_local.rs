//! The loop end to end through the real binary against the local forge, with a scripted agent:
//! one draft PR for a good change, `loop:failed` and no push for a policy violation, two repair
//! attempts before `gates_failed`, the daily cap skipping later issues, and a dry run that
//! writes nothing.

mod support;

use support::snap::{run_once_with_summary, runs_show, settings};
use support::{Knobs, MAINTAINER, World, run_of};

#[test]
fn a_good_change_yields_exactly_one_draft_pr_and_a_settled_ledger() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue(
        "Add feature",
        "scenario: good\ncost: 0.40\n\n## Acceptance\n- [ ] feature() returns 42",
        MAINTAINER,
    );
    let (code, report, stderr, summary) = run_once_with_summary(&w, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "pr_opened", "{report:#}\n{stderr}");
    assert_eq!(run["cost_usd"], 0.4);
    assert_eq!(run["budget_usd"], 1.0);

    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    settings(&w).bind(|| {
        // The PR record: draft, `Closes #1`, the hidden marker, the body as a reviewer reads it.
        insta::assert_snapshot!("e2e_local__good_change_pr", pulls[0]);
        // The issue with its labels and the outcome comment.
        insta::assert_snapshot!("e2e_local__good_change_issue", w.issue_text(n));
        insta::assert_snapshot!("e2e_local__good_change_job_summary", summary);
    });
    let labels = w.labels(n);
    assert!(labels.contains(&"loop:pr-opened".to_owned()), "{labels:?}");
    assert!(
        !labels.contains(&"loop:in-progress".to_owned()),
        "claim released: {labels:?}"
    );
    assert!(
        w.issue_text(n)
            .contains("<!-- issueloop:comment issue=1 -->")
    );

    let branch = "loop/1-add-feature";
    assert_eq!(w.remote_branches(), [branch]);
    assert_eq!(w.commits_ahead(branch), 1);

    let entries = w.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(format!("{:?}", entries[0].state).to_lowercase(), "settled");
    let journal = w.journal();
    assert_eq!(journal.len(), 1);
    let (_, events, status) = &journal[0];
    for e in [
        "run_started",
        "budget_decided",
        "claim_acquired",
        "stage_started",
        "backend_finished",
        "gate_finished",
        "policy_decided",
        "pr_opened",
        "run_finished",
    ] {
        assert!(
            events.iter().any(|x| x == e),
            "journal lacks {e}: {events:?}"
        );
    }
    assert_eq!(status.id(), "succeeded");
    assert!(w.worktrees_left().is_empty(), "{:?}", w.worktrees_left());
    let shown = runs_show(&w, &journal[0].0);
    settings(&w).bind(|| insta::assert_snapshot!("e2e_local__good_change_runs_show", shown));

    // A second tick converges: no second PR, no second run.
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(w.pulls().len(), 1);
    assert_ne!(run_of(&report, n)["status"], "pr_opened");
    assert_eq!(w.agent_calls().len(), 1);
}

#[test]
fn a_policy_violation_fails_the_issue_without_a_push() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Touch CI", "scenario: denied", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(
        code,
        Some(0),
        "a policy failure is a designed outcome: {stderr}"
    );
    let run = run_of(&report, n);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["reason"], "policy_violation");
    assert!(w.pulls().is_empty());
    assert!(
        w.remote_branches().is_empty(),
        "nothing pushed, claim branch deleted: {:?}",
        w.remote_branches()
    );
    let labels = w.labels(n);
    assert!(labels.contains(&"loop:failed".to_owned()), "{labels:?}");
    assert!(!labels.contains(&"loop:in-progress".to_owned()));
    // The outcome comment names the reason and the violation.
    settings(&w)
        .bind(|| insta::assert_snapshot!("e2e_local__policy_violation_issue", w.issue_text(n)));
    assert_eq!(
        w.agent_calls(),
        ["execute denied"],
        "no gate or repair was paid for"
    );
    assert_eq!(w.journal()[0].2.id(), "failed");
}

#[test]
fn a_secret_in_the_change_is_refused_and_never_repeated() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Add settings", "scenario: secret", MAINTAINER);
    let (_, report, _) = w.run_once(&[]);
    assert_eq!(run_of(&report, n)["reason"], "policy_violation");
    let text = w.issue_text(n);
    assert!(text.contains("app/settings.py"));
    assert!(
        !text.contains("AKIAABCDEFGHIJKLMNOP"),
        "the secret is never repeated: {text}"
    );
}

#[test]
fn gates_that_keep_failing_fail_after_two_repair_attempts() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Broken", "scenario: failing\ncost: 0.10", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "failed", "{report:#}");
    assert_eq!(run["reason"], "gates_failed");
    assert_eq!(
        w.agent_calls(),
        ["execute failing", "reflect failing", "reflect failing"],
        "one execute and two reflect attempts"
    );
    assert!(
        (run["cost_usd"].as_f64().unwrap() - 0.30).abs() < 1e-9,
        "{run}"
    );
    assert!(w.labels(n).contains(&"loop:failed".to_owned()));
    assert!(w.pulls().is_empty());
    assert!(w.issue_text(n).contains("gates_failed"));
    let (_, events, _) = &w.journal()[0];
    assert_eq!(events.iter().filter(|e| *e == "stage_started").count(), 3);
}

#[test]
fn the_daily_cap_makes_later_issues_skip() {
    let mut w = World::new(Knobs {
        daily_cap: 2.0,
        run_cost: 1.0,
        max_concurrent_runs: 3,
        ..Knobs::default()
    });
    let a = w.add_issue("First", "scenario: good\ncost: 1.0", MAINTAINER);
    let b = w.add_issue("Second", "scenario: good\ncost: 1.0", MAINTAINER);
    let c = w.add_issue("Third", "scenario: good\ncost: 1.0", MAINTAINER);
    let (code, report, stderr, summary) = run_once_with_summary(&w, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    settings(&w).bind(|| insta::assert_snapshot!("e2e_local__daily_cap_job_summary", summary));
    assert_eq!(run_of(&report, a)["status"], "pr_opened", "{report:#}");
    assert_eq!(run_of(&report, b)["status"], "pr_opened");
    assert_eq!(run_of(&report, c)["status"], "skipped");
    assert_eq!(run_of(&report, c)["reason"], "daily_cap_reached");
    assert_eq!(report["ledger"]["spent_usd"], 2.0);
    assert_eq!(report["ledger"]["remaining_usd"], 0.0);
    assert_eq!(w.agent_calls().len(), 2);
}

#[test]
fn an_untrusted_label_is_never_acted_on() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("From a stranger", "scenario: good", "mallory");
    let (code, report, _) = w.run_once(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(run_of(&report, n)["status"], "skipped");
    assert_eq!(run_of(&report, n)["reason"], "untrusted_label");
    assert!(w.agent_calls().is_empty());
    assert!(w.entries().is_empty(), "no money reserved");
}

#[test]
fn a_dry_run_writes_nothing() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let before = w.issue_text(n);
    let out = w
        .command()
        .args(["run", "--once", "--dry-run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("would reserve $1.00"), "{stdout}");
    assert_eq!(w.issue_text(n), before, "no label, no comment");
    assert!(w.pulls().is_empty());
    assert!(w.remote_branches().is_empty());
    assert!(!w.state_exists(), "no ledger or journal written");
    assert!(w.agent_calls().is_empty(), "no agent ran");
    assert!(!w.root().join("cache").exists() || w.worktrees_left().is_empty());
}

#[test]
fn the_github_token_never_reaches_the_agent_or_the_forge_files() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let token = "ghp_E2eSecretTokenThatMustNotLeak0123456789";
    let out = w
        .command()
        .env("GITHUB_TOKEN", token)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let all_output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all_output.contains(token));
    assert!(!w.issue_text(n).contains(token));
    for pr in w.pulls() {
        assert!(!pr.contains(token));
    }
}

#[test]
fn a_run_over_its_budget_never_opens_a_pr() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Expensive", "scenario: good\ncost: 1.50", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "failed", "{report:#}");
    assert_eq!(run["reason"], "budget_exhausted");
    assert!(w.pulls().is_empty());
    assert!(w.remote_branches().is_empty());
    // The overshoot of the one event that passed the budget is recorded as it is.
    assert_eq!(run["cost_usd"], 1.5);
    assert!(w.labels(n).contains(&"loop:failed".to_owned()));
}

#[test]
fn run_refuses_to_start_when_a_backend_is_missing() {
    let mut w = World::new(Knobs::default());
    w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let config = std::fs::read_to_string(&w.config).unwrap().replace(
        "[runtime_profile]\ndefault = \"command\"",
        "[runtime_profile]\ndefault = \"command\"\n\n[runtime_profile.stages]\nexecute = \"codex\"\n\n[backends.codex]\nbinary = \"issueloop-no-such-agent\"\nmodel = \"gpt-5\"",
    );
    std::fs::write(&w.config, config).unwrap();
    let doctor = w.command().arg("doctor").output().unwrap();
    assert_eq!(doctor.status.code(), Some(1));
    let out = w.command().args(["run", "--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("issueloop-no-such-agent"), "{stderr}");
    assert!(!w.state_exists(), "nothing taken before refusing");
    assert!(w.labels(1) == ["loop:approved"]);
}

#[test]
fn the_pr_body_counts_insertions_and_deletions_like_git() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("Simplify the base test", "scenario: shrink", MAINTAINER);
    let (_, report, stderr) = w.run_once(&[]);
    assert_eq!(
        run_of(&report, n)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    let pulls = w.pulls();
    assert!(
        pulls[0].contains("**1 file changed**, +1 −1"),
        "{}",
        pulls[0]
    );
}
