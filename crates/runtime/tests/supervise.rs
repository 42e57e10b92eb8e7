//! The real supervision path driven by a scripted fake agent: live budget kills, wall-clock
//! kills of the whole process group, the scrubbed environment, bounded output, cancellation.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use issueloop_config::{BackendKind, BackendSettings, Env, Usd};
use issueloop_runtime::{
    BRIEF_FILE_VAR, Brief, CostSource, Invocation, KillReason, RunEvent, RunLimits, RunOptions,
    RuntimeError, Status, invocation, run, run_with,
};

const FAKE: &str = env!("CARGO_BIN_EXE_issueloop-fake-agent");
const TOKEN: &str = "ghp_0123456789abcdefghijABCDEFGHIJklmnop";

fn command(argv: &[&str], format: &str, env: &[&str]) -> Invocation {
    let settings = BackendSettings {
        argv: Some(
            std::iter::once(FAKE)
                .chain(argv.iter().copied())
                .map(String::from)
                .collect(),
        ),
        format: Some(format.into()),
        env: env.iter().map(|v| (*v).to_owned()).collect(),
        ..BackendSettings::default()
    };
    let brief = Brief {
        text: "Fix the flaky test in `tests/`.\n".into(),
        path: None,
    };
    invocation(
        BackendKind::Command,
        &settings,
        None,
        &limits(1.0, 60),
        &brief,
    )
    .expect("a valid command invocation")
}

fn limits(cost_usd: f64, wall_secs: u64) -> RunLimits {
    RunLimits {
        cost_usd: Usd::from_dollars(cost_usd),
        wall_clock: Duration::from_secs(wall_secs),
        max_turns: 10,
    }
}

