//! Gate execution: each planned gate run as an argv in the worktree, in its own process group,
//! with a timeout, a scrubbed environment and bounded output; then what it left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issueloop_config::{Env, GatesConfig};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::builtin::utf8_check;
use crate::capture::BoundedCapture;
use crate::env::gate_env;
use crate::error::GateError;
use crate::leftovers::{Snapshot, snapshot};
use crate::plan::{PlannedGate, PlannedStep};
use crate::prepare::{PreparedArgv, shell_join};
use crate::select::GateOrigin;

/// How gates run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Wall-clock limit of each gate.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a gate overruns.
    pub kill_grace: Duration,
    /// Bytes of each gate's combined stdout and stderr kept (head and tail).
    pub output_limit_bytes: usize,
    /// The environment snapshot the gate environment is built from (see the crate docs).
    pub env: Env,
    /// Where tool caches go (bytecode, mypy, ruff, cargo's target directory); must be outside the
    /// worktree. `None`: a temporary folder under `TMPDIR`, removed afterwards.
    pub scratch_dir: Option<PathBuf>,
    /// Limit of each `git status` taken to see what a gate left behind.
    pub git_timeout: Duration,
}

impl RunOptions {
    /// Options from the `[gates]` configuration and the environment snapshot.
    pub fn new(config: &GatesConfig, env: Env) -> Self {
        Self {
            timeout: config.timeout,
            kill_grace: Duration::from_secs(5),
            output_limit_bytes: config.output_limit_bytes,
            env,
            scratch_dir: None,
            git_timeout: Duration::from_secs(60),
        }
    }
}

/// How a gate ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Passed,
    Failed,
    TimedOut,
    NotFound,
    /// Never run: preparation failed closed or the allowlist rejected it.
    Rejected,
}

impl GateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::Failed => "failed",
            GateStatus::TimedOut => "timed_out",
            GateStatus::NotFound => "not_found",
            GateStatus::Rejected => "rejected",
        }
    }
}

/// The result of one gate.
#[derive(Clone, Debug, Serialize)]
pub struct GateResult {
    pub name: String,
    pub origin: GateOrigin,
    pub status: GateStatus,
    /// The exit code, when the program ran and exited (not when a signal ended it).
    pub exit_code: Option<i32>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The prepared argv (what ran, or would have run).
    pub argv: Vec<String>,
    /// `argv` shell-escaped, for people.
    pub command: String,
    /// Why the gate did not pass, when its output does not say it: the rejection, the timeout,
    /// the missing program, the signal.
    pub reason: Option<String>,
    /// Head and tail of the combined stdout and stderr.
    pub output: String,
    /// Bytes of output in total (more than `output` holds when it was cut).
    pub output_bytes: u64,
    /// Paths of the worktree this gate created, changed or removed (per `git status`).
    pub left_files: Vec<String>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether the worktree could be checked for files left behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum LeftoverCheck {
    Checked,
    /// `git status` could not be taken (not a git checkout, git missing or failing).
    Unavailable {
        reason: String,
    },
}

/// The results of one worktree's gates.
#[derive(Clone, Debug, Serialize)]
pub struct GateReport {
    pub results: Vec<GateResult>,
    pub leftover_check: LeftoverCheck,
}

impl GateReport {
    /// Every gate passed, none left anything behind, and that could be verified.
    pub fn passed(&self) -> bool {
        self.leftover_check == LeftoverCheck::Checked
            && self
                .results
                .iter()
                .all(|r| r.status == GateStatus::Passed && r.left_files.is_empty())
    }

