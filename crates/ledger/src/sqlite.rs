//! The embedded store: the ledger and the journal in one SQLite file (WAL, busy timeout, every
//! read-modify-write in a `BEGIN IMMEDIATE` transaction, versioned schema migrations).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::Event;
use crate::journal::{Journal, JournalEntry, RunId, RunSummary};
use crate::ledger::{
    DayUsage, EntryState, Expired, Ledger, LedgerEntry, LedgerError, Reservation, ReserveOutcome,
    ReserveRequest, Settlement, admit_held, check_release, check_settle,
};
use crate::money::Usd;
use crate::owner::{ProcessOwner, owner_is_gone, process_start};
use crate::transfer::{
    EntryRecord, EventRecord, ImportSummary, OwnerRecord, Record, TRANSFER_VERSION, ValueRecord,
    plan_import,
};

/// Masks secrets in every string of a JSON value (the one rule of `issueloop_config::redact`).
pub(crate) fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = issueloop_config::redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// `PRAGMA application_id` of an issueloop state file (`ISLP`): tells our files from other
/// applications' SQLite databases.
pub const APPLICATION_ID: i32 = 0x4953_4c50;

/// Schema migrations; migration `i` brings the file to `PRAGMA user_version = i + 1`. Never edit
/// a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger and the journal.
    "CREATE TABLE ledger_entries (
        run_id          TEXT PRIMARY KEY NOT NULL,
        repo            TEXT NOT NULL,
        issue           INTEGER NOT NULL,
        day             TEXT NOT NULL,
        state           TEXT NOT NULL
                        CHECK (state IN ('reserved', 'settled', 'released', 'expired')),
        reserved_micros INTEGER NOT NULL CHECK (reserved_micros > 0),
        cost_micros     INTEGER CHECK (cost_micros >= 0),
        overspent       INTEGER NOT NULL DEFAULT 0,
        reserved_at_ms  INTEGER NOT NULL,
        expires_at_ms   INTEGER NOT NULL,
        closed_at_ms    INTEGER
    ) STRICT;
    CREATE INDEX ledger_entries_by_day ON ledger_entries (day);
    CREATE INDEX ledger_entries_open ON ledger_entries (state, expires_at_ms);

    CREATE TABLE journal_events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id  TEXT NOT NULL,
        at_ms   INTEGER NOT NULL,
        type    TEXT NOT NULL,
        payload TEXT NOT NULL
    ) STRICT;
    CREATE INDEX journal_events_by_run ON journal_events (run_id, seq);
    CREATE TRIGGER journal_events_no_update BEFORE UPDATE ON journal_events
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TRIGGER journal_events_no_delete BEFORE DELETE ON journal_events
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;",
    // 2: small named values that must survive restarts (the forge's poll watermark).
    "CREATE TABLE kv (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;",
    // 3: the process that made a reservation, so a later tick on the same host can see it died.
    // Empty for reservations made before (and on hosts without `/proc`): the clock decides.
    "ALTER TABLE ledger_entries ADD COLUMN owner_host TEXT;
    ALTER TABLE ledger_entries ADD COLUMN owner_pid INTEGER;
    ALTER TABLE ledger_entries ADD COLUMN owner_start TEXT;",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// The ledger and journal in a SQLite file. One connection, used under a mutex; open one
/// `SqliteLedger` per process (or several: they coordinate through SQLite's locks).
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// This process, recorded with every reservation it makes.
    owner: Option<ProcessOwner>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish()
    }
}

/// An error inside a transaction: SQLite's, mapped with the file and operation on the way out,
/// or the ledger's own.
enum TxError {
    Sql(rusqlite::Error),
    Ledger(LedgerError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sql(e)
    }
}

impl From<LedgerError> for TxError {
    fn from(e: LedgerError) -> Self {
        TxError::Ledger(e)
    }
}

/// What the header and catalogue of an existing file say.
struct FileFacts {
    application_id: i32,
    user_version: i64,
    objects: i64,
}

