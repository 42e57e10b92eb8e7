//! `[state] backend = "postgres"` end to end: several `issueloop run --once` processes, each
//! with a state folder of its own (its own configuration, cache and no SQLite file), one local
//! forge and one PostgreSQL database. The daily cap is the database's, not each runner's:
//! with a $1.00 cap and four approved issues at $0.50, two runs happen in all.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use issueloop::ledger::{EntryState, Ledger, PgLedger, utc_day};
use support::postgres::TestDatabase;
use support::{Knobs, MAINTAINER, World, run_of};

/// A runner's own folder with an `issueloop.toml` like the world's, but with the local forge
/// given as an absolute path (shared by every runner), its own git cache, and the postgres
/// state backend (the URL from `ISSUELOOP_DATABASE_URL`, as an operator keeps the password
/// out of the file).
fn runner(w: &World, name: &str) -> PathBuf {
    let dir = w.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(&w.config).unwrap();
    let forge = w.root().join("forge");
    let observe = w.root().join("observe");
    let text = text
        .replace(
            "local_path = \"forge\"",
            &format!("local_path = \"{}\"", forge.display()),
        )
        // The agent's log (how the test counts agent runs) is the world's, shared by all.
        .replace(
            "extra_writable = [\"observe\"]",
            &format!("extra_writable = [\"{}\"]", observe.display()),
        )
        .replace(
            "[state]\npath = \"state.sqlite\"",
            "[state]\nbackend = \"postgres\"",
        );
    assert!(text.contains("backend = \"postgres\""), "{text}");
    assert!(text.contains(&observe.display().to_string()), "{text}");
    std::fs::write(dir.join("issueloop.toml"), text).unwrap();
    dir
}

/// `issueloop --json run --once` started the way a user starts it: in the runner's folder,
/// the configuration found there, nothing but relative paths.
fn run_once(w: &World, dir: &Path, db: &TestDatabase) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_issueloop"))
        .current_dir(dir)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("ISSUELOOP_FAILPOINT")
        .env("ISSUELOOP_DATABASE_URL", db.url())
        .env("RUST_LOG", "info")
        .env("E2E_AGENT_LOG", &w.agent_log)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["--json", "run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn world_with_four_issues() -> (World, Vec<u64>) {
    let mut w = World::new(Knobs {
        daily_cap: 1.0,
        run_cost: 0.5,
        max_concurrent_runs: 4,
        ..Knobs::default()
    });
    let issues = (1..=4)
        .map(|i| {
            w.add_issue(
                &format!("Change {i}"),
                "scenario: good\ncost: 0.5",
                MAINTAINER,
            )
        })
        .collect();
    (w, issues)
}

#[test]
fn two_runners_with_their_own_state_folders_share_one_daily_cap() {
    let Some(db) =
        TestDatabase::create("two_runners_with_their_own_state_folders_share_one_daily_cap")
    else {
        return;
    };
    let (w, issues) = world_with_four_issues();
    let (a, b) = (runner(&w, "runner-a"), runner(&w, "runner-b"));

    // The first runner spends the day's $1.00 on two issues; the second, with a state folder
    // of its own, finds the cap reached in the shared database.
    let first = report(run_once(&w, &a, &db));
    let second = report(run_once(&w, &b, &db));
    let ran: Vec<u64> = issues
        .iter()
        .copied()
        .filter(|&n| run_of(&first, n)["status"] == "pr_opened")
        .collect();
    assert_eq!(ran, [issues[0], issues[1]], "{first:#}");
    for &n in &issues[2..] {
        assert_eq!(
            run_of(&first, n)["reason"],
            "daily_cap_reached",
            "{first:#}"
        );
        assert_eq!(run_of(&second, n)["status"], "skipped", "{second:#}");
        assert_eq!(
            run_of(&second, n)["reason"],
            "daily_cap_reached",
            "{second:#}"
        );
    }
    assert_eq!(second["ledger"]["spent_usd"], 1.0, "{second:#}");
    assert_eq!(second["ledger"]["remaining_usd"], 0.0);
    assert_eq!(w.agent_calls().len(), 2);
    assert_eq!(w.pulls().len(), 2);
    // No runner wrote a SQLite file: the state is the database's.
    for dir in [&a, &b] {
        assert!(!dir.join("state.sqlite").exists());
        assert!(!dir.join(".issueloop").exists());
    }

    // The database's ledger: $1.00 settled on the day, nothing left reserved.
    let ledger = PgLedger::open(&db.database_url()).unwrap();
    let day = utc_day(jiff::Timestamp::now());
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(
        (usage.spent.dollars(), usage.reserved.dollars(), usage.runs),
        (1.0, 0.0, 2)
    );
    let entries = ledger.entries(day).unwrap();
    assert!(
        entries.iter().all(|e| e.state == EntryState::Settled),
        "{entries:?}"
    );

    // `ledger show` from either folder reads the same day, and never prints the password.
    let out = Command::new(env!("CARGO_BIN_EXE_issueloop"))
        .current_dir(&b)
        .env_remove("ISSUELOOP_CONFIG")
        .env("ISSUELOOP_DATABASE_URL", db.url())
        .args(["ledger", "show"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("spent      $1.00"), "{stdout}");
    assert!(stdout.contains(":***@"), "{stdout}");
    let password = db
        .url()
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(u, _)| u.split_once(':'))
        .map(|(_, p)| p.to_owned());
    if let Some(password) = password {
        assert!(!stdout.contains(&password), "{stdout}");
    }
}

#[test]
fn eight_concurrent_runners_never_spend_over_the_cap() {
    let Some(db) = TestDatabase::create("eight_concurrent_runners_never_spend_over_the_cap") else {
        return;
    };
    let (w, issues) = world_with_four_issues();
    let dirs: Vec<PathBuf> = (0..8).map(|i| runner(&w, &format!("runner-{i}"))).collect();
    let children: Vec<_> = dirs.iter().map(|d| run_once(&w, d, &db)).collect();
    let reports: Vec<serde_json::Value> = children.into_iter().map(report).collect();

    // Never over the cap: at most two runs in all, each charged its $0.50.
    let opened: Vec<u64> = issues
        .iter()
        .copied()
        .filter(|&n| {
            reports
                .iter()
                .any(|r| run_of(r, n)["status"] == "pr_opened")
        })
        .collect();
    let calls = w.agent_calls().len();
    assert!((1..=2).contains(&calls), "{calls} agent runs: {reports:#?}");
    assert_eq!(opened.len(), calls, "one PR per run: {reports:#?}");
    assert_eq!(w.pulls().len(), calls);
    let ledger = PgLedger::open(&db.database_url()).unwrap();
    let day = utc_day(jiff::Timestamp::now());
    let usage = ledger.day_usage(day).unwrap();
    assert_eq!(usage.reserved.dollars(), 0.0);
    assert_eq!(usage.spent.dollars(), 0.5 * calls as f64, "{usage:?}");
    assert!(usage.spent.dollars() <= 1.0);
    // Every other look at an issue was a skip with a reason: the cap, or another runner's claim
    // (its fresh reservation, or the forge's claim).
    for r in &reports {
        for run in r["runs"].as_array().unwrap() {
            if run["status"] != "pr_opened" {
                assert_eq!(run["status"], "skipped", "{run:#}");
                let reason = run["reason"].as_str().unwrap();
                assert!(
                    [
                        "daily_cap_reached",
                        "reserved_elsewhere",
                        "claimed",
                        "has_open_pr",
                        "already_published"
                    ]
                    .contains(&reason),
                    "{run:#}"
                );
            }
        }
    }
}
