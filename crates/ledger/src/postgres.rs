//! The shared store: the ledger, the journal and named values in a PostgreSQL database, so
//! several machines running `serve` share one daily cap. Reservations are serialised per UTC
//! day (`SELECT … FOR UPDATE` on the day's row), the cap rule is [`admit_held`], the schema is
//! versioned like the SQLite file's, and every connection and statement has a timeout.
//!
//! The client is the synchronous `postgres` crate, which drives its connection on a runtime of
//! its own and so must not be called from inside the pipeline's tokio runtime: each store owns
//! one thread that holds the connection, and the trait methods hand it their work and wait
//! (with a deadline) for the answer, as they would wait for SQLite's file lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use issueloop_config::DatabaseUrl;
use jiff::Timestamp;
use jiff::civil::Date;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::Event;
use crate::journal::{Journal, JournalEntry, RunId, RunSummary};
use crate::ledger::{
    DayUsage, EntryState, Expired, Ledger, LedgerEntry, LedgerError, Reservation, ReserveOutcome,
    ReserveRequest, Settlement, admit_held, check_release, check_settle,
};
use crate::money::Usd;
use crate::owner::{ProcessOwner, owner_is_gone, process_start};
use crate::sqlite::redact_json;
use crate::transfer::{
    EntryRecord, EventRecord, ImportSummary, OwnerRecord, Record, TRANSFER_VERSION, ValueRecord,
    plan_import,
};

/// Schema migrations of the `issueloop` schema; migration `i` brings it to version `i + 1`
/// (recorded in `issueloop.schema_version`). Never edit a released migration: append one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger (with one row per UTC day to serialise reservations on), the journal and
    // named values.
    "CREATE TABLE issueloop.ledger_days (
        day TEXT PRIMARY KEY
    );
    CREATE TABLE issueloop.ledger_entries (
        run_id          TEXT PRIMARY KEY,
        repo            TEXT NOT NULL,
        issue           BIGINT NOT NULL,
        day             TEXT NOT NULL REFERENCES issueloop.ledger_days (day),
        state           TEXT NOT NULL
                        CHECK (state IN ('reserved', 'settled', 'released', 'expired')),
        reserved_micros BIGINT NOT NULL CHECK (reserved_micros > 0),
        cost_micros     BIGINT CHECK (cost_micros >= 0),
        overspent       BOOLEAN NOT NULL DEFAULT false,
        reserved_at_ms  BIGINT NOT NULL,
        expires_at_ms   BIGINT NOT NULL,
        closed_at_ms    BIGINT,
        -- The process that made the reservation, so a later tick on the same host can see it
        -- died; empty on hosts without `/proc` (then the clock decides).
        owner_host      TEXT,
        owner_pid       BIGINT,
        owner_start     TEXT
    );
    CREATE INDEX ledger_entries_by_day ON issueloop.ledger_entries (day);
    CREATE INDEX ledger_entries_open ON issueloop.ledger_entries (state, expires_at_ms);

    CREATE TABLE issueloop.journal_events (
        seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id  TEXT NOT NULL,
        at_ms   BIGINT NOT NULL,
        type    TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX journal_events_by_run ON issueloop.journal_events (run_id, seq);
    CREATE FUNCTION issueloop.journal_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$;
    CREATE TRIGGER journal_events_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON issueloop.journal_events
        FOR EACH STATEMENT EXECUTE FUNCTION issueloop.journal_append_only();

    CREATE TABLE issueloop.kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
];

/// The schema version this build writes and understands.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What `issueloop.schema_version.application` holds in a schema of ours.
const APPLICATION: &str = "issueloop";

/// Key of the advisory lock that serialises migrations between processes (`ISLP`).
const MIGRATION_LOCK: i64 = 0x4953_4c50;

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one statement, or a wait for another transaction's row lock, may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A transaction left open this long (a stuck process) is ended by the server.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a caller waits for one operation (connecting, then a few statements) to finish.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The ledger and journal in a PostgreSQL database. One connection per store, on a thread of
/// its own; open one `PgLedger` per process (several processes and machines coordinate
/// through the database's row locks).
pub struct PgLedger {
    /// The URL with its password replaced: what messages show.
    shown: PathBuf,
    jobs: mpsc::Sender<Job>,
    /// This process, recorded with every reservation it makes.
    owner: Option<ProcessOwner>,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("url", &self.shown)
            .finish()
    }
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// An error inside an operation: the database's, mapped with the operation on the way out, or
/// the ledger's own.
enum TxError {
    Pg(postgres::Error),
    Ledger(LedgerError),
}