impl SqliteLedger {
    /// Open (or create) the state database at `path`: create its directory, check the file is
    /// ours and not from a newer version, switch to WAL and apply pending migrations.
    ///
    /// A file that is not SQLite, is corrupt, belongs to another application or was written by
    /// a newer schema is refused with an error naming it, and left byte for byte as it was.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteLedger, LedgerError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let at = path.as_path();
        let map = |op| move |e| sql_error(at, op, e);
        let mut conn = Connection::open(&path).map_err(map("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map("open"))?;
        // Read-only checks first: nothing is written until the file is known to be ours.
        let facts = read_facts(&conn).map_err(map("open"))?;
        check_facts(&path, &facts)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(map("switch to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %path.display(),
                mode,
                "the state database could not switch to WAL; concurrent runs will wait longer"
            );
        }
        // Every commit reaches the disk before `reserve` returns: a reservation must survive a
        // power cut, not only a crash of the process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(map("set synchronous"))?;
        migrate(&mut conn, at)?;
        Ok(SqliteLedger {
            path,
            conn: Mutex::new(conn),
            owner: ProcessOwner::current(),
        })
    }

    /// The file this ledger lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the first
    /// read, so the check and the change see the same state, whatever other processes do.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, LedgerError> {
        // A panic while holding the lock dropped (rolled back) its transaction, so the
        // connection is still consistent.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let run = |conn: &mut Connection| -> Result<T, TxError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run(&mut conn).map_err(|e| self.tx_error(op, e))
    }

    /// Run `f` on the connection outside an explicit transaction: for reads and single-statement
    /// appends, each of which SQLite runs atomically on its own.
    fn with_conn<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, TxError>,
    ) -> Result<T, LedgerError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn).map_err(|e| self.tx_error(op, e))
    }

    fn tx_error(&self, op: &'static str, e: TxError) -> LedgerError {
        match e {
            TxError::Sql(e) => sql_error(&self.path, op, e),
            TxError::Ledger(e) => e,
        }
    }

    fn bad_row(&self, detail: String) -> TxError {
        TxError::Ledger(LedgerError::BadRow {
            path: self.path.clone(),
            detail,
        })
    }

    fn usage_in(&self, conn: &Connection, day: Date) -> Result<DayUsage, TxError> {
        let (spent, reserved, runs) = conn.query_row(
            "SELECT
                COALESCE(SUM(CASE WHEN state IN ('settled', 'expired') THEN cost_micros END), 0),
                COALESCE(SUM(CASE WHEN state = 'reserved' THEN reserved_micros END), 0),
                COUNT(CASE WHEN state <> 'released' THEN 1 END)
             FROM ledger_entries WHERE day = ?1",
            [day.to_string()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        Ok(DayUsage {
            day,
            spent: Usd::from_micros(spent),
            reserved: Usd::from_micros(reserved),
            runs: u32::try_from(runs).unwrap_or(u32::MAX),
        })
    }

    /// Charge a reserved entry its full amount, as the ledger's rules say for a run that never
    /// settled.
    fn charge_in_full(
        &self,
        tx: &rusqlite::Transaction<'_>,
        entry: LedgerEntry,
        now: Timestamp,
    ) -> Result<Expired, TxError> {
        tx.execute(
            "UPDATE ledger_entries
             SET state = 'expired', cost_micros = reserved_micros, closed_at_ms = ?2
             WHERE run_id = ?1",
            params![entry.run_id.as_str(), now.as_millisecond()],
        )?;
        tracing::debug!(
            run = %entry.run_id,
            amount = %entry.reserved,
            day = %entry.day,
            "reservation charged at its full amount"
        );
        Ok(Expired {
            run_id: entry.run_id,
            repo: entry.repo,
            issue: entry.issue,
            day: entry.day,
            amount: entry.reserved,
            reserved_at: entry.reserved_at,
            expires_at: entry.expires_at,
        })
    }

    /// Charge in full, now rather than at their expiry, the open reservations made on this host
    /// by a process that is gone (its pid is dead, or reused by a later process): their run
    /// cannot settle any more. Reservations of other hosts, of live processes, and those made
    /// without an owner keep the time-based rule of [`Ledger::expire`].
    pub fn expire_dead(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        let Some(me) = self.owner.clone() else {
            return Ok(Vec::new());
        };
        self.write("expire dead runs", |tx| {
            let owned = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {ENTRY_COLUMNS}, owner_pid, owner_start FROM ledger_entries
                     WHERE state = 'reserved' AND owner_host = ?1 AND owner_pid IS NOT NULL
                     ORDER BY reserved_at_ms, run_id"
                ))?;
                stmt.query_map([me.host.as_str()], |r| {
                    Ok((
                        RawEntry::from_row(r)?,
                        r.get::<_, i64>(11)?,
                        r.get::<_, Option<String>>(12)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?
            };
            let mut charged = Vec::new();
            for (raw, pid, start) in owned {
                let Ok(pid) = u32::try_from(pid) else {
                    continue;
                };
                let owner = ProcessOwner {
                    host: me.host.clone(),
                    pid,
                    start: start.unwrap_or_default(),
                };
                if pid == me.pid || !owner_is_gone(&owner, &me.host, process_start(pid).as_deref())
                {
                    continue;
                }
                let entry = raw.into_entry(self)?;
                charged.push(self.charge_in_full(tx, entry, now)?);
            }
            Ok(charged)
        })
    }

    /// The day's unsettled reservations of `req`'s issue, for the soft-claim rule.
    fn held_in(
        &self,
        conn: &Connection,
        day: Date,
        req: &ReserveRequest,
    ) -> Result<Vec<LedgerEntry>, TxError> {
        if req.soft_claim.is_zero() {
            return Ok(Vec::new());
        }
        let issue = i64::try_from(req.issue).unwrap_or(i64::MAX);
        let mut stmt = conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries
             WHERE day = ?1 AND repo = ?2 AND issue = ?3 AND state = 'reserved'"
        ))?;
        let raws = stmt
            .query_map(
                params![day.to_string(), req.repo, issue],
                RawEntry::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(|r| r.into_entry(self)).collect()
    }

    fn entry_in(&self, conn: &Connection, run_id: &RunId) -> Result<Option<LedgerEntry>, TxError> {
        let raw = conn
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE run_id = ?1"),
                [run_id.as_str()],
                RawEntry::from_row,
            )
            .optional()?;
        raw.map(|r| r.into_entry(self)).transpose()
    }
}

