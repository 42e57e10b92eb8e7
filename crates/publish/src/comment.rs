//! Issue comments: the one run-outcome comment (updated, never duplicated), and the one-off
//! comments about an untrusted label and a stale claim taken over.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::sections;
use crate::{
    BudgetSummary, GateRow, PolicyVerdict, comment_marker, takeover_comment_marker,
    trust_comment_marker,
};
use issueloop_triage::markdown::{GITHUB_TEXT_LIMIT, duration, fit, inline, usd};
use issueloop_triage::{Distrust, DistrustReason};

/// What the run-outcome comment on an issue reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommentInput {
    pub issue_number: u64,
    pub run_id: String,
    pub outcome: RunOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// A PR was opened, or an existing one updated.
    Published {
        pr_number: u64,
        pr_url: String,
        /// A draft PR (false where the repository refused drafts and a `[draft]` PR stands in).
        draft: bool,
        /// An existing PR was updated rather than opened.
        updated: bool,
        budget: Option<BudgetSummary>,
    },
    Failed(Failure),
}

/// Why a run failed, and the evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Stable reason id, e.g. `gates_failed`, `policy_violation`, `budget_exhausted`.
    pub reason_id: String,
    /// The reason for people.
    pub reason: String,
    /// Gate results; the output of those that did not pass is shown.
    pub gates: Vec<GateRow>,
    pub policy: Option<PolicyVerdict>,
    pub budget: Option<BudgetSummary>,
    /// The label added on failure (`loop:failed`); removing it allows a retry.
    pub failed_label: String,
    /// The claim label that was removed (`loop:in-progress`).
    pub claim_label: String,
}

/// The run-outcome comment for an issue, starting with [`comment_marker`] so the next run updates
/// it instead of adding another; within GitHub's size limit.
pub fn outcome_comment(input: &CommentInput) -> String {
    let mut out = format!("{}\n", comment_marker(input.issue_number));
    match &input.outcome {
        RunOutcome::Published {
            pr_number,
            pr_url,
            draft,
            updated,
            budget,
        } => {
            let kind = if *draft { "draft PR" } else { "PR" };
            let verb = if *updated { "updated" } else { "opened" };
            let _ = writeln!(out, "### ✅ issueloop {verb} {kind} #{pr_number}\n");
            let _ = writeln!(
                out,
                "{} is ready for review. issueloop never merges; a person decides.",
                inline(pr_url, 300)
            );
            if let Some(budget) = budget {
                let _ = writeln!(
                    out,
                    "\nCost {} of a {} budget ({}).",
                    usd(budget.cost_usd),
                    usd(budget.budget_usd),
                    inline(&budget.cost_source, 100)
                );
            }
        }
        RunOutcome::Failed(failure) => failed(&mut out, failure),
    }
    let _ = write!(
        out,
        "\n<sub>issueloop run {}</sub>\n",
        sections::code(&input.run_id)
    );
    fit(&out, GITHUB_TEXT_LIMIT)
}

fn failed(out: &mut String, failure: &Failure) {
    out.push_str("### ❌ issueloop could not finish this issue\n\n");
    let reason = if failure.reason.trim().is_empty() {
        "No further explanation was recorded.".to_owned()
    } else {
        inline(&failure.reason, 2_000)
    };
    let _ = writeln!(
        out,
        "**Reason:** {} — {reason}",
        sections::code(&failure.reason_id)
    );

    if !failure.gates.is_empty() {
        out.push_str("\n#### Gates\n\n");
        out.push_str(&sections::gate_table(&failure.gates));
        let excerpts = sections::gate_excerpts(&failure.gates, "#####", false);
        if !excerpts.is_empty() {
            out.push('\n');
            out.push_str(&excerpts);
        }
    }
    if let Some(policy) = &failure.policy {
        out.push_str("\n#### Diff policy\n\n");
        out.push_str(&sections::policy(policy));
    }
    if let Some(budget) = &failure.budget {
        out.push_str("\n#### Budget\n\n");
        out.push_str(&sections::budget(budget));
    }
    let _ = writeln!(
        out,
        "\nNo PR was opened. {} was removed and {} added; remove {} to let issueloop try again.",
        sections::code(&failure.claim_label),
        sections::code(&failure.failed_label),
        sections::code(&failure.failed_label),
    );
}