impl From<postgres::Error> for TxError {
    fn from(e: postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl From<LedgerError> for TxError {
    fn from(e: LedgerError) -> Self {
        TxError::Ledger(e)
    }
}

/// The connection thread's state: how to connect, and the open connection (re-opened on the
/// next operation after it broke).
struct Worker {
    config: postgres::Config,
    shown: PathBuf,
    conn: Option<Conn>,
}

struct Conn {
    client: Client,
    /// Statements prepared on this connection, by their text.
    statements: HashMap<&'static str, Statement>,
}

impl Worker {
    fn conn(&mut self) -> Result<&mut Conn, TxError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            tracing::warn!(url = %self.shown.display(), "the state database connection broke; reconnecting");
            self.conn = None;
        }
        if self.conn.is_none() {
            let client = self.config.connect(NoTls)?;
            self.conn = Some(Conn {
                client,
                statements: HashMap::new(),
            });
        }
        self.conn.as_mut().ok_or_else(|| {
            TxError::Ledger(LedgerError::WorkerStopped {
                path: self.shown.clone(),
            })
        })
    }
}

/// One transaction with the connection's statement cache.
struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl Conn {
    fn tx(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            statements: &mut self.statements,
        })
    }
}

impl Tx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_one(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, params)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }

    fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

/// Whether opening may create the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Create {
    /// Apply pending migrations (creating the schema on first use).
    Migrate,
    /// Use the schema only if it exists and is current; never write.
    IfExists,
}

impl PgLedger {
    /// Connect to the database at `url`, refuse a schema written by a newer issueloop or
    /// another application, and apply pending migrations (creating the `issueloop` schema on
    /// first use). Nothing is written to a database that is refused.
    pub fn open(url: &DatabaseUrl) -> Result<PgLedger, LedgerError> {
        match PgLedger::open_with(url, Create::Migrate)? {
            Some(store) => Ok(store),
            None => Err(LedgerError::WorkerStopped {
                path: PathBuf::from(url.redacted()),
            }),
        }
    }

    /// Like [`PgLedger::open`], but never writes: `None` when the database has no issueloop
    /// schema yet (nothing was ever recorded there). A schema older than this build is
    /// migrated all the same.
    pub fn open_existing(url: &DatabaseUrl) -> Result<Option<PgLedger>, LedgerError> {
        PgLedger::open_with(url, Create::IfExists)
    }

