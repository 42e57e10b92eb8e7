//! `issueloop config check`: validate the configuration and print what it resolves to.

use super::output::out;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use issueloop_config::{Config, format_duration};

use super::output::print_json;
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration; print the resolved forge, repositories, labels, budgets,
    /// stage → backend table and policy, or every error at once (exit 2).
    Check,
}

pub fn run(cmd: ConfigCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        ConfigCommand::Check => {
            let config = ctx.load_config()?;
            if ctx.global.json {
                print_json(&resolved_json(&config))?;
            } else {
                out!("{}", render(&config));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn resolved_json(config: &Config) -> serde_json::Value {
    let stages: serde_json::Map<String, serde_json::Value> = config
        .runtime_profile
        .table()
        .into_iter()
        .map(|(stage, backend)| {
            (
                stage.to_string(),
                serde_json::json!({
                    "backend": backend.as_str(),
                    "from": config.runtime_profile.resolution_source(stage),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "ok": true,
        "file": config.file,
        "forge": config.forge,
        "repos": config.repos,
        "labels": config.labels,
        "budget": config.budget,
        "stages": stages,
        "backend_profile": config.runtime_profile.backend_profile,
        "backends": config.backends,
        "run": config.run,
        "gates": config.gates,
        "policy": {
            "files": config.policy.sources,
            "allowed_paths": config.policy.allowed_paths,
            "denied_paths": config.policy.denied_paths,
            "limits": config.policy.limits,
            "allowlist": config.policy.allowlist,
            "repos": config.policy.repos,
            "loosenings": config.policy.loosenings,
        },
        "git": config.git,
        "publish": config.publish,
        "service": config.service,
        "state": config.state,
        "paths": resolved_paths(config)
            .into_iter()
            .map(|p| (p.key, serde_json::Value::String(p.value)))
            .collect::<serde_json::Map<_, _>>(),
        "warnings": config.warnings,
    })
}

/// One path of the configuration as it was resolved at load.
struct ResolvedPath {
    /// The configuration key (`git.cache_dir`), or `file` for the configuration itself.
    key: String,
    /// The absolute path, or a bare program name looked up on `PATH` when a run starts.
    value: String,
}

/// Every path the configuration resolved, absolute: the file itself, the directories and files
/// it names, and each backend's program (a bare name stays a `PATH` lookup).
fn resolved_paths(config: &Config) -> Vec<ResolvedPath> {
    let mut out = Vec::new();
    let mut push = |key: &str, value: String| {
        out.push(ResolvedPath {
            key: key.to_owned(),
            value,
        })
    };
    let shown = |p: &std::path::Path| p.display().to_string();
    if let Some(f) = &config.file {
        push("file", shown(f));
    }
    push("base_dir", shown(&config.base_dir));
    push("git.cache_dir", shown(&config.git.cache_dir));
    match config.state.backend {
        issueloop_config::StateBackend::Sqlite => push("state.path", shown(&config.state.path)),
        // The password replaced; a URL from the environment is not part of the file.
        issueloop_config::StateBackend::Postgres => push(
            "state.url",
            config.state.url.as_ref().map_or_else(
                || format!("from `{}`", issueloop_config::DATABASE_URL_VAR),
                |url| url.redacted(),
            ),
        ),
        issueloop_config::StateBackend::Github => {
            push("state.path", shown(&config.state.path));
            push("state.branch", super::ledger::github_state_location(config));
        }
    }
    if config.forge.kind == issueloop_config::ForgeKind::Local {
        push("forge.local_path", shown(&config.forge.local_path));
    }
    if let Some(app) = &config.forge.app {
        push("forge.app.private_key_path", shown(&app.private_key_path));
    }
    let files = config
        .policy
        .sources
        .iter()
        .filter(|s| !s.starts_with("builtin:"));
    for (i, source) in files.enumerate() {
        push(&format!("policy.files[{i}]"), source.clone());
    }
    let mut kinds: Vec<issueloop_config::BackendKind> = config
        .runtime_profile
        .table()
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        if let Some(program) = issueloop_runtime::backend_program(config, kind) {
            let key = if kind == issueloop_config::BackendKind::Command {
                "argv[0]"
            } else {
                "binary"
            };
            push(&format!("backends.{kind}.{key}"), program);
        }
    }
    out
}

/// The human-readable summary of a valid configuration.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let file = config
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "(built-in defaults)".into());
    let _ = writeln!(out, "configuration `{file}` is valid\n");
    let _ = writeln!(
        out,
        "forge        {} ({})",
        config.forge.kind.as_str(),
        match config.forge.kind {
            issueloop_config::ForgeKind::Github => config.forge.api_url.clone(),
            issueloop_config::ForgeKind::Local => config.forge.local_path.display().to_string(),
        }
    );
    let repos: Vec<String> = config.repos.iter().map(|r| r.full()).collect();
    let _ = writeln!(out, "repos        {}", repos.join(", "));
    let _ = writeln!(
        out,
        "state        {} ({})",
        config.state.backend,
        match (config.state.backend, &config.state.url) {
            (issueloop_config::StateBackend::Sqlite, _) => config.state.path.display().to_string(),
            // The password replaced.
            (issueloop_config::StateBackend::Postgres, Some(url)) => url.redacted(),
            (issueloop_config::StateBackend::Postgres, None) => {
                format!("URL from `{}`", issueloop_config::DATABASE_URL_VAR)
            }
            (issueloop_config::StateBackend::Github, _) =>
                super::ledger::github_state_location(config),
        }
    );
    let l = &config.labels;
    let _ = writeln!(
        out,
        "labels       pick up `{}`, claim `{}`, done `{}`, failed `{}`, never `{}`",
        l.approved, l.in_progress, l.pr_opened, l.failed, l.blocked
    );
    let b = &config.budget;
    let _ = writeln!(
        out,
        "daily cap    ${:.2} per UTC day, at most {} run{} a day (a run needs at least ${:.2})",
        b.daily_cap_usd.dollars(),
        b.max_runs_per_day,
        if b.max_runs_per_day == 1 { "" } else { "s" },
        b.min_useful_usd.dollars()
    );
    let _ = writeln!(
        out,
        "run budget   ${:.2} / {} / {} turns (default)",
        b.default.cost_usd.dollars(),
        format_duration(b.default.wall_clock),
        b.default.max_turns
    );
    for (label, lb) in &b.labels {
        let cost = lb
            .cost_usd
            .map(|c| format!("${:.2}", c.dollars()))
            .unwrap_or_else(|| "-".into());
        let wall = lb
            .wall_clock
            .map(format_duration)
            .unwrap_or_else(|| "-".into());
        let turns = lb
            .max_turns
            .map(|t| format!("{t} turns"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "             `{label}`: {cost} / {wall} / {turns}");
    }
    let _ = writeln!(out, "\nstage        backend        from");
    for (stage, backend) in config.runtime_profile.table() {
        let _ = writeln!(
            out,
            "{:<12} {:<14} {}",
            stage.as_str(),
            backend.as_str(),
            config.runtime_profile.resolution_source(stage)
        );
    }
    if let Some(p) = &config.runtime_profile.backend_profile {
        let _ = writeln!(out, "backend profile `{p}`");
    }
    let _ = writeln!(out, "\npolicy files {}", config.policy.sources.join(", "));
    let _ = writeln!(
        out,
        "denied paths {}",
        config
            .policy
            .denied_paths
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "diff limits  {} files, {} bytes per file",
        config.policy.limits.max_changed_files, config.policy.limits.max_file_bytes
    );
    let allow: Vec<&str> = config
        .policy
        .allowlist
        .iter()
        .map(|r| r.program.as_str())
        .collect();
    let _ = writeln!(out, "gate programs {}", allow.join(", "));
    for (repo, rp) in &config.policy.repos {
        if let Some(a) = &rp.allowed_paths {
            let _ = writeln!(
                out,
                "`{repo}` may only change {}",
                a.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    if !config.policy.loosenings.is_empty() {
        let _ = writeln!(out, "\nloosenings of the default policy:");
        for l in &config.policy.loosenings {
            let _ = writeln!(out, "  `{}`: {}", l.key, l.description);
        }
    }
    let _ = writeln!(
        out,
        "\nservice      cron `{}` ({}), {} run{} at once",
        config.service.cron,
        config.service.timezone,
        config.service.max_concurrent_runs,
        if config.service.max_concurrent_runs == 1 {
            ""
        } else {
            "s"
        }
    );
    let _ = writeln!(
        out,
        "\npaths (resolved against `{}`):",
        config.base_dir.display()
    );
    for p in resolved_paths(config) {
        if p.key == "base_dir" {
            continue;
        }
        let lookup = if p.value.contains('/') {
            ""
        } else {
            " (looked up on `PATH`)"
        };
        let _ = writeln!(out, "  {:<28} {}{lookup}", p.key, p.value);
    }
    if !config.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for w in &config.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}
