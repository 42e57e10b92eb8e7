//! The soft-claim scenario every backend must pass (SQLite and PostgreSQL here, the `github`
//! store in its own crate's tests, which include this file): a run's fresh, unsettled
//! reservation of an issue refuses another run's reservation of the same issue
//! (`reserved_elsewhere`) for the lease TTL, and no longer once that has passed or the first
//! reservation was settled, released or expired.

use std::time::Duration;

use issueloop_ledger::{
    EntryState, Ledger, ReserveOutcome, ReserveRequest, RunId, SkipReason, Usd, utc_day,
};
use jiff::Timestamp;

/// The lease TTL the scenario's requests carry.
pub const WINDOW: Duration = Duration::from_secs(180);

fn at(t0: Timestamp, secs: u64) -> Timestamp {
    t0 + Duration::from_secs(secs)
}

fn request(run: &str, issue: u64, now: Timestamp) -> ReserveRequest {
    ReserveRequest {
        run_id: RunId::parse(run).unwrap(),
        repo: "acme/app".into(),
        issue,
        amount: Usd::from_dollars(0.5),
        cap: Usd::from_dollars(100.0),
        max_runs: 1000,
        wall_clock: Duration::from_secs(45 * 60),
        grace: Duration::from_secs(15 * 60),
        soft_claim: WINDOW,
        now,
    }
}

fn reserved<L: Ledger + ?Sized>(ledger: &L, req: &ReserveRequest) -> bool {
    match ledger.reserve(req).unwrap() {
        ReserveOutcome::Reserved(r) => {
            assert_eq!(r.run_id, req.run_id);
            true
        }
        ReserveOutcome::Refused { reason, .. } => {
            assert_eq!(reason, SkipReason::ReservedElsewhere, "{}", req.run_id);
            false
        }
    }
}

/// Run the scenario on an empty `ledger`.
pub fn check<L: Ledger + ?Sized>(ledger: &L) {
    let t0: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
    let day = utc_day(t0);

    // Within the window the first run's reservation is a claim: refused, nothing recorded.
    assert!(reserved(ledger, &request("first", 1, t0)));
    let before = ledger.day_usage(day).unwrap();
    assert!(!reserved(ledger, &request("second", 1, at(t0, 60))));
    assert!(!reserved(ledger, &request("third", 1, at(t0, 179))));
    assert_eq!(
        ledger.day_usage(day).unwrap(),
        before,
        "a refusal records nothing"
    );
    assert!(
        ledger
            .entry(&RunId::parse("second").unwrap())
            .unwrap()
            .is_none()
    );
    // Another issue is not held back.
    assert!(reserved(ledger, &request("other-issue", 2, at(t0, 60))));
    // Once the window has passed, the forge's lease decides: admitted.
    assert!(reserved(ledger, &request("after-window", 1, at(t0, 180))));
    // That reservation is fresh in turn; a request without a window (an older writer) is
    // not held back by it.
    assert!(!reserved(ledger, &request("fourth", 1, at(t0, 200))));
    assert!(reserved(
        ledger,
        &ReserveRequest {
            soft_claim: Duration::ZERO,
            ..request("no-window", 1, at(t0, 200))
        }
    ));

    // A settled reservation claims nothing.
    assert!(reserved(ledger, &request("settles", 3, t0)));
    ledger
        .settle(
            &RunId::parse("settles").unwrap(),
            Usd::from_dollars(0.2),
            at(t0, 30),
        )
        .unwrap();
    assert!(reserved(ledger, &request("after-settle", 3, at(t0, 60))));

    // Nor a released one.
    assert!(reserved(ledger, &request("releases", 4, t0)));
    ledger
        .release(&RunId::parse("releases").unwrap(), at(t0, 30))
        .unwrap();
    assert!(reserved(ledger, &request("after-release", 4, at(t0, 60))));

    // Nor an expired one (a run whose wall clock and grace were both zero).
    assert!(reserved(
        ledger,
        &ReserveRequest {
            wall_clock: Duration::ZERO,
            grace: Duration::ZERO,
            ..request("expires", 5, t0)
        }
    ));
    let expired = ledger.expire(at(t0, 1)).unwrap();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert!(reserved(ledger, &request("after-expiry", 5, at(t0, 60))));

    let states: Vec<(String, EntryState)> = ledger
        .entries(day)
        .unwrap()
        .into_iter()
        .map(|e| (e.run_id.to_string(), e.state))
        .collect();
    assert_eq!(states.len(), 10, "{states:?}");
    assert!(
        states
            .iter()
            .all(|(run, _)| !["second", "third", "fourth"].contains(&run.as_str())),
        "{states:?}"
    );
}
