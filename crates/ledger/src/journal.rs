//! The journal: append-only events per run, and the pure functions that read a run's final
//! status and its stage → runtime table back from them.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ledger::{LedgerEntry, LedgerError};
use crate::money::Usd;

/// A run's id: `20261121T130501Z-acme-api-42-7f3a9c`. The UTC start time first, so ids sort by
/// time; then the repository and issue, for people; then a random suffix, so two runs started
/// in the same second never collide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    const MAX_LEN: usize = 200;

    /// A new id for a run of `repo` (`owner/name`) issue `issue` starting at `now`.
    pub fn generate(now: Timestamp, repo: &str, issue: u64) -> RunId {
        let stamp = now.strftime("%Y%m%dT%H%M%SZ");
        RunId(format!(
            "{stamp}-{}-{issue}-{:06x}",
            slug(repo),
            random_suffix(now)
        ))
    }

    /// An id given by a person or another store: 1–200 characters of ASCII letters, digits,
    /// `-`, `_` and `.`.
    pub fn parse(text: &str) -> Result<RunId, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.chars().all(ok_char) {
            return Err(format!(
                "`{text}` is not a run id; run ids look like `20261121T130501Z-acme-api-42-7f3a9c` \
                 (`issueloop runs list` shows them)"
            ));
        }
        Ok(RunId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the store, which only ever holds ids that were valid when written.
    pub(crate) fn from_stored(text: String) -> RunId {
        RunId(text)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `acme/API.v2` → `acme-api-v2`: lowercase ASCII letters and digits, other runs of characters
/// become one `-`; at most 40 characters.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "run".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// 24 random bits. `RandomState` is seeded from the operating system's randomness once per
/// thread; the counter, process id and time make every call in a process distinct.
fn random_suffix(now: Timestamp) -> u32 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_i128(now.as_nanosecond());
    (hasher.finish() & 0x00ff_ffff) as u32
}

/// A run's final status, derived from its events by [`derive_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A draft PR was opened or updated.
    Succeeded,
    /// The run ended with a recorded reason (gates, policy, budget, agent, forge).
    Failed,
    /// The run decided not to start its agent (budget, claim lost, …).
    Skipped,
    /// No `run_finished` event: the process died, or the run is still going.
    Interrupted,
}

impl RunStatus {
    pub const fn id(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One journal event. Payloads are plain data (strings, numbers, JSON values) so every part of
/// the pipeline can fill them from its own types. Stored as its `type` plus the remaining
/// fields as a JSON object; see `docs/budget.md` for the format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        /// `owner/name`.
        repo: String,
        issue: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
    },
    /// The budget decision (e.g. [`crate::BudgetDecision::to_json`]).
    BudgetDecided {
        decision: serde_json::Value,
    },
    ClaimAcquired {
        label: String,
    },
    ClaimReleased {
        label: String,
    },
    StageStarted {
        /// `interview`, `execute`, `evaluate` or `reflect`.
        stage: String,
        /// The backend the runtime profile resolved for the stage.
        runtime_id: String,
    },
    BackendFinished {
        stage: String,
        /// `completed`, `failed`, `budget_exhausted` or `timed_out`.
        status: String,
        cost_usd: Usd,
        /// Where the cost came from: `reported` by the harness, `model_table`, …
        cost_source: String,
        #[serde(default)]
        usage: serde_json::Value,
        /// Why the agent did not complete, as the harness told it (its stream, or the end of its
        /// stderr when the stream does not say); absent when it completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    GateFinished {
        repo: String,
        /// The prepared argv that ran.
        argv: Vec<String>,
        /// `passed`, `failed`, `timed_out`, `rejected`, …
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default)]
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        detail: serde_json::Value,
    },
    PolicyDecided {
        repo: String,
        allowed: bool,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        detail: serde_json::Value,
    },
    PrOpened {
        number: u64,
        url: String,
    },
    RunFinished {
        status: RunStatus,
        /// A stable reason id (`daily_cap_reached`, `gates_failed`, …), `None` on success.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// How the run's agents and gates are contained (one per run, before its first agent).
    Sandbox {
        /// The configured `[sandbox] mode`: `required`, `best_effort` or `off`.
        mode: String,
        /// `enforced`, `unavailable` (best effort on a kernel without Landlock) or `off`.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        landlock_abi: Option<i32>,
        /// What agents may write.
        #[serde(default)]
        writable: Vec<String>,
        /// Gates' network: `open` or `deny`.
        #[serde(default)]
        gate_network: String,
    },
    /// Free text worth keeping with the run (e.g. an expired reservation found at start-up).
    Note {
        message: String,
    },
}

