//! Reservations per second with 1 and 8 concurrent writers, for each backend side by side:
//! SQLite (one file; threads with their own connections contend through SQLite's file locks
//! like processes do) and PostgreSQL (each writer its own connection; all reservations on one
//! UTC day, so they serialise on that day's row).
//!
//! `cargo run --release -p issueloop-ledger --example bench_reserve [-- DIR]`: DIR is where the
//! SQLite file goes (default: the system temporary directory; pass a folder on the disk the
//! state will live on). PostgreSQL runs when `ISSUELOOP_BENCH_POSTGRES_URL` (or
//! `ISSUELOOP_TEST_POSTGRES_URL`) names a server and a role that may create databases; each
//! round uses a new database, dropped afterwards.

#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark reads its own test settings from the environment"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use issueloop_config::DatabaseUrl;
use issueloop_ledger::{
    PgLedger, ReserveOutcome, ReserveRequest, RunId, SqliteLedger, StateStore, Usd,
};
use jiff::Timestamp;

const TOTAL: usize = 4_000;

type Opener = Box<dyn Fn() -> Result<Arc<dyn StateStore>, String> + Sync>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let server = [
        "ISSUELOOP_BENCH_POSTGRES_URL",
        "ISSUELOOP_TEST_POSTGRES_URL",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()));
    println!("{TOTAL} reservations per round, all on one UTC day");
    println!("sqlite: a file under `{}`", base.display());
    match &server {
        Some(url) => println!("postgres: `{}`", issueloop_config::redact_url(url)),
        None => println!(
            "postgres: skipped (set ISSUELOOP_BENCH_POSTGRES_URL to a server where the role may create databases)"
        ),
    }
    println!();
    println!(
        "{:<10} {:>7} {:>14} {:>10}",
        "backend", "writers", "reservations/s", "seconds"
    );
    for writers in [1, 8] {
        let dir = base.join(format!(
            "issueloop-bench-reserve-{}-{writers}",
            std::process::id()
        ));
        let path = dir.join("state.sqlite");
        let open_path = path.clone();
        let opener: Opener = Box::new(move || {
            SqliteLedger::open(&open_path)
                .map(|s| Arc::new(s) as Arc<dyn StateStore>)
                .map_err(|e| e.to_string())
        });
        let result = run(&opener, writers);
        std::fs::remove_dir_all(&dir)?;
        print_row("sqlite", writers, result?);

        if let Some(server) = &server {
            let name = format!("issueloop_bench_{}_{writers}", std::process::id());
            let mut admin = postgres::Client::connect(server, postgres::NoTls)?;
            admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
            let url = DatabaseUrl::parse(&with_database(server, &name))?;
            let opener: Opener = Box::new(move || {
                PgLedger::open(&url)
                    .map(|s| Arc::new(s) as Arc<dyn StateStore>)
                    .map_err(|e| e.to_string())
            });
            let result = run(&opener, writers);
            drop(opener);
            admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
            print_row("postgres", writers, result?);
        }
    }
    Ok(())
}

fn print_row(backend: &str, writers: usize, (elapsed, reserved): (Duration, usize)) {
    println!(
        "{backend:<10} {writers:>7} {:>14.0} {:>10.2}",
        reserved as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
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

fn run(open: &Opener, writers: usize) -> Result<(Duration, usize), String> {
    // Create the schema first, so the round measures reservations, not migrations.
    drop(open()?);
    let per_writer = TOTAL / writers;
    let now: Timestamp = "2026-11-21T12:00:00Z"
        .parse()
        .map_err(|e: jiff::Error| e.to_string())?;
    let stores = (0..writers)
        .map(|_| open())
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let reserved = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(w, ledger)| {
                scope.spawn(move || -> Result<usize, String> {
                    let mut reserved = 0;
                    for k in 0..per_writer {
                        let req = ReserveRequest {
                            run_id: RunId::generate(now, "acme/api", (w * per_writer + k) as u64),
                            repo: "acme/api".into(),
                            issue: k as u64,
                            amount: Usd::from_dollars(0.01),
                            cap: Usd::from_dollars(1_000_000.0),
                            max_runs: u32::MAX,
                            wall_clock: Duration::from_secs(45 * 60),
                            grace: Duration::from_secs(15 * 60),
                            soft_claim: Duration::ZERO,
                            now,
                        };
                        if let ReserveOutcome::Reserved(_) =
                            ledger.reserve(&req).map_err(|e| e.to_string())?
                        {
                            reserved += 1;
                        }
                    }
                    Ok(reserved)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a writer panicked".to_owned())?)
            .sum::<Result<usize, String>>()
    })?;
    Ok((start.elapsed(), reserved))
}
