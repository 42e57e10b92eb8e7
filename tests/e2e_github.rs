//! The loop end to end through the real binary against a fake GitHub in the test process (GitHub's
//! own payloads, every request checked against GitHub's schema), with the scripted agent: one draft
//! PR for a good change and a second tick that converges, `loop:failed` with no PR and no push for
//! a policy violation, and a dry run that only reads. The token never appears in what the binary
//! prints.

mod support;

use support::github::{GithubWorld, assert_token_absent, printed};
use support::snap::{run_with_summary, settings};
use support::{Knobs, MAINTAINER, REPO, run_of};

const JOURNAL_OF_A_PUBLISHED_RUN: &[&str] = &[
    "run_started",
    "budget_decided",
    "claim_acquired",
    "stage_started",
    "backend_finished",
    "gate_finished",
    "policy_decided",
    "pr_opened",
    "run_finished",
];

#[test]
fn a_maintainers_issue_yields_one_draft_pr_and_a_second_tick_converges() {
    let g = GithubWorld::new(Knobs::default());
    let n = g.approved_issue(
        "Add feature",
        "scenario: good\ncost: 0.40\n\n## Acceptance\n- [ ] feature() returns 42\n",
        MAINTAINER,
    );
    let (code, report, out) = g.run_once(&[]);
    assert_eq!(code, Some(0), "{out}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "pr_opened", "{report:#}\n{out}");
    assert_eq!(run["cost_usd"], 0.4);

    let branch = format!("loop/{n}-add-feature");
    let pulls = g.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    let pr = &pulls[0];
    assert!(pr.draft, "{pr:#?}");
    assert!(pr.open);
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str()),
        (branch.as_str(), "main")
    );
    // The body: `Closes #N`, the hidden marker, the section a reviewer reads.
    settings(&g.world).bind(|| insta::assert_snapshot!("e2e_github__good_change_pr_body", pr.body));
    assert_eq!(
        run["pr"]
            .as_str()
            .map(|u| u.ends_with(&format!("/{}", pr.number))),
        Some(true),
        "{run}"
    );

    let labels = g.labels(n);
    assert!(labels.contains(&"loop:pr-opened".to_owned()), "{labels:?}");
    assert!(
        !labels.contains(&"loop:in-progress".to_owned()),
        "claim released: {labels:?}"
    );
    let comments = g.fake.comments(REPO, n);
    assert_eq!(comments.len(), 1, "one outcome comment: {comments:#?}");
    settings(&g.world).bind(|| {
        insta::assert_snapshot!("e2e_github__good_change_comment", comments[0].body);
    });

    let w = &g.world;
    assert_eq!(w.remote_branches(), std::slice::from_ref(&branch));
    assert_eq!(w.commits_ahead(&branch), 1);
    assert_eq!(
        support::lease::pushed_commit_objects(w),
        2,
        "main's commit and the run's (lease commits aside)"
    );
    let entries = w.entries();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].state.id(), "settled");
    let journal = w.journal();
    assert_eq!(journal.len(), 1, "{journal:#?}");
    let (_, events, status) = &journal[0];
    for e in JOURNAL_OF_A_PUBLISHED_RUN {
        assert!(
            events.iter().any(|x| x == e),
            "journal lacks {e}: {events:?}"
        );
    }
    assert_eq!(events.last().map(String::as_str), Some("run_finished"));
    assert_eq!(status.id(), "succeeded");
    for text in g
        .fake
        .pulls(REPO)
        .iter()
        .map(|p| &p.body)
        .chain(comments.iter().map(|c| &c.body))
    {
        assert_token_absent(text);
    }
    assert!(w.worktrees_left().is_empty(), "{:?}", w.worktrees_left());
    assert_eq!(g.fake.count("pulls/create"), 1);

    // The next tick sees the open PR and the label: nothing runs, nothing is written twice.
    let (code, report, out) = g.run_once(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert_ne!(run_of(&report, n)["status"], "pr_opened", "{report:#}");
    assert_eq!(g.fake.pulls(REPO).len(), 1);
    assert_eq!(g.fake.count("pulls/create"), 1);
    assert_eq!(g.fake.comments(REPO, n).len(), 1);
    assert_eq!(w.agent_calls().len(), 1, "the agent ran once");
    assert_eq!(w.entries().len(), 1, "nothing reserved the second time");
    g.fake.assert_no_unexpected();
}