impl Event {
    /// The stored `type`: `run_started`, `stage_started`, ….
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::BudgetDecided { .. } => "budget_decided",
            Event::ClaimAcquired { .. } => "claim_acquired",
            Event::ClaimReleased { .. } => "claim_released",
            Event::StageStarted { .. } => "stage_started",
            Event::BackendFinished { .. } => "backend_finished",
            Event::GateFinished { .. } => "gate_finished",
            Event::PolicyDecided { .. } => "policy_decided",
            Event::PrOpened { .. } => "pr_opened",
            Event::RunFinished { .. } => "run_finished",
            Event::Sandbox { .. } => "sandbox",
            Event::Note { .. } => "note",
        }
    }

    /// The event's fields without `type`: the stored payload.
    pub fn payload(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.remove("type");
        }
        value
    }

    /// The event stored as `kind` with `payload`; `None` for a type this version does not know
    /// (written by a newer one) or a payload that does not fit it.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Option<Event> {
        let mut object = payload.as_object()?.clone();
        object.insert("type".into(), serde_json::Value::String(kind.to_owned()));
        serde_json::from_value(serde_json::Value::Object(object)).ok()
    }
}

/// One stored event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalEntry {
    /// Position in the journal, increasing across all runs.
    pub seq: u64,
    pub run_id: RunId,
    pub at: Timestamp,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: serde_json::Value,
}

impl JournalEntry {
    /// The typed event; `None` for a type or payload this version does not know.
    pub fn event(&self) -> Option<Event> {
        Event::from_stored(&self.kind, &self.payload)
    }
}

/// A run's final status: that of its last `run_finished` event; with none the run is
/// `interrupted`, never `succeeded`.
pub fn derive_status<'a>(events: impl IntoIterator<Item = &'a Event>) -> RunStatus {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::RunFinished { status, .. } => Some(*status),
            _ => None,
        })
        .last()
        .unwrap_or(RunStatus::Interrupted)
}

/// Which backend ran a stage of a run, from its `stage_started` events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageRuntime {
    pub stage: String,
    pub runtime_id: String,
    /// How many times the stage started on this runtime (`reflect` may run several times).
    pub starts: u32,
}

/// The stage → runtime table of a run, in the order stages first started.
pub fn stage_runtimes<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<StageRuntime> {
    let mut table: Vec<StageRuntime> = Vec::new();
    for event in events {
        let Event::StageStarted { stage, runtime_id } = event else {
            continue;
        };
        match table
            .iter_mut()
            .find(|row| &row.stage == stage && &row.runtime_id == runtime_id)
        {
            Some(row) => row.starts += 1,
            None => table.push(StageRuntime {
                stage: stage.clone(),
                runtime_id: runtime_id.clone(),
                starts: 1,
            }),
        }
    }
    table
}

/// A run as `runs list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: RunId,
    /// From `run_started`; `None` when that event is missing.
    pub repo: Option<String>,
    pub issue: Option<u64>,
    pub started_at: Timestamp,
    pub last_event_at: Timestamp,
    pub status: RunStatus,
    pub events: usize,
    /// The run's ledger entry, if it reserved a budget.
    pub ledger: Option<LedgerEntry>,
}

impl RunSummary {
    /// The summary of a run from its events (oldest first, at least one) and ledger entry.
    pub fn from_entries(
        entries: &[JournalEntry],
        ledger: Option<LedgerEntry>,
    ) -> Option<RunSummary> {
        let first = entries.first()?;
        let last = entries.last()?;
        let events: Vec<Event> = entries.iter().filter_map(JournalEntry::event).collect();
        let started = events.iter().find_map(|e| match e {
            Event::RunStarted { repo, issue, .. } => Some((repo.clone(), *issue)),
            _ => None,
        });
        Some(RunSummary {
            run_id: first.run_id.clone(),
            repo: started.as_ref().map(|(repo, _)| repo.clone()),
            issue: started.map(|(_, issue)| issue),
            started_at: first.at,
            last_event_at: last.at,
            status: derive_status(&events),
            events: entries.len(),
            ledger,
        })
    }
}

/// Append-only events per run.
pub trait Journal: Send + Sync {
    /// Record `event` for `run_id` at `at`; returns its sequence number.
    fn append(&self, run_id: &RunId, at: Timestamp, event: &Event) -> Result<u64, LedgerError>;

    /// A run's events, oldest first (empty for an unknown run).
    fn events(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, LedgerError>;

    /// The `limit` most recently started runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, LedgerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: RunStatus) -> Event {
        Event::RunFinished {
            status,
            reason: None,
        }
    }

    fn started() -> Event {
        Event::RunStarted {
            repo: "acme/api".into(),
            issue: 42,
            branch: None,
        }
    }

    fn stage(stage: &str, runtime: &str) -> Event {
        Event::StageStarted {
            stage: stage.into(),
            runtime_id: runtime.into(),
        }
    }

