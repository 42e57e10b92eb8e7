//! Running one agent: started through `issueloop-process` (its own process group in the
//! worktree, a scrubbed environment, optionally sandboxed), stdout normalized as it streams
//! (bounded memory), stderr drained concurrently into a bounded buffer, and the run's limits
//! enforced live — everything it started is ended when the running cost passes the budget or the
//! wall clock runs out (TERM, a grace period, then KILL), when it exits, and when the run future
//! is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use issueloop_config::{Env, ErrorChain as _};
use issueloop_process::{Launch, Sandbox, read_some};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::adapter::{BRIEF_FILE_VAR, BriefFile, Invocation, RunLimits, shell_words};
use crate::agent_env::{agent_env, find_program};
use crate::error::RuntimeError;
use crate::normalize::{DEFAULT_LINE_LIMIT, Normalizer};
use crate::outcome::{BackendOutcome, CostUpdate, KillReason};
use crate::stderr_tail;

/// Bytes read from stdout at a time.
const READ_CHUNK: usize = 64 << 10;

/// What a caller may follow while the agent runs (for progress logs).
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    Started { pid: u32 },
    Cost(CostUpdate),
    Killed(KillReason),
}

/// How supervision behaves; the defaults suit real harnesses.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Between TERM and KILL when issueloop stops an agent.
    pub term_grace: Duration,
    /// After the agent exits, how long its stdout may stay open before reading stops. (Every
    /// process the agent started ends with it, so a background child no longer holds it open.)
    pub exit_drain: Duration,
    /// Bytes of stderr kept (half head, half tail).
    pub stderr_limit: usize,
    /// Lines of stdout longer than this are dropped.
    pub line_limit: usize,
    /// Receives events as they happen; a full channel drops them rather than slow the reader.
    pub events: Option<mpsc::Sender<RunEvent>>,
    /// The Landlock sandbox the agent runs in (`None`: unsandboxed).
    pub sandbox: Option<Sandbox>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            term_grace: Duration::from_secs(5),
            exit_drain: Duration::from_secs(2),
            stderr_limit: 32 << 10,
            line_limit: DEFAULT_LINE_LIMIT,
            events: None,
            sandbox: None,
        }
    }
}

/// Run `invocation` in `worktree` under `limits`, with the environment built from `env`.
pub async fn run(
    invocation: &Invocation,
    worktree: &Path,
    limits: &RunLimits,
    env: &Env,
) -> Result<BackendOutcome, RuntimeError> {
    run_with(invocation, worktree, limits, env, RunOptions::default()).await
}

