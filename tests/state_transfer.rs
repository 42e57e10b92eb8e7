//! Moving from the embedded store to a shared one without losing the day's spend, as an operator
//! does it: in the checkout folder (the configuration found there by default), `issueloop state
//! export`, switch `[state] backend`, `issueloop state import`, and `ledger show` says what it said
//! before: the same spend, the same reservations (an unsettled one still unsettled, with its
//! expiry), the same entries. A second import changes nothing; a file that disagrees with the
//! store about a run is refused (exit 2) and writes nothing.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (the binary under test) to set up and observe"
)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use issueloop::ledger::{
    Event, Journal, Ledger, ReserveOutcome, ReserveRequest, RunId, RunStatus, Usd,
};
use issueloop_fake_github::TOKEN;
use jiff::{SignedDuration, Timestamp};
use support::github::{GithubWorld, assert_token_absent, printed};
use support::postgres::TestDatabase;
use support::state_github::{runner_folder, use_github_state};
use support::{Knobs, REPO};

/// `issueloop ARGS` in `folder`, the way a user runs it there: no `--config`, relative paths.
fn issueloop(folder: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_issueloop"));
    cmd.current_dir(folder)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("ISSUELOOP_DATABASE_URL")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GH_TOKEN")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_token_absent(&printed(&out));
    out
}

#[track_caller]
fn json_of(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", printed(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", printed(out)))
}

/// The world's SQLite store with a day on it: two settled runs ($0.40 of $0.50, $0.60), one
/// released, and one still running ($0.30 reserved, expiring in an hour); a journal.
fn a_day_in_sqlite(g: &GithubWorld) -> RunId {
    let store = g.world.ledger();
    let now = Timestamp::now();
    let ago = |min: i64| now - SignedDuration::from_mins(min);
    let reserve = |issue: u64, dollars: f64, at: Timestamp| {
        let run_id = RunId::generate(at, REPO, issue);
        let outcome = store
            .reserve(&ReserveRequest {
                run_id: run_id.clone(),
                repo: REPO.into(),
                issue,
                amount: Usd::from_dollars(dollars),
                cap: Usd::from_dollars(5.0),
                max_runs: 10,
                wall_clock: Duration::from_secs(45 * 60),
                grace: Duration::from_secs(15 * 60),
                soft_claim: Duration::ZERO,
                now: at,
            })
            .unwrap();
        assert!(
            matches!(outcome, ReserveOutcome::Reserved(_)),
            "{outcome:?}"
        );
        run_id
    };
    let a = reserve(1, 0.5, ago(3));
    store.settle(&a, Usd::from_dollars(0.4), ago(2)).unwrap();
    let b = reserve(2, 0.6, ago(3));
    store.settle(&b, Usd::from_dollars(0.6), ago(2)).unwrap();
    let c = reserve(3, 0.7, ago(3));
    store.release(&c, ago(2)).unwrap();
    reserve(4, 0.3, ago(1));
    for event in [
        Event::RunStarted {
            repo: REPO.into(),
            issue: 1,
            branch: None,
        },
        Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    ] {
        store.append(&a, ago(2), &event).unwrap();
    }
    a
}

/// The parts of `ledger show --json` that must survive the move.
fn day(show: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "day": show["day"],
        "spent_usd": show["spent_usd"],
        "reserved_usd": show["reserved_usd"],
        "runs_today": show["runs_today"],
        "entries": show["entries"],
    })
}

fn switch_backend(g: &GithubWorld, backend: &str) {
    if backend == "github" {
        return use_github_state(g);
    }
    let config = std::fs::read_to_string(&g.world.config).unwrap();
    let switched = config.replace(
        "[state]\npath = \"state.sqlite\"\n",
        &format!("[state]\nbackend = \"{backend}\"\n"),
    );
    assert_ne!(config, switched);
    std::fs::write(&g.world.config, switched).unwrap();
}

