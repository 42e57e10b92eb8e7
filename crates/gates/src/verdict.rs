//! What a worktree's gate results mean for the run: they passed; a gate was refused before it
//! ran (no repair can change that); or gates failed or left files behind (a repair may help).
//! Pure.

use crate::run::{GateReport, GateResult, GateStatus, LeftoverCheck};

/// The verdict on a [`GateReport`], with its reason.
#[derive(Clone, Debug)]
pub enum GateVerdict<'a> {
    /// Every gate passed, none left anything behind, and that was verified.
    Passed,
    /// The first gate that was never run (preparation failed closed, or the allowlist refused
    /// it): the agent cannot repair a refused command, so the run stops here.
    Rejected { gate: &'a GateResult },
    /// Gates that failed or left files behind, in order: what a repair is told. Empty when all
    /// passed but the worktree could not be checked for files left behind (`unchecked`).
    Failed {
        failures: Vec<GateFailure<'a>>,
        /// Why the leftover check could not be made, when it could not.
        unchecked: Option<&'a str>,
    },
}

/// One gate that did not pass, and why.
#[derive(Clone, Debug)]
pub struct GateFailure<'a> {
    pub gate: &'a GateResult,
    pub why: FailureKind<'a>,
}

/// Why a gate did not pass.
#[derive(Clone, Debug)]
pub enum FailureKind<'a> {
    /// It ran and did not pass (failed, timed out, or its program was not found).
    Status(GateStatus),
    /// It left these files behind (created, changed or removed): a gate must not change the
    /// change it verifies, whatever its exit status.
    LeftFiles(&'a [String]),
}

impl GateReport {
    /// What these results mean for the run (see [`GateVerdict`]).
    pub fn verdict(&self) -> GateVerdict<'_> {
        let unchecked = match &self.leftover_check {
            LeftoverCheck::Checked => None,
            LeftoverCheck::Unavailable { reason } => Some(reason.as_str()),
        };
        if let Some(gate) = self
            .results
            .iter()
            .find(|r| r.status == GateStatus::Rejected)
        {
            return GateVerdict::Rejected { gate };
        }
        let failures: Vec<GateFailure<'_>> = self
            .results
            .iter()
            .filter_map(|gate| {
                let why = if !gate.left_files.is_empty() {
                    FailureKind::LeftFiles(&gate.left_files)
                } else if gate.status != GateStatus::Passed {
                    FailureKind::Status(gate.status)
                } else {
                    return None;
                };
                Some(GateFailure { gate, why })
            })
            .collect();
        if failures.is_empty() && unchecked.is_none() {
            GateVerdict::Passed
        } else {
            GateVerdict::Failed {
                failures,
                unchecked,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::select::GateOrigin;

    fn gate(name: &str, status: GateStatus, left: &[&str]) -> GateResult {
        GateResult {
            name: name.into(),
            origin: GateOrigin::Auto,
            status,
            exit_code: None,
            duration: Duration::ZERO,
            argv: vec![name.into()],
            command: name.into(),
            reason: None,
            output: String::new(),
            output_bytes: 0,
            left_files: left.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// A gate of a test report: name, status, files it left behind.
    type Gate<'a> = (&'a str, GateStatus, &'a [&'a str]);

    /// (gates, leftover check made, expected: "passed" | "rejected <name>" | "failed <names>").
    #[test]
    fn verdict_table() {
        use GateStatus::{Failed, NotFound, Passed, Rejected, TimedOut};
        let table: [(&[Gate<'_>], bool, &str); 10] = [
            (&[], true, "passed"),
            (&[("a", Passed, &[]), ("b", Passed, &[])], true, "passed"),
            (&[("a", Passed, &[])], false, "failed [] unchecked"),
            (
                &[("a", Failed, &[]), ("b", Passed, &[])],
                true,
                "failed [a]",
            ),
            (
                &[("a", TimedOut, &[]), ("b", NotFound, &[])],
                true,
                "failed [a, b]",
            ),
            // A passing gate that left files behind failed.
            (&[("a", Passed, &["x.log"])], true, "failed [a:left]"),
            (&[("a", Failed, &["x.log"])], true, "failed [a:left]"),
            // A refused gate stops the run, whatever else failed; the first one is named.
            (
                &[
                    ("a", Failed, &[]),
                    ("b", Rejected, &[]),
                    ("c", Rejected, &[]),
                ],
                true,
                "rejected b",
            ),
            (&[("a", Rejected, &[])], false, "rejected a"),
            (
                &[
                    ("a", Passed, &[]),
                    ("b", Failed, &[]),
                    ("c", Passed, &["y"]),
                ],
                true,
                "failed [b, c:left]",
            ),
        ];
        for (gates, checked, expected) in table {
            let report = GateReport {
                results: gates.iter().map(|(n, s, l)| gate(n, *s, l)).collect(),
                leftover_check: if checked {
                    LeftoverCheck::Checked
                } else {
                    LeftoverCheck::Unavailable {
                        reason: "git is missing".into(),
                    }
                },
            };
            let got = match report.verdict() {
                GateVerdict::Passed => "passed".to_owned(),
                GateVerdict::Rejected { gate } => format!("rejected {}", gate.name),
                GateVerdict::Failed {
                    failures,
                    unchecked,
                } => {
                    let names: Vec<String> = failures
                        .iter()
                        .map(|f| match f.why {
                            FailureKind::Status(s) => {
                                assert_eq!(s, f.gate.status);
                                f.gate.name.clone()
                            }
                            FailureKind::LeftFiles(files) => {
                                assert_eq!(files, f.gate.left_files.as_slice());
                                format!("{}:left", f.gate.name)
                            }
                        })
                        .collect();
                    format!(
                        "failed [{}]{}",
                        names.join(", "),
                        if unchecked.is_some() {
                            " unchecked"
                        } else {
                            ""
                        }
                    )
                }
            };
            assert_eq!(got, expected, "{gates:?} checked={checked}");
            assert_eq!(
                report.passed(),
                expected == "passed",
                "`passed()` agrees with the verdict: {gates:?}"
            );
        }
    }
}
