//! Every word issueloop writes to GitHub and to people: the PR title and body (`pr`), the
//! run-outcome issue comment and the one-off trust and takeover comments (`comment`), the
//! hidden markers that let a rerun find and update them (here), the sentences about claims and
//! the takeover comments a forge writes on its own (`claims`), the rules the forge enforces on
//! what it publishes (`rules`), the agent's briefs (`brief`), and the tick's job summary, JSON
//! and annotations (`report`). Inputs are plain data so the pipeline can fill them from any
//! crate; the Markdown primitives (cleaning, fences, limits) are `issueloop_triage::markdown`.

pub mod brief;
pub mod claims;
mod comment;
mod pr;
pub mod report;
mod rules;
mod sections;

use std::time::Duration;

use issueloop_config::Usd;
use serde::{Deserialize, Serialize};

pub use comment::{
    CommentInput, Failure, RunOutcome, TakeoverCommentInput, outcome_comment, takeover_comment,
    trust_comment,
};
pub use issueloop_triage::markdown::GITHUB_TEXT_LIMIT;
pub use pr::{PrBodyInput, pr_body, pr_title, replace_bot_section};
pub use rules::{ensure_marker, ensure_pr_body};

/// Opens the part of a PR body issueloop owns and rewrites on every update.
pub const BOT_SECTION_BEGIN: &str = "<!-- issueloop:begin -->";
/// Closes the part of a PR body issueloop owns; text after it belongs to people.
pub const BOT_SECTION_END: &str = "<!-- issueloop:end -->";

/// The hidden marker in the body of issue `issue`'s PR: `<!-- issueloop:issue=N -->`.
pub fn pr_marker(issue: u64) -> String {
    format!("<!-- issueloop:issue={issue} -->")
}

/// The hidden marker of the run-outcome comment on issue `issue`: `<!-- issueloop:comment issue=N -->`.
pub fn comment_marker(issue: u64) -> String {
    format!("<!-- issueloop:comment issue={issue} -->")
}

/// The hidden marker of the comment saying why issue `issue` is not picked up.
pub fn trust_comment_marker(issue: u64) -> String {
    format!("<!-- issueloop:trust issue={issue} -->")
}

/// The hidden marker of the comment saying a stale claim on issue `issue` was taken over.
pub fn takeover_comment_marker(issue: u64) -> String {
    format!("<!-- issueloop:takeover issue={issue} -->")
}

/// The issue number in a PR body's [`pr_marker`], if it has one.
pub fn marked_issue(body: &str) -> Option<u64> {
    let start = body.find("<!-- issueloop:issue=")? + "<!-- issueloop:issue=".len();
    let rest = &body[start..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !rest[digits..].starts_with(" -->") {
        return None;
    }
    rest[..digits].parse().ok()
}

/// One verification gate's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    /// `owner/name` in a multi-repository run; the column is shown only when some row has one.
    pub repo: Option<String>,
    /// The gate's name or its prepared argv, shell-quoted.
    pub name: String,
    /// `passed`, `failed`, `timed_out`, `skipped`, `rejected`, or any other word.
    pub status: String,
    pub duration: Duration,
    pub exit_code: Option<i32>,
    /// The end of its output (bounded, cleaned and redacted again here).
    pub excerpt: Option<String>,
}

/// The diff policy's verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyVerdict {
    pub ok: bool,
    /// One line per violation, e.g. ``.github/workflows/ci.yml: denied by `.github/**` ``.
    pub violations: Vec<String>,
}

/// The run's budget and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetSummary {
    pub budget_usd: Usd,
    pub cost_usd: Usd,
    /// How the cost is known, e.g. `reported by the harness`, `priced from the model table`.
    pub cost_source: String,
    /// How the budget was derived when it is not simply the default (the clamp explanation).
    pub explanation: Option<String>,
}

/// Which runtime ran one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRow {
    pub stage: String,
    pub runtime: String,
    pub duration: Option<Duration>,
    pub cost_usd: Option<Usd>,
}

/// The size of the change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files: u64,
    pub insertions: u64,
    pub deletions: u64,
    /// Per-file lines; the first 50 are shown, the rest counted.
    pub per_file: Vec<FileStat>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStat {
    /// `owner/name` in a multi-repository run.
    pub repo: Option<String>,
    pub path: String,
    pub insertions: u64,
    pub deletions: u64,
}
