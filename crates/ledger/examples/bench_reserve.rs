//! Reservations per second on one SQLite file, with 1 and 8 concurrent writers (threads, each
//! with its own connection, so they contend through SQLite's file locks like processes do).
//!
//! `cargo run --release -p issueloop-ledger --example bench_reserve [-- DIR]` (default: the
//! system temporary directory; pass a directory on the disk the state file will live on).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use issueloop_ledger::{Ledger, ReserveOutcome, ReserveRequest, RunId, SqliteLedger, Usd};
use jiff::Timestamp;

const TOTAL: usize = 4_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("reservations on one SQLite file under `{}`", base.display());
    for writers in [1, 8] {
        let dir = base.join(format!(
            "issueloop-bench-reserve-{}-{writers}",
            std::process::id()
        ));
        let result = run(&dir, writers);
        std::fs::remove_dir_all(&dir)?;
        let (elapsed, reserved) = result?;
        println!(
            "{writers} writer{}: {reserved} reservations in {:.2}s = {:.0} reservations/s",
            if writers == 1 { " " } else { "s" },
            elapsed.as_secs_f64(),
            reserved as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

fn run(dir: &Path, writers: usize) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let path = dir.join("state.sqlite");
    drop(SqliteLedger::open(&path)?);
    let per_writer = TOTAL / writers;
    let now: Timestamp = "2026-11-21T12:00:00Z".parse()?;
    let start = Instant::now();
    let reserved = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let path = &path;
                scope.spawn(move || -> Result<usize, String> {
                    let ledger = SqliteLedger::open(path).map_err(|e| e.to_string())?;
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
