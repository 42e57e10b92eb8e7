//! The `github` state backend on a bare repository in a temporary directory (what the fake GitHub
//! serves): fetches and pushes per reservation and per settlement without contention, and
//! reservations per second with 1 and 8 writers, each with a folder of its own (like runners on
//! separate machines), all on one day file.
//!
//! `cargo run --release -p issueloop-state-github --example bench_state [-- RESERVATIONS]`
//!
//! Over HTTPS each push is two requests (`GET info/refs?service=git-receive-pack`, `POST
//! git-receive-pack`) and each fetch two (`GET info/refs?service=git-upload-pack`, `POST
//! git-upload-pack`); the figures below count git operations and derive requests from that.

use std::time::{Duration, Instant};

use issueloop_ledger::{Ledger, ReserveOutcome, ReserveRequest, RunId, Usd};
use issueloop_state_github::{GithubState, GithubStateOptions, TransferStats};
use issueloop_workspace::{LogClone, RemoteSpec};
use jiff::Timestamp;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let now: Timestamp = "2026-12-05T12:00:00Z".parse()?;

    // Without contention: one writer, reserve then settle.
    let dir = tempfile::tempdir()?;
    LogClone::open_or_init(&dir.path().join("state.git"))?;
    let store = open(dir.path(), "solo")?;
    let before = store.stats();
    let run = RunId::parse("solo-1")?;
    store.reserve(&request(run.clone(), now))?;
    let reserved = store.stats();
    store.settle(&run, Usd::from_dollars(0.005), now)?;
    let settled = store.stats();
    let show = |what: &str, a: TransferStats, b: TransferStats| {
        let (f, p) = (b.fetches - a.fetches, b.pushes - a.pushes);
        println!(
            "{what}: {p} push(es), {f} fetch(es), {} rejected = about {} HTTPS requests",
            b.rejected - a.rejected,
            2 * (f + p)
        );
    };
    show("one reservation (branch created)", before, reserved);
    show("one settlement", reserved, settled);
    let again = store.stats();
    store.reserve(&request(RunId::parse("solo-2")?, now))?;
    show("one more reservation", again, store.stats());
    drop(store);

    for writers in [1usize, 8] {
        let dir = tempfile::tempdir()?;
        LogClone::open_or_init(&dir.path().join("state.git"))?;
        let stores: Vec<GithubState> = (0..writers)
            .map(|w| open(dir.path(), &format!("w{w}")))
            .collect::<Result<_, _>>()?;
        let per_writer = total / writers;
        let start = Instant::now();
        let done = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(w, store)| {
                    s.spawn(move || -> Result<usize, String> {
                        let mut n = 0;
                        for k in 0..per_writer {
                            let run = RunId::parse(&format!("w{w}-r{k}"))?;
                            if let ReserveOutcome::Reserved(_) = store
                                .reserve(&request(run, now))
                                .map_err(|e| e.to_string())?
                            {
                                n += 1;
                            }
                        }
                        Ok(n)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| "a writer panicked".to_owned())?)
                .sum::<Result<usize, String>>()
        })?;
        let elapsed = start.elapsed();
        let stats = stores
            .iter()
            .map(GithubState::stats)
            .fold(TransferStats::default(), |a, b| TransferStats {
                fetches: a.fetches + b.fetches,
                pushes: a.pushes + b.pushes,
                rejected: a.rejected + b.rejected,
            });
        println!(
            "{writers} writer{}: {done} reservations in {:.2}s = {:.0}/s; {} pushes ({} rejected), {} fetches",
            if writers == 1 { " " } else { "s" },
            elapsed.as_secs_f64(),
            done as f64 / elapsed.as_secs_f64(),
            stats.pushes,
            stats.rejected,
            stats.fetches
        );
    }
    Ok(())
}

fn open(base: &std::path::Path, name: &str) -> Result<GithubState, Box<dyn std::error::Error>> {
    let home = base.join(name);
    let mut opts = GithubStateOptions::new(
        RemoteSpec::new(base.join("state.git").display().to_string(), None),
        home.join("cache/state.git"),
        home.join("state.sqlite"),
    );
    opts.max_attempts = 1000;
    Ok(GithubState::open(opts)?)
}

fn request(run_id: RunId, now: Timestamp) -> ReserveRequest {
    ReserveRequest {
        run_id,
        repo: "acme/api".into(),
        issue: 1,
        amount: Usd::from_dollars(0.01),
        cap: Usd::from_dollars(1_000_000.0),
        max_runs: u32::MAX,
        wall_clock: Duration::from_secs(45 * 60),
        grace: Duration::from_secs(15 * 60),
        soft_claim: Duration::ZERO,
        now,
    }
}