    fn open_with(url: &DatabaseUrl, create: Create) -> Result<Option<PgLedger>, LedgerError> {
        let shown = PathBuf::from(url.redacted());
        let config = client_config(url, &shown)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut worker = Worker {
            config,
            shown: shown.clone(),
            conn: None,
        };
        std::thread::Builder::new()
            .name("issueloop-postgres".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job(&mut worker);
                }
            })
            .map_err(|e| LedgerError::Storage {
                path: shown.clone(),
                op: "start the database connection thread",
                source: Box::new(e),
            })?;
        let store = PgLedger {
            shown,
            jobs,
            owner: ProcessOwner::current(),
        };
        let exists = store.call("open", move |w| {
            let conn = w.conn()?;
            let mut tx = conn.tx()?;
            let row = tx.query_one(
                "SELECT to_regclass('issueloop.schema_version') IS NOT NULL",
                &[],
            )?;
            Ok(row.try_get::<_, bool>(0)?)
        })?;
        if !exists && create == Create::IfExists {
            return Ok(None);
        }
        store.call("migrate the schema", migrate)?;
        Ok(Some(store))
    }

    /// Where this store lives: the URL with its password replaced.
    pub fn location(&self) -> String {
        self.shown.display().to_string()
    }

    /// Run `f` on the connection thread and wait for its answer.
    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Worker) -> Result<T, TxError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let shown = self.shown.clone();
        let job: Job = Box::new(move |worker: &mut Worker| {
            let result = f(worker).map_err(|e| map_error(&shown, op, e));
            // The caller may have stopped waiting (its deadline passed); nothing to do then.
            let _ = answer.send(result);
        });
        let stopped = || LedgerError::WorkerStopped {
            path: self.shown.clone(),
        };
        self.jobs.send(job).map_err(|_| stopped())?;
        match answered.recv_timeout(CALL_TIMEOUT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LedgerError::Busy {
                path: self.shown.clone(),
                op,
                timeout: CALL_TIMEOUT,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(stopped()),
        }
    }

    /// Charge in full, now rather than at their expiry, the open reservations made on this host
    /// by a process that is gone (its pid is dead, or reused by a later process): their run
    /// cannot settle any more. Reservations of other hosts (other machines of the fleet), of
    /// live processes, and those made without an owner keep the time-based rule of
    /// [`Ledger::expire`].
    pub fn expire_dead(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        let Some(me) = self.owner.clone() else {
            return Ok(Vec::new());
        };
        let shown = self.shown.clone();
        self.call("expire dead runs", move |w| {
            const SQL: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, \
                 cost_micros, overspent, reserved_at_ms, expires_at_ms, closed_at_ms, \
                 owner_pid, owner_start FROM issueloop.ledger_entries \
                 WHERE state = 'reserved' AND owner_host = $1 AND owner_pid IS NOT NULL \
                 ORDER BY reserved_at_ms, run_id FOR UPDATE";
            let mut tx = w.conn()?.tx()?;
            let rows = tx.query(SQL, &[&me.host])?;
            let mut charged = Vec::new();
            for row in &rows {
                let Ok(pid) = u32::try_from(row.try_get::<_, i64>(11)?) else {
                    continue;
                };
                let owner = ProcessOwner {
                    host: me.host.clone(),
                    pid,
                    start: row.try_get::<_, Option<String>>(12)?.unwrap_or_default(),
                };
                if pid == me.pid || !owner_is_gone(&owner, &me.host, process_start(pid).as_deref())
                {
                    continue;
                }
                let entry = entry_from_row(&shown, row)?;
                tx.execute(
                    "UPDATE issueloop.ledger_entries
                     SET state = 'expired', cost_micros = reserved_micros, closed_at_ms = $2
                     WHERE run_id = $1",
                    &[&entry.run_id.as_str(), &now.as_millisecond()],
                )?;
                charged.push(Expired {
                    run_id: entry.run_id,
                    repo: entry.repo,
                    issue: entry.issue,
                    day: entry.day,
                    amount: entry.reserved,
                    reserved_at: entry.reserved_at,
                    expires_at: entry.expires_at,
                });
            }
            tx.commit()?;
            Ok(charged)
        })
    }

    /// A named value stored beside the ledger (e.g. the forge's poll state), if set.
    pub fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        let key = key.to_owned();
        self.call("read a stored value", move |w| {
            let mut tx = w.conn()?.tx()?;
            let row = tx.query_opt("SELECT value FROM issueloop.kv WHERE key = $1", &[&key])?;
            let value = row.map(|r| r.try_get::<_, String>(0)).transpose()?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// Store a named value, replacing the previous one.
    pub fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call("store a value", move |w| {
            let mut tx = w.conn()?.tx()?;
            tx.execute(
                "INSERT INTO issueloop.kv (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}

impl PgLedger {
    /// Everything in the schema as export records (see
    /// [`crate::StateStore::export_records`]), read in one transaction.
    pub fn export_records(&self) -> Result<Vec<Record>, LedgerError> {
        let shown = self.shown.clone();
        self.call("export", move |w| {
            let mut tx = w.conn()?.tx()?;
            let records = export_in(&mut tx, &shown)?;
            tx.commit()?;
            Ok(records)
        })
    }

    /// Add exported records (see [`crate::StateStore::import_records`]) in one transaction,
    /// holding the row lock of every day it adds entries to, as a reservation would: a runner
    /// reserving meanwhile counts them.
    pub fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError> {
        let records = records.to_vec();
        let shown = self.shown.clone();
        self.call("import", move |w| {
            let mut tx = w.conn()?.tx()?;
            let mut days: Vec<String> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Entry(e) => Some(e.day.to_string()),
                    _ => None,
                })
                .collect();
            days.sort_unstable();
            days.dedup();
            for day in &days {
                tx.execute(
                    "INSERT INTO issueloop.ledger_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING",
                    &[day],
                )?;
                tx.query_one(
                    "SELECT day FROM issueloop.ledger_days WHERE day = $1 FOR UPDATE",
                    &[day],
                )?;
            }
            let current = export_in(&mut tx, &shown)?;
            let plan = plan_import(&current, &records)?;
            for e in &plan.entries {
                let owner = e.owner.as_ref();
                tx.execute(
                    "INSERT INTO issueloop.ledger_entries
                        (run_id, repo, issue, day, state, reserved_micros, cost_micros, overspent,
                         reserved_at_ms, expires_at_ms, closed_at_ms,
                         owner_host, owner_pid, owner_start)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    &[
                        &e.run_id.as_str(),
                        &e.repo,
                        &i64::try_from(e.issue).unwrap_or(i64::MAX),
                        &e.day.to_string(),
                        &e.state.id(),
                        &e.reserved_micros,
                        &e.cost_micros,
                        &e.overspent,
                        &e.reserved_at.as_millisecond(),
                        &e.expires_at.as_millisecond(),
                        &e.closed_at.map(|t| t.as_millisecond()),
                        &owner.map(|o| o.host.as_str()),
                        &owner.and_then(|o| o.pid).map(i64::from),
                        &owner.and_then(|o| o.start.as_deref()),
                    ],
                )?;
            }
            for e in &plan.events {
                tx.execute(
                    "INSERT INTO issueloop.journal_events (run_id, at_ms, type, payload)
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &e.run_id.as_str(),
                        &e.at.as_millisecond(),
                        &e.kind,
                        &e.payload.to_string(),
                    ],
                )?;
            }
            for v in &plan.values {
                tx.execute(
                    "INSERT INTO issueloop.kv (key, value) VALUES ($1, $2)",
                    &[&v.key, &v.value],
                )?;
            }
            tx.commit()?;
            Ok(plan.summary)
        })
    }
}

fn export_in(tx: &mut Tx<'_>, shown: &Path) -> Result<Vec<Record>, TxError> {
    const ENTRIES: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, cost_micros, \
         overspent, reserved_at_ms, expires_at_ms, closed_at_ms, owner_host, owner_pid, \
         owner_start FROM issueloop.ledger_entries ORDER BY reserved_at_ms, run_id";
    let mut out = Vec::new();
    for row in tx.query(ENTRIES, &[])? {
        let entry = entry_from_row(shown, &row)?;
        let owner = row
            .try_get::<_, Option<String>>(11)?
            .map(|host| -> Result<OwnerRecord, TxError> {
                Ok(OwnerRecord {
                    host,
                    pid: row
                        .try_get::<_, Option<i64>>(12)?
                        .and_then(|p| u32::try_from(p).ok()),
                    start: row.try_get(13)?,
                })
            })
            .transpose()?;
        out.push(Record::Entry(EntryRecord::new(&entry, owner)));
    }
    let runs = tx
        .query(
            "SELECT run_id FROM issueloop.journal_events GROUP BY run_id ORDER BY MIN(seq)",
            &[],
        )?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::new();
    for run in runs {
        events.extend(events_in(tx, shown, &RunId::from_stored(run))?);
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
    for row in tx.query("SELECT key, value FROM issueloop.kv ORDER BY key", &[])? {
        out.push(Record::Value(ValueRecord {
            version: TRANSFER_VERSION,
            key: row.try_get(0)?,
            value: row.try_get(1)?,
        }));
    }
    Ok(out)
}

/// The client configuration: the URL's settings, plus timeouts and an application name where
/// the URL sets none.
fn client_config(url: &DatabaseUrl, shown: &Path) -> Result<postgres::Config, LedgerError> {
    let mut config =
        postgres::Config::from_str(url.expose()).map_err(|e| LedgerError::Storage {
            path: shown.to_path_buf(),
            op: "read the database URL",
            // The parser's message names the option, never the password.
            source: Box::new(e),
        })?;
    // This build has no TLS: say so plainly instead of failing the handshake later.
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err(LedgerError::Unconfigured {
            detail: format!(
                "`{}` asks for TLS (`sslmode=require`), which this issueloop does not support \
                 yet: reach the server over a unix socket, a private network or a tunnel, \
                 without `sslmode=require`",
                shown.display()
            ),
        });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("issueloop");
    }
    // Half a minute of unacknowledged data on a dead network ends the connection.
    config.tcp_user_timeout(Duration::from_secs(30));
    let ms = |d: Duration| d.as_millis();
    let timeouts = format!(
        "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        ms(STATEMENT_TIMEOUT),
        ms(STATEMENT_TIMEOUT),
        ms(IDLE_IN_TRANSACTION_TIMEOUT)
    );
    let options = match config.get_options() {
        Some(own) if !own.is_empty() => format!("{timeouts} {own}"),
        _ => timeouts,
    };
    config.options(&options);
    Ok(config)
}

/// Bring the `issueloop` schema to this build's version in one transaction, under an advisory
/// lock so two processes opening a new database apply each migration once. A schema from a
/// newer version or another application is refused before anything is written.
///
/// The lock is the session's, taken before the transaction starts: a transaction that began
/// before another process's migration committed would not see its tables in the catalogue.
fn migrate(w: &mut Worker) -> Result<(), TxError> {
    let shown = w.shown.clone();
    let conn = w.conn()?;
    conn.client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(&mut conn.client, shown);
    let unlocked = conn
        .client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

fn migrate_locked(client: &mut Client, shown: PathBuf) -> Result<(), TxError> {
    let mut tx = client.transaction()?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('issueloop.schema_version') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    let (application, from) = if exists {
        match tx.query_opt(
            "SELECT application, version FROM issueloop.schema_version",
            &[],
        )? {
            Some(row) => (row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?),
            None => (APPLICATION.to_owned(), 0),
        }
    } else {
        (APPLICATION.to_owned(), 0)
    };
    if application != APPLICATION {
        return Err(LedgerError::NotOurs {
            path: shown,
            detail: format!("its `issueloop` schema belongs to `{application}`"),
        }
        .into());
    }
    if from > PG_SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            path: shown,
            found: from,
            supported: PG_SCHEMA_VERSION,
        }
        .into());
    }
    if from == PG_SCHEMA_VERSION {
        return Ok(());
    }
    if !exists {
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS issueloop;
             CREATE TABLE issueloop.schema_version (
                 singleton   BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
                 application TEXT NOT NULL,
                 version     BIGINT NOT NULL
             );",
        )?;
    }
    let skip = usize::try_from(from).unwrap_or(0);
    for sql in MIGRATIONS.iter().skip(skip) {
        tx.batch_execute(sql)?;
    }
    tx.execute(
        "INSERT INTO issueloop.schema_version (singleton, application, version)
         VALUES (true, $1, $2)
         ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
        &[&APPLICATION, &PG_SCHEMA_VERSION],
    )?;
    tx.commit()?;
    tracing::debug!(url = %shown.display(), from, to = PG_SCHEMA_VERSION, "state database migrated");
    Ok(())
}

