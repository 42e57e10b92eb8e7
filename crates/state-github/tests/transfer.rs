//! `import_records` / `export_records` of the `github` store against a real bare repository: a
//! SQLite store's export lands on the branch in one push, replays to the same ledger on another
//! runner's folder, a second import writes nothing, a conflicting one writes nothing, and an
//! unsettled reservation is charged in full by whichever runner sees it expire.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::time::Duration;

use issueloop_ledger::{
    EntryState, Event, Journal, Ledger, LedgerError, Record, ReserveOutcome, ReserveRequest, RunId,
    RunStatus, SqliteLedger, StateStore, Usd,
};
use issueloop_state_github::{GithubState, GithubStateOptions};
use issueloop_workspace::{LogClone, RemoteSpec};
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn runner(base: &std::path::Path, name: &str) -> GithubState {
    let home = base.join(name);
    GithubState::open(GithubStateOptions::new(
        RemoteSpec::new(base.join("state.git").display().to_string(), None),
        home.join("cache/state.git"),
        home.join("state.sqlite"),
    ))
    .unwrap()
}

fn reserve(store: &dyn StateStore, run: &str, dollars: f64, at: &str) -> RunId {
    let run_id = RunId::parse(run).unwrap();
    let outcome = store
        .reserve(&ReserveRequest {
            run_id: run_id.clone(),
            repo: "acme/app".into(),
            issue: 7,
            amount: Usd::from_dollars(dollars),
            cap: Usd::from_dollars(3.0),
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

#[test]
fn a_sqlite_export_lands_on_the_branch_once_and_replays_alike_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    LogClone::open_or_init(&dir.path().join("state.git")).unwrap();
    let src = SqliteLedger::open(dir.path().join("old.sqlite")).unwrap();
    let a = reserve(&src, "a", 1.0, "2026-12-05T08:00:00.250Z");
    src.settle(&a, Usd::from_dollars(1.25), ts("2026-12-05T08:10:00Z"))
        .unwrap();
    let b = reserve(&src, "b", 0.5, "2026-12-05T09:00:00Z");
    src.release(&b, ts("2026-12-05T09:02:00Z")).unwrap();
    reserve(&src, "c", 0.25, "2026-12-04T08:00:00Z");
    src.expire(ts("2026-12-05T09:30:00Z")).unwrap();
    // Unsettled: expires at 10:40.
    reserve(&src, "e", 1.5, "2026-12-05T09:40:00Z");
    src.append(
        &a,
        ts("2026-12-05T08:10:01Z"),
        &Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    )
    .unwrap();
    let records = src.export_records().unwrap();

    let first = runner(dir.path(), "first");
    let summary = first.import_records(&records).unwrap();
    assert_eq!((summary.entries_added, summary.events_added), (4, 1));
    // One commit, one push, for all of it.
    assert_eq!(first.stats().pushes, 1, "{:?}", first.stats());

    // Another runner, with a folder of its own, replays the branch to the same ledger. (The
    // journal's events stay on the machine that imported them.)
    let other = runner(dir.path(), "other");
    let entries = |s: &dyn StateStore| -> Vec<Record> {
        s.export_records()
            .unwrap()
            .into_iter()
            .filter_map(|r| match r {
                Record::Entry(mut e) => {
                    e.owner = None;
                    Some(Record::Entry(e))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(entries(&other), entries(&src));
    for day in ["2026-12-04", "2026-12-05"] {
        let day = day.parse().unwrap();
        assert_eq!(other.day_usage(day).unwrap(), src.day_usage(day).unwrap());
    }
    let today = other.day_usage("2026-12-05".parse().unwrap()).unwrap();
    assert_eq!(
        (today.spent, today.reserved, today.runs),
        (Usd::from_dollars(1.25), Usd::from_dollars(1.5), 2)
    );

    // Imported spend counts against the day: the $3.00 cap has $0.25 left.
    let refused = other
        .reserve(&ReserveRequest {
            run_id: RunId::parse("f").unwrap(),
            repo: "acme/app".into(),
            issue: 8,
            amount: Usd::from_dollars(0.5),
            cap: Usd::from_dollars(3.0),
            max_runs: 20,
            wall_clock: Duration::from_secs(60),
            grace: Duration::from_secs(60),
            soft_claim: Duration::ZERO,
            now: ts("2026-12-05T09:50:00Z"),
        })
        .unwrap();
    assert!(
        matches!(refused, ReserveOutcome::Refused { .. }),
        "{refused:?}"
    );

    // The same file again, from the other runner: nothing to write.
    let pushes = other.stats().pushes;
    let again = other.import_records(&records).unwrap();
    assert_eq!(again.entries_present, 4);
    assert_eq!(again.entries_added, 0);
    assert_eq!(other.stats().pushes, pushes);

    // A file that disagrees about a run on the branch: refused, nothing pushed.
    let mut conflicting = records.clone();
    for r in &mut conflicting {
        if let Record::Entry(e) = r
            && e.run_id == a
        {
            e.cost_micros = Some(1);
            e.overspent = false;
        }
    }
    let err = other.import_records(&conflicting).unwrap_err();
    assert!(matches!(&err, LedgerError::ImportConflict { .. }), "{err}");
    assert_eq!(other.stats().pushes, pushes);

    // The unsettled reservation expires on the branch like any other, charged in full.
    assert!(other.expire(ts("2026-12-05T10:39:59Z")).unwrap().is_empty());
    let expired = first.expire(ts("2026-12-05T10:40:00Z")).unwrap();
    assert_eq!(expired.len(), 1);
    let e = other.entry(&RunId::parse("e").unwrap()).unwrap().unwrap();
    assert_eq!(
        (e.state, e.cost),
        (EntryState::Expired, Some(Usd::from_dollars(1.5)))
    );
}
