//! `issueloop ledger show` and `issueloop runs list/show` through the real binary, on a state
//! database filled through the library.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use issueloop_ledger::{
    Event, Journal, Ledger, ReserveOutcome, ReserveRequest, RunId, RunStatus, SqliteLedger, Usd,
};
use jiff::Timestamp;

fn issueloop(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("issueloop").unwrap();
    cmd.env_remove("ISSUELOOP_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .arg("--config")
        .arg(dir.join("issueloop.toml"));
    cmd
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("issueloop.toml"),
        "repos = [\"acme/api\"]\n\n[budget]\ndaily_cap_usd = 10.0\nmax_runs_per_day = 3\n\n\
         [state]\npath = \"state/ledger.sqlite\"\n",
    )
    .unwrap();
    let db = dir.path().join("state/ledger.sqlite");
    (dir, db)
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn reserve(ledger: &SqliteLedger, run: &RunId, issue: u64, amount: f64, at: &str) {
    let req = ReserveRequest {
        run_id: run.clone(),
        repo: "acme/api".into(),
        issue,
        amount: Usd::from_dollars(amount),
        cap: Usd::from_dollars(10.0),
        max_runs: 3,
        wall_clock: Duration::from_secs(45 * 60),
        grace: Duration::from_secs(15 * 60),
        soft_claim: Duration::ZERO,
        now: ts(at),
    };
    assert!(matches!(
        ledger.reserve(&req).unwrap(),
        ReserveOutcome::Reserved(_)
    ));
}

/// Two runs on 2025-03-14 (a day long past, so expiries are due): one finished (settled above its reservation), one that died.
fn fill(db: &Path) -> (RunId, RunId) {
    let store = SqliteLedger::open(db).unwrap();
    let done = RunId::generate(ts("2025-03-14T13:05:01Z"), "acme/api", 42);
    let died = RunId::generate(ts("2025-03-14T14:00:00Z"), "acme/api", 43);
    reserve(&store, &done, 42, 5.0, "2025-03-14T13:05:01Z");
    let events = [
        Event::RunStarted {
            repo: "acme/api".into(),
            issue: 42,
            branch: Some("loop/42-fix".into()),
        },
        Event::StageStarted {
            stage: "execute".into(),
            runtime_id: "codex".into(),
        },
        Event::BackendFinished {
            stage: "execute".into(),
            status: "completed".into(),
            cost_usd: Usd::from_dollars(5.8),
            cost_source: "reported".into(),
            usage: serde_json::json!({"input_tokens": 1200}),
            error: None,
        },
        Event::StageStarted {
            stage: "evaluate".into(),
            runtime_id: "claude_code".into(),
        },
        Event::PrOpened {
            number: 7,
            url: "https://github.com/acme/api/pull/7".into(),
        },
        Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    ];
    for (i, e) in events.iter().enumerate() {
        store
            .append(
                &done,
                ts("2025-03-14T13:05:01Z") + Duration::from_secs(60 * i as u64),
                e,
            )
            .unwrap();
    }
    store
        .settle(&done, Usd::from_dollars(5.8), ts("2025-03-14T13:40:00Z"))
        .unwrap();
    reserve(&store, &died, 43, 4.2, "2025-03-14T14:00:00Z");
    store
        .append(
            &died,
            ts("2025-03-14T14:00:00Z"),
            &Event::RunStarted {
                repo: "acme/api".into(),
                issue: 43,
                branch: None,
            },
        )
        .unwrap();
    (done, died)
}

fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.arg("--json").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn text(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ledger_show_json_reports_the_day_against_the_cap() {
    let (dir, db) = setup();
    let (done, died) = fill(&db);
    let v = json(issueloop(dir.path()).args(["ledger", "show", "--day", "2025-03-14"]));
    assert_eq!(v["day"], "2025-03-14");
    assert_eq!(v["cap_usd"], 10.0);
    assert_eq!(v["spent_usd"], 5.8);
    assert_eq!(v["reserved_usd"], 4.2);
    assert_eq!(v["remaining_usd"], 0.0);
    assert_eq!(v["runs_today"], 2);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["run_id"], done.as_str());
    assert_eq!(entries[0]["state"], "settled");
    assert_eq!(entries[0]["reserved_usd"], 5.0);
    assert_eq!(entries[0]["cost_usd"], 5.8);
    assert_eq!(entries[0]["overspent"], true);
    assert_eq!(entries[1]["run_id"], died.as_str());
    assert_eq!(entries[1]["state"], "reserved");
    assert_eq!(entries[1]["cost_usd"], serde_json::Value::Null);
    // Its wall clock and grace ran out long ago; the next tick's expiry will charge it.
    assert_eq!(entries[1]["overdue"], true);
    // Another day is empty.
    let v = json(issueloop(dir.path()).args(["ledger", "show", "--day", "2025-03-15"]));
    assert_eq!(
        (v["spent_usd"].as_f64(), v["remaining_usd"].as_f64()),
        (Some(0.0), Some(10.0))
    );
    assert_eq!(v["entries"], serde_json::json!([]));
}

#[test]
fn ledger_show_reads_in_one_screen() {
    let (dir, db) = setup();
    let (done, _) = fill(&db);
    let out = text(issueloop(dir.path()).args(["ledger", "show", "--day", "2025-03-14"]));
    for want in [
        "ledger for 2025-03-14 (UTC)",
        "spent      $5.80",
        "reserved   $4.20",
        "remaining  $0.00 of the $10.00 daily cap",
        "runs       2 of 3 allowed",
        "reserved (overdue)",
        "$5.80 overspent",
        "acme/api#42",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("13:05") && l.contains(done.as_str())),
        "{out}"
    );
    assert!(out.lines().count() < 25, "{out}");
}