fn map_error(shown: &Path, op: &'static str, e: TxError) -> LedgerError {
    match e {
        TxError::Ledger(e) => e,
        TxError::Pg(e) => match e.code() {
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED => {
                LedgerError::Busy {
                    path: shown.to_path_buf(),
                    op,
                    timeout: STATEMENT_TIMEOUT,
                }
            }
            _ => {
                // A server error's own text (code and message) says more than "db error".
                let detail = match e.as_db_error() {
                    Some(db) => format!("{} ({})", db.message(), db.code().code()),
                    None => e.to_string(),
                };
                LedgerError::Storage {
                    path: shown.to_path_buf(),
                    op,
                    source: detail.into(),
                }
            }
        },
    }
}

fn bad_row(shown: &Path, detail: String) -> TxError {
    TxError::Ledger(LedgerError::BadRow {
        path: shown.to_path_buf(),
        detail,
    })
}

fn entry_from_row(shown: &Path, r: &Row) -> Result<LedgerEntry, TxError> {
    let run_id: String = r.try_get(0)?;
    let what = |field: &str, value: &dyn std::fmt::Display| {
        bad_row(
            shown,
            format!("ledger entry `{run_id}`: {field} `{value}` is not valid"),
        )
    };
    let day_text: String = r.try_get(3)?;
    let day: Date = day_text.parse().map_err(|_| what("day", &day_text))?;
    let state_text: String = r.try_get(4)?;
    let state = EntryState::from_id(&state_text).ok_or_else(|| what("state", &state_text))?;
    let issue_raw: i64 = r.try_get(2)?;
    let issue = u64::try_from(issue_raw).map_err(|_| what("issue", &issue_raw))?;
    let ts = |field: &str, ms: i64| Timestamp::from_millisecond(ms).map_err(|_| what(field, &ms));
    let reserved_at = ts("reserved_at_ms", r.try_get(8)?)?;
    let expires_at = ts("expires_at_ms", r.try_get(9)?)?;
    let closed_at = r
        .try_get::<_, Option<i64>>(10)?
        .map(|ms| ts("closed_at_ms", ms))
        .transpose()?;
    Ok(LedgerEntry {
        run_id: RunId::from_stored(run_id.clone()),
        repo: r.try_get(1)?,
        issue,
        day,
        state,
        reserved: Usd::from_micros(r.try_get(5)?),
        cost: r.try_get::<_, Option<i64>>(6)?.map(Usd::from_micros),
        overspent: r.try_get(7)?,
        reserved_at,
        expires_at,
        closed_at,
    })
}

