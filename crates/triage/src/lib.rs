//! Pure decisions about issues: label trust, selection, acceptance criteria, claim leases,
//! fingerprints, and the Markdown primitives both issue parsing and `issueloop_publish` use. No
//! I/O: the forge gathers [`CandidateFacts`], this crate decides; the words are
//! `issueloop_publish`'s.

pub mod acceptance;
pub mod facts;
pub mod fingerprint;
pub mod lease;
pub mod markdown;
pub mod redact;
pub mod select;
pub mod trust;

#[cfg(test)]
mod testkit;

pub use acceptance::{AcceptanceCriteria, AcceptanceSource, acceptance_criteria};
pub use facts::{BodyEdit, CandidateFacts, ClaimFacts, Issue, LabelEvent, Permission, PrRef};
pub use fingerprint::fingerprint;
pub use lease::{ClaimState, LeaseFacts, claim_state};
pub use redact::redact;
pub use select::{
    Selected, Selection, SkipReason, Skipped, claim_stale_after, run_wall_clock, select,
};
pub use trust::{
    Distrust, DistrustReason, TrustDecision, TrustedLabel, label_trust, trusted_labels,
};
