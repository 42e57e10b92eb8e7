//! What containment costs: the time to start `/bin/true` N times plainly, through the launcher
//! (keeper, whole-tree kill) and through the launcher with the Landlock sandbox; then a whole demo
//! tick (three issues, a `uv run` gate each) with the sandbox off, on with a cache per run (the
//! default), and on with a shared uv cache the user opted into.
//!
//! ```text
//! cargo build && cargo run --example bench_sandbox [-- N]
//! ```

#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe and reads its own test settings from the environment"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use issueloop::process::{Launch, Sandbox, support};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("cannot start a runtime: {e}"),
    };
    println!(
        "kernel: {}; {}",
        issueloop::process::kernel_release(),
        support()
    );
    println!("\nstarting /bin/true, N = {n}      median      p95");
    let plain = time_n(n, || {
        let _ = std::process::Command::new("/bin/true").status();
    });
    report("std::process::Command", &plain);
    let launch = time_n(n, || {
        let _ = rt.block_on(Launch::new("/bin/true").run());
    });
    report("Launch (keeper)", &launch);
    let dir = std::env::temp_dir();
    let sandboxed = time_n(n, || {
        let _ = rt.block_on(
            Launch::new("/bin/true")
                .sandbox(Some(Sandbox::new([dir.clone()])))
                .run(),
        );
    });
    report("Launch + Landlock", &sandboxed);
    println!(
        "  sandbox cost per start (median): {:.2} ms over the keeper, {:.2} ms over a plain spawn",
        ms(median(&sandboxed)) - ms(median(&launch)),
        ms(median(&sandboxed)) - ms(median(&plain)),
    );

    let Some(binary) = issueloop_binary() else {
        return eprintln!(
            "\n(no `issueloop` binary next to this example: `cargo build` first for the demo tick)"
        );
    };
    println!("\ndemo tick (3 issues, a `uv run --locked` gate each)     wall clock");
    let shared = tempfile::tempdir().ok();
    for (label, sandbox_toml, shared_cache) in [
        ("sandbox off, uv cache per run", "mode = \"off\"\n", false),
        ("sandbox on, uv cache per run (default)", "", false),
        ("sandbox on, shared uv cache (cold)", "", true),
        ("sandbox on, shared uv cache (warm)", "", true),
    ] {
        let shared_dir = shared
            .as_ref()
            .filter(|_| shared_cache)
            .map(|d| d.path().to_owned());
        match demo_tick(&binary, sandbox_toml, shared_dir.as_deref()) {
            Ok(d) => println!("  {label:<48} {:>8.2} s", d.as_secs_f64()),
            Err(e) => println!("  {label:<48} failed: {e}"),
        }
    }
}

fn time_n(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v
}

fn median(v: &[Duration]) -> Duration {
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn p95(v: &[Duration]) -> Duration {
    v.get(v.len() * 95 / 100).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, v: &[Duration]) {
    println!(
        "  {label:<28} {:>8.2} ms {:>8.2} ms",
        ms(median(v)),
        ms(p95(v))
    );
}

fn issueloop_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join("issueloop");
    bin.exists().then_some(bin)
}

/// Build the demo folder, set `[sandbox]`, and time `issueloop run --once` in it.
fn demo_tick(
    binary: &Path,
    sandbox_toml: &str,
    shared_uv_cache: Option<&Path>,
) -> Result<Duration, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let uv = which("uv");
    let demo = issueloop::demo::build_sandbox(dir.path(), uv).map_err(|e| e.to_string())?;
    let mut table = format!("\n[sandbox]\n{sandbox_toml}");
    if let Some(cache) = shared_uv_cache {
        table.push_str(&format!(
            "extra_writable = [{:?}]\n",
            cache.display().to_string()
        ));
    }
    let mut config = std::fs::read_to_string(&demo.config).map_err(|e| e.to_string())?;
    config.push_str(&table);
    std::fs::write(&demo.config, config).map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(binary);
    cmd.current_dir(&demo.dir)
        .args(["--config"])
        .arg(&demo.config)
        .args(["run", "--once"])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(cache) = shared_uv_cache {
        cmd.env("UV_CACHE_DIR", cache);
    }
    let start = Instant::now();
    let status = cmd.status().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if status.code() == Some(2) {
        return Err(format!("`issueloop run` exited {status}"));
    }
    Ok(elapsed)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}