/// Export from SQLite in the checkout, switch to `backend`, import, and compare `ledger show`.
fn move_the_day(backend: &str, env: &[(&str, &str)]) -> (GithubWorld, serde_json::Value, RunId) {
    let g = GithubWorld::new(Knobs::default());
    let settled = a_day_in_sqlite(&g);
    let root = g.world.root().to_owned();
    let before = day(&json_of(&issueloop(
        &root,
        &["--json", "ledger", "show"],
        &[],
    )));
    assert_eq!(
        (
            &before["spent_usd"],
            &before["reserved_usd"],
            &before["runs_today"]
        ),
        (&1.0.into(), &0.3.into(), &3.into()),
        "{before:#}"
    );

    let out = issueloop(&root, &["state", "export", "--output", "ledger.jsonl"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let text = std::fs::read_to_string(root.join("ledger.jsonl")).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("{\"kind\":\"entry\",\"version\":1,"))
            .count(),
        4,
        "{text}"
    );
    // The same records on stdout without `--output`.
    let out = issueloop(&root, &["state", "export"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);

    switch_backend(&g, backend);
    let out = issueloop(&root, &["state", "import", "ledger.jsonl"], env);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("4 ledger entries (0 already there)"),
        "{said}"
    );

    let after = day(&json_of(&issueloop(
        &root,
        &["--json", "ledger", "show"],
        env,
    )));
    assert_eq!(after, before);
    let still_running = after["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "reserved")
        .count();
    assert_eq!(still_running, 1, "{after:#}");

    // Again: nothing changes.
    let again = json_of(&issueloop(
        &root,
        &["--json", "state", "import", "ledger.jsonl"],
        env,
    ));
    assert_eq!(again["unchanged"], true, "{again:#}");
    assert_eq!(again["entries_present"], 4, "{again:#}");

    // From stdin, a file that disagrees about a settled run: refused, nothing written.
    let conflicting: String = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["run_id"] == settled.as_str() && v["kind"] == "entry" {
                v["cost_micros"] = 100_000.into();
            }
            format!("{v}\n")
        })
        .collect();
    std::fs::write(root.join("conflicting.jsonl"), conflicting).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_issueloop"))
        .current_dir(&root)
        .env_remove("ISSUELOOP_CONFIG")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(env.iter().copied())
        .args(["state", "import", "-"])
        .stdin(std::fs::File::open(root.join("conflicting.jsonl")).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was imported") && err.contains(settled.as_str()),
        "{err}"
    );
    let unchanged = day(&json_of(&issueloop(
        &root,
        &["--json", "ledger", "show"],
        env,
    )));
    assert_eq!(unchanged, before);
    (g, before, settled)
}

#[test]
fn sqlite_to_github_keeps_the_days_spend_for_every_machine() {
    let (g, before, settled) = move_the_day("github", &[]);
    // Another machine, with nothing of its own (a fresh folder, as an Actions runner without a
    // cache), reads the same day from the branch; `runs show` finds the run's ledger entry there.
    let elsewhere = runner_folder(&g, "elsewhere");
    let seen = day(&json_of(&issueloop(
        &elsewhere,
        &["--json", "ledger", "show"],
        &[],
    )));
    assert_eq!(seen, before);
    let run = json_of(&issueloop(
        &elsewhere,
        &["--json", "runs", "show", settled.as_str()],
        &[],
    ));
    assert_eq!(run["ledger"]["state"], "settled", "{run:#}");
    assert_eq!(run["ledger"]["cost_usd"], 0.4, "{run:#}");
    // The machine that imported also has the run's events.
    let run = json_of(&issueloop(
        g.world.root(),
        &["--json", "runs", "show", settled.as_str()],
        &[],
    ));
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["events"].as_array().unwrap().len(), 2, "{run:#}");
    g.fake.assert_no_unexpected();
}

#[test]
fn sqlite_to_postgres_keeps_the_days_spend() {
    let Some(db) = TestDatabase::create("sqlite_to_postgres_keeps_the_days_spend") else {
        return;
    };
    let url = db.url();
    let (g, _, settled) = move_the_day("postgres", &[("ISSUELOOP_DATABASE_URL", &url)]);
    let run = json_of(&issueloop(
        g.world.root(),
        &["--json", "runs", "show", settled.as_str()],
        &[("ISSUELOOP_DATABASE_URL", &url)],
    ));
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["ledger"]["cost_usd"], 0.4, "{run:#}");
}
