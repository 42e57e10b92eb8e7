//! The closed set of stages, the backend names with their aliases, and the runtime profile that
//! maps each stage to a backend.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A stage of one run. Closed: adding one is a design change, not a configuration change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Interview,
    Execute,
    Evaluate,
    Reflect,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Interview,
        Stage::Execute,
        Stage::Evaluate,
        Stage::Reflect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Interview => "interview",
            Stage::Execute => "execute",
            Stage::Evaluate => "evaluate",
            Stage::Reflect => "reflect",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A coding-agent backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    ClaudeCode,
    Codex,
    Pi,
    OpenCode,
    Gemini,
    /// Any argv; its output is parsed in a declared format.
    Command,
}

impl BackendKind {
    pub const ALL: [BackendKind; 6] = [
        BackendKind::ClaudeCode,
        BackendKind::Codex,
        BackendKind::Pi,
        BackendKind::OpenCode,
        BackendKind::Gemini,
        BackendKind::Command,
    ];

    /// The built-in default for any stage the profile does not name.
    pub const BUILTIN_DEFAULT: BackendKind = BackendKind::ClaudeCode;

    /// Canonical name, as used in configuration, the journal (`runtime_id`) and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::ClaudeCode => "claude_code",
            BackendKind::Codex => "codex",
            BackendKind::Pi => "pi",
            BackendKind::OpenCode => "opencode",
            BackendKind::Gemini => "gemini",
            BackendKind::Command => "command",
        }
    }

    /// Every accepted spelling, canonical first.
    pub fn spellings(self) -> &'static [&'static str] {
        match self {
            BackendKind::ClaudeCode => &["claude_code", "claude", "claude-code", "claudecode"],
            BackendKind::Codex => &["codex", "codex_cli", "codex-cli"],
            BackendKind::Pi => &["pi", "pi_agent", "pi-agent", "pi_coding_agent"],
            BackendKind::OpenCode => &["opencode", "open_code", "open-code"],
            BackendKind::Gemini => &["gemini", "gemini_cli", "gemini-cli"],
            BackendKind::Command => &["command", "cmd", "exec"],
        }
    }

    /// Parse a name or alias (case-insensitive).
    pub fn parse(s: &str) -> Option<BackendKind> {
        let lower = s.to_ascii_lowercase();
        BackendKind::ALL
            .into_iter()
            .find(|b| b.spellings().contains(&lower.as_str()))
    }

    /// All spellings, for "did you mean".
    pub fn all_spellings() -> impl Iterator<Item = &'static str> {
        BackendKind::ALL
            .into_iter()
            .flat_map(|b| b.spellings().iter().copied())
    }

    /// The program a harness backend runs when the configuration names none.
    pub fn default_binary(self) -> Option<&'static str> {
        match self {
            BackendKind::ClaudeCode => Some("claude"),
            BackendKind::Codex => Some("codex"),
            BackendKind::Pi => Some("pi"),
            BackendKind::OpenCode => Some("opencode"),
            BackendKind::Gemini => Some("gemini"),
            BackendKind::Command => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which backend runs each stage. Resolution: `stages[stage]` → `default` → built-in default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RuntimeProfile {
    pub default: Option<BackendKind>,
    /// A backend-native profile name (Codex: `--profile issueloop-<name>`); free text.
    pub backend_profile: Option<String>,
    pub stages: BTreeMap<Stage, BackendKind>,
}

impl RuntimeProfile {
    pub fn resolve(&self, stage: Stage) -> BackendKind {
        self.stages
            .get(&stage)
            .copied()
            .or(self.default)
            .unwrap_or(BackendKind::BUILTIN_DEFAULT)
    }

    /// Where the backend of `stage` came from, for `config check` and `doctor`.
    pub fn resolution_source(&self, stage: Stage) -> &'static str {
        if self.stages.contains_key(&stage) {
            "runtime_profile.stages"
        } else if self.default.is_some() {
            "runtime_profile.default"
        } else {
            "built-in default"
        }
    }

    /// The stage → backend table for every stage.
    pub fn table(&self) -> Vec<(Stage, BackendKind)> {
        Stage::ALL
            .into_iter()
            .map(|s| (s, self.resolve(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalize() {
        assert_eq!(BackendKind::parse("claude"), Some(BackendKind::ClaudeCode));
        assert_eq!(
            BackendKind::parse("Claude_Code"),
            Some(BackendKind::ClaudeCode)
        );
        assert_eq!(BackendKind::parse("codex_cli"), Some(BackendKind::Codex));
        assert_eq!(BackendKind::parse("cluade"), None);
    }

    #[test]
    fn resolution_order() {
        let mut p = RuntimeProfile::default();
        assert_eq!(p.resolve(Stage::Execute), BackendKind::ClaudeCode);
        p.default = Some(BackendKind::Pi);
        assert_eq!(p.resolve(Stage::Execute), BackendKind::Pi);
        p.stages.insert(Stage::Execute, BackendKind::Codex);
        assert_eq!(p.resolve(Stage::Execute), BackendKind::Codex);
        assert_eq!(p.resolve(Stage::Evaluate), BackendKind::Pi);
        assert_eq!(
            p.resolution_source(Stage::Execute),
            "runtime_profile.stages"
        );
    }
}
