//! The `github` store against a real bare repository (what the fake GitHub serves as a
//! repository's `clone_url`), each runner with a local folder of its own: one push per
//! reservation and per settlement without contention; a stale runner's push is rejected and it
//! decides again (the cap may now refuse); concurrent writers never pass the cap; a run that dies
//! between reserve and settle is charged in full at expiry by another runner.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use issueloop_ledger::{
    EntryState, Event, Journal, Ledger, ReserveOutcome, ReserveRequest, RunId, RunStatus,
    SkipReason, Usd, utc_day,
};
use issueloop_state_github::{
    DEFAULT_BRANCH, GithubState, GithubStateOptions, Line, RemoteRefresh,
};
use issueloop_workspace::hermetic::git_command;
use issueloop_workspace::{LogClone, RemoteSpec};
use jiff::Timestamp;

#[path = "../../ledger/tests/support/soft_claim.rs"]
mod soft_claim;

const NOW: &str = "2026-12-05T10:00:00Z";

struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        LogClone::open_or_init(&dir.path().join("state.git")).unwrap();
        Remote { dir }
    }

    fn url(&self) -> PathBuf {
        self.dir.path().join("state.git")
    }

    /// A runner with a folder of its own (`name`).
    fn runner(&self, name: &str) -> GithubState {
        let home = self.dir.path().join(name);
        let opts = GithubStateOptions::new(
            RemoteSpec::new(self.url().display().to_string(), None),
            home.join("cache/state.git"),
            home.join("state.sqlite"),
        );
        GithubState::open(opts).unwrap()
    }

    fn branch_commits(&self) -> usize {
        git(
            &self.url(),
            &[
                "rev-list",
                "--count",
                &format!("refs/heads/{DEFAULT_BRANCH}"),
            ],
        )
        .trim()
        .parse()
        .unwrap()
    }

    /// The file at `path` on the branch's tip, `None` when there is none.
    fn file(&self, path: &str) -> Option<String> {
        let out = git_command(&self.url())
            .args(["show", &format!("refs/heads/{DEFAULT_BRANCH}:{path}")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }
}

/// Run git in `dir`; its stdout, or a panic with its stderr.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn req(run: &str, dollars: f64, cap: f64, now: Timestamp) -> ReserveRequest {
    ReserveRequest {
        run_id: RunId::parse(run).unwrap(),
        repo: "acme/app".into(),
        issue: 1,
        amount: Usd::from_dollars(dollars),
        cap: Usd::from_dollars(cap),
        max_runs: 1000,
        wall_clock: Duration::from_secs(45 * 60),
        grace: Duration::from_secs(15 * 60),
        soft_claim: Duration::ZERO,
        now,
    }
}

fn reserved(outcome: ReserveOutcome) -> bool {
    matches!(outcome, ReserveOutcome::Reserved(_))
}

#[test]
fn one_push_per_reservation_and_per_settlement_without_contention() {
    let remote = Remote::new();
    let a = remote.runner("a");
    let now: Timestamp = NOW.parse().unwrap();
    let before = a.stats();
    assert_eq!((before.fetches, before.pushes), (1, 0), "open fetches once");
    assert!(reserved(a.reserve(&req("r1", 0.5, 1.0, now)).unwrap()));
    let after_reserve = a.stats();
    assert_eq!(
        (after_reserve.fetches, after_reserve.pushes),
        (1, 1),
        "the branch is created by the first reservation's push"
    );
    a.settle(&RunId::parse("r1").unwrap(), Usd::from_dollars(0.3), now)
        .unwrap();
    let after_settle = a.stats();
    assert_eq!(
        (
            after_settle.fetches,
            after_settle.pushes,
            after_settle.rejected
        ),
        (1, 2, 0)
    );
    assert_eq!(remote.branch_commits(), 2, "an orphan commit and one more");
    // Another machine replays the same ledger.
    let b = remote.runner("b");
    let day = utc_day(now);
    let usage = b.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved, usage.runs),
        (Usd::from_dollars(0.3), Usd::ZERO, 1)
    );
    assert_eq!(b.entries(day).unwrap(), a.entries(day).unwrap());
    let lines = b.day_lines(day).unwrap();
    assert!(
        matches!(lines[..], [Line::Reserve { .. }, Line::Settle { .. }]),
        "{lines:?}"
    );
}

