//! The daily cap holds across machines with `[state] backend = "github"`: two `run --once`
//! processes, each in a folder of its own (its own cache and local state file, as two Actions
//! jobs with no cache would be), against one fake GitHub whose repository is a real bare git
//! repository. The ledger lives on its `issueloop/state` branch, and replaying that branch is
//! all a runner knows of the other one's spend: one after the other (exactly two runs), and
//! both at once (never over the cap).

mod support;

use std::path::PathBuf;

use issueloop::ledger::Usd;
use support::github::GithubWorld;
use support::state_github::{
    finish, replayed_today, run_once_in, runner_folder, settled, spawn_run_once_in, spent,
    use_github_state,
};
use support::{Knobs, MAINTAINER, run_of};

/// The world of the two-runner tests: cap $1.00, four approved issues that each cost $0.50 (a
/// slot for every issue: only the cap decides which run), the ledger on the state branch, and
/// two runners' folders of their own.
fn two_runners_four_issues() -> (GithubWorld, Vec<u64>, PathBuf, PathBuf) {
    let g = GithubWorld::new(Knobs {
        daily_cap: 1.0,
        run_cost: 0.5,
        max_concurrent_runs: 4,
        ..Knobs::default()
    });
    use_github_state(&g);
    let issues: Vec<u64> = (1..=4)
        .map(|i| {
            g.approved_issue(
                &format!("Feature {i}"),
                "scenario: good\ncost: 0.50\n",
                MAINTAINER,
            )
        })
        .collect();
    let a = runner_folder(&g, "runner-a");
    let b = runner_folder(&g, "runner-b");
    (g, issues, a, b)
}

#[test]
fn two_runners_on_two_folders_share_one_daily_cap() {
    let (g, issues, a, b) = two_runners_four_issues();

    let (code_a, report_a, out_a) = run_once_in(&g, &a);
    assert_eq!(code_a, Some(0), "{out_a}");
    let (code_b, report_b, out_b) = run_once_in(&g, &b);
    assert_eq!(code_b, Some(0), "{out_b}");

    // Exactly two runs happened, between both runners.
    assert_eq!(g.world.agent_calls().len(), 2, "{out_a}\n{out_b}");
    let mut ran = Vec::new();
    for &n in &issues {
        let statuses = [&report_a, &report_b].map(|r| {
            run_of(r, n)["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        if statuses.iter().any(|s| s == "pr_opened") {
            ran.push(n);
            continue;
        }
        // Every other issue was skipped for the cap by both runners.
        for report in [&report_a, &report_b] {
            let run = run_of(report, n);
            assert_eq!(run["status"], "skipped", "{report:#}");
            assert_eq!(run["reason"], "daily_cap_reached", "{report:#}");
        }
    }
    assert_eq!(ran.len(), 2, "{report_a:#}\n{report_b:#}");
    assert_eq!(g.fake.pulls(support::REPO).len(), 2);

    // The second runner had no local record of the first one's spend: its folder's state file
    // holds no ledger. What it knew came from the branch, which any machine replays alike.
    let ledger = replayed_today(&g.world.remote);
    assert_eq!(spent(&ledger), Usd::from_dollars(1.0), "{ledger:#?}");
    assert_eq!(ledger.usage(ledger.sorted()[0].day).reserved, Usd::ZERO);
    let settled = settled(&ledger);
    assert_eq!(settled.len(), 2, "{ledger:#?}");
    assert!(
        settled
            .iter()
            .all(|e| e.cost == Some(Usd::from_dollars(0.5)))
    );
    assert!(ledger.skipped.is_empty(), "{:?}", ledger.skipped);
    assert_eq!(report_b["ledger"]["spent_usd"], 1.0, "{report_b:#}");
    // The runners' own folders were used: each has its clone of the state branch.
    for folder in [&a, &b] {
        assert!(
            folder.join("cache/state/acme/app.git").is_dir(),
            "{}",
            folder.display()
        );
    }
    g.fake.assert_no_unexpected();
}

#[test]
fn two_runners_started_at_once_never_pass_the_daily_cap() {
    let (g, issues, a, b) = two_runners_four_issues();

    // Both spawned before either is waited for: their reservations race on the branch.
    let (child_a, child_b) = (spawn_run_once_in(&g, &a), spawn_run_once_in(&g, &b));
    let (code_a, report_a, out_a) = finish(child_a);
    let (code_b, report_b, out_b) = finish(child_b);
    assert_eq!((code_a, code_b), (Some(0), Some(0)), "{out_a}\n{out_b}");

    // Both reserve in the same order, but a fresh reservation of an issue holds it until the
    // forge's claim takes over: the second runner moves on to the next issue (or finds the cap
    // full). Exactly the two runs the cap allows, never an issue run twice.
    let calls = g.world.agent_calls().len();
    assert_eq!(calls, 2, "{calls} runs:\n{out_a}\n{out_b}");
    let mut opened = 0;
    for &n in &issues {
        let runs = [&report_a, &report_b].map(|r| run_of(r, n).clone());
        let ran = runs.iter().filter(|r| r["status"] == "pr_opened").count();
        assert!(ran <= 1, "#{n} ran twice: {runs:#?}");
        opened += ran;
        for run in runs.iter().filter(|r| r["status"] != "pr_opened") {
            assert_eq!(run["status"], "skipped", "{run:#}");
            let reason = run["reason"].as_str().unwrap_or_default();
            assert!(
                [
                    "daily_cap_reached",
                    "reserved_elsewhere",
                    "claimed",
                    "has_open_pr",
                    "already_published"
                ]
                .contains(&reason),
                "{run:#}"
            );
        }
    }
    assert_eq!(opened, 2, "{report_a:#}\n{report_b:#}");
    assert_eq!(g.fake.pulls(support::REPO).len(), 2);

    // The replayed branch: each run charged its $0.50, the $1.00 cap spent, nothing left
    // reserved.
    let ledger = replayed_today(&g.world.remote);
    let day = ledger.sorted()[0].day;
    assert_eq!(spent(&ledger), Usd::from_dollars(1.0), "{ledger:#?}");
    assert_eq!(ledger.usage(day).reserved, Usd::ZERO, "{ledger:#?}");
    assert_eq!(settled(&ledger).len(), 2, "{ledger:#?}");
    g.fake.assert_no_unexpected();
}
