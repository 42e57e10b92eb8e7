//! Per-run budget derivation: the default raised by budget labels, clamped to what is left of
//! the day. Pure; the facts come in, a decision with its explanation comes out.

use issueloop_config::{BudgetConfig, RunBudget};
use serde::Serialize;

use crate::ledger::{DayUsage, admit_amount};
use crate::money::Usd;

/// Why a run is not started (or a reservation refused). The ids are stable: they appear in JSON
/// output, the journal and comments on issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SkipReason {
    /// Nothing is left of the daily cap.
    #[serde(rename = "daily_cap_reached")]
    DailyCapReached,
    /// The day's run-count cap is reached.
    #[serde(rename = "daily_runs_reached")]
    DailyRunsReached,
    /// What is left of the day is below the minimum a run can do anything useful with.
    #[serde(rename = "below_minimum_budget")]
    BelowMinimum,
    /// Another run holds a fresh, unsettled reservation for the same issue: it selected the
    /// issue first and is claiming it on the forge (see [`crate::soft_claimed`]).
    #[serde(rename = "reserved_elsewhere")]
    ReservedElsewhere,
}

impl SkipReason {
    pub const fn id(self) -> &'static str {
        match self {
            SkipReason::DailyCapReached => "daily_cap_reached",
            SkipReason::DailyRunsReached => "daily_runs_reached",
            SkipReason::BelowMinimum => "below_minimum_budget",
            SkipReason::ReservedElsewhere => "reserved_elsewhere",
        }
    }

    /// The reason for a stable id, e.g. read back from the store.
    pub fn from_id(id: &str) -> Option<SkipReason> {
        [
            SkipReason::DailyCapReached,
            SkipReason::DailyRunsReached,
            SkipReason::BelowMinimum,
            SkipReason::ReservedElsewhere,
        ]
        .into_iter()
        .find(|r| r.id() == id)
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// What [`derive`] decided for one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum BudgetDecision {
    /// Do not start the run.
    Skip {
        reason: SkipReason,
        explanation: String,
    },
    /// Start the run with this budget; `clamped` when its cost is less than its labels asked for.
    Run {
        budget: RunBudget,
        clamped: bool,
        explanation: String,
    },
}

impl BudgetDecision {
    /// The sentence for logs, the PR body and the job summary.
    pub fn explanation(&self) -> &str {
        match self {
            BudgetDecision::Skip { explanation, .. } | BudgetDecision::Run { explanation, .. } => {
                explanation
            }
        }
    }

    /// The amount to reserve in the ledger, `None` for a skip.
    pub fn reserve_amount(&self) -> Option<Usd> {
        match self {
            BudgetDecision::Run { budget, .. } => Some(budget.cost_usd),
            BudgetDecision::Skip { .. } => None,
        }
    }

    /// The decision as plain JSON, the payload of the journal's `budget_decided` event.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing strings, numbers and a duration text cannot fail; fall back to the
        // explanation alone rather than losing the record if it ever did.
        serde_json::to_value(self)
            .unwrap_or_else(|_| serde_json::json!({ "explanation": self.explanation() }))
    }
}

/// The per-run budget for an issue carrying `labels`, given what `today` has used.
///
/// 1. Start from the default budget; each matching budget label raises each field it sets, the
///    largest value wins per field (labels never lower a field).
/// 2. Its cost clamped to what is left of the day goes through the stores' cap rule
///    ([`admit_amount`]): the day's run-count cap reached ⇒ skip (`daily_runs_reached`); nothing
///    left ⇒ skip (`daily_cap_reached`).
/// 3. A clamp below `min_useful_usd` ⇒ skip (`below_minimum_budget`): a run that can only run
///    out of money is not started.
pub fn derive(labels: &[String], cfg: &BudgetConfig, today: &DayUsage) -> BudgetDecision {
    let cap = cfg.daily_cap_usd;
    let (mut budget, source) = raised_by_labels(labels, cfg);
    let left = today.left(cap);
    let wanted = budget.cost_usd;
    let amount = wanted.min(left);
    match admit_amount(today, amount, cap, cfg.max_runs_per_day) {
        Some(reason @ SkipReason::DailyRunsReached) => {
            return BudgetDecision::Skip {
                reason,
                explanation: format!(
                    "{} of {} runs allowed per UTC day already started on {}",
                    today.runs, cfg.max_runs_per_day, today.day
                ),
            };
        }
        Some(reason) => {
            return BudgetDecision::Skip {
                reason,
                explanation: format!(
                    "daily cap {cap} reached on {}: {} spent and {} reserved",
                    today.day, today.spent, today.reserved
                ),
            };
        }
        None => {}
    }
    if amount == wanted {
        return BudgetDecision::Run {
            budget,
            clamped: false,
            explanation: format!("{source} {wanted}; {left} left of {cap} today"),
        };
    }
    let minimum = cfg.min_useful_usd;
    if amount < minimum {
        return BudgetDecision::Skip {
            reason: SkipReason::BelowMinimum,
            explanation: format!(
                "{source} {wanted} would be clamped to {left} left of {cap} today, below the \
                 {minimum} minimum for a useful run"
            ),
        };
    }
    budget.cost_usd = amount;
    BudgetDecision::Run {
        budget,
        clamped: true,
        explanation: format!("{source} {wanted} clamped to {left} left of {cap} today"),
    }
}

