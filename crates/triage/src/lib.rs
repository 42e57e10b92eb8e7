//! Pure decisions about issues: label trust, selection, acceptance criteria, PR body and comment
//! rendering. No I/O: the forge gathers [`CandidateFacts`], this crate decides and renders text.

pub mod acceptance;
pub mod facts;
pub mod fingerprint;
pub mod lease;
pub mod redact;
pub mod render;
pub mod select;
pub mod trust;

#[cfg(test)]
mod testkit;

pub use acceptance::{AcceptanceCriteria, AcceptanceSource, acceptance_criteria};
pub use facts::{BodyEdit, CandidateFacts, ClaimFacts, Issue, LabelEvent, Permission, PrRef};
pub use fingerprint::fingerprint;
pub use lease::{ClaimState, LeaseFacts, claim_state};
pub use redact::redact;
pub use render::{
    BOT_SECTION_BEGIN, BOT_SECTION_END, BudgetSummary, CommentInput, DiffStat, Failure, FileStat,
    GITHUB_TEXT_LIMIT, GateRow, PolicyVerdict, PrBodyInput, RunOutcome, StageRow,
    TakeoverCommentInput, comment_marker, marked_issue, outcome_comment, pr_body, pr_marker,
    pr_title, replace_bot_section, takeover_comment, takeover_comment_marker, trust_comment,
    trust_comment_marker,
};
pub use select::{
    Selected, Selection, SkipReason, Skipped, claim_stale_after, run_wall_clock, select,
};
pub use trust::{
    Distrust, DistrustReason, TrustDecision, TrustedLabel, label_trust, trusted_labels,
};
