//! `issueloop doctor`: the stage → backend table with each program found or not and its
//! version, and everything that would stop a run at start — the same check `run` and `serve`
//! make before taking work.

use super::output::out;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use issueloop_runtime::{Preflight, preflight};

use super::output::{EXIT_FAILED, print_json};
use super::{CliError, Ctx};

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config_or_builtin()?;
    let check = preflight(&config, &ctx.env);
    if ctx.global.json {
        print_json(&check)?;
    } else {
        let file = config
            .file
            .as_ref()
            .map(|f| format!("`{}`", f.display()))
            .unwrap_or_else(|| "the built-in defaults (no configuration file)".into());
        out!("configuration {file}\n\n{}", render(&check));
    }
    Ok(if check.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// The human-readable check.
pub fn render(check: &Preflight) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<13} {:<40} version",
        "stage", "backend", "program"
    );
    for s in &check.stages {
        let program = match &s.path {
            Some(p) => p.display().to_string(),
            None if s.binary.is_empty() => "(none configured)".into(),
            None => format!("`{}` not found", s.binary),
        };
        let mut line = format!(
            "{:<12} {:<13} {:<40} {}",
            s.stage.as_str(),
            s.backend.as_str(),
            program,
            s.version.as_deref().unwrap_or("-")
        );
        if !s.required {
            line.push_str("  (runs no agent in this configuration)");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if !check.problems.is_empty() {
        let _ = writeln!(
            out,
            "\nproblems (`issueloop run` and `serve` refuse to start until they are fixed):"
        );
        for p in &check.problems {
            let _ = writeln!(out, "  - {}", p.message);
            if let Some(h) = &p.hint {
                let _ = writeln!(out, "    hint: {h}");
            }
        }
    }
    if !check.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for w in &check.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if check.ok() {
        let _ = writeln!(
            out,
            "\nready: every stage that runs an agent has its program, and nothing blocks a run"
        );
    }
    out
}
