//! The normalized result of one agent run, whatever harness produced it.

use std::fmt;

use issueloop_config::Usd;
use serde::Serialize;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The harness reported success and exited 0.
    Completed,
    /// The harness reported an error, exited non-zero, or its stream ended without a terminal event.
    Failed,
    /// The run's cost passed its budget: issueloop killed it, or the harness stopped at its own
    /// budget flag.
    BudgetExhausted,
    /// issueloop killed the run at its wall-clock limit.
    TimedOut,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::BudgetExhausted => "budget_exhausted",
            Status::TimedOut => "timed_out",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where `cost_usd` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The harness reported dollars.
    Reported,
    /// The harness reported tokens; issueloop priced them from the model table.
    Priced,
    /// Neither is complete (no usage, an unknown model, or spend no event reported). The ledger
    /// charges the whole run budget: see [`BackendOutcome::ledger_cost`].
    Unknown,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Reported => "reported",
            CostSource::Priced => "priced",
            CostSource::Unknown => "unknown",
        }
    }

    /// The less certain of two sources (for a total made of parts).
    pub fn weakest(self, other: CostSource) -> CostSource {
        self.max(other)
    }
}

impl fmt::Display for CostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why issueloop stopped an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    /// The running cost passed the run budget.
    Budget,
    /// The wall-clock limit passed.
    WallClock,
}

/// Token counts of a run. `input_tokens` never includes cached input: harnesses that count
/// cached tokens inside their input figure (Codex, Gemini) are split on the way in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
    }

    pub fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }
}

/// The running cost of a live run, emitted whenever it changes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CostUpdate {
    pub cost_usd: Usd,
    pub source: CostSource,
}

/// What one agent run amounted to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendOutcome {
    pub status: Status,
    /// Dollars spent as far as the stream tells (a lower bound when `cost_source` is `unknown`).
    pub cost_usd: Usd,
    pub cost_source: CostSource,
    pub usage: Usage,
    /// The agent's final answer (bounded; empty when it gave none).
    pub final_message: String,
    /// Why the run did not complete, for a person (bounded).
    pub error: Option<String>,
    /// For a run issueloop stopped at its wall clock: what the agent said last — its stream's
    /// last notice and the end of its stderr, bounded, cleaned and redacted — ready to append to
    /// a reason (`error` already carries it). `None` otherwise, or when it said nothing.
    pub last_words: Option<String>,
    /// `None` when the process ended by a signal or the stream was replayed without one.
    pub exit_code: Option<i32>,
    /// Set when issueloop stopped the agent.
    pub killed: Option<KillReason>,
    /// The model the harness reported (or the configured one).
    pub model: Option<String>,
    /// Lines read from stdout.
    pub lines: u64,
    /// Lines skipped: not JSON, not the expected shape, or over the length limit.
    pub skipped_lines: u64,
    /// Of `skipped_lines`, those dropped for being longer than the line limit.
    pub overlong_lines: u64,
    /// Events of a type this version does not know (skipped).
    pub unknown_events: u64,
    /// Things a person may want to know that did not change the status (bounded).
    pub warnings: Vec<String>,
    /// Head and tail of the agent's stderr (empty for a replay).
    pub stderr: String,
}

impl BackendOutcome {
    /// What the ledger charges for this run: the cost when it is known, else the whole run
    /// budget (or the cost so far, if that is already more). Never less than what was seen.
    pub fn ledger_cost(&self, run_budget_usd: Usd) -> Usd {
        match self.cost_source {
            CostSource::Reported | CostSource::Priced => self.cost_usd,
            CostSource::Unknown => self.cost_usd.max(run_budget_usd),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == Status::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(cost_usd: f64, cost_source: CostSource) -> BackendOutcome {
        BackendOutcome {
            status: Status::Completed,
            cost_usd: Usd::from_dollars(cost_usd),
            cost_source,
            usage: Usage::default(),
            final_message: String::new(),
            error: None,
            last_words: None,
            exit_code: Some(0),
            killed: None,
            model: None,
            lines: 0,
            skipped_lines: 0,
            overlong_lines: 0,
            unknown_events: 0,
            warnings: Vec::new(),
            stderr: String::new(),
        }
    }

    #[test]
    fn unknown_cost_charges_the_whole_budget_never_less_than_seen() {
        let usd = Usd::from_dollars;
        let five = usd(5.0);
        assert_eq!(
            outcome(0.2, CostSource::Reported).ledger_cost(five),
            usd(0.2)
        );
        assert_eq!(outcome(0.2, CostSource::Priced).ledger_cost(five), usd(0.2));
        assert_eq!(outcome(0.2, CostSource::Unknown).ledger_cost(five), five);
        assert_eq!(
            outcome(6.0, CostSource::Unknown).ledger_cost(five),
            usd(6.0)
        );
    }

    #[test]
    fn weakest_source_wins() {
        use CostSource::*;
        assert_eq!(Reported.weakest(Priced), Priced);
        assert_eq!(Priced.weakest(Unknown), Unknown);
        assert_eq!(Reported.weakest(Reported), Reported);
    }
}