/// The default budget raised field by field by the matching labels, and the name of what set
/// the cost (`default` or the label) for the explanation.
fn raised_by_labels(labels: &[String], cfg: &BudgetConfig) -> (RunBudget, String) {
    let mut budget = cfg.default.clone();
    let mut cost_source = "default".to_owned();
    for label in labels {
        let Some(raise) = cfg.labels.get(label) else {
            continue;
        };
        if let Some(cost) = raise.cost_usd
            && cost > budget.cost_usd
        {
            budget.cost_usd = cost;
            cost_source.clone_from(label);
        }
        if let Some(wall_clock) = raise.wall_clock {
            budget.wall_clock = budget.wall_clock.max(wall_clock);
        }
        if let Some(turns) = raise.max_turns {
            budget.max_turns = budget.max_turns.max(turns);
        }
    }
    (budget, cost_source)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use issueloop_config::LabelBudget;
    use jiff::civil::date;

    use super::*;

    const MIN: u64 = 60;

    fn config() -> BudgetConfig {
        let mut labels = BTreeMap::new();
        labels.insert(
            "loop:budget-large".to_owned(),
            LabelBudget {
                cost_usd: Some(Usd::from_dollars(7.5)),
                wall_clock: Some(Duration::from_secs(90 * MIN)),
                max_turns: Some(40),
            },
        );
        labels.insert(
            "loop:budget-xl".to_owned(),
            LabelBudget {
                cost_usd: Some(Usd::from_dollars(10.0)),
                wall_clock: Some(Duration::from_secs(120 * MIN)),
                max_turns: Some(60),
            },
        );
        // Raises the turns far but the cost not at all, and lowers the wall clock (ignored).
        labels.insert(
            "loop:budget-chatty".to_owned(),
            LabelBudget {
                cost_usd: Some(Usd::from_dollars(1.0)),
                wall_clock: Some(Duration::from_secs(10 * MIN)),
                max_turns: Some(200),
            },
        );
        BudgetConfig {
            daily_cap_usd: Usd::from_dollars(10.0),
            max_runs_per_day: 3,
            min_useful_usd: Usd::from_dollars(0.25),
            reservation_grace: Duration::from_secs(15 * MIN),
            default: RunBudget {
                cost_usd: Usd::from_dollars(5.0),
                wall_clock: Duration::from_secs(45 * MIN),
                max_turns: 20,
            },
            labels,
        }
    }

    fn usage(spent: f64, reserved: f64, runs: u32) -> DayUsage {
        DayUsage {
            day: date(2026, 11, 21),
            spent: Usd::from_dollars(spent),
            reserved: Usd::from_dollars(reserved),
            runs,
        }
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[derive(Debug)]
    enum Want {
        Run {
            cost: f64,
            wall_clock_min: u64,
            turns: u32,
            clamped: bool,
        },
        Skip(SkipReason),
    }

    #[test]
    fn derive_table() {
        use Want::*;
        let cases: &[(&str, &[&str], DayUsage, Want)] = &[
            (
                "fresh day, no label: the default",
                &[],
                usage(0.0, 0.0, 0),
                Run {
                    cost: 5.0,
                    wall_clock_min: 45,
                    turns: 20,
                    clamped: false,
                },
            ),
            (
                "the reported case: $5 spent of $10, budget-xl gets $5, not $10",
                &["loop:budget-xl"],
                usage(5.0, 0.0, 1),
                Run {
                    cost: 5.0,
                    wall_clock_min: 120,
                    turns: 60,
                    clamped: true,
                },
            ),
            (
                "reservations of running runs count like spend",
                &["loop:budget-xl"],
                usage(1.0, 4.0, 2),
                Run {
                    cost: 5.0,
                    wall_clock_min: 120,
                    turns: 60,
                    clamped: true,
                },
            ),
            (
                "largest label wins per field",
                &["loop:budget-large", "loop:budget-chatty", "loop:budget-xl"],
                usage(0.0, 0.0, 0),
                Run {
                    cost: 10.0,
                    wall_clock_min: 120,
                    turns: 200,
                    clamped: false,
                },
            ),
            (
                "a label never lowers a field",
                &["loop:budget-chatty"],
                usage(0.0, 0.0, 0),
                Run {
                    cost: 5.0,
                    wall_clock_min: 45,
                    turns: 200,
                    clamped: false,
                },
            ),
            (
                "labels that are not budget labels are ignored",
                &["bug", "loop:approved"],
                usage(0.0, 0.0, 0),
                Run {
                    cost: 5.0,
                    wall_clock_min: 45,
                    turns: 20,
                    clamped: false,
                },
            ),
            (
                "exactly what is left is not a clamp",
                &[],
                usage(3.0, 2.0, 1),
                Run {
                    cost: 5.0,
                    wall_clock_min: 45,
                    turns: 20,
                    clamped: false,
                },
            ),
            (
                "clamp to exactly the useful minimum still runs",
                &[],
                usage(9.75, 0.0, 1),
                Run {
                    cost: 0.25,
                    wall_clock_min: 45,
                    turns: 20,
                    clamped: true,
                },
            ),
            (
                "clamp below the useful minimum skips",
                &["loop:budget-xl"],
                usage(9.80, 0.0, 1),
                Skip(SkipReason::BelowMinimum),
            ),
            (
                "nothing left: daily cap reached",
                &[],
                usage(6.0, 4.0, 2),
                Skip(SkipReason::DailyCapReached),
            ),
            (
                "overspent day (a settle above its reservation): daily cap reached",
                &[],
                usage(10.5, 0.0, 2),
                Skip(SkipReason::DailyCapReached),
            ),
            (
                "run-count cap reached even with money left",
                &[],
                usage(0.0, 0.0, 3),
                Skip(SkipReason::DailyRunsReached),
            ),
            (
                "run-count cap is checked before the money",
                &[],
                usage(10.0, 0.0, 3),
                Skip(SkipReason::DailyRunsReached),
            ),
        ];
        let cfg = config();
        for (name, label_names, today, want) in cases {
            let got = derive(&labels(label_names), &cfg, today);
            match (want, &got) {
                (
                    Want::Run {
                        cost,
                        wall_clock_min,
                        turns,
                        clamped,
                    },
                    BudgetDecision::Run {
                        budget,
                        clamped: got_clamped,
                        ..
                    },
                ) => {
                    assert_eq!(budget.cost_usd, Usd::from_dollars(*cost), "{name}: {got:?}");
                    assert_eq!(
                        budget.wall_clock.as_secs(),
                        wall_clock_min * MIN,
                        "{name}: {got:?}"
                    );
                    assert_eq!(budget.max_turns, *turns, "{name}: {got:?}");
                    assert_eq!(got_clamped, clamped, "{name}: {got:?}");
                }
                (
                    Want::Skip(reason),
                    BudgetDecision::Skip {
                        reason: got_reason, ..
                    },
                ) => {
                    assert_eq!(got_reason, reason, "{name}: {got:?}");
                }
                _ => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn explanations_read_as_sentences() {
        let cfg = config();
        let xl = labels(&["loop:budget-xl"]);
        let d = derive(&xl, &cfg, &usage(5.8, 0.0, 1));
        assert_eq!(
            d.explanation(),
            "loop:budget-xl $10.00 clamped to $4.20 left of $10.00 today"
        );
        assert_eq!(d.reserve_amount(), Some(Usd::from_dollars(4.2)));
        let d = derive(&[], &cfg, &usage(0.0, 0.0, 0));
        assert_eq!(
            d.explanation(),
            "default $5.00; $10.00 left of $10.00 today"
        );
        let d = derive(&[], &cfg, &usage(6.0, 4.0, 2));
        assert_eq!(
            d.explanation(),
            "daily cap $10.00 reached on 2026-11-21: $6.00 spent and $4.00 reserved"
        );
        let d = derive(&xl, &cfg, &usage(9.9, 0.0, 1));
        assert_eq!(
            d.explanation(),
            "loop:budget-xl $10.00 would be clamped to $0.10 left of $10.00 today, below the \
             $0.25 minimum for a useful run"
        );
        let d = derive(&[], &cfg, &usage(0.0, 0.0, 3));
        assert_eq!(
            d.explanation(),
            "3 of 3 runs allowed per UTC day already started on 2026-11-21"
        );
    }

    #[test]
    fn clamping_uses_exact_cents_not_float_arithmetic() {
        // 10.0 - 9.7 in f64 is 0.3000000000000007; the clamp must be exactly $0.30.
        let d = derive(&[], &config(), &usage(9.7, 0.0, 0));
        let BudgetDecision::Run {
            budget,
            clamped: true,
            ..
        } = d
        else {
            panic!("expected a clamped run, got {d:?}");
        };
        assert_eq!(budget.cost_usd, Usd::from_micros(300_000));
    }

    #[test]
    fn decision_json_uses_the_stable_ids() {
        let cfg = config();
        let skip = derive(&[], &cfg, &usage(10.0, 0.0, 1)).to_json();
        assert_eq!(skip["decision"], "skip");
        assert_eq!(skip["reason"], "daily_cap_reached");
        let below = derive(&[], &cfg, &usage(9.9, 0.0, 1)).to_json();
        assert_eq!(below["reason"], "below_minimum_budget");
        let runs = derive(&[], &cfg, &usage(0.0, 0.0, 3)).to_json();
        assert_eq!(runs["reason"], "daily_runs_reached");
        let run = derive(&labels(&["loop:budget-xl"]), &cfg, &usage(5.8, 0.0, 1)).to_json();
        assert_eq!(run["decision"], "run");
        assert_eq!(run["clamped"], true);
        assert_eq!(run["budget"]["cost_usd"], 4.2);
        assert_eq!(run["budget"]["wall_clock"], "2h");
        for r in [
            SkipReason::DailyCapReached,
            SkipReason::DailyRunsReached,
            SkipReason::BelowMinimum,
            SkipReason::ReservedElsewhere,
        ] {
            assert_eq!(SkipReason::from_id(r.id()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.id());
        }
    }

    proptest::proptest! {
        /// `derive` and the stores decide with one rule: a budget `derive` gives is one every
        /// store admits on the same day, and a cap `derive` reports reached is one the stores
        /// refuse with the same reason.
        #[test]
        fn derive_agrees_with_the_stores_cap_rule(
            spent in 0i64..12_000_000,
            reserved in 0i64..12_000_000,
            runs in 0u32..5,
            xl in proptest::bool::ANY,
        ) {
            let cfg = config();
            let today = DayUsage {
                day: date(2026, 11, 21),
                spent: Usd::from_micros(spent),
                reserved: Usd::from_micros(reserved),
                runs,
            };
            let names = if xl { labels(&["loop:budget-xl"]) } else { Vec::new() };
            let admits = |amount| admit_amount(&today, amount, cfg.daily_cap_usd, cfg.max_runs_per_day);
            match derive(&names, &cfg, &today) {
                BudgetDecision::Run { budget, .. } => {
                    proptest::prop_assert_eq!(admits(budget.cost_usd), None);
                    proptest::prop_assert!(budget.cost_usd >= cfg.min_useful_usd);
                }
                BudgetDecision::Skip { reason: SkipReason::BelowMinimum, .. } => {
                    proptest::prop_assert!(today.left(cfg.daily_cap_usd) < cfg.min_useful_usd);
                }
                BudgetDecision::Skip { reason, .. } => {
                    // Even the smallest reservation is refused, for the same reason.
                    proptest::prop_assert_eq!(admits(Usd::from_micros(1)), Some(reason));
                }
            }
        }
    }
}
