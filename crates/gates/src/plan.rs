//! Planning: each selected gate prepared and checked against the allowlist, so that execution
//! only ever sees argvs the allowlist approved in their final form.

use std::path::PathBuf;

use issueloop_config::AllowRule;

use crate::allow::{GateCheck, RejectReason, check};
use crate::error::GateError;
use crate::facts::RepoFacts;
use crate::prepare::{PreparedArgv, prepare};
use crate::select::{Gate, GateSpec};

/// A gate with its decision: run this prepared argv, run the built-in check, or never run.
#[derive(Debug)]
pub struct PlannedGate {
    pub gate: Gate,
    pub step: PlannedStep,
}

#[derive(Debug)]
pub enum PlannedStep {
    /// The allowlist approved this prepared argv.
    Run(PreparedArgv),
    /// The built-in UTF-8 check of these files: no program runs, so no allowlist applies.
    Utf8Check(Vec<PathBuf>),
    /// Never run.
    Rejected {
        /// The prepared argv, or the argv as written when preparation failed.
        argv: Vec<String>,
        rejection: Rejection,
    },
}

/// Why a planned gate will not run.
#[derive(Debug)]
pub enum Rejection {
    /// Preparation failed closed (e.g. the gate excludes the dev set).
    Preparation(GateError),
    /// The allowlist rejected the prepared argv.
    Allowlist(RejectReason),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Preparation(e) => e.fmt(f),
            Rejection::Allowlist(r) => r.fmt(f),
        }
    }
}

/// Prepare each gate for the worktree described by `facts` and check the result against the
/// allowlist `rules` of that worktree's repository. Pure.
pub fn plan(gates: &[Gate], facts: &RepoFacts, rules: &[AllowRule]) -> Vec<PlannedGate> {
    gates
        .iter()
        .map(|gate| {
            let step = match &gate.spec {
                GateSpec::Utf8Check(files) => PlannedStep::Utf8Check(files.clone()),
                GateSpec::Command(argv) => match prepare(argv, facts) {
                    Err(e) => PlannedStep::Rejected {
                        argv: argv.clone(),
                        rejection: Rejection::Preparation(e),
                    },
                    Ok(prepared) => match check(&prepared, rules) {
                        GateCheck::Allowed => PlannedStep::Run(prepared),
                        GateCheck::Rejected { argv, reason } => PlannedStep::Rejected {
                            argv,
                            rejection: Rejection::Allowlist(reason),
                        },
                    },
                },
            };
            PlannedGate {
                gate: gate.clone(),
                step,
            }
        })
        .collect()
}

impl PlannedGate {
    /// The words that run (or would have run): the prepared argv, or `builtin:utf8-check …`.
    pub fn words(&self) -> Vec<String> {
        match &self.step {
            PlannedStep::Run(p) => p.argv().to_vec(),
            PlannedStep::Utf8Check(_) => self.gate.words(),
            PlannedStep::Rejected { argv, .. } => argv.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::GateOrigin;

    fn cmd(argv: &[&str]) -> Gate {
        Gate {
            name: argv.join(" "),
            origin: GateOrigin::Explicit,
            spec: GateSpec::Command(argv.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn plans_prepare_then_check() {
        let facts = RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            ..RepoFacts::default()
        };
        let rules = issueloop_config::builtin_policy().allowlist;
        let gates = [
            cmd(&["pytest"]),
            cmd(&["uv", "run", "--no-dev", "pytest"]),
            cmd(&["curl", "x"]),
            Gate {
                name: "utf8-check".into(),
                origin: GateOrigin::Auto,
                spec: GateSpec::Utf8Check(vec!["README.md".into()]),
            },
        ];
        let planned = plan(&gates, &facts, &rules);
        assert!(
            matches!(&planned[0].step, PlannedStep::Run(p) if p.to_string() == "uv run --locked --group dev pytest")
        );
        assert!(matches!(
            &planned[1].step,
            PlannedStep::Rejected {
                rejection: Rejection::Preparation(GateError::ExcludesDevSet { .. }),
                ..
            }
        ));
        assert!(matches!(
            &planned[2].step,
            PlannedStep::Rejected {
                rejection: Rejection::Allowlist(RejectReason::NotAllowlisted { .. }),
                ..
            }
        ));
        assert!(matches!(&planned[3].step, PlannedStep::Utf8Check(f) if f.len() == 1));
        assert_eq!(planned[3].words(), ["builtin:utf8-check", "README.md"]);
    }
}