#[test]
fn a_policy_violation_fails_the_issue_with_a_comment_and_pushes_nothing() {
    let g = GithubWorld::new(Knobs::default());
    let n = g.approved_issue("Touch CI", "scenario: denied\n", MAINTAINER);
    let (code, report, out) = g.run_once(&[]);
    assert_eq!(
        code,
        Some(0),
        "a policy failure is a designed outcome: {out}"
    );
    let run = run_of(&report, n);
    assert_eq!(run["status"], "failed", "{report:#}");
    assert_eq!(run["reason"], "policy_violation");

    assert!(g.fake.pulls(REPO).is_empty());
    assert_eq!(g.fake.count("pulls/create"), 0, "no PR was asked for");
    let labels = g.labels(n);
    assert!(labels.contains(&"loop:failed".to_owned()), "{labels:?}");
    assert!(
        !labels.contains(&"loop:in-progress".to_owned()),
        "{labels:?}"
    );
    let comments = g.fake.comments(REPO, n);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    // The outcome comment names the reason and the violation.
    settings(&g.world).bind(|| {
        insta::assert_snapshot!("e2e_github__policy_violation_comment", comments[0].body);
    });

    // The claim's branch was made at main's head through the API and deleted on release; no
    // commit ever reached the remote.
    let w = &g.world;
    assert!(w.remote_branches().is_empty(), "{:?}", w.remote_branches());
    assert!(
        g.fake
            .ref_sha(REPO, &format!("refs/heads/loop/{n}-touch-ci"))
            .is_none()
    );
    assert_eq!(
        support::lease::pushed_commit_objects(w),
        1,
        "the remote holds only main's commit (lease commits aside): nothing was ever pushed"
    );
    assert_eq!(w.agent_calls(), ["execute denied"]);
    assert_eq!(w.entries()[0].state.id(), "settled");
    assert_eq!(w.journal()[0].2.id(), "failed");
    assert!(w.worktrees_left().is_empty());
    g.fake.assert_no_unexpected();
}

#[test]
fn failing_gates_get_two_repairs_and_the_daily_cap_skips_the_last_issue() {
    let g = GithubWorld::new(Knobs {
        daily_cap: 2.0,
        run_cost: 1.0,
        max_concurrent_runs: 3,
        ..Knobs::default()
    });
    let broken = g.approved_issue("Broken", "scenario: failing\ncost: 0.10\n", MAINTAINER);
    let good = g.approved_issue("Add feature", "scenario: good\n", MAINTAINER);
    let late = g.approved_issue("Later", "scenario: good\n", MAINTAINER);
    let (code, report, out, summary) = run_with_summary(&g.world, g.command(), &[]);
    assert_eq!(code, Some(0), "{out}");
    for printed in [&out, &report.to_string(), &summary] {
        assert_token_absent(printed);
    }
    // A PR, a failure and a skip in one job summary.
    settings(&g.world)
        .bind(|| insta::assert_snapshot!("e2e_github__pr_failure_skip_job_summary", summary));

    let run = run_of(&report, broken);
    assert_eq!(
        (&run["status"], &run["reason"]),
        (&"failed".into(), &"gates_failed".into()),
        "{report:#}"
    );
    let mut calls = g.world.agent_calls();
    calls.sort();
    assert_eq!(
        calls,
        [
            "execute failing",
            "execute good",
            "reflect failing",
            "reflect failing"
        ],
        "one execute and two repairs for the broken issue"
    );
    assert!(g.labels(broken).contains(&"loop:failed".to_owned()));
    let comments = g.fake.comments(REPO, broken);
    assert_eq!(comments.len(), 1);
    // The gate's output is Python's (its traceback format changes between versions).
    assert!(
        comments[0].body.contains("AssertionError: 1 != 2"),
        "{}",
        comments[0].body
    );
    let mut s = settings(&g.world);
    s.add_filter(r"(?s)```text\n.*?\n```", "```text\n[GATE OUTPUT]\n```");
    s.bind(|| insta::assert_snapshot!("e2e_github__gates_failed_comment", comments[0].body));

    assert_eq!(run_of(&report, good)["status"], "pr_opened", "{report:#}");
    let skipped = run_of(&report, late);
    assert_eq!(
        (&skipped["status"], &skipped["reason"]),
        (&"skipped".into(), &"daily_cap_reached".into())
    );
    assert!(
        g.fake.comments(REPO, late).is_empty(),
        "a skip writes nothing to the issue"
    );
    assert_eq!(g.labels(late), ["loop:approved"]);

    let pulls = g.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0].head, format!("loop/{good}-add-feature"));
    let states: Vec<&str> = g.world.entries().iter().map(|e| e.state.id()).collect();
    assert_eq!(states, ["settled", "settled"]);
    g.fake.assert_no_unexpected();
}

#[test]
fn a_dry_run_only_reads_from_github_and_creates_no_ledger() {
    let g = GithubWorld::new(Knobs::default());
    let n = g.approved_issue("Add feature", "scenario: good\n", MAINTAINER);
    let out = g
        .command()
        .args(["run", "--once", "--dry-run"])
        .output()
        .unwrap();
    let text = printed(&out);
    assert_token_absent(&text);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("would reserve $1.00"), "{text}");

    let requests = g.fake.requests();
    assert!(!requests.is_empty(), "the dry run read the issues");
    let writes = g.writes();
    assert!(
        writes.is_empty(),
        "a dry run only reads: {:#?}",
        writes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:#?}");
    assert!(!g.world.state_exists(), "no ledger or journal file");
    assert_eq!(g.labels(n), ["loop:approved"]);
    assert!(g.fake.comments(REPO, n).is_empty());
    assert!(g.world.agent_calls().is_empty());
    assert!(g.world.remote_branches().is_empty());
    g.fake.assert_no_unexpected();
}
