//! `issueloop gates prepare` and `issueloop gates run`: a checkout's gates (selection,
//! preparation, allowlist, execution) from the command line.

use super::output::{out, outln};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use issueloop_config::{Config, EffectivePolicy, Env, RepoName};
use issueloop_gates::{
    GateCheck, GateError, GateReport, GateStatus, LeftoverCheck, RepoFacts, RunOptions, check,
    plan, prepare, run_gates, select,
};

use super::output::{EXIT_FAILED, print_json};
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum GatesCommand {
    /// Print a gate argv as it would run in a checkout (after `uv run` rewriting) and whether the
    /// allowlist allows it. Exit 1 when preparation fails closed.
    Prepare(PrepareArgs),
    /// Select, prepare, check and run the gates of a checkout and print each result. Exit 1 when
    /// a gate did not pass or left files behind.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// The checkout the gates are for.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The configured repository the checkout belongs to: its explicit gates and policy apply.
    /// Without it, the checkout gets the global policy and auto-selected gates.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub checkout: CheckoutArgs,
    /// The gate's argv, after `--` (e.g. `-- ruff check .`).
    #[arg(last = true, required = true, value_name = "ARGV")]
    pub argv: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub checkout: CheckoutArgs,
    /// Paths the change touched, relative to DIR (default: every file git knows in DIR).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub changed: Vec<PathBuf>,
}

pub fn run(cmd: GatesCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        GatesCommand::Prepare(args) => prepare_cmd(args, ctx),
        GatesCommand::Run(args) => run_cmd(args, ctx),
    }
}

fn gate_error(e: GateError) -> CliError {
    CliError::failed_by(e.kind(), e)
}

/// The configuration, the repository name and the policy that apply to the checkout.
fn resolve(
    checkout: &CheckoutArgs,
    ctx: &Ctx,
) -> Result<(Config, Option<RepoName>, EffectivePolicy), CliError> {
    if !checkout.repo.is_dir() {
        return Err(CliError::usage(format!(
            "`{}` is not a folder; `--repo` takes the checkout the gates are for",
            checkout.repo.display()
        )));
    }
    let config = ctx.load_config_or_builtin()?;
    let name = match &checkout.repo_name {
        None => None,
        Some(s) => {
            let name: RepoName = s.parse().map_err(CliError::usage)?;
            if !config.repos.is_empty() && !config.repos.contains(&name) {
                let known: Vec<String> = config.repos.iter().map(|r| format!("`{r}`")).collect();
                return Err(CliError::usage(format!(
                    "`{name}` is not a repository of the configuration; configured: {}",
                    known.join(", ")
                )));
            }
            Some(name)
        }
    };
    let policy = config.policy.for_repo(name.as_ref());
    Ok((config, name, policy))
}

