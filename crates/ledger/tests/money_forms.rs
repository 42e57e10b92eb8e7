//! Money's stored and printed forms are a compatibility surface: the journal's payloads, the
//! ledger's `--json` records and the budget decision carry dollars as JSON numbers, and the
//! SQLite columns carry micro-dollars. These tests pin each form byte for byte on a real store,
//! and read back what an older version (which kept f64 dollars) wrote.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::time::Duration;

use issueloop_config::RunBudget;
use issueloop_ledger::{
    BudgetDecision, Event, Journal, Ledger, ReserveOutcome, ReserveRequest, RunId, SqliteLedger,
    Usd,
};
use jiff::Timestamp;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn request(run: &RunId, amount: Usd, now: &str) -> ReserveRequest {
    ReserveRequest {
        run_id: run.clone(),
        repo: "acme/api".into(),
        issue: 42,
        amount,
        cap: Usd::from_dollars(10.0),
        max_runs: 5,
        wall_clock: Duration::from_secs(45 * 60),
        grace: Duration::from_secs(15 * 60),
        soft_claim: Duration::ZERO,
        now: ts(now),
    }
}

#[test]
fn the_journal_keeps_costs_as_dollars() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteLedger::open(dir.path().join("ledger.sqlite")).unwrap();
    let run = RunId::parse("r-1").unwrap();
    let event = Event::BackendFinished {
        stage: "execute".into(),
        status: "completed".into(),
        cost_usd: Usd::from_dollars_up(0.247_224_25),
        cost_source: "reported".into(),
        usage: serde_json::json!({}),
        error: None,
    };
    store
        .append(&run, ts("2026-11-21T10:00:00Z"), &event)
        .unwrap();
    let stored = store.events(&run).unwrap();
    assert_eq!(
        stored[0].payload.to_string(),
        r#"{"cost_source":"reported","cost_usd":0.247225,"stage":"execute","status":"completed","usage":{}}"#
    );
    assert_eq!(stored[0].event(), Some(event));

    // A payload an earlier version wrote with the harness's own f64 (finer than a micro-dollar)
    // still reads, to the nearest micro-dollar.
    let old = serde_json::json!({
        "stage": "execute", "status": "completed", "cost_usd": 0.000_104_999_9,
        "cost_source": "priced", "usage": {}
    });
    match Event::from_stored("backend_finished", &old) {
        Some(Event::BackendFinished { cost_usd, .. }) => {
            assert_eq!(cost_usd, Usd::from_micros(105));
        }
        other => panic!("an old payload did not read: {other:?}"),
    }
}

#[test]
fn ledger_records_print_dollars_and_store_micro_dollars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let store = SqliteLedger::open(&path).unwrap();
    let run = RunId::parse("r-2").unwrap();
    let ReserveOutcome::Reserved(reservation) = store
        .reserve(&request(
            &run,
            Usd::from_dollars(4.2),
            "2026-11-21T10:00:00Z",
        ))
        .unwrap()
    else {
        panic!("refused");
    };
    assert_eq!(
        serde_json::to_value(&reservation).unwrap()["amount_usd"].to_string(),
        "4.2"
    );
    let settlement = store
        .settle(&run, Usd::from_micros(290_000), ts("2026-11-21T10:30:00Z"))
        .unwrap();
    let json = serde_json::to_value(&settlement).unwrap();
    assert_eq!(json["reserved_usd"].to_string(), "4.2");
    assert_eq!(json["cost_usd"].to_string(), "0.29");
    let day = store.day_usage(reservation.day).unwrap();
    assert_eq!(
        serde_json::to_string(&day).unwrap(),
        r#"{"day":"2026-11-21","spent_usd":0.29,"reserved_usd":0.0,"runs_today":1}"#
    );
    let entry = store.entry(&run).unwrap().unwrap();
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(json["reserved_usd"].to_string(), "4.2");
    assert_eq!(json["cost_usd"].to_string(), "0.29");
    drop(store);

    // The columns hold integer micro-dollars, as they always did.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (reserved, cost): (i64, i64) = conn
        .query_row(
            "SELECT reserved_micros, cost_micros FROM ledger_entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((reserved, cost), (4_200_000, 290_000));
}

#[test]
fn the_budget_decision_prints_its_cost_as_dollars() {
    let run = BudgetDecision::Run {
        budget: RunBudget {
            cost_usd: Usd::from_micros(4_200_000),
            wall_clock: Duration::from_secs(2 * 3600),
            max_turns: 60,
        },
        clamped: true,
        explanation: String::new(),
    };
    assert_eq!(
        run.to_json()["budget"].to_string(),
        r#"{"cost_usd":4.2,"max_turns":60,"wall_clock":"2h"}"#
    );
}
