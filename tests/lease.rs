//! Claims are leases (invariant 2 across processes): through the real binary, on the local forge
//! and against the fake GitHub. A run whose gates outlast its wall clock plus grace keeps its
//! claim because its heartbeat renews the lease, so a second runner (another process, another
//! state folder) started meanwhile backs off: one agent run, one PR, one label set. A runner
//! killed with SIGKILL renews nothing, and its claim is taken over once the lease expires.

mod support;

use std::time::Duration;

use issueloop_fake_github::TOKEN;
use support::github::GithubWorld;
use support::lease::{
    add_slow_test, raise_write_limit, runner, second_runner_config, set_lease_ttl, sorted,
    wait_for_agent_calls,
};
use support::{Knobs, MAINTAINER, REPO, World, run_of};

const GOOD: &str = "scenario: good\ncost: 0.30\n\n## Acceptance\n- [ ] feature() returns 42\n";

/// The D4 scenario's configuration: an 8 s wall clock, 1 s grace, a 3 s lease.
fn knobs() -> Knobs {
    Knobs {
        wall_clock: "8s",
        reservation_grace: "1s",
        ..Knobs::default()
    }
}

fn published_labels() -> Vec<String> {
    vec!["loop:approved".to_owned(), "loop:pr-opened".to_owned()]
}

/// The first runner works on the issue; once it is past its wall clock plus grace and still in
/// its gates, the second runner runs a whole tick.
fn live_run_keeps_its_claim(world: &World, token: Option<&str>, n: u64) -> serde_json::Value {
    set_lease_ttl(world, "3s");
    raise_write_limit(world);
    add_slow_test(&world.remote, 15);
    let second = second_runner_config(world);
    let mut first = runner(world, "first", &world.config, token);
    wait_for_agent_calls(world, 1);
    // Past wall clock (8 s) plus grace (1 s): the old rule called this claim stale.
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        first.child_running(),
        "the first run ended before the second runner started:\n{}",
        first.printed()
    );
    let (code, report, out) = runner(world, "second", &second, token).finish();
    assert_eq!(code, Some(0), "{out}");
    let skipped = run_of(&report, n);
    assert_eq!(skipped["status"], "skipped", "{report:#}\n{out}");
    assert_eq!(skipped["reason"], "claimed", "{report:#}");
    assert!(
        skipped["detail"]
            .as_str()
            .is_some_and(|d| d.contains("lease held by run")),
        "{skipped}"
    );
    let (code, report, out) = first.finish();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        run_of(&report, n)["status"],
        "pr_opened",
        "{report:#}\n{out}"
    );
    assert_eq!(
        world.agent_calls(),
        vec!["execute good".to_owned()],
        "the agent ran once"
    );
    report
}

#[test]
fn local_a_live_run_keeps_its_claim_past_wall_clock_plus_grace() {
    let mut w = World::new(knobs());
    let n = w.add_issue("Add feature", GOOD, MAINTAINER);
    live_run_keeps_its_claim(&w, None, n);
    assert_eq!(w.pulls().len(), 1, "one PR");
    assert_eq!(sorted(w.labels(n)), published_labels());
    assert!(w.claim_files().is_empty(), "{:?}", w.claim_files());
    assert_eq!(w.remote_branches(), vec![format!("loop/{n}-add-feature")]);
}

#[test]
fn github_a_live_run_keeps_its_claim_past_wall_clock_plus_grace() {
    let g = GithubWorld::new(knobs());
    let n = g.approved_issue("Add feature", GOOD, MAINTAINER);
    live_run_keeps_its_claim(&g.world, Some(TOKEN), n);
    assert_eq!(g.fake.pulls(REPO).len(), 1, "one PR");
    assert_eq!(sorted(g.labels(n)), published_labels());
    assert_eq!(
        g.fake.ref_sha(REPO, &format!("refs/issueloop/lease/{n}")),
        None,
        "the lease is released"
    );
    let renewals = g
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.operation.as_deref() == Some("git/update-ref"))
        .count();
    assert!(
        renewals >= 5,
        "the lease was renewed during the gates: {renewals}"
    );
    g.fake.assert_no_unexpected();
}

/// The first runner is killed in its gates; once its lease has expired (3 s TTL plus a 1 s
/// margin), the second runner takes the claim over and publishes.
fn dead_run_is_taken_over(world: &World, token: Option<&str>, n: u64) -> serde_json::Value {
    set_lease_ttl(world, "3s");
    raise_write_limit(world);
    add_slow_test(&world.remote, 6);
    let second = second_runner_config(world);
    let first = runner(world, "first", &world.config, token);
    wait_for_agent_calls(world, 1);
    std::thread::sleep(Duration::from_secs(1));
    first.kill();
    std::thread::sleep(Duration::from_secs(5));
    let (code, report, out) = runner(world, "second", &second, token).finish();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        run_of(&report, n)["status"],
        "pr_opened",
        "{report:#}\n{out}"
    );
    assert_eq!(
        world.agent_calls(),
        vec!["execute good".to_owned(), "execute good".to_owned()],
        "the dead run's agent and the new one"
    );
    report
}

#[test]
fn local_a_killed_runs_claim_is_taken_over_once_its_lease_expires() {
    let mut w = World::new(knobs());
    let n = w.add_issue("Add feature", GOOD, MAINTAINER);
    dead_run_is_taken_over(&w, None, n);
    assert_eq!(w.pulls().len(), 1, "one PR");
    assert_eq!(sorted(w.labels(n)), published_labels());
    assert!(w.issue_text(n).contains("issueloop:takeover"));
}

#[test]
fn github_a_killed_runs_claim_is_taken_over_once_its_lease_expires() {
    let g = GithubWorld::new(knobs());
    let n = g.approved_issue("Add feature", GOOD, MAINTAINER);
    dead_run_is_taken_over(&g.world, Some(TOKEN), n);
    assert_eq!(g.fake.pulls(REPO).len(), 1, "one PR");
    assert_eq!(sorted(g.labels(n)), published_labels());
    assert!(
        g.fake
            .comments(REPO, n)
            .iter()
            .any(|c| c.body.contains("issueloop:takeover")),
        "the takeover is said on the issue"
    );
    g.fake.assert_no_unexpected();
}