fn entry_in(tx: &mut Tx<'_>, shown: &Path, run_id: &str) -> Result<Option<LedgerEntry>, TxError> {
    const SQL: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, cost_micros, \
         overspent, reserved_at_ms, expires_at_ms, closed_at_ms \
         FROM issueloop.ledger_entries WHERE run_id = $1";
    tx.query_opt(SQL, &[&run_id])?
        .map(|r| entry_from_row(shown, &r))
        .transpose()
}

/// The day's unsettled reservations of `req`'s issue, for the soft-claim rule (read under the
/// day's row lock, like the usage).
fn held_in(
    tx: &mut Tx<'_>,
    shown: &Path,
    day: &str,
    req: &ReserveRequest,
) -> Result<Vec<LedgerEntry>, TxError> {
    if req.soft_claim.is_zero() {
        return Ok(Vec::new());
    }
    const SQL: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, cost_micros, \
         overspent, reserved_at_ms, expires_at_ms, closed_at_ms \
         FROM issueloop.ledger_entries \
         WHERE day = $1 AND repo = $2 AND issue = $3 AND state = 'reserved'";
    let issue = i64::try_from(req.issue).unwrap_or(i64::MAX);
    tx.query(SQL, &[&day, &req.repo, &issue])?
        .iter()
        .map(|r| entry_from_row(shown, r))
        .collect()
}