    /// Gates that left files behind, with the files.
    pub fn left_behind(&self) -> Vec<(&str, &[String])> {
        self.results
            .iter()
            .filter(|r| !r.left_files.is_empty())
            .map(|r| (r.name.as_str(), r.left_files.as_slice()))
            .collect()
    }
}

/// Run the planned gates of one worktree in order. Rejected gates are reported and never
/// spawned. After each gate that ran a program, `git status` is compared with the one before it,
/// so every file left behind is attributed to the gate that left it.
///
/// Errors only when the gates cannot be set up at all (worktree or scratch folder unusable).
pub async fn run_gates(
    worktree: &Path,
    planned: &[PlannedGate],
    opts: &RunOptions,
) -> Result<GateReport, GateError> {
    let worktree = std::fs::canonicalize(worktree).map_err(|source| GateError::Io {
        path: worktree.to_owned(),
        source,
    })?;
    let scratch = Scratch::new(opts, &worktree)?;
    let env = gate_env(&opts.env, &worktree, scratch.path());
    let mut before: Result<Snapshot, String> =
        snapshot(&worktree, &opts.env, opts.git_timeout).await;
    let mut results = Vec::with_capacity(planned.len());
    for gate in planned {
        let mut result = run_one(&worktree, gate, &env, opts).await;
        let ran_a_program = matches!(gate.step, PlannedStep::Run(_));
        if ran_a_program && let Ok(previous) = &before {
            let after = snapshot(&worktree, &opts.env, opts.git_timeout).await;
            if let Ok(after) = &after {
                result.left_files = previous.changed_in(after);
            }
            before = after;
        }
        tracing::info!(
            gate = %result.name,
            status = result.status.as_str(),
            exit_code = result.exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            left_files = result.left_files.len(),
            "gate finished"
        );
        results.push(result);
    }
    let leftover_check = match before {
        Ok(_) => LeftoverCheck::Checked,
        Err(reason) => LeftoverCheck::Unavailable { reason },
    };
    Ok(GateReport {
        results,
        leftover_check,
    })
}

/// The folder that receives tool caches: given (and created), or temporary.
enum Scratch {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Scratch {
    fn new(opts: &RunOptions, worktree: &Path) -> Result<Scratch, GateError> {
        let scratch = match &opts.scratch_dir {
            Some(dir) => {
                if !dir.is_absolute() || dir.starts_with(worktree) {
                    return Err(Scratch::inside(dir, worktree));
                }
                let fail = |e: std::io::Error| GateError::Scratch {
                    path: dir.clone(),
                    message: e.to_string(),
                };
                std::fs::create_dir_all(dir).map_err(fail)?;
                Scratch::Given(std::fs::canonicalize(dir).map_err(fail)?)
            }
            None => {
                let base = opts
                    .env
                    .get("TMPDIR")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                let dir = tempfile::Builder::new()
                    .prefix("issueloop-gates-")
                    .tempdir_in(&base)
                    .map_err(|e| GateError::Scratch {
                        path: base.clone(),
                        message: format!("cannot create a temporary folder: {e}"),
                    })?;
                Scratch::Temporary(dir)
            }
        };
        if scratch.path().starts_with(worktree) {
            return Err(Scratch::inside(scratch.path(), worktree));
        }
        Ok(scratch)
    }

    fn inside(dir: &Path, worktree: &Path) -> GateError {
        GateError::Scratch {
            path: dir.to_owned(),
            message: format!(
                "is not an absolute path outside the worktree `{}`; caches there would be left behind",
                worktree.display()
            ),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Scratch::Given(p) => p,
            Scratch::Temporary(t) => t.path(),
        }
    }
}

async fn run_one(
    worktree: &Path,
    gate: &PlannedGate,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
) -> GateResult {
    let argv = gate.words();
    let mut result = GateResult {
        name: gate.gate.name.clone(),
        origin: gate.gate.origin,
        status: GateStatus::Rejected,
        exit_code: None,
        duration: Duration::ZERO,
        command: shell_join(&argv),
        argv,
        reason: None,
        output: String::new(),
        output_bytes: 0,
        left_files: Vec::new(),
    };
    match &gate.step {
        PlannedStep::Rejected { rejection, .. } => {
            result.reason = Some(rejection.to_string());
        }
        PlannedStep::Utf8Check(files) => {
            let start = Instant::now();
            let outcome = utf8_check(worktree, files);
            result.duration = start.elapsed();
            result.status = if outcome.passed {
                GateStatus::Passed
            } else {
                GateStatus::Failed
            };
            result.output_bytes = outcome.report.len() as u64;
            result.output = outcome.report;
        }
        PlannedStep::Run(prepared) => {
            tracing::info!(gate = %result.name, command = %prepared, "gate started");
            run_command(worktree, prepared, env, opts, &mut result).await;
        }
    }
    result
}

/// How long output is still read after the gate's process group is gone.
const READ_GRACE: Duration = Duration::from_secs(2);

async fn run_command(
    worktree: &Path,
    prepared: &PreparedArgv,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    result: &mut GateResult,
) {
    let argv = prepared.argv();
    let start = Instant::now();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(worktree)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout stops everything the gate started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            result.duration = start.elapsed();
            if e.kind() == std::io::ErrorKind::NotFound {
                result.status = GateStatus::NotFound;
                result.reason = Some(format!(
                    "program `{}` was not found on the gate's `PATH` (`{}`); install it, or change the gate",
                    argv[0],
                    env.get("PATH").map_or("", String::as_str)
                ));
            } else {
                result.status = GateStatus::Failed;
                result.reason = Some(format!("cannot start `{}`: {e}", argv[0]));
            }
            return;
        }
    };
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let capture = Arc::new(Mutex::new(BoundedCapture::new(opts.output_limit_bytes)));
    let mut reader = tokio::spawn(drain(
        child.stdout.take(),
        child.stderr.take(),
        Arc::clone(&capture),
    ));