const ENTRY_COLUMNS: &str = "run_id, repo, issue, day, state, reserved_micros, cost_micros, \
                             overspent, reserved_at_ms, expires_at_ms, closed_at_ms";

/// A `ledger_entries` row as stored, before its text and integers are checked.
struct RawEntry {
    run_id: String,
    repo: String,
    issue: i64,
    day: String,
    state: String,
    reserved_micros: i64,
    cost_micros: Option<i64>,
    overspent: bool,
    reserved_at_ms: i64,
    expires_at_ms: i64,
    closed_at_ms: Option<i64>,
}

impl RawEntry {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
        Ok(RawEntry {
            run_id: r.get(0)?,
            repo: r.get(1)?,
            issue: r.get(2)?,
            day: r.get(3)?,
            state: r.get(4)?,
            reserved_micros: r.get(5)?,
            cost_micros: r.get(6)?,
            overspent: r.get(7)?,
            reserved_at_ms: r.get(8)?,
            expires_at_ms: r.get(9)?,
            closed_at_ms: r.get(10)?,
        })
    }

    fn into_entry(self, store: &SqliteLedger) -> Result<LedgerEntry, TxError> {
        let what = |field: &str, value: &dyn std::fmt::Display| {
            store.bad_row(format!(
                "ledger entry `{}`: {field} `{value}` is not valid",
                self.run_id
            ))
        };
        let day: Date = self.day.parse().map_err(|_| what("day", &self.day))?;
        let state = EntryState::from_id(&self.state).ok_or_else(|| what("state", &self.state))?;
        let issue = u64::try_from(self.issue).map_err(|_| what("issue", &self.issue))?;
        let ts =
            |field: &str, ms: i64| Timestamp::from_millisecond(ms).map_err(|_| what(field, &ms));
        let reserved_at = ts("reserved_at_ms", self.reserved_at_ms)?;
        let expires_at = ts("expires_at_ms", self.expires_at_ms)?;
        let closed_at = self
            .closed_at_ms
            .map(|ms| ts("closed_at_ms", ms))
            .transpose()?;
        Ok(LedgerEntry {
            run_id: RunId::from_stored(self.run_id),
            repo: self.repo,
            issue,
            day,
            state,
            reserved: Usd::from_micros(self.reserved_micros),
            cost: self.cost_micros.map(Usd::from_micros),
            overspent: self.overspent,
            reserved_at,
            expires_at,
            closed_at,
        })
    }
}

