//! The error that ends a subcommand, and the one place it is printed: `error:` with what
//! failed, a `Caused by:` line per cause of its typed error, then `hint:` lines — redacted, on
//! stderr (or as one JSON object on stdout with `--json`), with the exit code.

use std::borrow::Cow;
use std::error::Error;
use std::process::ExitCode;

use issueloop_config::{Hint, LoadError};

use super::Ctx;
use super::output::{EXIT_FAILED, EXIT_USAGE, redact_json, write_stdout};

/// A typed error that ends a subcommand.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An error that ends a subcommand: what failed (a message of the command's own, or the typed
/// error's), the typed error whose causes follow, hints, its kind for `--json`, an exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub kind: &'static str,
    /// The first line, when the command says what failed in its own words; else the typed
    /// error's message is the first line.
    message: Option<String>,
    /// The typed error: its message (when there is no `message`) and its chain of causes.
    source: Option<BoxError>,
    /// Hints of the command's own, printed before the ones the typed errors offer.
    hints: Vec<String>,
    /// Structured details for `--json` (e.g. the list of configuration errors).
    pub details: Option<serde_json::Value>,
}

impl CliError {
    /// A usage error (exit 2) in the command's own words.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, "usage", Some(message.into()), None)
    }

    /// A failure (exit 1) in the command's own words.
    pub fn failed(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(EXIT_FAILED, kind, Some(message.into()), None)
    }

    /// A failure (exit 1) told by a typed error: its message first, then its causes and hints.
    pub fn failed_by(kind: &'static str, error: impl Into<BoxError>) -> Self {
        Self::new(EXIT_FAILED, kind, None, Some(error.into()))
    }

    /// A usage error (exit 2) told by a typed error.
    pub fn usage_by(error: impl Into<BoxError>) -> Self {
        Self::new(EXIT_USAGE, "usage", None, Some(error.into()))
    }

    /// A configuration that cannot be loaded (exit 2); `--json` lists each error.
    pub fn config(e: LoadError) -> Self {
        let mut err = Self::new(EXIT_USAGE, "config", None, Some(Box::new(e)));
        err.details = err
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<LoadError>())
            .and_then(|e| serde_json::to_value(e.errors()).ok());
        err
    }

    fn new(
        code: u8,
        kind: &'static str,
        message: Option<String>,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            code,
            kind,
            message,
            source,
            hints: Vec::new(),
            details: None,
        }
    }

    /// Says what failed in the command's own words; the typed error becomes the first cause.
    pub fn context(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Names the kind `--json` reports.
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// Adds a hint of the command's own.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// What is printed: the first line, the causes and the hints, not yet redacted.
    pub fn parts(&self) -> Parts {
        let mut lines: Vec<String> = self.message.iter().cloned().collect();
        let mut hints = self.hints.clone();
        let mut next: Option<&(dyn Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(e) = next {
            let text = e.to_string();
            // A wrapper that repeats its cause's words (`#[error(transparent)]`-like) adds nothing.
            if lines.last() != Some(&text) && !text.is_empty() {
                lines.push(text);
            }
            if let Some(h) = hint_of(e) {
                hints.push(h.into_owned());
            }
            next = e.source();
        }
        let mut lines = lines.into_iter();
        Parts {
            error: lines.next().unwrap_or_else(|| "failed".to_owned()),
            causes: lines.collect(),
            hints,
        }
    }

    /// The text printed on stderr, every secret masked (the one redaction rule).
    pub fn text(&self) -> String {
        issueloop_config::redact(&self.parts().to_text())
    }

    /// Print the error (JSON on stdout with `--json`, else text on stderr) and return the code.
    pub fn report(self, ctx: &Ctx) -> ExitCode {
        let parts = self.parts();
        if ctx.global.json {
            let mut err = serde_json::json!({
                "kind": self.kind,
                "message": parts.error,
                "causes": parts.causes,
                "hints": parts.hints,
            });
            if let Some(d) = self.details {
                err["errors"] = d;
            }
            let mut value = serde_json::json!({ "error": err });
            redact_json(&mut value);
            write_stdout(format_args!("{value}\n"));
        } else {
            use std::io::Write as _;
            // One write: the lines of one error stay together.
            let _ = std::io::stderr().lock().write_all(self.text().as_bytes());
        }
        ExitCode::from(self.code)
    }
}

/// What an error prints, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub error: String,
    pub causes: Vec<String>,
    pub hints: Vec<String>,
}