fn prepare_cmd(args: PrepareArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let (_config, _name, policy) = resolve(&args.checkout, ctx)?;
    let facts = RepoFacts::scan(&args.checkout.repo).map_err(gate_error)?;
    let prepared = prepare(&args.argv, &facts).map_err(gate_error)?;
    let decision = check(&prepared, &policy.allowlist);
    let reason = match &decision {
        GateCheck::Allowed => None,
        GateCheck::Rejected { reason, .. } => Some(reason.to_string()),
    };
    if ctx.global.json {
        print_json(&serde_json::json!({
            "argv": prepared.argv(),
            "allowed": decision.is_allowed(),
            "reason": reason,
        }))?;
    } else {
        outln!("{prepared}");
        match reason {
            None => outln!("allowed"),
            Some(r) => outln!("rejected: {r}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_cmd(args: RunArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let (config, name, policy) = resolve(&args.checkout, ctx)?;
    let worktree = args.checkout.repo.as_path();
    let facts = RepoFacts::scan(worktree).map_err(gate_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::failed_by("internal", e).context("cannot start the async runtime")
        })?;
    let changed = if args.changed.is_empty() {
        runtime.block_on(known_files(worktree, &ctx.env))?
    } else {
        checked_paths(worktree, &args.changed)?
    };
    let explicit = name
        .as_ref()
        .and_then(|n| config.gates.repos.get(n))
        .map(Vec::as_slice);
    let gates = select(&facts, &changed, explicit);
    let planned = plan(&gates, &facts, &policy.allowlist);
    let opts = RunOptions::new(&config.gates, ctx.env.clone());
    let report = runtime
        .block_on(run_gates(worktree, &planned, &opts))
        .map_err(gate_error)?;
    if ctx.global.json {
        print_json(&serde_json::json!({
            "ok": report.passed(),
            "repo": worktree,
            "repo_name": name.map(|n| n.full()),
            "changed_paths": changed.len(),
            "facts": facts,
            "gates": report.results,
            "leftover_check": report.leftover_check,
        }))?;
    } else {
        out!("{}", render(worktree, changed.len(), &report));
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// `--changed` paths, relative to the checkout; each must exist in it.
fn checked_paths(worktree: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let root = std::fs::canonicalize(worktree).map_err(|e| {
        CliError::usage_by(e).context(format!("cannot read `{}`", worktree.display()))
    })?;
    paths
        .iter()
        .map(|p| {
            let rel = if p.is_absolute() {
                let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                canonical.strip_prefix(&root).map(Path::to_path_buf).map_err(|_| {
                    CliError::usage(format!(
                        "`{}` is outside the checkout `{}`",
                        p.display(),
                        worktree.display()
                    ))
                })?
            } else {
                p.clone()
            };
            if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
                return Err(CliError::usage(format!(
                    "`{}` is not a path inside the checkout",
                    p.display()
                )));
            }
            if !root.join(&rel).exists() {
                return Err(CliError::usage(format!(
                    "`{}` does not exist in `{}`; `--changed` takes files that exist in the checkout",
                    rel.display(),
                    worktree.display()
                )));
            }
            Ok(rel)
        })
        .collect()
}

/// Every file git knows in the checkout: tracked ones that still exist, and untracked ones that
/// are not ignored.
async fn known_files(worktree: &Path, env: &Env) -> Result<Vec<PathBuf>, CliError> {
    let timeout = Duration::from_secs(60);
    let launch = issueloop_process::git(worktree, env.get("PATH"))
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .timeout(timeout);
    let output = match launch.output().await {
        Err(e) => return Err(CliError::failed_by("git", e).context("cannot run `git`")),
        Ok(o) if o.timed_out => {
            return Err(CliError::failed(
                "git",
                "`git ls-files` took longer than 60s; pass the paths with `--changed`",
            ));
        }
        Ok(o) => o,
    };
    if !output.success() {
        return Err(CliError::usage(format!(
            "cannot list the files of `{}` with git ({}); pass the changed paths with `--changed`",
            worktree.display(),
            output.stderr.trim()
        )));
    }
    if !output.stdout_complete() {
        return Err(CliError::usage(format!(
            "`git ls-files` in `{}` printed more than {} bytes; pass the changed paths with `--changed`",
            worktree.display(),
            output.stdout.len()
        )));
    }
    let mut files: Vec<PathBuf> = output
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| worktree.join(p).exists())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The human-readable report: one line per gate, the output of those that did not pass, and
/// what was left behind.
fn render(worktree: &Path, changed: usize, report: &GateReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gates of `{}` ({changed} changed path{})",
        worktree.display(),
        if changed == 1 { "" } else { "s" }
    );
    if report.results.is_empty() {
        let _ = writeln!(out, "no gates selected");
    }
    for r in &report.results {
        let _ = writeln!(
            out,
            "{:<10} {:>7.1}s  {}",
            r.status.as_str(),
            r.duration.as_secs_f64(),
            r.command
        );
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "    reason: {reason}");
        }
        if r.status != GateStatus::Passed && !r.output.trim().is_empty() {
            for line in r.output.trim_end().lines() {
                let _ = writeln!(out, "    | {line}");
            }
        }
        if !r.left_files.is_empty() {
            let _ = writeln!(out, "    left behind: {}", r.left_files.join(", "));
        }
    }
    if let LeftoverCheck::Unavailable { reason } = &report.leftover_check {
        let _ = writeln!(out, "could not check for files left behind: {reason}");
    }
    let _ = writeln!(out, "{}", if report.passed() { "ok" } else { "FAILED" });
    out
}