impl Ledger for SqliteLedger {
    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        req.check_amount()?;
        let reservation = Reservation::new(req);
        let issue = i64::try_from(req.issue).unwrap_or(i64::MAX);
        self.write("reserve", |tx| {
            if self.entry_in(tx, &req.run_id)?.is_some() {
                return Err(LedgerError::DuplicateRun {
                    run_id: req.run_id.clone(),
                }
                .into());
            }
            let usage = self.usage_in(tx, reservation.day)?;
            let held = self.held_in(tx, reservation.day, req)?;
            if let Some(reason) = admit_held(&usage, &held, req) {
                return Ok(ReserveOutcome::Refused { reason, usage });
            }
            let owner = self.owner.as_ref();
            tx.execute(
                "INSERT INTO ledger_entries
                    (run_id, repo, issue, day, state, reserved_micros, reserved_at_ms, expires_at_ms,
                     owner_host, owner_pid, owner_start)
                 VALUES (?1, ?2, ?3, ?4, 'reserved', ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    req.run_id.as_str(),
                    req.repo,
                    issue,
                    reservation.day.to_string(),
                    req.amount.micros(),
                    reservation.reserved_at.as_millisecond(),
                    reservation.expires_at.as_millisecond(),
                    owner.map(|o| o.host.as_str()),
                    owner.map(|o| i64::from(o.pid)),
                    owner.map(|o| o.start.as_str()),
                ],
            )?;
            Ok(ReserveOutcome::Reserved(reservation.clone()))
        })
    }

    fn settle(
        &self,
        run_id: &RunId,
        actual: Usd,
        now: Timestamp,
    ) -> Result<Settlement, LedgerError> {
        self.write("settle", |tx| {
            let entry = self
                .entry_in(tx, run_id)?
                .ok_or_else(|| LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                })?;
            let settlement = check_settle(&entry, actual)?;
            tx.execute(
                "UPDATE ledger_entries
                 SET state = 'settled', cost_micros = ?2, overspent = ?3, closed_at_ms = ?4
                 WHERE run_id = ?1",
                params![
                    run_id.as_str(),
                    actual.micros(),
                    settlement.overspent,
                    now.as_millisecond()
                ],
            )?;
            if settlement.overspent {
                tracing::warn!(
                    run = %run_id,
                    reserved = %entry.reserved,
                    cost = %actual,
                    "run cost more than it reserved; recorded as it is"
                );
            }
            Ok(settlement)
        })
    }

    fn release(&self, run_id: &RunId, now: Timestamp) -> Result<(), LedgerError> {
        self.write("release", |tx| {
            let entry = self
                .entry_in(tx, run_id)?
                .ok_or_else(|| LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                })?;
            check_release(&entry)?;
            tx.execute(
                "UPDATE ledger_entries SET state = 'released', closed_at_ms = ?2 WHERE run_id = ?1",
                params![run_id.as_str(), now.as_millisecond()],
            )?;
            Ok(())
        })
    }

    fn expire(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        self.write("expire", |tx| {
            let raws = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM ledger_entries
                     WHERE state = 'reserved' AND expires_at_ms <= ?1
                     ORDER BY reserved_at_ms, run_id"
                ))?;
                stmt.query_map([now.as_millisecond()], RawEntry::from_row)?
                    .collect::<Result<Vec<_>, _>>()?
            };
            let mut expired = Vec::with_capacity(raws.len());
            for raw in raws {
                let entry = raw.into_entry(self)?;
                expired.push(self.charge_in_full(tx, entry, now)?);
            }
            Ok(expired)
        })
    }

    fn day_usage(&self, day: Date) -> Result<DayUsage, LedgerError> {
        self.with_conn("read the day's usage", |conn| self.usage_in(conn, day))
    }

    fn entries(&self, day: Date) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.with_conn("read the day's entries", |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE day = ?1
                 ORDER BY reserved_at_ms, run_id"
            ))?;
            let raws = stmt
                .query_map([day.to_string()], RawEntry::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raws.into_iter().map(|r| r.into_entry(self)).collect()
        })
    }

    fn entry(&self, run_id: &RunId) -> Result<Option<LedgerEntry>, LedgerError> {
        self.with_conn("read a ledger entry", |conn| self.entry_in(conn, run_id))
    }
}

