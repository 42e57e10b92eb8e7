//! The diff policy: pure rules over the facts of a change (paths, kinds, modes, symlinks,
//! submodules, sizes, added lines) that decide whether a change may be committed.
//!
//! Compile the effective policy once with [`CompiledPolicy::new`], gather [`ChangeFacts`] (the
//! workspace crate does that from git), then [`judge`] for the full [`Verdict`] or [`approve`]
//! for the [`ApprovedChange`] a commit requires.

mod compiled;
mod error;
mod facts;
pub mod rules;
mod verdict;

pub use compiled::CompiledPolicy;
pub use error::PolicyError;
pub use facts::{
    AddedLine, AddedLines, ChangeFacts, ChangeKind, ChangedPath, FileMode, IgnoredScan,
    LinkResolution, Symlink,
};
pub use verdict::{ApprovedChange, Rule, Verdict, Violation, approve, judge};
