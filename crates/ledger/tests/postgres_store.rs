//! The PostgreSQL store against a real server: versioned schema (a newer one refused and left
//! as it was; several processes migrating a new database at once), read-only opening that
//! creates nothing, the append-only journal, named values, and errors that never show the
//! password. Skipped (and said so) without `ISSUELOOP_TEST_POSTGRES_URL`; failed under CI.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::time::Duration;

use issueloop_config::{DatabaseUrl, Env, StateBackend, StateConfig};
use issueloop_ledger::{
    Access, Event, LedgerError, PG_SCHEMA_VERSION, PgLedger, ReserveOutcome, ReserveRequest, RunId,
    RunStatus, Usd, open_state,
};
use support::{Backend, TestStore};

fn url_of(store: &TestStore) -> DatabaseUrl {
    let spec = store.spec();
    DatabaseUrl::parse(spec.strip_prefix("postgres:").unwrap()).unwrap()
}

fn raw(store: &TestStore) -> postgres::Client {
    postgres::Client::connect(url_of(store).expose(), postgres::NoTls).unwrap()
}

fn tables(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = 'issueloop' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_schema_from_a_newer_version_is_refused_and_left_untouched() {
    let Some(store) = TestStore::new(Backend::Postgres, "a_schema_from_a_newer_version") else {
        return;
    };
    drop(store.open());
    let mut client = raw(&store);
    client
        .execute(
            "UPDATE issueloop.schema_version SET version = $1",
            &[&(PG_SCHEMA_VERSION + 1)],
        )
        .unwrap();
    client
        .batch_execute("CREATE TABLE issueloop.from_the_future (x BIGINT)")
        .unwrap();
    let before = tables(&mut client);
    let err = PgLedger::open(&url_of(&store)).unwrap_err();
    assert!(
        matches!(err, LedgerError::NewerSchema { found, .. } if found == PG_SCHEMA_VERSION + 1),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("newer issueloop"), "{message}");
    let hint = issueloop_config::Hint::hint(&err).unwrap_or_default();
    assert!(hint.contains("upgrade"), "{hint}");
    assert_eq!(tables(&mut client), before);
    let version: i64 = client
        .query_one("SELECT version FROM issueloop.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        version,
        PG_SCHEMA_VERSION + 1,
        "the newer schema was rewritten"
    );
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once() {
    let Some(store) = TestStore::new(Backend::Postgres, "processes_opening_a_new_database") else {
        return;
    };
    let url = url_of(&store);
    let opened: Vec<Result<PgLedger, LedgerError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| PgLedger::open(&url))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &opened {
        assert!(o.is_ok(), "{o:?}");
    }
    let mut client = raw(&store);
    assert_eq!(
        tables(&mut client),
        [
            "journal_events",
            "kv",
            "ledger_days",
            "ledger_entries",
            "schema_version"
        ]
    );
    let rows = client
        .query("SELECT version FROM issueloop.schema_version", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), PG_SCHEMA_VERSION);
}

#[test]
fn reading_an_empty_database_creates_nothing() {
    let Some(store) = TestStore::new(Backend::Postgres, "reading_an_empty_database") else {
        return;
    };
    let state = StateConfig {
        backend: StateBackend::Postgres,
        path: issueloop_config::AbsPath::root(),
        url: None,
        branch: "issueloop/state".into(),
        repo: None,
    };
    let env = Env::from_pairs([(issueloop_config::DATABASE_URL_VAR, url_of(&store).expose())]);
    assert!(
        open_state(&state, &env, Access::ReadOnly)
            .unwrap()
            .is_none()
    );
    assert!(tables(&mut raw(&store)).is_empty());
    let rw = open_state(&state, &env, Access::ReadWrite).unwrap();
    assert!(rw.is_some());
    assert!(
        open_state(&state, &env, Access::ReadOnly)
            .unwrap()
            .is_some()
    );
    // Without a URL anywhere: an error that says where to put one.
    let err = open_state(&state, &Env::default(), Access::ReadWrite)
        .err()
        .unwrap();
    assert!(err.to_string().contains("ISSUELOOP_DATABASE_URL"), "{err}");
}