    #[test]
    fn status_without_run_finished_is_interrupted_never_succeeded() {
        assert_eq!(derive_status(&[]), RunStatus::Interrupted);
        let pr = Event::PrOpened {
            number: 7,
            url: "https://github.com/acme/api/pull/7".into(),
        };
        // Even a run that opened its PR but died before recording the end is not a success.
        assert_eq!(
            derive_status(&[started(), stage("execute", "codex"), pr]),
            RunStatus::Interrupted
        );
        assert_eq!(
            derive_status(&[started(), finished(RunStatus::Succeeded)]),
            RunStatus::Succeeded
        );
        assert_eq!(
            derive_status(&[started(), finished(RunStatus::Failed)]),
            RunStatus::Failed
        );
        // The last one wins (a shutdown that was recorded after a failure, say).
        assert_eq!(
            derive_status(&[
                finished(RunStatus::Failed),
                finished(RunStatus::Interrupted)
            ]),
            RunStatus::Interrupted
        );
    }

    #[test]
    fn stage_table_counts_repeats_in_first_start_order() {
        let events = [
            started(),
            stage("interview", "deterministic"),
            stage("execute", "codex"),
            stage("reflect", "claude_code"),
            stage("reflect", "claude_code"),
            stage("evaluate", "claude_code"),
        ];
        let table = stage_runtimes(&events);
        let rows: Vec<(&str, &str, u32)> = table
            .iter()
            .map(|r| (r.stage.as_str(), r.runtime_id.as_str(), r.starts))
            .collect();
        assert_eq!(
            rows,
            [
                ("interview", "deterministic", 1),
                ("execute", "codex", 1),
                ("reflect", "claude_code", 2),
                ("evaluate", "claude_code", 1),
            ]
        );
    }

    #[test]
    fn events_round_trip_through_kind_and_payload() {
        let events = [
            started(),
            Event::RunStarted {
                repo: "acme/api".into(),
                issue: 1,
                branch: Some("loop/1-fix".into()),
            },
            Event::BudgetDecided {
                decision: serde_json::json!({"decision": "run"}),
            },
            Event::ClaimAcquired {
                label: "loop:in-progress".into(),
            },
            Event::ClaimReleased {
                label: "loop:in-progress".into(),
            },
            stage("execute", "codex"),
            Event::BackendFinished {
                stage: "execute".into(),
                status: "completed".into(),
                cost_usd: Usd::from_dollars(1.25),
                cost_source: "reported".into(),
                usage: serde_json::json!({"input_tokens": 10}),
                error: None,
            },
            Event::GateFinished {
                repo: "acme/api".into(),
                argv: vec!["uv".into(), "run".into(), "pytest".into()],
                status: "passed".into(),
                exit_code: Some(0),
                duration_ms: 1200,
                detail: serde_json::Value::Null,
            },
            Event::PolicyDecided {
                repo: "acme/api".into(),
                allowed: false,
                detail: serde_json::json!({"violations": [".github/x"]}),
            },
            Event::PrOpened {
                number: 7,
                url: "u".into(),
            },
            Event::RunFinished {
                status: RunStatus::Failed,
                reason: Some("gates_failed".into()),
            },
            Event::Note {
                message: "hello".into(),
            },
        ];
        for e in events {
            let payload = e.payload();
            assert!(payload.get("type").is_none(), "{payload}");
            assert_eq!(Event::from_stored(e.kind(), &payload), Some(e.clone()));
        }
        assert_eq!(
            started().payload(),
            serde_json::json!({"repo": "acme/api", "issue": 42})
        );
        assert_eq!(
            Event::from_stored("from_the_future", &serde_json::json!({})),
            None
        );
        assert_eq!(
            Event::from_stored("pr_opened", &serde_json::json!({"number": "x"})),
            None
        );
    }

    #[test]
    fn run_ids_sort_by_time_and_are_distinct() {
        let t1: Timestamp = "2026-11-21T13:05:01Z".parse().unwrap();
        let t2: Timestamp = "2026-11-21T13:05:02Z".parse().unwrap();
        let a = RunId::generate(t1, "Acme/API.v2", 42);
        let b = RunId::generate(t1, "Acme/API.v2", 42);
        let c = RunId::generate(t2, "acme/api", 1);
        assert!(
            a.as_str().starts_with("20261121T130501Z-acme-api-v2-42-"),
            "{a}"
        );
        assert_eq!(
            a.as_str().len(),
            "20261121T130501Z-acme-api-v2-42-".len() + 6
        );
        assert_ne!(a, b);
        assert!(a < c && b < c);
        assert_eq!(RunId::parse(a.as_str()), Ok(a.clone()));
        assert!(RunId::parse("").is_err());
        assert!(RunId::parse("../etc/passwd").is_err());
        assert!(RunId::parse("a b").is_err());
        assert_eq!(slug("///"), "run");
        assert_eq!(slug("a--b__c"), "a-b-c");
    }
}
