//! Backends for the conformance tests: a fresh store of each kind per test. SQLite lives in a
//! temporary folder; PostgreSQL in a database of its own (random name) on the server that
//! `ISSUELOOP_TEST_POSTGRES_URL` names, dropped at the end. Without that variable a postgres
//! test says it is skipped, and under `CI=true` it fails: it never passes silently.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_methods,
    reason = "a test reads its own test settings from the environment"
)]
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::sync::Arc;

use issueloop_config::DatabaseUrl;
use issueloop_ledger::{PgLedger, SqliteLedger, StateStore};

pub const POSTGRES_URL_VAR: &str = "ISSUELOOP_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server's URL, or `None` (after saying so) when the postgres tests cannot run here.
/// Under `CI=true` a missing server is a failure.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: {POSTGRES_URL_VAR} is not set; CI must provide a PostgreSQL server \
                 (.ci/run starts one)"
            );
            eprintln!(
                "SKIPPED {test}: no PostgreSQL server; set {POSTGRES_URL_VAR} \
                 (e.g. postgres://user:pw@127.0.0.1:5432/postgres, a role that may CREATE DATABASE)"
            );
            None
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("issueloop_test_{:016x}", h.finish())
}

/// One fresh, empty store location of a backend; dropped (database and all) at the end.
pub struct TestStore {
    pub backend: Backend,
    dir: tempfile::TempDir,
    /// `(server URL, database name)` for postgres.
    pg: Option<(String, String)>,
}

impl TestStore {
    /// A fresh store, or `None` when the backend cannot run here (said on stderr).
    pub fn new(backend: Backend, test: &str) -> Option<TestStore> {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let server = postgres_url(test)?;
                let name = random_name();
                let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                Some((server, name))
            }
        };
        Some(TestStore { backend, dir, pg })
    }

    /// How a child process opens this store (see [`open_spec`]).
    pub fn spec(&self) -> String {
        match &self.pg {
            None => format!("sqlite:{}", self.dir.path().join("state.sqlite").display()),
            Some((server, name)) => format!("postgres:{}", with_database(server, name)),
        }
    }

    /// Open the store, as a new process would.
    pub fn open(&self) -> Arc<dyn StateStore> {
        open_spec(&self.spec())
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.pg
            && let Ok(mut admin) = postgres::Client::connect(server, postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Open the store a [`TestStore::spec`] names.
pub fn open_spec(spec: &str) -> Arc<dyn StateStore> {
    match spec.split_once(':') {
        Some(("sqlite", path)) => Arc::new(SqliteLedger::open(path).unwrap()),
        Some(("postgres", url)) => {
            Arc::new(PgLedger::open(&DatabaseUrl::parse(url).unwrap()).unwrap())
        }
        _ => panic!("not a store spec: {spec}"),
    }
}
