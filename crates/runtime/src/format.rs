//! The output formats issueloop can normalize: each harness's machine output, or plain text.

use std::fmt;

use issueloop_config::BackendKind;
use serde::Serialize;

/// How an agent's stdout is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `claude -p --output-format stream-json --verbose` (also reads `--output-format json`).
    ClaudeCode,
    /// `codex exec --json`.
    Codex,
    /// `pi --print --mode json`.
    Pi,
    /// `opencode run --format json`.
    OpenCode,
    /// `gemini -o stream-json` (also reads `-o json`).
    Gemini,
    /// Plain text: success by exit code, the last lines are the final message, cost unknown.
    Text,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::ClaudeCode,
        Format::Codex,
        Format::Pi,
        Format::OpenCode,
        Format::Gemini,
        Format::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::ClaudeCode => "claude_code",
            Format::Codex => "codex",
            Format::Pi => "pi",
            Format::OpenCode => "opencode",
            Format::Gemini => "gemini",
            Format::Text => "text",
        }
    }

    /// A harness name or alias (as for backends), or `text`.
    pub fn parse(s: &str) -> Option<Format> {
        if s.eq_ignore_ascii_case("text") {
            return Some(Format::Text);
        }
        BackendKind::parse(s).and_then(Format::of_backend)
    }

    /// The format a harness backend prints; `None` for `command`, whose format is declared.
    pub fn of_backend(kind: BackendKind) -> Option<Format> {
        match kind {
            BackendKind::ClaudeCode => Some(Format::ClaudeCode),
            BackendKind::Codex => Some(Format::Codex),
            BackendKind::Pi => Some(Format::Pi),
            BackendKind::OpenCode => Some(Format::OpenCode),
            BackendKind::Gemini => Some(Format::Gemini),
            BackendKind::Command => None,
        }
    }

    /// Every accepted name, for error messages.
    pub fn names() -> String {
        Format::ALL
            .iter()
            .map(|f| format!("`{}`", f.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(Format::parse("claude"), Some(Format::ClaudeCode));
        assert_eq!(Format::parse("codex_cli"), Some(Format::Codex));
        assert_eq!(Format::parse("TEXT"), Some(Format::Text));
        assert_eq!(Format::parse("command"), None);
        assert_eq!(Format::parse("xml"), None);
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
    }
}
