//! `export_records` / `import_records` between stores, one body for every target backend: what
//! one store exports another imports to the same ledger and journal, a second import changes
//! nothing, a conflicting one writes nothing, and an unsettled reservation stays unsettled with
//! its expiry and owner, so the target charges it in full when it expires.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::time::Duration;

use issueloop_ledger::{
    EntryState, Event, LedgerError, Record, ReserveOutcome, ReserveRequest, RunId, RunStatus,
    StateStore, Usd, parse_records, utc_day,
};
use jiff::Timestamp;
use support::{Backend, TestStore};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn reserve(store: &dyn StateStore, run: &str, dollars: f64, at: &str) -> RunId {
    let run_id = RunId::parse(run).unwrap();
    let outcome = store
        .reserve(&ReserveRequest {
            run_id: run_id.clone(),
            repo: "acme/app".into(),
            issue: 7,
            amount: Usd::from_dollars(dollars),
            cap: Usd::from_dollars(10.0),
            max_runs: 20,
            wall_clock: Duration::from_secs(45 * 60),
            grace: Duration::from_secs(15 * 60),
            soft_claim: Duration::ZERO,
            now: ts(at),
        })
        .unwrap();
    assert!(
        matches!(outcome, ReserveOutcome::Reserved(_)),
        "{outcome:?}"
    );
    run_id
}

/// A source with every state on two days, a journal and a named value.
fn source(store: &dyn StateStore) {
    let a = reserve(store, "a", 1.0, "2026-12-04T23:00:00.250Z");
    store
        .settle(&a, Usd::from_dollars(0.4), ts("2026-12-05T00:10:00Z"))
        .unwrap();
    let b = reserve(store, "b", 0.5, "2026-12-05T09:00:00Z");
    store
        .settle(&b, Usd::from_dollars(0.75), ts("2026-12-05T09:20:00Z"))
        .unwrap();
    let c = reserve(store, "c", 0.5, "2026-12-05T09:01:00Z");
    store.release(&c, ts("2026-12-05T09:02:00Z")).unwrap();
    reserve(store, "d", 0.25, "2026-12-05T08:00:00Z");
    store.expire(ts("2026-12-05T09:30:00Z")).unwrap();
    // Unsettled, expiring at 10:40.
    reserve(store, "e", 2.0, "2026-12-05T09:40:00Z");
    for (run, event) in [
        (
            "b",
            Event::RunStarted {
                repo: "acme/app".into(),
                issue: 7,
                branch: None,
            },
        ),
        (
            "b",
            Event::RunFinished {
                status: RunStatus::Succeeded,
                reason: None,
            },
        ),
        (
            "e",
            Event::Note {
                message: "still running".into(),
            },
        ),
    ] {
        store
            .append(
                &RunId::parse(run).unwrap(),
                ts("2026-12-05T09:40:01Z"),
                &event,
            )
            .unwrap();
    }
    store.set_value("poll", "etag-1").unwrap();
}

fn check_transfer(target: Backend, test: &str) {
    let Some(to) = TestStore::new(target, test) else {
        return;
    };
    let from = TestStore::new(Backend::Sqlite, test).unwrap();
    let (src, dst) = (from.open(), to.open());
    source(src.as_ref());
    let exported = src.export_records().unwrap();
    // Through the text format, as `state export | state import` moves it.
    let text: String = exported.iter().map(Record::render).collect();
    let records = parse_records(&text).unwrap();
    assert_eq!(records, exported);
    assert_eq!(
        exported
            .iter()
            .filter(|r| matches!(r, Record::Entry(_)))
            .count(),
        5
    );

    let first = dst.import_records(&records).unwrap();
    assert_eq!(
        (first.entries_added, first.events_added, first.values_added),
        (5, 3, 1),
        "{first:?}"
    );
    // The target now holds exactly what the source held.
    assert_eq!(dst.export_records().unwrap(), exported);
    for day in ["2026-12-04", "2026-12-05"] {
        let day = day.parse().unwrap();
        assert_eq!(dst.day_usage(day).unwrap(), src.day_usage(day).unwrap());
        assert_eq!(dst.entries(day).unwrap(), src.entries(day).unwrap());
    }
    let today = dst.day_usage("2026-12-05".parse().unwrap()).unwrap();
    // b 0.75 (overspent) + d 0.25 (expired) spent; e 2.00 reserved; c released.
    assert_eq!(
        (today.spent, today.reserved, today.runs),
        (Usd::from_dollars(1.0), Usd::from_dollars(2.0), 3)
    );
    let b = RunId::parse("b").unwrap();
    assert_eq!(dst.events(&b).unwrap().len(), 2);
    assert_eq!(dst.runs(10).unwrap().len(), 2);
    assert_eq!(dst.get_value("poll").unwrap().as_deref(), Some("etag-1"));

    // Idempotent: the same file again changes nothing.
    let again = dst.import_records(&records).unwrap();
    assert!(again.unchanged(), "{again:?}");
    assert_eq!((again.entries_present, again.events_present), (5, 3));
    assert_eq!(dst.export_records().unwrap(), exported);

    // A file that says otherwise about a run the target holds: refused, nothing written.
    let mut conflicting = records.clone();
    for r in &mut conflicting {
        if let Record::Entry(e) = r
            && e.run_id.as_str() == "b"
        {
            e.cost_micros = Some(10_000);
            e.overspent = false;
        }
    }
    conflicting.push(Record::Entry(issueloop_ledger::EntryRecord {
        run_id: RunId::parse("f").unwrap(),
        ..match &records[0] {
            Record::Entry(e) => e.clone(),
            other => panic!("{other:?}"),
        }
    }));
    let err = dst.import_records(&conflicting).unwrap_err();
    assert!(
        matches!(&err, LedgerError::ImportConflict { conflicts } if conflicts.len() == 1),
        "{err}"
    );
    assert!(err.to_string().contains("run `b`"), "{err}");
    assert_eq!(dst.export_records().unwrap(), exported, "nothing written");

    // The unsettled reservation is still the target's to settle, or to charge at its expiry.
    let e = RunId::parse("e").unwrap();
    let entry = dst.entry(&e).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Reserved);
    assert_eq!(entry.expires_at, ts("2026-12-05T10:40:00Z"));
    assert!(dst.expire(ts("2026-12-05T10:39:59Z")).unwrap().is_empty());
    let expired = dst.expire(ts("2026-12-05T10:40:00Z")).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].run_id, e);
    let today = dst.day_usage(utc_day(ts("2026-12-05T12:00:00Z"))).unwrap();
    assert_eq!(
        (today.spent, today.reserved),
        (Usd::from_dollars(3.0), Usd::ZERO)
    );
}

#[test]
fn an_export_imports_to_the_same_ledger_once_sqlite() {
    check_transfer(
        Backend::Sqlite,
        "an_export_imports_to_the_same_ledger_once_sqlite",
    );
}

#[test]
fn an_export_imports_to_the_same_ledger_once_postgres() {
    check_transfer(
        Backend::Postgres,
        "an_export_imports_to_the_same_ledger_once_postgres",
    );
}