/// [`run`] with explicit [`RunOptions`].
pub async fn run_with(
    inv: &Invocation,
    worktree: &Path,
    limits: &RunLimits,
    env: &Env,
    opts: RunOptions,
) -> Result<BackendOutcome, RuntimeError> {
    if !worktree.is_dir() {
        return Err(RuntimeError::Worktree(worktree.to_owned()));
    }
    let program =
        find_program(&inv.program, env, worktree).ok_or_else(|| RuntimeError::NotFound {
            backend: inv.backend,
            program: inv.program.clone(),
            search_path: env.get("PATH").unwrap_or_default().to_owned(),
        })?;
    let mut scrubbed = agent_env(&inv.env_vars, env);
    for w in &scrubbed.withheld {
        tracing::debug!(backend = %inv.backend, "not passed to the agent: {w}");
    }
    // Kept alive until the run ends; removed on drop.
    let _temporary_brief;
    if let Some(brief_file) = &inv.brief_file {
        let path = match brief_file {
            BriefFile::Given(p) => p.clone(),
            BriefFile::Temporary => {
                let dir = PathBuf::from(env.get("TMPDIR").unwrap_or("/tmp"));
                let file = write_temporary_brief(&dir, &inv.stdin)?;
                let path = file.path().to_owned();
                _temporary_brief = file;
                path
            }
        };
        if is_inside(&path, worktree) {
            return Err(RuntimeError::BriefInWorktree {
                path,
                worktree: worktree.to_owned(),
            });
        }
        scrubbed
            .vars
            .insert(BRIEF_FILE_VAR.into(), path.to_string_lossy().into_owned());
    }

    let argv_text = shell_words(&inv.argv());
    let launch = Launch::new(&program)
        .args(&inv.args)
        .current_dir(worktree)
        .env(scrubbed.vars.clone())
        .stdin(inv.stdin.clone().into_bytes())
        .output_limit(opts.stderr_limit)
        .sandbox(opts.sandbox.clone());
    let mut child = launch.spawn().await.map_err(|e| match e {
        issueloop_process::LaunchError::Spawn { source, .. } => RuntimeError::Spawn {
            argv: argv_text.clone(),
            worktree: worktree.to_owned(),
            source,
        },
        issueloop_process::LaunchError::Sandbox(e) => RuntimeError::Sandbox(e.chain().to_string()),
    })?;
    let pid = child.pid();
    tracing::info!(backend = %inv.backend, pid, argv = %argv_text, worktree = %worktree.display(), sandboxed = opts.sandbox.is_some(), "agent started");
    send(&opts.events, RunEvent::Started { pid });
    let mut stdout = child.take_stdout();

    let mut normalizer =
        Normalizer::new(inv.format, inv.pricing.clone()).with_line_limit(opts.line_limit);
    let now = Instant::now();
    // A limit too large to represent is no limit at all (30 years is as good).
    let deadline = now
        .checked_add(limits.wall_clock)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600));
    let budget_usd = limits.cost_usd;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut killed = None;
    let mut status: Option<std::io::Result<std::process::ExitStatus>> = None;
    let mut drain_deadline: Option<Instant> = None;

    loop {
        if stdout.is_none() && status.is_some() {
            break;
        }
        tokio::select! {
            biased;
            _ = sleep_until(deadline) => {
                killed = Some(KillReason::WallClock);
                break;
            }
            _ = sleep_until(drain_deadline.unwrap_or(deadline)), if drain_deadline.is_some() => {
                tracing::debug!(pid, "the agent exited but its stdout stayed open; ending its group");
                break;
            }
            read = read_some(&mut stdout, &mut buf) => match read {
                Ok(0) => stdout = None,
                Ok(n) => {
                    if let Some(update) = normalizer.feed(&buf[..n]) {
                        send(&opts.events, RunEvent::Cost(update));
                        if update.cost_usd > budget_usd {
                            tracing::warn!(
                                pid,
                                cost_usd = update.cost_usd.dollars(),
                                budget_usd = budget_usd.dollars(),
                                "the running cost passed the run budget; stopping the agent"
                            );
                            killed = Some(KillReason::Budget);
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(pid, "reading the agent's stdout failed: {e}");
                    stdout = None;
                }
            },
            exit = child.wait(), if status.is_none() => {
                // Every process of the agent has ended with it; what it wrote is still read.
                status = Some(exit);
                drain_deadline = Some(Instant::now() + opts.exit_drain);
            }
        }
    }

    if let Some(reason) = killed {
        if reason == KillReason::WallClock {
            tracing::warn!(pid, limit = ?limits.wall_clock, "the wall-clock limit passed; stopping the agent");
        }
        send(&opts.events, RunEvent::Killed(reason));
        child.terminate();
        // Within the grace period, keep reading: a harness may still report what it spent.
        let grace_end = Instant::now() + opts.term_grace;
        while stdout.is_some() || status.is_none() {
            tokio::select! {
                biased;
                _ = sleep_until(grace_end) => break,
                read = read_some(&mut stdout, &mut buf) => match read {
                    Ok(0) | Err(_) => stdout = None,
                    Ok(n) => {
                        if let Some(update) = normalizer.feed(&buf[..n]) {
                            send(&opts.events, RunEvent::Cost(update));
                        }
                    }
                },
                exit = child.wait(), if status.is_none() => status = Some(exit),
            }
        }
    }
    // Whatever is left (children of a finished agent included) goes now.
    drop(stdout);
    let (final_status, stderr) = child.finish().await;
    if status.is_none() {
        status = final_status.map(Ok);
    }
    // Secret values the agent was given never reach a failure reason (see `stderr_tail`).
    normalizer.set_stderr(stderr_tail::redact(
        &stderr,
        &stderr_tail::secret_values(&scrubbed.vars),
    ));
    let exit_code = match &status {
        Some(Ok(s)) => s.code(),
        _ => None,
    };
    let outcome = normalizer.finish(exit_code, killed);
    for w in outcome.warnings.iter().take(8) {
        tracing::warn!(backend = %inv.backend, "{w}");
    }
    tracing::info!(
        backend = %inv.backend,
        status = %outcome.status,
        cost_usd = outcome.cost_usd.dollars(),
        cost_source = %outcome.cost_source,
        exit_code = outcome.exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
        "agent finished"
    );
    Ok(outcome)
}

fn send(events: &Option<mpsc::Sender<RunEvent>>, event: RunEvent) {
    if let Some(tx) = events {
        let _ = tx.try_send(event);
    }
}

fn write_temporary_brief(dir: &Path, text: &str) -> Result<tempfile::NamedTempFile, RuntimeError> {
    use std::io::Write;
    let err = |source| RuntimeError::BriefFile {
        dir: dir.to_owned(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix("issueloop-brief-")
        .suffix(".md")
        .tempfile_in(dir)
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.flush().map_err(err)?;
    Ok(file)
}

/// Whether `path` lies inside `dir` (both made absolute as far as they exist).
fn is_inside(path: &Path, dir: &Path) -> bool {
    let canon = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent)
                .map(|c| c.join(name))
                .unwrap_or_else(|_| p.to_owned()),
            _ => p.to_owned(),
        })
    };
    canon(path).starts_with(canon(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline spawns runs on a multi-threaded runtime.
    #[expect(dead_code, reason = "a compile-time check: it only has to type-check")]
    fn run_future_is_send(inv: &Invocation, wt: &Path, limits: &RunLimits, env: &Env) {
        fn is_send<T: Send>(_: T) {}
        is_send(run(inv, wt, limits, env));
    }

    #[test]
    fn inside_is_checked_on_resolved_paths() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir(&wt).unwrap();
        assert!(is_inside(&wt.join("brief.md"), &wt));
        assert!(!is_inside(&dir.path().join("brief.md"), &wt));
    }
}