#[test]
fn reading_a_missing_state_database_shows_nothing_and_creates_nothing() {
    let (dir, db) = setup();
    let today = || Timestamp::now().strftime("%Y-%m-%d").to_string();
    let before = today();
    let v = json(issueloop(dir.path()).args(["ledger", "show"]));
    assert_eq!(v["spent_usd"], 0.0);
    assert_eq!(v["remaining_usd"], 10.0);
    // Today in UTC (either side of a midnight passing while the command ran).
    let day = v["day"].as_str().unwrap();
    assert!(day == before || day == today(), "{day}");
    let v = json(issueloop(dir.path()).args(["runs", "list"]));
    assert_eq!(v["runs"], serde_json::json!([]));
    assert!(!db.exists());
    assert!(!db.parent().unwrap().exists());
}

#[test]
fn a_bad_day_is_a_usage_error() {
    let (dir, _) = setup();
    let out = issueloop(dir.path())
        .args(["ledger", "show", "--day", "21/11/2026"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("write it like `2026-11-21`"));
}

#[test]
fn runs_list_shows_newest_first_with_derived_status() {
    let (dir, db) = setup();
    let (done, died) = fill(&db);
    let v = json(issueloop(dir.path()).args(["runs", "list"]));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], died.as_str());
    assert_eq!(runs[0]["status"], "interrupted");
    assert_eq!(runs[1]["run_id"], done.as_str());
    assert_eq!(runs[1]["status"], "succeeded");
    assert_eq!(runs[1]["issue"], 42);
    assert_eq!(runs[1]["ledger"]["cost_usd"], 5.8);
    let v = json(issueloop(dir.path()).args(["runs", "list", "--limit", "1"]));
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    let out = text(issueloop(dir.path()).args(["runs", "list"]));
    assert!(out.starts_with("run "), "{out}");
    let line = out.lines().find(|l| l.contains(done.as_str())).unwrap();
    assert!(
        line.contains("acme/api#42") && line.contains("succeeded"),
        "{line}"
    );
    assert!(line.contains("$5.80 (overspent)"), "{line}");
    let line = out.lines().find(|l| l.contains(died.as_str())).unwrap();
    assert!(
        line.contains("interrupted") && line.contains("$4.20 reserved"),
        "{line}"
    );
}

#[test]
fn runs_show_gives_events_stage_table_and_status() {
    let (dir, db) = setup();
    let (done, died) = fill(&db);
    let v = json(issueloop(dir.path()).args(["runs", "show", done.as_str()]));
    assert_eq!(v["status"], "succeeded");
    assert_eq!(
        v["stages"],
        serde_json::json!([
            {"stage": "execute", "runtime_id": "codex", "starts": 1},
            {"stage": "evaluate", "runtime_id": "claude_code", "starts": 1},
        ])
    );
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "stage_started",
            "backend_finished",
            "stage_started",
            "pr_opened",
            "run_finished"
        ]
    );
    assert_eq!(v["events"][0]["payload"]["branch"], "loop/42-fix");
    assert_eq!(v["ledger"]["state"], "settled");

    let out = text(issueloop(dir.path()).args(["runs", "show", done.as_str()]));
    assert!(out.contains("status  succeeded"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("execute") && l.contains("codex")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("evaluate") && l.contains("claude_code")),
        "{out}"
    );
    assert!(out.contains("pr_opened"), "{out}");
    assert!(out.contains("number=7"), "{out}");

    let v = json(issueloop(dir.path()).args(["runs", "show", died.as_str()]));
    assert_eq!(v["status"], "interrupted");
    assert_eq!(v["stages"], serde_json::json!([]));
}

#[test]
fn runs_show_of_an_unknown_run_is_a_usage_error() {
    let (dir, db) = setup();
    fill(&db);
    let out = issueloop(dir.path())
        .args(["runs", "show", "20990101T000000Z-x-1-abcdef"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no run `20990101T000000Z-x-1-abcdef`"),
        "{stderr}"
    );
    assert!(stderr.contains("issueloop runs list"), "{stderr}");
    let out = issueloop(dir.path())
        .args(["runs", "show", "../x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_corrupt_state_database_is_reported_and_left_untouched() {
    let (dir, db) = setup();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let garbage = b"this was never a SQLite database, but it is long enough to look at.".repeat(64);
    std::fs::write(&db, &garbage).unwrap();
    for args in [&["ledger", "show"][..], &["runs", "list"][..]] {
        let out = issueloop(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("ledger.sqlite`"), "{stderr}");
        assert!(stderr.contains("left untouched"), "{stderr}");
        let out = issueloop(dir.path())
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["error"]["kind"], "state");
    }
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}
