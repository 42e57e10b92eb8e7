//! Gate execution: each planned gate run as an argv in the worktree through `issueloop-process`
//! (its own process group, every descendant ended with it, optionally sandboxed), with a
//! timeout, a scrubbed environment and bounded output; then what it left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use issueloop_config::{Env, ErrorChain as _, GatesConfig};
use issueloop_process::{Launch, Sandbox};
use serde::Serialize;

use crate::builtin::utf8_check;
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
    /// The Landlock sandbox gates run in (`None`: unsandboxed). The scratch folder is added to
    /// its writable paths.
    pub sandbox: Option<Sandbox>,
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
            sandbox: None,
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

async fn run_command(
    worktree: &Path,
    prepared: &PreparedArgv,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    result: &mut GateResult,
) {
    let argv = prepared.argv();
    let start = Instant::now();
    let sandbox = opts.sandbox.clone().map(|mut s| {
        // Tool caches go to the scratch folder (see `gate_env`).
        s.writable.extend(
            [
                "PYTHONPYCACHEPREFIX",
                "MYPY_CACHE_DIR",
                "RUFF_CACHE_DIR",
                "CARGO_TARGET_DIR",
            ]
            .iter()
            .filter_map(|k| env.get(*k))
            .map(PathBuf::from)
            .filter_map(|p| p.parent().map(Path::to_owned)),
        );
        s
    });
    let launch = Launch::new(&argv[0])
        .args(&argv[1..])
        .current_dir(worktree)
        .env(env.clone())
        .timeout(opts.timeout)
        .kill_grace(opts.kill_grace)
        .output_limit(opts.output_limit_bytes)
        .sandbox(sandbox);
    let finished = match launch.run().await {
        Ok(finished) => finished,
        Err(e) => {
            result.duration = start.elapsed();
            if e.is_not_found() {
                result.status = GateStatus::NotFound;
                result.reason = Some(format!(
                    "program `{}` was not found on the gate's `PATH` (`{}`); install it, or change the gate",
                    argv[0],
                    env.get("PATH").map_or("", String::as_str)
                ));
            } else {
                result.status = GateStatus::Failed;
                result.reason = Some(e.chain().to_string());
            }
            return;
        }
    };
    result.duration = start.elapsed();
    result.output = finished.output.clone();
    result.output_bytes = finished.output_bytes;
    let output_note = finished
        .output_cut
        .then_some("a process that left the gate kept its output open");

    match &finished.status {
        Err(e) => {
            result.status = GateStatus::Failed;
            result.reason = Some(format!("waiting for `{}` failed: {e}", argv[0]));
        }
        Ok(_) if finished.timed_out => {
            result.status = GateStatus::TimedOut;
            result.reason = Some(format!(
                "did not finish within {}; it and every process it started were stopped",
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
            if let Some(signal) = finished.signal() {
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