#[test]
fn a_stale_runner_is_rejected_and_decides_again() {
    let remote = Remote::new();
    let now: Timestamp = NOW.parse().unwrap();
    // Both read the (absent) branch before either writes.
    let a = remote.runner("a");
    let b = remote.runner("b");
    assert!(reserved(a.reserve(&req("a1", 0.6, 1.0, now)).unwrap()));
    // b still believes the day is empty; its push is refused, it fetches, and the cap says no.
    match b.reserve(&req("b1", 0.6, 1.0, now)).unwrap() {
        ReserveOutcome::Refused { reason, usage } => {
            assert_eq!(reason, SkipReason::DailyCapReached);
            assert_eq!(usage.reserved, Usd::from_dollars(0.6));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(b.stats().rejected, 1, "{:?}", b.stats());
    // A smaller one fits after the refetch, without another rejection.
    assert!(reserved(b.reserve(&req("b2", 0.4, 1.0, now)).unwrap()));
    assert_eq!(b.stats().rejected, 1);
    let usage = a.day_usage(utc_day(now)).unwrap();
    assert_eq!(usage.reserved, Usd::from_dollars(1.0));
}

#[test]
fn interleaved_writers_on_separate_folders_never_pass_the_cap() {
    const WRITERS: usize = 4;
    const EACH: usize = 6;
    let remote = Remote::new();
    let now: Timestamp = NOW.parse().unwrap();
    let cap = 2.0;
    let stores: Vec<GithubState> = (0..WRITERS)
        .map(|i| remote.runner(&format!("w{i}")))
        .collect();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let results: Vec<(Usd, Usd)> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    let mut reserved_sum = Usd::ZERO;
                    let mut settled_sum = Usd::ZERO;
                    for k in 0..EACH {
                        let run = format!("w{i}-r{k}");
                        let amount = 0.15 + 0.05 * ((i + k) % 3) as f64;
                        match store.reserve(&req(&run, amount, cap, now)).unwrap() {
                            ReserveOutcome::Reserved(r) => {
                                reserved_sum = reserved_sum.saturating_add(r.amount);
                                // Every other run settles at half its budget, interleaved with
                                // the others' reservations.
                                if k % 2 == 0 {
                                    let cost = Usd::from_micros(r.amount.micros() / 2);
                                    store.settle(&r.run_id, cost, now).unwrap();
                                    settled_sum = settled_sum.saturating_add(cost);
                                    reserved_sum = reserved_sum.saturating_sub(r.amount);
                                }
                            }
                            ReserveOutcome::Refused { reason, .. } => {
                                assert_eq!(reason, SkipReason::DailyCapReached)
                            }
                        }
                    }
                    (reserved_sum, settled_sum)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let day = utc_day(now);
    let check = remote.runner("check");
    let usage = check.day_usage(day).unwrap();
    let reserved: Usd = results.iter().map(|r| r.0).sum();
    let settled: Usd = results.iter().map(|r| r.1).sum();
    assert_eq!(
        (usage.reserved, usage.spent),
        (reserved, settled),
        "the log and the writers agree"
    );
    assert!(
        usage.spent.saturating_add(usage.reserved) <= Usd::from_dollars(cap),
        "{usage:?}"
    );
    // The cap was reached: what is left is less than the largest request.
    assert!(
        usage.left(Usd::from_dollars(cap)) < Usd::from_dollars(0.25),
        "{usage:?}"
    );
    let rejected: u64 = stores.iter().map(|s| s.stats().rejected).sum();
    eprintln!("{WRITERS} writers: {rejected} rejected pushes, usage {usage:?}");
    // Replay skipped nothing: no two writers ever both got a reservation past the other.
    let lines = check.day_lines(day).unwrap();
    let replayed = issueloop_state_github::replay_day(day, &lines);
    assert!(replayed.skipped.is_empty(), "{:?}", replayed.skipped);
}

#[test]
fn a_run_that_died_between_reserve_and_settle_is_charged_in_full_at_expiry() {
    let remote = Remote::new();
    let now: Timestamp = NOW.parse().unwrap();
    {
        let doomed = remote.runner("a");
        assert!(reserved(
            doomed.reserve(&req("dead", 0.7, 1.0, now)).unwrap()
        ));
        // The process dies: the store is dropped without settling.
    }
    let b = remote.runner("b");
    let early = now + Duration::from_secs(30 * 60);
    assert!(
        b.expire(early).unwrap().is_empty(),
        "not before wall clock + grace"
    );
    let late = now + Duration::from_secs(60 * 60);
    let expired = b.expire(late).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].amount, Usd::from_dollars(0.7));
    let day = utc_day(now);
    let usage = b.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved),
        (Usd::from_dollars(0.7), Usd::ZERO)
    );
    let entry = b.entry(&RunId::parse("dead").unwrap()).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Expired);
    // Nothing is expired twice, by this runner or a third one.
    assert!(b.expire(late).unwrap().is_empty());
    assert!(remote.runner("c").expire(late).unwrap().is_empty());
    // The charge holds against the cap for everyone.
    match remote
        .runner("d")
        .reserve(&req("next", 0.5, 1.0, late))
        .unwrap()
    {
        ReserveOutcome::Refused { reason, .. } => assert_eq!(reason, SkipReason::DailyCapReached),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_finished_run_leaves_a_summary_on_the_branch() {
    let remote = Remote::new();
    let a = remote.runner("a");
    let now: Timestamp = NOW.parse().unwrap();
    let run = RunId::parse("r1").unwrap();
    a.append(
        &run,
        now,
        &Event::RunStarted {
            repo: "acme/app".into(),
            issue: 1,
            branch: None,
        },
    )
    .unwrap();
    a.append(
        &run,
        now,
        &Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    )
    .unwrap();
    assert_eq!(a.events(&run).unwrap().len(), 2);
    let text = remote.file("journal/2026-12-05.jsonl").unwrap();
    let summary: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(summary["run"], "r1");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(
        summary["events"],
        serde_json::json!(["run_started", "run_finished"])
    );
    assert_eq!(
        remote.file("issueloop-state.json").as_deref(),
        Some("{\"format\": 1}\n")
    );
}

/// A fetch or push that fails (an installation token that expired, here a remote that is gone)
/// is tried once more with the remote the options give anew; later operations keep the new
/// one. Without a new one, the first error is what the caller sees.
#[test]
fn a_failed_fetch_or_push_is_tried_again_with_the_remote_given_anew() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let remote = Remote::new();
    let now: Timestamp = NOW.parse().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let home = remote.dir.path().join("refreshed");
    let mut opts = GithubStateOptions::new(
        RemoteSpec::new(
            remote.dir.path().join("gone.git").display().to_string(),
            None,
        ),
        home.join("cache/state.git"),
        home.join("state.sqlite"),
    );
    let (url, count) = (remote.url(), asked.clone());
    opts.refresh = Some(RemoteRefresh(Arc::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(RemoteSpec::new(url.display().to_string(), None))
    })));
    let store = GithubState::open(opts).unwrap();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the first fetch failed once"
    );
    let run = RunId::parse("r-1").unwrap();
    store.reserve(&req("r-1", 0.5, 1.0, now)).unwrap();
    store.settle(&run, Usd::from_dollars(0.25), now).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the new remote is kept");
    assert_eq!(remote.branch_commits(), 2);

    // No remote to be had: the caller sees the fetch's own failure.
    let mut opts = GithubStateOptions::new(
        RemoteSpec::new(
            remote.dir.path().join("gone.git").display().to_string(),
            None,
        ),
        home.join("cache2/state.git"),
        home.join("state2.sqlite"),
    );
    opts.refresh = Some(RemoteRefresh(Arc::new(|| Err("the forge is down".into()))));
    let err = GithubState::open(opts).unwrap_err().to_string();
    assert!(err.contains("fetch the state branch"), "{err}");
}

/// The soft claim every backend applies (the scenario the SQLite and PostgreSQL stores pass in
/// `crates/ledger/tests/soft_claim.rs`), then the same decisions replayed from the log by a
/// runner with an empty folder of its own.
#[test]
fn a_fresh_reservation_of_an_issue_holds_it_github() {
    let remote = Remote::new();
    let a = remote.runner("a");
    soft_claim::check(&a);
    let day = utc_day(NOW.parse().unwrap());
    let b = remote.runner("b");
    assert_eq!(b.entries(day).unwrap(), a.entries(day).unwrap());
    assert_eq!(b.day_usage(day).unwrap(), a.day_usage(day).unwrap());
    // The window travels in the log, so the replay decides with it.
    let log = remote.file(&format!("ledger/{day}.jsonl")).unwrap();
    assert!(log.contains("\"soft_claim_ms\":180000"), "{log}");
}
