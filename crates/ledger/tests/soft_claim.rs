//! The soft claim on each backend: another run's fresh, unsettled reservation of the same issue
//! refuses a reservation with `reserved_elsewhere` within the lease TTL, and not after it or
//! once that reservation was settled, released or expired (`support/soft_claim.rs`).

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use support::{Backend, TestStore};

#[path = "support/soft_claim.rs"]
mod scenario;

fn check(backend: Backend, test: &str) {
    let Some(store) = TestStore::new(backend, test) else {
        return;
    };
    let ledger = store.open();
    scenario::check(ledger.as_ref());
}

#[test]
fn a_fresh_reservation_of_an_issue_holds_it_sqlite() {
    check(
        Backend::Sqlite,
        "a_fresh_reservation_of_an_issue_holds_it_sqlite",
    );
}

#[test]
fn a_fresh_reservation_of_an_issue_holds_it_postgres() {
    check(
        Backend::Postgres,
        "a_fresh_reservation_of_an_issue_holds_it_postgres",
    );
}