    let mut timed_out = false;
    let waited = match tokio::time::timeout(opts.timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            timed_out = true;
            signal_group(group, libc::SIGTERM);
            match tokio::time::timeout(opts.kill_grace, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    signal_group(group, libc::SIGKILL);
                    child.wait().await
                }
            }
        }
    };
    // Whatever the gate left running in its group goes too: a gate leaves no processes behind,
    // and they would hold its output open.
    signal_group(group, libc::SIGKILL);
    let mut output_note = None;
    if tokio::time::timeout(READ_GRACE, &mut reader).await.is_err() {
        reader.abort();
        output_note = Some("a process that left the gate's process group kept its output open");
    }
    result.duration = start.elapsed();
    {
        let capture = capture
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        result.output = capture.excerpt();
        result.output_bytes = capture.total();
    }

    match waited {
        Err(e) => {
            result.status = GateStatus::Failed;
            result.reason = Some(format!("waiting for `{}` failed: {e}", argv[0]));
        }
        Ok(_) if timed_out => {
            result.status = GateStatus::TimedOut;
            result.reason = Some(format!(
                "did not finish within {}; its process group was stopped",
                issueloop_config::format_duration(opts.timeout)
            ));
        }
        Ok(status) => {
            result.exit_code = status.code();
            result.status = if status.success() {
                GateStatus::Passed
            } else {
                GateStatus::Failed
            };
            if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
                result.reason = Some(format!("ended by signal {signal}"));
            } else if let Some(missing) =
                uv_could_not_spawn(prepared, status.code(), &result.output)
            {
                result.status = GateStatus::NotFound;
                result.reason = Some(format!(
                    "`uv run` found no `{missing}` in the project environment or on `PATH`; add it to the dev set"
                ));
            }
        }
    }
    if let Some(note) = output_note {
        let reason = result.reason.take();
        result.reason = Some(match reason {
            Some(r) => format!("{r}; {note}"),
            None => note.to_owned(),
        });
    }
}

/// `uv run` exits 2 with `error: Failed to spawn: X` (uv 0.13; other versions quote X in
/// backticks) when the command it should run does not exist.
fn uv_could_not_spawn<'a>(
    prepared: &'a PreparedArgv,
    code: Option<i32>,
    output: &str,
) -> Option<&'a str> {
    let program = prepared.uv_payload()?.first()?;
    let names_program = |line: &str| {
        line.split_once("Failed to spawn: ")
            .is_some_and(|(_, rest)| rest.trim().trim_matches('`') == program)
    };
    (code == Some(2) && output.lines().any(names_program)).then_some(program.as_str())
}

/// Send `signal` to the process group `group` (the gate's, created with `process_group(0)`).
fn signal_group(group: Option<i32>, signal: libc::c_int) {
    // Never 0 or 1: `kill(-0)` would signal our own group and `kill(-1)` every process we may.
    let Some(group) = group.filter(|g| *g > 1) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; an error (ESRCH: the group is already
    // gone) is the expected outcome once the gate has finished and needs no handling.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// Read stdout and stderr as they come into one bounded capture, until both are closed.
async fn drain(
    mut stdout: Option<tokio::process::ChildStdout>,
    mut stderr: Option<tokio::process::ChildStderr>,
    capture: Arc<Mutex<BoundedCapture>>,
) {
    let mut out_buf = vec![0u8; 8192];
    let mut err_buf = vec![0u8; 8192];
    let push = |bytes: &[u8]| {
        capture
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(bytes);
    };
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            r = read_some(&mut stdout, &mut out_buf) => match r {
                Ok(0) => stdout = None,
                Ok(n) => push(&out_buf[..n]),
                Err(e) => {
                    push(format!("\n[reading stdout failed: {e}]\n").as_bytes());
                    stdout = None;
                }
            },
            r = read_some(&mut stderr, &mut err_buf) => match r {
                Ok(0) => stderr = None,
                Ok(n) => push(&err_buf[..n]),
                Err(e) => {
                    push(format!("\n[reading stderr failed: {e}]\n").as_bytes());
                    stderr = None;
                }
            },
        }
    }
}

/// Read from a pipe that may already be closed (`None`: never ready).
async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}