/// The one comment telling an issue why its pickup label is not acted on, and how to retry,
/// starting with [`trust_comment_marker`]. Logins are shown as code so nobody is pinged.
pub fn trust_comment(issue_number: u64, distrust: &Distrust) -> String {
    let label = sections::code(&distrust.label);
    // A login GitHub did not name (the forge records `(unknown)`) is said in words, never
    // rendered as a mention of a user that does not exist.
    let known = |login: &Option<String>| {
        login
            .as_deref()
            .filter(|l| is_login(l))
            .map(|l| sections::code(&format!("@{l}")))
    };
    let who = |login: &Option<String>| {
        known(login).unwrap_or_else(|| "an account GitHub does not name".to_owned())
    };
    let when = |at: &Option<Timestamp>| at.as_ref().map(|t| format!(" at {}", human_time(*t)));
    let mut out = format!("{}\n", trust_comment_marker(issue_number));
    match distrust.reason {
        DistrustReason::BodyEditedAfterLabel => {
            let _ = writeln!(
                out,
                "issueloop is not picking this issue up: its description was edited by {}{} after {label} \
                 was applied{}, and {}.\n\n\
                 A maintainer can review the description and apply {label} again to retry.",
                who(&distrust.edited_by),
                when(&distrust.edited_at).unwrap_or_default(),
                when(&distrust.applied_at).unwrap_or_default(),
                if known(&distrust.edited_by).is_some() {
                    "that account does not have write permission on the repository"
                } else {
                    "issueloop cannot confirm that the editor has write permission on the repository"
                },
            );
        }
        DistrustReason::ApplierCannotWrite
        | DistrustReason::UnknownPermission
        | DistrustReason::NoLabelEvent => {
            let _ = writeln!(
                out,
                "issueloop is not picking this issue up: {label} was last applied by {}{}, who does not \
                 have write, maintain or admin permission on the repository (labels applied by issue \
                 forms or by triagers do not count).\n\n\
                 A maintainer can remove {label} and apply it again to retry.",
                who(&distrust.applied_by),
                when(&distrust.applied_at).unwrap_or_default(),
            );
        }
        DistrustReason::NotPresent => {
            let _ = writeln!(
                out,
                "issueloop is not picking this issue up: it does not carry {label}."
            );
        }
    }
    fit(&out, GITHUB_TEXT_LIMIT)
}

/// A GitHub login (letters, digits, `-`, and a `[bot]` suffix), not a placeholder.
fn is_login(login: &str) -> bool {
    let name = login.strip_suffix("[bot]").unwrap_or(login);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// What the stale-claim comment reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TakeoverCommentInput {
    pub issue_number: u64,
    pub run_id: String,
    /// The claim label (`loop:in-progress`).
    pub claim_label: String,
    pub claimed_at: Timestamp,
    pub now: Timestamp,
    /// The run's wall-clock budget plus the grace period (the rule for a claim without a lease).
    pub stale_after: Duration,
    /// The expired lease being taken over, when the claim had one.
    #[serde(default)]
    pub lease: Option<issueloop_triage::LeaseFacts>,
}

/// The comment saying a stale claim was taken over, starting with [`takeover_comment_marker`].
pub fn takeover_comment(input: &TakeoverCommentInput) -> String {
    let age = input.now.duration_since(input.claimed_at).unsigned_abs();
    let why = match &input.lease {
        Some(lease) => format!(
            "; its lease, held by run {}, expired at {} and was not renewed, so that run is \
             presumed gone",
            sections::code(&lease.holder),
            human_time(lease.expires),
        ),
        None => format!(
            ", longer than a run's wall-clock budget plus grace ({}), so the run that set it is \
             presumed gone",
            duration(input.stale_after)
        ),
    };
    let out = format!(
        "{}\nissueloop is taking over a stale claim: {} has been on this issue since {} ({} ago){why}. \
         Run {} works on it now.\n",
        takeover_comment_marker(input.issue_number),
        sections::code(&input.claim_label),
        human_time(input.claimed_at),
        duration(age),
        sections::code(&input.run_id),
    );
    fit(&out, GITHUB_TEXT_LIMIT)
}

fn human_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}