#[test]
fn the_journal_is_append_only_and_values_survive_reopening() {
    let Some(store) = TestStore::new(Backend::Postgres, "the_journal_is_append_only") else {
        return;
    };
    let t: jiff::Timestamp = "2026-11-21T13:05:01Z".parse().unwrap();
    let run = RunId::generate(t, "acme/api", 42);
    {
        let s = store.open();
        s.append(
            &run,
            t,
            &Event::RunStarted {
                repo: "acme/api".into(),
                issue: 42,
                branch: None,
            },
        )
        .unwrap();
        s.append(
            &run,
            t + Duration::from_secs(1),
            &Event::RunFinished {
                status: RunStatus::Succeeded,
                reason: None,
            },
        )
        .unwrap();
        let req = ReserveRequest {
            run_id: run.clone(),
            repo: "acme/api".into(),
            issue: 42,
            amount: Usd::from_dollars(1.0),
            cap: Usd::from_dollars(10.0),
            max_runs: 5,
            wall_clock: Duration::from_secs(60),
            grace: Duration::from_secs(60),
            soft_claim: Duration::ZERO,
            now: t,
        };
        assert!(matches!(
            s.reserve(&req).unwrap(),
            ReserveOutcome::Reserved(_)
        ));
        s.set_value("poll", "{\"a\":1}").unwrap();
        s.set_value("poll", "{\"a\":2}").unwrap();
    }
    let s = store.open();
    assert_eq!(s.get_value("poll").unwrap().as_deref(), Some("{\"a\":2}"));
    assert_eq!(s.get_value("nothing").unwrap(), None);
    let runs = s.runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].issue, Some(42));
    assert!(runs[0].ledger.is_some());
    let mut client = raw(&store);
    let update = client
        .execute("UPDATE issueloop.journal_events SET payload = '{}'", &[])
        .unwrap_err();
    assert!(format!("{update:?}").contains("append-only"), "{update:?}");
    let delete = client
        .execute("DELETE FROM issueloop.journal_events", &[])
        .unwrap_err();
    assert!(format!("{delete:?}").contains("append-only"), "{delete:?}");
    assert_eq!(s.events(&run).unwrap().len(), 2);
}

#[test]
fn a_refused_connection_names_the_server_but_never_the_password() {
    let Some(store) = TestStore::new(Backend::Postgres, "a_refused_connection") else {
        return;
    };
    let good = url_of(&store);
    let (user, rest) = good
        .expose()
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .unwrap();
    let user = user.split(':').next().unwrap();
    let bad = DatabaseUrl::parse(&format!("postgres://{user}:Wr0ng-Passw0rd@{rest}")).unwrap();
    let err = PgLedger::open(&bad).unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(!message.contains("Wr0ng-Passw0rd"), "{message}");
    assert!(message.contains(&format!("{user}:***@")), "{message}");
}

#[test]
fn the_journal_never_stores_a_secret() {
    let Some(store) = TestStore::new(Backend::Postgres, "the_journal_never_stores_a_secret") else {
        return;
    };
    let s = store.open();
    let run = RunId::parse("r-secret").unwrap();
    s.append(
        &run,
        "2025-06-01T10:00:00Z".parse().unwrap(),
        &Event::Note {
            message: "agent said ghp_AbCdEfGhIjKlMnOpQrSt0123456789".into(),
        },
    )
    .unwrap();
    let stored: String = raw(&store)
        .query_one("SELECT payload FROM issueloop.journal_events", &[])
        .unwrap()
        .get(0);
    assert!(!stored.contains("KlMnOpQrSt"), "{stored}");
    assert!(stored.contains("ghp_[REDACTED]"), "{stored}");
}