impl SqliteLedger {
    /// A named value stored beside the ledger (e.g. the forge's poll state), if set.
    pub fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.with_conn("read a stored value", |conn| {
            let mut stmt = conn.prepare("SELECT value FROM kv WHERE key = ?1")?;
            let mut rows = stmt.query([key])?;
            Ok(match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            })
        })
    }

    /// Store a named value, replacing the previous one.
    pub fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.write("store a value", |tx| {
            tx.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }
}

impl Journal for SqliteLedger {
    fn append(&self, run_id: &RunId, at: Timestamp, event: &Event) -> Result<u64, LedgerError> {
        // The journal outlives the run and is printed by `runs show`: every string in it (a
        // harness message, gate output, an error) passes the redaction rule first.
        let mut payload = event.payload();
        redact_json(&mut payload);
        let payload = payload.to_string();
        self.with_conn("append to the journal", |conn| {
            conn.execute(
                "INSERT INTO journal_events (run_id, at_ms, type, payload) VALUES (?1, ?2, ?3, ?4)",
                params![run_id.as_str(), at.as_millisecond(), event.kind(), payload],
            )?;
            Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or(0))
        })
    }

    fn events(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, LedgerError> {
        self.with_conn("read the journal", |conn| self.events_in(conn, run_id))
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, LedgerError> {
        self.with_conn("list runs", |conn| {
            let ids: Vec<String> = {
                let mut stmt = conn.prepare(
                    "SELECT run_id FROM journal_events GROUP BY run_id
                     ORDER BY MIN(seq) DESC LIMIT ?1",
                )?;
                stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut runs = Vec::with_capacity(ids.len());
            for id in ids {
                let run_id = RunId::from_stored(id);
                let events = self.events_in(conn, &run_id)?;
                let entry = self.entry_in(conn, &run_id)?;
                runs.extend(RunSummary::from_entries(&events, entry));
            }
            Ok(runs)
        })
    }
}

impl SqliteLedger {
    fn events_in(&self, conn: &Connection, run_id: &RunId) -> Result<Vec<JournalEntry>, TxError> {
        let mut stmt = conn.prepare(
            "SELECT seq, at_ms, type, payload FROM journal_events WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([run_id.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, at_ms, kind, payload)| {
                let at = Timestamp::from_millisecond(at_ms).map_err(|_| {
                    self.bad_row(format!("journal event {seq}: time `{at_ms}` is not valid"))
                })?;
                let payload = serde_json::from_str(&payload).map_err(|e| {
                    self.bad_row(format!("journal event {seq}: payload is not JSON: {e}"))
                })?;
                Ok(JournalEntry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    run_id: run_id.clone(),
                    at,
                    kind,
                    payload,
                })
            })
            .collect()
    }
}

impl SqliteLedger {
    /// Everything in the file as export records (see [`crate::StateStore::export_records`]),
    /// read in one transaction.
    pub fn export_records(&self) -> Result<Vec<Record>, LedgerError> {
        self.write("export", |tx| self.export_in(tx))
    }

