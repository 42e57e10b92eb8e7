//! Benchmark: supervise an agent that prints 1 GiB of output and report issueloop's peak
//! resident memory (`VmHWM`), which must stay under 64 MiB whatever the agent prints.
//!
//! `cargo run --release -p issueloop-runtime --example bench_flood [-- GIB]`
//!
//! The agent is this same binary re-executed as the fake agent (`--as-agent …`), so the
//! benchmark needs nothing built beforehand; its memory is its own process, not counted here.

#[path = "../src/bin/issueloop-fake-agent.rs"]
#[expect(
    dead_code,
    reason = "the benchmark uses the fake agent's modes, not its `main`"
)]
mod fake_agent;

use std::time::{Duration, Instant};

use issueloop_config::{BackendKind, BackendSettings, Env};
use issueloop_runtime::{Brief, RunLimits, invocation, run};

const LIMIT_MIB: f64 = 64.0;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--as-agent") {
        std::process::exit(fake_agent::agent_main(args[2..].to_vec()));
    }
    let gib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let bytes = (gib << 30).to_string();
    let exe = match std::env::current_exe() {
        Ok(e) => e.display().to_string(),
        Err(e) => {
            eprintln!("cannot find this benchmark's own executable: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let worktree = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot make a worktree directory: {e}");
            std::process::exit(2);
        }
    };
    let env = Env::from_process();
    let limits = RunLimits {
        cost_usd: issueloop_config::Usd::from_whole_dollars(1_000_000_000),
        wall_clock: Duration::from_secs(600),
        max_turns: 0,
    };
    let scenarios: [(&str, &str, Vec<&str>); 3] = [
        (
            "1 KiB JSON lines, read as Claude Code stream-json",
            "claude_code",
            vec!["flood", "--bytes", &bytes, "--line-bytes", "1024", "--json"],
        ),
        (
            "64 KiB plain-text lines, read as text",
            "text",
            vec!["flood", "--bytes", &bytes, "--line-bytes", "65536"],
        ),
        (
            "one line without a newline, read as Claude Code stream-json",
            "claude_code",
            vec!["flood", "--bytes", &bytes, "--line-bytes", "0"],
        ),
    ];
    println!("agent output per scenario: {gib} GiB");
    println!("peak RSS before any run: {:.1} MiB", peak_rss_mib());
    let mut worst: f64 = 0.0;
    for (name, format, agent_args) in scenarios {
        let argv: Vec<String> = [exe.as_str(), "--as-agent"]
            .into_iter()
            .chain(agent_args)
            .map(String::from)
            .collect();
        let settings = BackendSettings {
            argv: Some(argv),
            format: Some(format.into()),
            ..BackendSettings::default()
        };
        let brief = Brief {
            text: "flood".into(),
            path: None,
        };
        let inv = match invocation(BackendKind::Command, &settings, None, &limits, &brief) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let started = Instant::now();
        let outcome = match runtime.block_on(run(&inv, worktree.path(), &limits, &env)) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let peak = peak_rss_mib();
        worst = worst.max(peak);
        println!(
            "{name}: {:.2} s, {:.0} MiB/s, {} lines ({} skipped, {} over the line limit), status {}, peak RSS so far {peak:.1} MiB",
            secs,
            (gib as f64 * 1024.0) / secs,
            outcome.lines,
            outcome.skipped_lines,
            outcome.overlong_lines,
            outcome.status,
        );
    }
    println!("issueloop peak resident memory (VmHWM): {worst:.1} MiB (limit {LIMIT_MIB:.0} MiB)");
    if worst >= LIMIT_MIB || worst.is_nan() {
        eprintln!("over the memory limit");
        std::process::exit(1);
    }
}
