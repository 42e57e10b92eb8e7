//! The outcome of judging a change: every violation with its rule, path, line and the fix a
//! person would make, and the approved change that alone may be committed.

use std::fmt;

use serde::Serialize;

use crate::compiled::CompiledPolicy;
use crate::facts::ChangeFacts;
use crate::rules;

/// Which rule a violation broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The path matches a denied glob and no `allow_denied` exception.
    DeniedPath,
    /// The path matches no allowed glob.
    NotAllowedPath,
    /// A symlink points outside the worktree or into `.git`.
    SymlinkEscape,
    /// A submodule pointer changed (or a submodule was added or removed).
    SubmoduleChange,
    /// More changed files than `max_changed_files`.
    TooManyFiles,
    /// A file larger than `max_file_bytes`.
    FileTooLarge,
    /// An added line matches a secret pattern.
    Secret,
    /// A file added more text than the secret scan reads.
    SecretScanIncomplete,
    /// There were more ignored files than the denied-path check reads.
    IgnoredScanIncomplete,
    /// A path that is not valid UTF-8 (cannot be matched against globs reliably).
    NonUtf8Path,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::DeniedPath => "denied_path",
            Rule::NotAllowedPath => "not_allowed_path",
            Rule::SymlinkEscape => "symlink_escape",
            Rule::SubmoduleChange => "submodule_change",
            Rule::TooManyFiles => "too_many_files",
            Rule::FileTooLarge => "file_too_large",
            Rule::Secret => "secret",
            Rule::SecretScanIncomplete => "secret_scan_incomplete",
            Rule::IgnoredScanIncomplete => "ignored_scan_incomplete",
            Rule::NonUtf8Path => "non_utf8_path",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule. Messages never contain the content of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    /// The path concerned (`None` for rules about the whole change).
    pub path: Option<String>,
    /// 1-based line in the new file (secret rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What is wrong, for a person.
    pub message: String,
    /// What a person would do about it.
    pub fix: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  fix: {}", self.rule, self.message, self.fix)
    }
}

/// The decision on a change: every violation, collected before deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Paths that would be committed.
    pub changed_files: usize,
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// True when the change may be committed.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = match self.changed_files {
            1 => "1 changed file".to_owned(),
            n => format!("{n} changed files"),
        };
        if self.is_clean() {
            return writeln!(f, "policy ok: {files}, no violations");
        }
        let n = self.violations.len();
        writeln!(
            f,
            "policy violated: {files}, {n} violation{}",
            if n == 1 { "" } else { "s" }
        )?;
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Judge a change: run every rule and collect all violations.
pub fn judge(facts: &ChangeFacts, policy: &CompiledPolicy) -> Verdict {
    let mut violations = Vec::new();
    for rule in rules::ALL {
        violations.extend(rule(facts, policy));
    }
    Verdict {
        changed_files: facts.tracked().count(),
        violations,
    }
}

/// A change that passed every rule. Only this may be committed; it can be made by [`approve`]
/// alone, so a commit always carries the facts that were judged.
#[derive(Clone, Debug)]
pub struct ApprovedChange {
    facts: ChangeFacts,
}

impl ApprovedChange {
    /// The judged facts.
    pub fn facts(&self) -> &ChangeFacts {
        &self.facts
    }
}

/// Judge `facts`; a clean verdict yields the [`ApprovedChange`], any violation the verdict.
pub fn approve(facts: ChangeFacts, policy: &CompiledPolicy) -> Result<ApprovedChange, Verdict> {
    let verdict = judge(&facts, policy);
    if verdict.is_clean() {
        Ok(ApprovedChange { facts })
    } else {
        Err(verdict)
    }
}