/// The entry of `run_id`, its row locked until the transaction ends.
fn entry_for_update(
    tx: &mut Tx<'_>,
    shown: &Path,
    run_id: &str,
) -> Result<Option<LedgerEntry>, TxError> {
    const SQL: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, cost_micros, \
         overspent, reserved_at_ms, expires_at_ms, closed_at_ms \
         FROM issueloop.ledger_entries WHERE run_id = $1 FOR UPDATE";
    tx.query_opt(SQL, &[&run_id])?
        .map(|r| entry_from_row(shown, &r))
        .transpose()
}

/// The day's usage, and whether `run_id` already has an entry (on any day).
fn usage_in(tx: &mut Tx<'_>, day: Date, run_id: &str) -> Result<(DayUsage, bool), TxError> {
    let row = tx.query_one(
        "SELECT
            COALESCE(SUM(CASE WHEN state IN ('settled', 'expired') THEN cost_micros END), 0)::BIGINT,
            COALESCE(SUM(CASE WHEN state = 'reserved' THEN reserved_micros END), 0)::BIGINT,
            COUNT(*) FILTER (WHERE state <> 'released'),
            EXISTS (SELECT 1 FROM issueloop.ledger_entries WHERE run_id = $2)
         FROM issueloop.ledger_entries WHERE day = $1",
        &[&day.to_string(), &run_id],
    )?;
    let usage = DayUsage {
        day,
        spent: Usd::from_micros(row.try_get(0)?),
        reserved: Usd::from_micros(row.try_get(1)?),
        runs: u32::try_from(row.try_get::<_, i64>(2)?).unwrap_or(u32::MAX),
    };
    Ok((usage, row.try_get(3)?))
}

