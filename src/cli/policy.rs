//! `issueloop policy check`: judge a checkout's change against the diff policy and print the
//! verdict (exit 1 when it violates).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use issueloop_config::RepoName;
use issueloop_policy::{ChangeFacts, ChangeKind, CompiledPolicy, Verdict, judge};
use issueloop_workspace::{WorkspaceError, change_facts_at, origin_repo_name};

use super::output::{EXIT_FAILED, print_json};
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Judge a checkout's uncommitted change (tracked, staged, untracked, and ignored files
    /// on denied paths), or its change since `--base`, against the diff policy. Exit 1 when
    /// it violates. Without a configuration file the built-in policy applies.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The checkout to judge.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Judge the change since this revision (a branch, tag or commit) instead of `HEAD`.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Apply the policy of this configured repository (default: the one the checkout's
    /// `origin` points to, if configured).
    #[arg(long = "as", value_name = "OWNER/NAME")]
    pub as_repo: Option<String>,
}

pub fn run(cmd: PolicyCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        PolicyCommand::Check(args) => check(args, ctx),
    }
}

fn check(args: CheckArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config_or_builtin()?;
    let repo: Option<RepoName> = match &args.as_repo {
        Some(name) => {
            let name: RepoName = name.parse().map_err(CliError::usage)?;
            if !config.repos.contains(&name) && !config.policy.repos.contains_key(&name) {
                return Err(CliError::usage(format!(
                    "`{name}` is not a repository of the configuration; configured: {}",
                    listed(&config.repos)
                )));
            }
            Some(name)
        }
        None => origin_repo_name(&args.repo)
            .filter(|r| config.repos.contains(r) || config.policy.repos.contains_key(r)),
    };
    let effective = config.policy.for_repo(repo.as_ref());
    let policy = CompiledPolicy::new(&effective).map_err(CliError::usage_by)?;
    let facts = change_facts_at(&args.repo, args.base.as_deref()).map_err(|e| match e {
        WorkspaceError::NotAWorkingTree { .. } | WorkspaceError::UnknownRevision { .. } => {
            CliError::usage_by(e)
        }
        other => CliError::failed_by("git", other),
    })?;
    let verdict = judge(&facts, &policy);
    if ctx.global.json {
        print_json(&serde_json::json!({
            "ok": verdict.is_clean(),
            "checkout": args.repo,
            "base": facts.base,
            "policy": effective.config_table,
            "repo": repo.as_ref().map(RepoName::full),
            "changed": facts.tracked().collect::<Vec<_>>(),
            "ignored": {
                "checked": facts.ignored_scan.checked,
                "truncated": facts.ignored_scan.truncated,
                "skipped_dirs": facts.ignored_scan.skipped_dirs,
            },
            "violations": verdict.violations,
        }))?;
    } else {
        print!("{}", render(&facts, &verdict, &effective.config_table));
    }
    Ok(if verdict.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn listed(repos: &[RepoName]) -> String {
    if repos.is_empty() {
        return "none".to_owned();
    }
    repos
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verdict for a person: the changed paths, then every violation with its fix.
fn render(facts: &ChangeFacts, verdict: &Verdict, table: &str) -> String {
    let mut out = String::new();
    let base = facts
        .base
        .as_deref()
        .map(|b| b.chars().take(12).collect::<String>())
        .unwrap_or_else(|| "(no commits)".to_owned());
    let _ = writeln!(out, "change since {base}, judged by the policy of {table}");
    for p in facts.tracked() {
        let mark = match &p.kind {
            ChangeKind::Added => "A",
            ChangeKind::Modified => "M",
            ChangeKind::Deleted => "D",
            ChangeKind::Renamed { .. } => "R",
            ChangeKind::TypeChanged => "T",
        };
        let detail = match (&p.kind, p.exec_bit_changed()) {
            (ChangeKind::Renamed { from }, _) => format!(" (from {from})"),
            (_, true) => " (executable bit)".to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {mark} {}{detail}", p.path);
    }
    let _ = writeln!(out);
    out.push_str(&verdict.to_string());
    out
}