    /// Add exported records (see [`crate::StateStore::import_records`]) in one transaction.
    pub fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError> {
        self.write("import", |tx| {
            let current = self.export_in(tx)?;
            let plan = plan_import(&current, records)?;
            for e in &plan.entries {
                let owner = e.owner.as_ref();
                tx.execute(
                    "INSERT INTO ledger_entries
                        (run_id, repo, issue, day, state, reserved_micros, cost_micros, overspent,
                         reserved_at_ms, expires_at_ms, closed_at_ms,
                         owner_host, owner_pid, owner_start)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        e.run_id.as_str(),
                        e.repo,
                        i64::try_from(e.issue).unwrap_or(i64::MAX),
                        e.day.to_string(),
                        e.state.id(),
                        e.reserved_micros,
                        e.cost_micros,
                        e.overspent,
                        e.reserved_at.as_millisecond(),
                        e.expires_at.as_millisecond(),
                        e.closed_at.map(|t| t.as_millisecond()),
                        owner.map(|o| o.host.as_str()),
                        owner.and_then(|o| o.pid).map(i64::from),
                        owner.and_then(|o| o.start.as_deref()),
                    ],
                )?;
            }
            for e in &plan.events {
                tx.execute(
                    "INSERT INTO journal_events (run_id, at_ms, type, payload)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        e.run_id.as_str(),
                        e.at.as_millisecond(),
                        e.kind,
                        e.payload.to_string()
                    ],
                )?;
            }
            for v in &plan.values {
                tx.execute(
                    "INSERT INTO kv (key, value) VALUES (?1, ?2)",
                    [&v.key, &v.value],
                )?;
            }
            Ok(plan.summary)
        })
    }

    fn export_in(&self, conn: &Connection) -> Result<Vec<Record>, TxError> {
        let mut out = Vec::new();
        let owned = {
            let mut stmt = conn.prepare(&format!(
                "SELECT {ENTRY_COLUMNS}, owner_host, owner_pid, owner_start FROM ledger_entries
                 ORDER BY reserved_at_ms, run_id"
            ))?;
            stmt.query_map([], |r| {
                Ok((
                    RawEntry::from_row(r)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        for (raw, host, pid, start) in owned {
            let entry = raw.into_entry(self)?;
            let owner = host.map(|host| OwnerRecord {
                host,
                pid: pid.and_then(|p| u32::try_from(p).ok()),
                start,
            });
            out.push(Record::Entry(EntryRecord::new(&entry, owner)));
        }
        let runs: Vec<String> = {
            let mut stmt =
                conn.prepare("SELECT DISTINCT run_id FROM journal_events ORDER BY run_id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut events = Vec::new();
        for run in runs {
            events.extend(self.events_in(conn, &RunId::from_stored(run))?);
        }
        events.sort_by_key(|e| e.seq);
        out.extend(events.into_iter().map(|e| {
            Record::Event(EventRecord {
                version: TRANSFER_VERSION,
                run_id: e.run_id,
                at: e.at,
                kind: e.kind,
                payload: e.payload,
            })
        }));
        let values: Vec<(String, String)> = {
            let mut stmt = conn.prepare("SELECT key, value FROM kv ORDER BY key")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        out.extend(values.into_iter().map(|(key, value)| {
            Record::Value(ValueRecord {
                version: TRANSFER_VERSION,
                key,
                value,
            })
        }));
        Ok(out)
    }
}

fn read_facts(conn: &Connection) -> rusqlite::Result<FileFacts> {
    Ok(FileFacts {
        application_id: conn.query_row("PRAGMA application_id", [], |r| r.get(0))?,
        user_version: conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
        // Reading the catalogue also makes SQLite look past the header at page 1.
        objects: conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0))?,
    })
}

fn check_facts(path: &Path, facts: &FileFacts) -> Result<(), LedgerError> {
    let fresh = facts.application_id == 0 && facts.user_version == 0 && facts.objects == 0;
    if fresh {
        return Ok(());
    }
    if facts.application_id != APPLICATION_ID {
        return Err(LedgerError::NotOurs {
            path: path.to_path_buf(),
            detail: format!(
                "application id {:#010x}, schema version {}, {} tables and indexes",
                facts.application_id, facts.user_version, facts.objects
            ),
        });
    }
    if facts.user_version > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            path: path.to_path_buf(),
            found: facts.user_version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Apply the migrations the file lacks, each with its version bump, in one immediate
/// transaction; two processes opening a new file at once apply them once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let map = |e| sql_error(path, "migrate the schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let facts = read_facts(&tx).map_err(map)?;
    check_facts(path, &facts)?;
    let from = usize::try_from(facts.user_version).unwrap_or(0);
    if from >= MIGRATIONS.len() {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(map)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(map)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(map)?;
    tx.commit().map_err(map)?;
    tracing::debug!(path = %path.display(), from, to = SCHEMA_VERSION, "state database migrated");
    Ok(())
}

fn sql_error(path: &Path, op: &'static str, e: rusqlite::Error) -> LedgerError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => LedgerError::Corrupt {
            path: path.to_path_buf(),
            detail: "not a SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => LedgerError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("SQLite reports it corrupt: {e}"),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => LedgerError::Busy {
            path: path.to_path_buf(),
            op,
            timeout: BUSY_TIMEOUT,
        },
        _ => LedgerError::Storage {
            path: path.to_path_buf(),
            op,
            source: Box::new(e),
        },
    }
}
