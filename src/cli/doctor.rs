//! `issueloop doctor`: the stage → backend table with each program found or not and its
//! version, the containment of agents and gates (sandbox, Landlock ABI, process hardening), and
//! everything that would stop a run at start — the same check `run` and `serve` make before
//! taking work.

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
    let containment = Containment::of(&config);
    if ctx.global.json {
        let mut value = serde_json::to_value(&check).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "sandbox".into(),
                serde_json::to_value(&containment).unwrap_or_default(),
            );
        }
        print_json(&value)?;
    } else {
        let file = config
            .file
            .as_ref()
            .map(|f| format!("`{}`", f.display()))
            .unwrap_or_else(|| "the built-in defaults (no configuration file)".into());
        out!(
            "configuration {file}\n\n{}\n{}",
            render(&check),
            containment.render()
        );
    }
    Ok(if check.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// How agents and gates are contained on this machine with this configuration.
#[derive(Debug, serde::Serialize)]
pub struct Containment {
    /// `[sandbox] mode`.
    pub mode: &'static str,
    /// `enforced`, `unavailable`, `off` or `refused`.
    pub status: &'static str,
    pub landlock_abi: Option<i32>,
    pub kernel: String,
    pub gate_network: &'static str,
    pub extra_writable: Vec<String>,
    /// This process could make itself non-dumpable and a child subreaper.
    pub non_dumpable: bool,
    pub subreaper: bool,
}

impl Containment {
    pub fn of(config: &issueloop_config::Config) -> Containment {
        let support = issueloop_process::support();
        let decision = issueloop_runtime::sandbox_decision(config.sandbox.mode, support);
        let hardening = issueloop_process::hardening().unwrap_or_default();
        Containment {
            mode: config.sandbox.mode.as_str(),
            status: decision.status(),
            landlock_abi: match support {
                issueloop_process::Support::Available { abi } => Some(abi),
                _ => None,
            },
            kernel: issueloop_process::kernel_release(),
            gate_network: match config.sandbox.network {
                issueloop_config::SandboxNetwork::Open => "open",
                issueloop_config::SandboxNetwork::Deny => "deny",
            },
            extra_writable: config
                .sandbox
                .extra_writable
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            non_dumpable: hardening.non_dumpable,
            subreaper: hardening.subreaper,
        }
    }

    pub fn render(&self) -> String {
        let abi = self
            .landlock_abi
            .map_or_else(|| "no Landlock".to_owned(), |a| format!("Landlock ABI {a}"));
        let status = match self.status {
            "enforced" => "on: agents and gates write only their run's directories",
            "unavailable" => "UNAVAILABLE: agents and gates run unsandboxed (best_effort)",
            "off" => "off: agents and gates can write anything this user can",
            _ => "REFUSED: the kernel cannot enforce the required sandbox",
        };
        let mut out = String::new();
        let _ = writeln!(out, "sandbox      {status}");
        let _ = writeln!(
            out,
            "             mode = \"{}\", {abi}, Linux {}, gate network {}",
            self.mode, self.kernel, self.gate_network
        );
        if !self.extra_writable.is_empty() {
            let _ = writeln!(
                out,
                "             extra writable: {}",
                self.extra_writable.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "process      non-dumpable: {}, child subreaper: {}",
            yes_no(self.non_dumpable),
            yes_no(self.subreaper)
        );
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
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