fn env(tmp: &Path) -> Env {
    Env::from_pairs([
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("HOME", tmp.display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        ("GITHUB_TOKEN", TOKEN.to_string()),
        ("GH_TOKEN", TOKEN.to_string()),
        ("ACTIONS_RUNTIME_TOKEN", "runtime-secret".to_string()),
        ("OPENAI_API_KEY", "sk-test-key".to_string()),
        ("UNRELATED_VARIABLE", "should-not-pass".to_string()),
    ])
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    worktree: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_owned();
    let worktree = root.join("worktree");
    std::fs::create_dir(&worktree).expect("worktree");
    Dirs {
        _tmp: tmp,
        root,
        worktree,
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// True once `pid` is gone or a zombie (killed, waiting to be reaped by init).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Wait (bounded) for `pid` to die: a kill takes effect asynchronously.
async fn wait_dead(pid: i32) -> bool {
    for _ in 0..500 {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn read_pid(path: &Path) -> i32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("`{}` never appeared", path.display());
}

#[tokio::test]
async fn a_stream_whose_cost_passes_the_budget_is_killed_within_one_event() {
    let d = dirs();
    let progress = d.root.join("progress");
    // OpenCode-style steps of $0.10 every 300 ms; the budget is $0.25.
    let inv = command(
        &[
            "costs",
            "--count",
            "20",
            "--step",
            "0.1",
            "--delay-ms",
            "300",
            "--progress",
            p(&progress),
        ],
        "opencode",
        &[],
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let opts = RunOptions {
        events: Some(tx),
        term_grace: Duration::from_secs(2),
        ..RunOptions::default()
    };
    let o = run_with(&inv, &d.worktree, &limits(0.25, 60), &env(&d.root), opts)
        .await
        .expect("the run");
    assert_eq!(o.status, Status::BudgetExhausted, "{o:#?}");
    assert_eq!(o.killed, Some(KillReason::Budget));
    // The third step's $0.30 crossed the budget: the cost so far is reported, not more.
    assert_eq!(o.cost_usd, Usd::from_dollars(0.3), "{}", o.cost_usd);
    assert_eq!(o.cost_source, CostSource::Reported);
    let emitted: u32 = std::fs::read_to_string(&progress)
        .expect("progress")
        .trim()
        .parse()
        .expect("a count");
    assert!(emitted <= 6, "the agent went on to emit line {emitted}");
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        matches!(events.first(), Some(RunEvent::Started { .. })),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&RunEvent::Killed(KillReason::Budget)));
    let costs: Vec<Usd> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Cost(c) => Some(c.cost_usd),
            _ => None,
        })
        .collect();
    assert_eq!(costs.len(), 3, "{costs:?}");
    assert_eq!(o.ledger_cost(Usd::from_dollars(0.25)), o.cost_usd);
}

#[tokio::test]
async fn a_hung_agent_and_its_child_are_killed_at_the_wall_clock_limit() {
    let d = dirs();
    let (parent_pid, child_pid) = (d.root.join("parent.pid"), d.root.join("child.pid"));
    // Both ignore SIGTERM, so only the KILL after the grace period ends them.
    let inv = command(
        &[
            "--ignore-term",
            "hang",
            "--pid-file",
            p(&parent_pid),
            "--child-pid-file",
            p(&child_pid),
        ],
        "text",
        &[],
    );
    let opts = RunOptions {
        term_grace: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let o = run_with(&inv, &d.worktree, &limits(1.0, 1), &env(&d.root), opts)
        .await
        .expect("the run");
    assert_eq!(o.status, Status::TimedOut, "{o:#?}");
    assert_eq!(o.killed, Some(KillReason::WallClock));
    assert_eq!(o.cost_source, CostSource::Unknown);
    assert_eq!(
        o.ledger_cost(Usd::from_dollars(1.0)),
        Usd::from_dollars(1.0),
        "an unknown cost is charged the whole budget"
    );
    let parent = read_pid(&parent_pid).await;
    let child = read_pid(&child_pid).await;
    assert!(wait_dead(parent).await, "agent {parent} still alive");
    assert!(
        wait_dead(child).await,
        "the agent's child {child} still alive"
    );
}

#[tokio::test]
async fn the_github_token_never_reaches_the_agent() {
    let d = dirs();
    let (env_dump, stdin_copy, brief_copy) = (
        d.root.join("env.txt"),
        d.root.join("stdin.txt"),
        d.root.join("brief.txt"),
    );
    // The configuration asks for the token explicitly; it must still be withheld.
    let inv = command(
        &[
            "--env-to",
            p(&env_dump),
            "--stdin-to",
            p(&stdin_copy),
            "--brief-file-to",
            p(&brief_copy),
            "print",
            "working",
            "",
            "done",
        ],
        "text",
        &[
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "ACTIONS_RUNTIME_TOKEN",
            "OPENAI_API_KEY",
        ],
    );
    let o = run(&inv, &d.worktree, &limits(1.0, 60), &env(&d.root))
        .await
        .expect("the run");
    assert_eq!(o.status, Status::Completed, "{o:#?}");
    assert_eq!(o.final_message, "working\ndone");
    let dump = std::fs::read_to_string(&env_dump).expect("the agent dumped its environment");
    let names: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for absent in [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "UNRELATED_VARIABLE",
        "CARGO_MANIFEST_DIR",
    ] {
        assert!(
            !names.contains(&absent),
            "`{absent}` reached the agent: {names:?}"
        );
    }
    assert!(!dump.contains(TOKEN), "the token's value reached the agent");
    assert!(!dump.contains("runtime-secret"));
    for present in ["PATH", "HOME", "TMPDIR", "OPENAI_API_KEY", BRIEF_FILE_VAR] {
        assert!(names.contains(&present), "`{present}` missing: {names:?}");
    }
    // The brief arrives on stdin and in a file outside the worktree, removed afterwards.
    let brief = "Fix the flaky test in `tests/`.\n";
    assert_eq!(std::fs::read_to_string(&stdin_copy).unwrap(), brief);
    assert_eq!(std::fs::read_to_string(&brief_copy).unwrap(), brief);
    let brief_path = dump
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{BRIEF_FILE_VAR}=")))
        .map(PathBuf::from)
        .expect("the brief file variable");
    assert!(
        !brief_path.starts_with(&d.worktree),
        "{}",
        brief_path.display()
    );
    assert!(
        !brief_path.exists(),
        "the temporary brief is removed after the run"
    );
    assert!(!format!("{o:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_captured_stream_replayed_through_supervision_keeps_its_outcome() {
    let d = dirs();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/harness/claude/stream_tool_use_success.jsonl");
    let inv = command(
        &["replay", p(&fixture), "--delay-ms", "5"],
        "claude_code",
        &[],
    );
    let o = run(&inv, &d.worktree, &limits(1.0, 60), &env(&d.root))
        .await
        .expect("the run");
    assert_eq!(o.status, Status::Completed, "{o:#?}");
    assert_eq!(o.cost_source, CostSource::Reported);
    // $0.24722425 as reported, rounded up to the micro-dollar.
    assert_eq!(o.cost_usd, Usd::from_micros(247_225));
    assert_eq!(
        o.final_message,
        "Here are the files in the current directory."
    );
    assert_eq!(o.exit_code, Some(0));
}

#[tokio::test]
async fn limits_beyond_any_clock_are_no_limit() {
    let d = dirs();
    let inv = command(&["print", "ok"], "text", &[]);
    let huge = RunLimits {
        cost_usd: Usd::MAX,
        wall_clock: Duration::MAX,
        max_turns: u32::MAX,
    };
    let o = run(&inv, &d.worktree, &huge, &env(&d.root))
        .await
        .expect("the run");
    assert_eq!(o.status, Status::Completed, "{o:#?}");
    assert_eq!(o.final_message, "ok");
}

#[tokio::test]
async fn a_finished_agent_leaves_no_child_behind() {
    let d = dirs();
    let (parent_pid, child_pid) = (d.root.join("parent.pid"), d.root.join("child.pid"));
    // The agent exits at once; its child keeps stdout open and would hang the reader.
    let inv = command(
        &[
            "hang",
            "--pid-file",
            p(&parent_pid),
            "--child-pid-file",
            p(&child_pid),
            "--parent-exits",
        ],
        "text",
        &[],
    );
    let opts = RunOptions {
        exit_drain: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let o = run_with(&inv, &d.worktree, &limits(1.0, 60), &env(&d.root), opts)
        .await
        .expect("the run");
    assert_eq!(o.status, Status::Completed, "{o:#?}");
    assert_eq!(o.killed, None);
    let child = read_pid(&child_pid).await;
    assert!(
        wait_dead(child).await,
        "the agent's child {child} outlived the run"
    );
}

#[tokio::test]
async fn dropping_the_run_kills_the_agent_group() {
    let d = dirs();
    let (parent_pid, child_pid) = (d.root.join("parent.pid"), d.root.join("child.pid"));
    let inv = command(
        &[
            "hang",
            "--pid-file",
            p(&parent_pid),
            "--child-pid-file",
            p(&child_pid),
        ],
        "text",
        &[],
    );
    let e = env(&d.root);
    let lim = limits(1.0, 600);
    let run_future = run(&inv, &d.worktree, &lim, &e);
    let started = async { (read_pid(&parent_pid).await, read_pid(&child_pid).await) };
    let (parent, child) = tokio::select! {
        o = run_future => panic!("the hung agent finished: {o:?}"),
        pids = started => pids,
    };
    // `select!` dropped the run future.
    assert!(wait_dead(parent).await, "agent {parent} outlived its run");
    assert!(
        wait_dead(child).await,
        "the agent's child {child} outlived its run"
    );
}

#[tokio::test]
async fn an_overlong_line_is_dropped_without_holding_it() {
    let d = dirs();
    let inv = command(
        &["flood", "--bytes", "8388608", "--line-bytes", "0"],
        "claude_code",
        &[],
    );
    let opts = RunOptions {
        line_limit: 1 << 20,
        ..RunOptions::default()
    };
    let o = run_with(&inv, &d.worktree, &limits(1.0, 60), &env(&d.root), opts)
        .await
        .expect("the run");
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.overlong_lines, 1);
    assert_eq!(o.lines, 1);
}

#[tokio::test]
async fn a_missing_program_or_worktree_is_a_clear_error() {
    let d = dirs();
    let settings = BackendSettings {
        binary: Some("no-such-agent-anywhere".into()),
        ..BackendSettings::default()
    };
    let brief = Brief {
        text: String::new(),
        path: None,
    };
    let inv = invocation(BackendKind::Codex, &settings, None, &limits(1.0, 1), &brief).unwrap();
    let err = run(&inv, &d.worktree, &limits(1.0, 1), &env(&d.root))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("`[backends.codex] binary`"),
        "{err}"
    );
    let err = run(
        &inv,
        &d.root.join("missing"),
        &limits(1.0, 1),
        &env(&d.root),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RuntimeError::Worktree(_)), "{err}");
}

#[tokio::test]
async fn a_brief_file_inside_the_worktree_is_refused() {
    let d = dirs();
    let settings = BackendSettings {
        argv: Some(vec![FAKE.into(), "print".into(), "x".into()]),
        ..BackendSettings::default()
    };
    let brief = Brief {
        text: "x".into(),
        path: Some(d.worktree.join("BRIEF.md")),
    };
    let inv = invocation(
        BackendKind::Command,
        &settings,
        None,
        &limits(1.0, 5),
        &brief,
    )
    .unwrap();
    let err = run(&inv, &d.worktree, &limits(1.0, 5), &env(&d.root))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::BriefInWorktree { .. }), "{err}");
}