impl Ledger for PgLedger {
    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        req.check_amount()?;
        let reservation = Reservation::new(req);
        let issue = i64::try_from(req.issue).unwrap_or(i64::MAX);
        let req = req.clone();
        let owner = self.owner.clone();
        let shown = self.shown.clone();
        self.call("reserve", move |w| {
            let conn = w.conn()?;
            let mut tx = conn.tx()?;
            let day = reservation.day;
            let day_text = day.to_string();
            // Every reservation of a day takes that day's row lock first: the check below and
            // the insert see the same day whatever other processes and machines do.
            tx.execute(
                "INSERT INTO issueloop.ledger_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING",
                &[&day_text],
            )?;
            tx.query_one(
                "SELECT day FROM issueloop.ledger_days WHERE day = $1 FOR UPDATE",
                &[&day_text],
            )?;
            let (usage, duplicate) = usage_in(&mut tx, day, req.run_id.as_str())?;
            if duplicate {
                return Err(LedgerError::DuplicateRun {
                    run_id: req.run_id.clone(),
                }
                .into());
            }
            let held = held_in(&mut tx, &shown, &day_text, &req)?;
            if let Some(reason) = admit_held(&usage, &held, &req) {
                return Ok(ReserveOutcome::Refused { reason, usage });
            }
            let inserted = tx.execute(
                "INSERT INTO issueloop.ledger_entries
                    (run_id, repo, issue, day, state, reserved_micros, reserved_at_ms, expires_at_ms,
                     owner_host, owner_pid, owner_start)
                 VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7, $8, $9, $10)",
                &[
                    &req.run_id.as_str(),
                    &req.repo,
                    &issue,
                    &day_text,
                    &req.amount.micros(),
                    &reservation.reserved_at.as_millisecond(),
                    &reservation.expires_at.as_millisecond(),
                    &owner.as_ref().map(|o| o.host.as_str()),
                    &owner.as_ref().map(|o| i64::from(o.pid)),
                    &owner.as_ref().map(|o| o.start.as_str()),
                ],
            );
            match inserted {
                Ok(_) => {}
                // The same run id reserved on another day meanwhile.
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    return Err(LedgerError::DuplicateRun {
                        run_id: req.run_id.clone(),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit()?;
            Ok(ReserveOutcome::Reserved(reservation))
        })
    }

    fn settle(
        &self,
        run_id: &RunId,
        actual: Usd,
        now: Timestamp,
    ) -> Result<Settlement, LedgerError> {
        let run_id = run_id.clone();
        let shown = self.shown.clone();
        self.call("settle", move |w| {
            let mut tx = w.conn()?.tx()?;
            // Settling lowers the day's total (or raises it by an overspend, recorded as it
            // is), so it needs only its own row's lock, not the day's.
            let entry = entry_for_update(&mut tx, &shown, run_id.as_str())?.ok_or_else(|| {
                LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                }
            })?;
            let settlement = check_settle(&entry, actual)?;
            tx.execute(
                "UPDATE issueloop.ledger_entries
                 SET state = 'settled', cost_micros = $2, overspent = $3, closed_at_ms = $4
                 WHERE run_id = $1",
                &[
                    &run_id.as_str(),
                    &actual.micros(),
                    &settlement.overspent,
                    &now.as_millisecond(),
                ],
            )?;
            tx.commit()?;
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
        let run_id = run_id.clone();
        let shown = self.shown.clone();
        self.call("release", move |w| {
            let mut tx = w.conn()?.tx()?;
            let entry = entry_for_update(&mut tx, &shown, run_id.as_str())?.ok_or_else(|| {
                LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                }
            })?;
            check_release(&entry)?;
            tx.execute(
                "UPDATE issueloop.ledger_entries SET state = 'released', closed_at_ms = $2
                 WHERE run_id = $1",
                &[&run_id.as_str(), &now.as_millisecond()],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn expire(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        let shown = self.shown.clone();
        self.call("expire", move |w| {
            let mut tx = w.conn()?.tx()?;
            // One statement: each row is changed once, whichever process gets to it first
            // (a concurrent expire or settle waits for the row and re-checks `state`).
            let rows = tx.query(
                "UPDATE issueloop.ledger_entries
                 SET state = 'expired', cost_micros = reserved_micros, closed_at_ms = $1
                 WHERE state = 'reserved' AND expires_at_ms <= $1
                 RETURNING run_id, repo, issue, day, state, reserved_micros, cost_micros,
                           overspent, reserved_at_ms, expires_at_ms, closed_at_ms",
                &[&now.as_millisecond()],
            )?;
            let mut entries = rows
                .iter()
                .map(|r| entry_from_row(&shown, r))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            entries.sort_by(|a, b| (a.reserved_at, &a.run_id).cmp(&(b.reserved_at, &b.run_id)));
            Ok(entries
                .into_iter()
                .map(|entry| {
                    tracing::warn!(
                        run = %entry.run_id,
                        amount = %entry.reserved,
                        day = %entry.day,
                        "reservation expired unsettled; charged at its full amount"
                    );
                    Expired {
                        run_id: entry.run_id,
                        repo: entry.repo,
                        issue: entry.issue,
                        day: entry.day,
                        amount: entry.reserved,
                        reserved_at: entry.reserved_at,
                        expires_at: entry.expires_at,
                    }
                })
                .collect())
        })
    }

    fn day_usage(&self, day: Date) -> Result<DayUsage, LedgerError> {
        self.call("read the day's usage", move |w| {
            let mut tx = w.conn()?.tx()?;
            let (usage, _) = usage_in(&mut tx, day, "")?;
            tx.commit()?;
            Ok(usage)
        })
    }

    fn entries(&self, day: Date) -> Result<Vec<LedgerEntry>, LedgerError> {
        let shown = self.shown.clone();
        self.call("read the day's entries", move |w| {
            const SQL: &str = "SELECT run_id, repo, issue, day, state, reserved_micros, \
                 cost_micros, overspent, reserved_at_ms, expires_at_ms, closed_at_ms \
                 FROM issueloop.ledger_entries WHERE day = $1 ORDER BY reserved_at_ms, run_id";
            let mut tx = w.conn()?.tx()?;
            let rows = tx.query(SQL, &[&day.to_string()])?;
            tx.commit()?;
            rows.iter().map(|r| entry_from_row(&shown, r)).collect()
        })
    }

    fn entry(&self, run_id: &RunId) -> Result<Option<LedgerEntry>, LedgerError> {
        let run_id = run_id.clone();
        let shown = self.shown.clone();
        self.call("read a ledger entry", move |w| {
            let mut tx = w.conn()?.tx()?;
            let entry = entry_in(&mut tx, &shown, run_id.as_str())?;
            tx.commit()?;
            Ok(entry)
        })
    }
}

impl Journal for PgLedger {
    fn append(&self, run_id: &RunId, at: Timestamp, event: &Event) -> Result<u64, LedgerError> {
        // The journal outlives the run and is printed by `runs show`: every string in it passes
        // the redaction rule first, as in the SQLite store.
        let mut payload = event.payload();
        redact_json(&mut payload);
        let payload = payload.to_string();
        let kind = event.kind();
        let run_id = run_id.clone();
        self.call("append to the journal", move |w| {
            let mut tx = w.conn()?.tx()?;
            let row = tx.query_one(
                "INSERT INTO issueloop.journal_events (run_id, at_ms, type, payload)
                 VALUES ($1, $2, $3, $4) RETURNING seq",
                &[&run_id.as_str(), &at.as_millisecond(), &kind, &payload],
            )?;
            tx.commit()?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
    }

    fn events(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, LedgerError> {
        let run_id = run_id.clone();
        let shown = self.shown.clone();
        self.call("read the journal", move |w| {
            let mut tx = w.conn()?.tx()?;
            let events = events_in(&mut tx, &shown, &run_id)?;
            tx.commit()?;
            Ok(events)
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, LedgerError> {
        let shown = self.shown.clone();
        self.call("list runs", move |w| {
            let mut tx = w.conn()?.tx()?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let ids = tx
                .query(
                    "SELECT run_id FROM issueloop.journal_events GROUP BY run_id
                     ORDER BY MIN(seq) DESC LIMIT $1",
                    &[&limit],
                )?
                .iter()
                .map(|r| r.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            let mut runs = Vec::with_capacity(ids.len());
            for id in ids {
                let run_id = RunId::from_stored(id);
                let events = events_in(&mut tx, &shown, &run_id)?;
                let entry = entry_in(&mut tx, &shown, run_id.as_str())?;
                runs.extend(RunSummary::from_entries(&events, entry));
            }
            tx.commit()?;
            Ok(runs)
        })
    }
}

fn events_in(tx: &mut Tx<'_>, shown: &Path, run_id: &RunId) -> Result<Vec<JournalEntry>, TxError> {
    let rows = tx.query(
        "SELECT seq, at_ms, type, payload FROM issueloop.journal_events
         WHERE run_id = $1 ORDER BY seq",
        &[&run_id.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.try_get(0)?;
            let at_ms: i64 = r.try_get(1)?;
            let kind: String = r.try_get(2)?;
            let payload: String = r.try_get(3)?;
            let at = Timestamp::from_millisecond(at_ms).map_err(|_| {
                bad_row(
                    shown,
                    format!("journal event {seq}: time `{at_ms}` is not valid"),
                )
            })?;
            let payload = serde_json::from_str(&payload).map_err(|e| {
                bad_row(
                    shown,
                    format!("journal event {seq}: payload is not JSON: {e}"),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config_for(url: &str) -> Result<postgres::Config, LedgerError> {
        let url = DatabaseUrl::parse(url).map_err(|detail| LedgerError::Unconfigured { detail })?;
        client_config(&url, Path::new(&url.redacted()))
    }

    #[test]
    fn timeouts_are_always_set_and_the_urls_own_options_kept() {
        let c = config_for("postgres://u:pw@h/db").unwrap();
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(c.get_application_name(), Some("issueloop"));
        let options = c.get_options().unwrap_or_default();
        for want in [
            "statement_timeout=15000",
            "lock_timeout=15000",
            "idle_in_transaction_session_timeout=60000",
        ] {
            assert!(options.contains(want), "{options}");
        }
        let c =
            config_for("postgres://u@h/db?connect_timeout=3&options=-c%20work_mem%3D4MB").unwrap();
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let options = c.get_options().unwrap_or_default();
        assert!(
            options.contains("work_mem=4MB") && options.contains("lock_timeout"),
            "{options}"
        );
    }

    #[test]
    fn tls_is_refused_plainly_without_the_password() {
        let err = config_for("postgres://u:hunter2@h/db?sslmode=require").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sslmode=require") && text.contains("not support"),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && text.contains("u:***@h"),
            "{text}"
        );
    }
}
