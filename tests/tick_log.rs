//! The log of a tick, as a person reads it on stderr, snapshotted so a change to its wording is a
//! reviewed change: the happy path, a request retried after a 502, and a run killed mid-way then
//! rerun, all against the fake GitHub. Each log is also checked for what must never be in it: an
//! ERROR for a request that succeeded, Rust debug formatting, a secret, a raw duration.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use issueloop_fake_github::{FaultKind, TOKEN};
use support::github::GithubWorld;
use support::{Knobs, MAINTAINER};

const SIGKILL: i32 = 9;

/// One `run --once` with human logs on stderr; returns the exit code and stderr.
fn tick(g: &GithubWorld, failpoint: Option<&str>) -> (Output, String) {
    let mut cmd = g.command();
    cmd.args(["--log-format", "human", "run", "--once"])
        .env("ANTHROPIC_API_KEY", "plain-model-key-from-the-env");
    if let Some(step) = failpoint {
        cmd.env("ISSUELOOP_FAILPOINT", step);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// What no tick log may contain, whatever the scenario.
fn check_clean(log: &str) {
    assert!(!log.contains(TOKEN), "the token in the log:\n{log}");
    assert!(
        !log.contains("plain-model-key-from-the-env"),
        "a secret variable's value in the log:\n{log}"
    );
    for debug in ["RunId(", "Usd(", " { ", "Some(", "Duration", "Expired {"] {
        assert!(!log.contains(debug), "debug formatting `{debug}`:\n{log}");
    }
    assert!(
        !log.contains("failed with status"),
        "a library's error line for a retried request:\n{log}"
    );
    // A raw `Debug` duration has nanosecond digits: `3600.318599353s`.
    let raw_duration = regex_lite(r"\d+\.\d{4,}s");
    assert!(!raw_duration(log), "an unrounded duration:\n{log}");
}

/// A tiny matcher for `\d+\.\d{4,}s` without a regex dependency in the test.
fn regex_lite(_: &str) -> impl Fn(&str) -> bool {
    |text: &str| {
        let b = text.as_bytes();
        (0..b.len()).any(|i| {
            let int = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if int == 0 || b.get(i + int) != Some(&b'.') {
                return false;
            }
            let frac = b[i + int + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            frac >= 4 && b.get(i + int + 1 + frac) == Some(&b's')
        })
    }
}

/// The log with what changes between runs replaced: run ids, commit ids, times, ports, paths.
fn snapshot(name: &str, g: &GithubWorld, log: &str) {
    let root = g.world.root().display().to_string();
    let log = log
        .replace(&root, "[ROOT]")
        .replace(env!("CARGO_MANIFEST_DIR"), "[CHECKOUT]");
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in [
        (r"\b\d{8}T\d{6}Z-[0-9A-Za-z-]+", "[RUN]"),
        (r"\b[0-9a-f]{40}\b", "[SHA]"),
        (r"\b[0-9a-f]{7,12}\b", "[SHA]"),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?( UTC|Z)?",
            "[TIME]",
        ),
        (r"\d{4}-\d{2}-\d{2}", "[DATE]"),
        (r"127\.0\.0\.1:\d+", "[HOST]"),
        (r"/tmp/[^\s`']+", "[TMP]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[DUR]"),
        (r"latency_ms=\d+", "latency_ms=[N]"),
        (r"requests=\d+", "requests=[N]"),
        (r"pid=\d+", "pid=[PID]"),
        (r"pid \d+", "pid [PID]"),
        (r"duration_ms=\d+", "duration_ms=[N]"),
        // Worktree folders: `<issue>-<slug>-<hex>-<hex>`.
        (r"/(\d+-[a-z0-9-]+?)-[0-9a-f]+-[0-9a-f]+\b", "/$1-[WT]"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings.set_snapshot_suffix(name);
    settings.bind(|| insta::assert_snapshot!("tick_log", log));
}

#[test]
fn happy_path_log() {
    let g = GithubWorld::new(Knobs::default());
    g.approved_issue("Add feature", "scenario: good\ncost: 0.40\n", MAINTAINER);
    let (out, log) = tick(&g, None);
    assert_eq!(out.status.code(), Some(0), "{log}");
    check_clean(&log);
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains("continued=false"), "a fresh worktree: {log}");
    snapshot("happy_path", &g, &log);
}

#[test]
fn a_retried_502_is_a_warning_not_an_error() {
    let g = GithubWorld::new(Knobs::default());
    g.approved_issue("Add feature", "scenario: good\ncost: 0.40\n", MAINTAINER);
    g.fake.inject("pulls/list", 1, FaultKind::ServerError(502));
    let (out, log) = tick(&g, None);
    assert_eq!(out.status.code(), Some(0), "{log}");
    check_clean(&log);
    assert!(!log.contains("ERROR"), "{log}");
    let retry = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("retrying in"))
        .unwrap_or_else(|| panic!("no retry warning:\n{log}"));
    assert!(retry.contains("`GET /repos/acme/app/pulls"), "{retry}");
    assert!(retry.contains("(attempt 1)"), "{retry}");
    assert!(retry.contains("502"), "{retry}");
    snapshot("retried_502", &g, &log);
}

#[test]
fn a_run_killed_mid_way_then_rerun() {
    let g = GithubWorld::new(Knobs::default());
    g.approved_issue("Add feature", "scenario: good\ncost: 0.40\n", MAINTAINER);
    let (crashed, crash_log) = tick(&g, Some("after_push"));
    assert_eq!(crashed.status.signal(), Some(SIGKILL), "{crash_log}");
    check_clean(&crash_log);
    // Right away: on the same host the dead process is seen, no need to wait out the clock.
    let (out, log) = tick(&g, None);
    assert_eq!(out.status.code(), Some(0), "{log}");
    check_clean(&log);
    assert!(
        log.contains("charged in full and its claim released now: run "),
        "{log}"
    );
    snapshot("crash", &g, &format!("{crash_log}--- rerun ---\n{log}"));
}
