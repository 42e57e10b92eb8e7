//! A PostgreSQL database of its own for a test, on the server `ISSUELOOP_TEST_POSTGRES_URL`
//! names (a role that may `CREATE DATABASE`; `.ci/run` starts one), dropped at the end.
//! Without the variable a test says it is skipped; under `CI=true` it fails instead.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![allow(
    clippy::disallowed_methods,
    reason = "a test reads its own test settings from the environment"
)]

use issueloop::config::DatabaseUrl;

pub const POSTGRES_URL_VAR: &str = "ISSUELOOP_TEST_POSTGRES_URL";

pub struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    /// A new, empty database, or `None` (said on stderr) when no server is configured.
    pub fn create(test: &str) -> Option<TestDatabase> {
        let server = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{test}: {POSTGRES_URL_VAR} is not set; CI must provide a PostgreSQL \
                     server (.ci/run starts one)"
                );
                eprintln!("SKIPPED {test}: no PostgreSQL server; set {POSTGRES_URL_VAR}");
                return None;
            }
        };
        let name = format!("issueloop_e2e_{:016x}", random());
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Some(TestDatabase { server, name })
    }

    /// The database's URL (with the server's password in it).
    pub fn url(&self) -> String {
        let (base, query) = match self.server.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.server.as_str(), None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let authority_end = base[scheme_end..]
            .find('/')
            .map_or(base.len(), |i| scheme_end + i);
        let mut out = format!("{}/{}", &base[..authority_end], self.name);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url()).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