impl Parts {
    /// The text form:
    ///
    /// ```text
    /// error: <what failed>
    ///   Caused by: <cause>
    /// hint: <what to do>
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = format!("error: {}\n", self.error);
        for cause in &self.causes {
            out.push_str(&format!("  Caused by: {cause}\n"));
        }
        for hint in &self.hints {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

/// The hint an error in a chain offers: the error types that have hints, found by their type.
fn hint_of<'a>(e: &'a (dyn Error + 'static)) -> Option<Cow<'a, str>> {
    if let Some(e) = e.downcast_ref::<LoadError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<issueloop_ledger::LedgerError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<issueloop_forge::ForgeError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<crate::report::ReportError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<crate::metrics::MetricsError>() {
        return e.hint();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn io(kind: std::io::ErrorKind, text: &str) -> std::io::Error {
        std::io::Error::new(kind, text)
    }

    /// Each typed error the commands end with, printed.
    #[test]
    fn printed_errors() {
        let cases: Vec<(&str, CliError)> = vec![
            (
                "config_not_found",
                CliError::config(LoadError::NotFound {
                    path: PathBuf::from("/srv/issueloop.toml"),
                    hint: "create it, or pass `--config PATH`".into(),
                }),
            ),
            (
                "config_unreadable",
                CliError::config(LoadError::Io {
                    path: PathBuf::from("/srv/issueloop.toml"),
                    source: io(std::io::ErrorKind::PermissionDenied, "Permission denied"),
                }),
            ),
            (
                "config_invalid",
                CliError::config(LoadError::Invalid {
                    errors: vec![
                        issueloop_config::ConfigError {
                            file: PathBuf::from("issueloop.toml"),
                            key: "budget.daily_cap_usd".into(),
                            line: Some(3),
                            column: Some(17),
                            message: "must be positive".into(),
                            hint: Some("e.g. `daily_cap_usd = 20.0`".into()),
                        },
                        issueloop_config::ConfigError {
                            file: PathBuf::from("issueloop.toml"),
                            key: "runtime_profile.stages.exectue".into(),
                            line: Some(9),
                            column: None,
                            message: "unknown stage `exectue`".into(),
                            hint: Some("did you mean `execute`?".into()),
                        },
                    ],
                }),
            ),
            (
                "state_newer_schema",
                CliError::failed_by(
                    "state",
                    issueloop_ledger::LedgerError::NewerSchema {
                        path: PathBuf::from("/var/lib/issueloop/ledger.sqlite"),
                        found: 9,
                        supported: 4,
                    },
                ),
            ),
            (
                "tick_state_storage",
                CliError::failed_by(
                    "tick",
                    crate::pipeline::TickError::State(issueloop_ledger::LedgerError::Storage {
                        path: PathBuf::from("/var/lib/issueloop/ledger.sqlite"),
                        op: "reserve",
                        source: Box::new(io(std::io::ErrorKind::Other, "disk I/O error")),
                    }),
                ),
            ),
            (
                "forge_unauthorized",
                CliError::failed_by(
                    "forge",
                    issueloop_forge::ForgeError::Unauthorized {
                        api: "https://api.github.com".into(),
                        method: "GET".into(),
                        path: "/repos/o/r/issues".into(),
                        message: "Bad credentials".into(),
                    },
                ),
            ),
            (
                "summary_file",
                CliError::failed_by(
                    "summary",
                    crate::report::ReportError::SummaryFile {
                        path: PathBuf::from("/github/step_summary"),
                        source: io(std::io::ErrorKind::NotFound, "No such file or directory"),
                    },
                ),
            ),
            (
                "own_words_with_context_and_hint",
                CliError::failed_by(
                    "demo",
                    io(std::io::ErrorKind::StorageFull, "No space left on device"),
                )
                .context("cannot make a temporary folder")
                .with_hint("free some space, or pass `--dir`"),
            ),
            (
                "usage",
                CliError::usage("`/tmp/x` is not empty").with_hint("pass a new folder"),
            ),
        ];
        for (name, err) in cases {
            insta::assert_snapshot!(name, err.text());
        }
    }

    #[test]
    fn a_cause_that_repeats_its_wrapper_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Wrapper(#[source] std::io::Error);
        let parts =
            CliError::failed_by("x", Wrapper(io(std::io::ErrorKind::Other, "same"))).parts();
        assert_eq!(parts.error, "same");
        assert!(parts.causes.is_empty(), "{parts:?}");
    }

    #[test]
    fn a_secret_in_any_part_is_masked_when_printed() {
        let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
        let err = CliError::failed_by(
            "forge",
            issueloop_forge::ForgeError::Unauthorized {
                api: "https://api.github.com".into(),
                method: "GET".into(),
                path: "/user".into(),
                message: format!("token {token} refused"),
            },
        )
        .context(format!("listing with {token}"))
        .with_hint(format!("not {token}"));
        let text = err.text();
        assert!(!text.contains(token), "{text}");
        assert!(text.starts_with("error: "), "{text}");
    }
}
