//! The SQLite store on real files: reservations against the cap, settle/release/expire, the
//! day a run is charged to, the journal, and refusing files that are not ours to write.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::Path;
use std::time::Duration;

use issueloop_ledger::{
    EntryState, Event, Journal, Ledger, LedgerError, ReserveOutcome, ReserveRequest, RunId,
    RunStatus, SCHEMA_VERSION, SkipReason, SqliteLedger, Usd, stage_runtimes,
};
use jiff::Timestamp;
use jiff::civil::date;

const MIN: u64 = 60;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn usd(d: f64) -> Usd {
    Usd::from_dollars(d)
}

fn id(text: &str) -> RunId {
    RunId::parse(text).unwrap()
}

fn request(run: &str, amount: f64, now: &str) -> ReserveRequest {
    ReserveRequest {
        run_id: id(run),
        repo: "acme/api".into(),
        issue: 42,
        amount: usd(amount),
        cap: usd(10.0),
        max_runs: 5,
        wall_clock: Duration::from_secs(45 * MIN),
        grace: Duration::from_secs(15 * MIN),
        soft_claim: Duration::ZERO,
        now: ts(now),
    }
}

fn reserved(outcome: ReserveOutcome) -> issueloop_ledger::Reservation {
    match outcome {
        ReserveOutcome::Reserved(r) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

fn open(dir: &Path) -> SqliteLedger {
    SqliteLedger::open(dir.join("state/ledger.sqlite")).unwrap()
}

#[test]
fn reserve_counts_reservations_and_refuses_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let day = date(2026, 11, 21);
    let r = reserved(
        ledger
            .reserve(&request("a", 5.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    assert_eq!(r.day, day);
    assert_eq!(r.expires_at, ts("2026-11-21T11:00:00Z"));
    reserved(
        ledger
            .reserve(&request("b", 4.2, "2026-11-21T10:01:00Z"))
            .unwrap(),
    );
    // $9.20 held: $1.00 does not fit, $0.80 exactly does.
    match ledger
        .reserve(&request("c", 1.0, "2026-11-21T10:02:00Z"))
        .unwrap()
    {
        ReserveOutcome::Refused { reason, usage } => {
            assert_eq!(reason, SkipReason::DailyCapReached);
            assert_eq!(usage.reserved, usd(9.2));
            assert_eq!(usage.runs, 2);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    reserved(
        ledger
            .reserve(&request("d", 0.8, "2026-11-21T10:03:00Z"))
            .unwrap(),
    );
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent, usage.reserved, usage.runs),
        (Usd::ZERO, usd(10.0), 3)
    );
    // A refused reservation leaves no trace.
    assert!(ledger.entry(&id("c")).unwrap().is_none());
    // Another day starts from zero.
    reserved(
        ledger
            .reserve(&request("e", 5.0, "2026-11-22T00:00:00Z"))
            .unwrap(),
    );
    assert_eq!(ledger.day_usage(day).unwrap().reserved, usd(10.0));
}

#[test]
fn settle_replaces_the_reservation_and_flags_overspend() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let day = date(2026, 11, 21);
    reserved(
        ledger
            .reserve(&request("a", 5.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    reserved(
        ledger
            .reserve(&request("b", 5.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    let s = ledger
        .settle(&id("a"), usd(1.25), ts("2026-11-21T10:30:00Z"))
        .unwrap();
    assert!(!s.overspent && !s.was_expired);
    // The $3.75 not spent is free again.
    reserved(
        ledger
            .reserve(&request("c", 3.75, "2026-11-21T10:31:00Z"))
            .unwrap(),
    );
    let s = ledger
        .settle(&id("b"), usd(5.5), ts("2026-11-21T10:40:00Z"))
        .unwrap();
    assert!(s.overspent);
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!((usage.spent, usage.reserved), (usd(6.75), usd(3.75)));
    let b = ledger.entry(&id("b")).unwrap().unwrap();
    assert_eq!(
        (b.state, b.cost, b.overspent),
        (EntryState::Settled, Some(usd(5.5)), true)
    );
    // Settling twice, or an unknown run, is an error that names the run.
    let again = ledger
        .settle(&id("b"), usd(1.0), ts("2026-11-21T10:41:00Z"))
        .unwrap_err();
    assert!(
        matches!(
            again,
            LedgerError::WrongState {
                state: EntryState::Settled,
                ..
            }
        ),
        "{again}"
    );
    assert!(again.to_string().contains("`b`"), "{again}");
    let unknown = ledger
        .settle(&id("zz"), usd(1.0), ts("2026-11-21T10:41:00Z"))
        .unwrap_err();
    assert!(
        matches!(unknown, LedgerError::UnknownRun { .. }),
        "{unknown}"
    );
    let negative = ledger
        .settle(&id("c"), usd(-1.0), ts("2026-11-21T10:41:00Z"))
        .unwrap_err();
    assert!(
        matches!(negative, LedgerError::InvalidAmount { .. }),
        "{negative}"
    );
}

#[test]
fn release_frees_the_budget_and_the_run_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let mut req = request("a", 10.0, "2026-11-21T10:00:00Z");
    req.max_runs = 1;
    reserved(ledger.reserve(&req).unwrap());
    let mut second = request("b", 1.0, "2026-11-21T10:01:00Z");
    second.max_runs = 1;
    assert!(matches!(
        ledger.reserve(&second).unwrap(),
        ReserveOutcome::Refused {
            reason: SkipReason::DailyRunsReached,
            ..
        }
    ));
    ledger
        .release(&id("a"), ts("2026-11-21T10:02:00Z"))
        .unwrap();
    reserved(ledger.reserve(&second).unwrap());
    let a = ledger.entry(&id("a")).unwrap().unwrap();
    assert_eq!((a.state, a.cost), (EntryState::Released, None));
    let err = ledger
        .release(&id("a"), ts("2026-11-21T10:03:00Z"))
        .unwrap_err();
    assert!(matches!(err, LedgerError::WrongState { .. }), "{err}");
}

#[test]
fn expire_charges_dead_runs_in_full_after_wall_clock_plus_grace() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let day = date(2026, 11, 21);
    reserved(
        ledger
            .reserve(&request("a", 4.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    reserved(
        ledger
            .reserve(&request("b", 3.0, "2026-11-21T10:30:00Z"))
            .unwrap(),
    );
    // One millisecond before a's expiry (10:00 + 45m + 15m): nothing.
    assert!(
        ledger
            .expire(ts("2026-11-21T10:59:59.999Z"))
            .unwrap()
            .is_empty()
    );
    let expired = ledger.expire(ts("2026-11-21T11:00:00Z")).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].run_id.as_str(), expired[0].amount),
        ("a", usd(4.0))
    );
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!((usage.spent, usage.reserved), (usd(4.0), usd(3.0)));
    // Expiring again changes nothing.
    assert!(
        ledger
            .expire(ts("2026-11-21T11:00:00Z"))
            .unwrap()
            .is_empty()
    );
    // A slow run that settles after all replaces the full charge with its actual cost.
    let s = ledger
        .settle(&id("a"), usd(0.5), ts("2026-11-21T11:05:00Z"))
        .unwrap();
    assert!(s.was_expired);
    assert_eq!(ledger.day_usage(day).unwrap().spent, usd(0.5));
    // But it can no longer be released as if it never ran.
    ledger.expire(ts("2026-11-21T12:00:00Z")).unwrap();
    let err = ledger
        .release(&id("b"), ts("2026-11-21T12:01:00Z"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::WrongState {
                state: EntryState::Expired,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_run_crossing_midnight_is_charged_to_the_day_it_reserved_on() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    reserved(
        ledger
            .reserve(&request("late", 6.0, "2026-11-21T23:50:00Z"))
            .unwrap(),
    );
    ledger
        .settle(&id("late"), usd(5.0), ts("2026-11-22T00:20:00Z"))
        .unwrap();
    assert_eq!(
        ledger.day_usage(date(2026, 11, 21)).unwrap().spent,
        usd(5.0)
    );
    let next = ledger.day_usage(date(2026, 11, 22)).unwrap();
    assert_eq!((next.spent, next.runs), (Usd::ZERO, 0));
    // The same for an expiry after midnight.
    reserved(
        ledger
            .reserve(&request("dies", 2.0, "2026-11-22T23:30:00Z"))
            .unwrap(),
    );
    ledger.expire(ts("2026-11-23T02:00:00Z")).unwrap();
    assert_eq!(
        ledger.day_usage(date(2026, 11, 22)).unwrap().spent,
        usd(2.0)
    );
    assert_eq!(
        ledger.day_usage(date(2026, 11, 23)).unwrap().spent,
        Usd::ZERO
    );
}

#[test]
fn reserve_rejects_duplicates_and_non_positive_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    reserved(
        ledger
            .reserve(&request("a", 1.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    let dup = ledger
        .reserve(&request("a", 1.0, "2026-11-21T10:00:00Z"))
        .unwrap_err();
    assert!(matches!(dup, LedgerError::DuplicateRun { .. }), "{dup}");
    let zero = ledger
        .reserve(&request("z", 0.0, "2026-11-21T10:00:00Z"))
        .unwrap_err();
    assert!(matches!(zero, LedgerError::InvalidAmount { .. }), "{zero}");
}

#[test]
fn state_survives_reopening_and_entries_list_the_day() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open(dir.path());
        reserved(
            ledger
                .reserve(&request("a", 1.0, "2026-11-21T10:00:00Z"))
                .unwrap(),
        );
        reserved(
            ledger
                .reserve(&request("b", 2.0, "2026-11-21T09:00:00Z"))
                .unwrap(),
        );
        ledger
            .settle(&id("b"), usd(1.5), ts("2026-11-21T09:30:00Z"))
            .unwrap();
    }
    let ledger = open(dir.path());
    let entries = ledger.entries(date(2026, 11, 21)).unwrap();
    let rows: Vec<(&str, EntryState, Option<Usd>)> = entries
        .iter()
        .map(|e| (e.run_id.as_str(), e.state, e.cost))
        .collect();
    assert_eq!(
        rows,
        [
            ("b", EntryState::Settled, Some(usd(1.5))),
            ("a", EntryState::Reserved, None)
        ]
    );
    assert!(entries[1].is_overdue(ts("2026-11-21T11:00:00Z")));
    assert!(!entries[1].is_overdue(ts("2026-11-21T10:59:00Z")));
}

#[test]
fn journal_appends_and_reads_back_runs_with_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = ts("2026-11-21T13:05:01Z");
    let done = RunId::generate(t, "acme/api", 42);
    let died = RunId::generate(t, "acme/api", 43);
    let events = [
        Event::RunStarted {
            repo: "acme/api".into(),
            issue: 42,
            branch: Some("loop/42-x".into()),
        },
        Event::StageStarted {
            stage: "execute".into(),
            runtime_id: "codex".into(),
        },
        Event::StageStarted {
            stage: "evaluate".into(),
            runtime_id: "claude_code".into(),
        },
        Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    ];
    for (i, e) in events.iter().enumerate() {
        store
            .append(&done, t + Duration::from_secs(i as u64), e)
            .unwrap();
    }
    store
        .append(
            &died,
            t + Duration::from_secs(10),
            &Event::RunStarted {
                repo: "acme/api".into(),
                issue: 43,
                branch: None,
            },
        )
        .unwrap();
    let read = store.events(&done).unwrap();
    assert_eq!(read.len(), 4);
    assert!(read.windows(2).all(|w| w[0].seq < w[1].seq));
    let typed: Vec<Event> = read.iter().filter_map(|e| e.event()).collect();
    assert_eq!(typed, events);
    assert_eq!(stage_runtimes(&typed).len(), 2);
    let runs = store.runs(10).unwrap();
    let listed: Vec<(&RunId, RunStatus)> = runs.iter().map(|r| (&r.run_id, r.status)).collect();
    assert_eq!(
        listed,
        [
            (&died, RunStatus::Interrupted),
            (&done, RunStatus::Succeeded)
        ]
    );
    assert_eq!(runs[1].issue, Some(42));
    assert_eq!(store.runs(1).unwrap().len(), 1);
    assert!(store.events(&id("nope")).unwrap().is_empty());
}

#[test]
fn the_journal_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = SqliteLedger::open(&path).unwrap();
    store
        .append(
            &id("r"),
            ts("2026-11-21T10:00:00Z"),
            &Event::Note {
                message: "x".into(),
            },
        )
        .unwrap();
    drop(store);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let update = raw
        .execute("UPDATE journal_events SET payload = '{}'", [])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = raw.execute("DELETE FROM journal_events", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
}

#[test]
fn open_creates_parent_directories_and_a_versioned_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/state.sqlite");
    drop(SqliteLedger::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again (an up-to-date file) is fine.
    drop(raw);
    SqliteLedger::open(&path).unwrap();
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn siblings(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_database_from_a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let ledger = SqliteLedger::open(&path).unwrap();
    reserved(
        ledger
            .reserve(&request("a", 1.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    drop(ledger);
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        // Back to a rollback journal, so that switching the file to WAL would change its header.
        let mode: String = raw
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        raw.execute_batch("CREATE TABLE from_the_future (x INTEGER)")
            .unwrap();
    }
    let before = file_bytes(&path);
    let files = siblings(&path);
    let err = SqliteLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1));
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{}`", path.display())),
        "{message}"
    );
    assert!(message.contains("newer issueloop"), "{message}");
    let hint = issueloop_config::Hint::hint(&err).unwrap_or_default();
    assert!(hint.contains("upgrade"), "{hint}");
    assert_eq!(
        file_bytes(&path),
        before,
        "the newer database was rewritten"
    );
    assert_eq!(siblings(&path), files);
}

#[test]
fn a_file_that_is_not_sqlite_gives_a_clear_error_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{}`", path.display())),
        "{message}"
    );
    assert!(message.contains("left untouched"), "{message}");
    assert_eq!(file_bytes(&path), garbage);
    assert_eq!(siblings(&path), ["state.sqlite"]);
}

#[test]
fn a_corrupt_sqlite_file_gives_a_clear_error_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let ledger = SqliteLedger::open(&path).unwrap();
    reserved(
        ledger
            .reserve(&request("a", 1.0, "2026-11-21T10:00:00Z"))
            .unwrap(),
    );
    drop(ledger);
    // Keep the 100-byte header (a valid SQLite file at first sight), scribble over the rest
    // of page 1, where the catalogue of tables lives.
    let mut bytes = file_bytes(&path);
    for b in &mut bytes[100..4096] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("`{}`", path.display())),
        "{err}"
    );
    assert_eq!(file_bytes(&path), bytes);
}

#[test]
fn another_applications_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = file_bytes(&path);
    let err = SqliteLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotOurs { .. }), "{err:?}");
    assert!(err.to_string().contains("another application"), "{err}");
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn error_messages_read_well() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    std::fs::write(
        &path,
        b"not a database at all, just text; long enough to have a header......",
    )
    .unwrap();
    let err = SqliteLedger::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` is not a readable issueloop state database (not a SQLite database); it was left \
             untouched",
            path.display()
        )
    );
    assert_eq!(
        issueloop_config::Hint::hint(&err).as_deref(),
        Some(
            "restore it from a backup, or move it away and let issueloop start a new one \
             (`[state] path` in the configuration chooses the file)"
        )
    );
}

#[test]
fn named_values_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let ledger = issueloop_ledger::SqliteLedger::open(&path).unwrap();
    assert_eq!(ledger.get_value("poll").unwrap(), None);
    ledger.set_value("poll", "{\"a\":1}").unwrap();
    ledger.set_value("poll", "{\"a\":2}").unwrap();
    drop(ledger);
    let ledger = issueloop_ledger::SqliteLedger::open(&path).unwrap();
    assert_eq!(
        ledger.get_value("poll").unwrap().as_deref(),
        Some("{\"a\":2}")
    );
}

/// A pid that belonged to a process which has exited.
fn dead_pid() -> i64 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    i64::from(pid)
}

#[test]
fn a_reservation_of_a_dead_process_on_this_host_is_charged_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/ledger.sqlite");
    let ledger = SqliteLedger::open(&path).unwrap();
    if issueloop_ledger::ProcessOwner::current().is_none() {
        return; // no `/proc`: only the clock applies
    }
    let now = "2025-06-01T10:00:00Z";
    reserved(ledger.reserve(&request("r-live", 1.0, now)).unwrap());
    reserved(ledger.reserve(&request("r-dead", 2.0, now)).unwrap());
    reserved(ledger.reserve(&request("r-elsewhere", 3.0, now)).unwrap());
    reserved(ledger.reserve(&request("r-reused", 1.5, now)).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    // Another live process (this test's parent) owns `r-live`: it stays. `r-dead`'s process is gone,
    // `r-reused`'s pid now belongs to a process started at another time, `r-elsewhere` was made
    // on another host (the clock decides there).
    let set = |run: &str, host: Option<&str>, pid: i64, start: &str| {
        let n = raw
            .execute(
                "UPDATE ledger_entries SET owner_host = COALESCE(?2, owner_host), owner_pid = ?3, \
                 owner_start = ?4 WHERE run_id = ?1",
                rusqlite::params![run, host, pid, start],
            )
            .unwrap();
        assert_eq!(n, 1);
    };
    let parent = i64::from(std::os::unix::process::parent_id());
    let parent_start =
        issueloop_ledger::process_start(std::os::unix::process::parent_id()).unwrap();
    set("r-live", None, parent, &parent_start);
    set("r-dead", None, dead_pid(), "12345");
    set("r-elsewhere", Some("another-host"), dead_pid(), "12345");
    set("r-reused", None, parent, &format!("{parent_start}0"));

    let later = ts("2025-06-01T10:05:00Z");
    let charged = ledger.expire_dead(later).unwrap();
    let mut runs: Vec<String> = charged.iter().map(|e| e.run_id.to_string()).collect();
    runs.sort();
    assert_eq!(runs, ["r-dead", "r-reused"]);
    let usage = ledger.day_usage(date(2025, 6, 1)).unwrap();
    assert_eq!(usage.spent, usd(3.5), "charged in full");
    assert_eq!(usage.reserved, usd(4.0), "the others still reserved");
    assert!(ledger.expire_dead(later).unwrap().is_empty(), "once");
}

#[test]
fn a_file_of_schema_version_2_is_migrated_and_its_reservations_keep_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.pragma_update(None, "application_id", issueloop_ledger::APPLICATION_ID)
            .unwrap();
        raw.execute_batch(
            "CREATE TABLE ledger_entries (
                run_id TEXT PRIMARY KEY NOT NULL, repo TEXT NOT NULL, issue INTEGER NOT NULL,
                day TEXT NOT NULL, state TEXT NOT NULL
                    CHECK (state IN ('reserved', 'settled', 'released', 'expired')),
                reserved_micros INTEGER NOT NULL CHECK (reserved_micros > 0),
                cost_micros INTEGER CHECK (cost_micros >= 0),
                overspent INTEGER NOT NULL DEFAULT 0, reserved_at_ms INTEGER NOT NULL,
                expires_at_ms INTEGER NOT NULL, closed_at_ms INTEGER) STRICT;
             CREATE TABLE journal_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                run_id TEXT NOT NULL, at_ms INTEGER NOT NULL, type TEXT NOT NULL,
                payload TEXT NOT NULL) STRICT;
             CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
             INSERT INTO ledger_entries (run_id, repo, issue, day, state, reserved_micros,
                reserved_at_ms, expires_at_ms)
             VALUES ('r-old', 'acme/api', 42, '2025-06-01', 'reserved', 1000000,
                1748772000000, 1748775600000);",
        )
        .unwrap();
        raw.pragma_update(None, "user_version", 2).unwrap();
    }
    let ledger = SqliteLedger::open(&path).unwrap();
    let entry = ledger.entry(&id("r-old")).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Reserved);
    assert!(
        ledger
            .expire_dead(ts("2025-06-01T10:05:00Z"))
            .unwrap()
            .is_empty(),
        "no owner recorded: not judged by process"
    );
    let expired = ledger.expire(ts("2025-06-01T11:00:00Z")).unwrap();
    assert_eq!(expired.len(), 1, "the clock still expires it");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn the_journal_never_stores_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let run = id("r-secret");
    ledger
        .append(
            &run,
            ts("2025-06-01T10:00:00Z"),
            &Event::Note {
                message: "agent said ghp_AbCdEfGhIjKlMnOpQrSt0123456789 and \
                          sk-ant-api03-AbCdEfGhIjKlMnOpQrSt0123"
                    .into(),
            },
        )
        .unwrap();
    let events = ledger.events(&run).unwrap();
    let text = serde_json::to_string(&events[0].payload).unwrap();
    assert!(!text.contains("KlMnOpQrSt"), "{text}");
    assert!(text.contains("ghp_[REDACTED]"), "{text}");
}
