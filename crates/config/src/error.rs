//! Configuration errors a person can act on: what, where (file, line, column, key) and a hint.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::hint::{ErrorChain as _, Hint};
use crate::redact::{redact, redact_quoted};

/// One problem in a configuration or policy file. Its text and JSON forms never quote a value
/// that looks like a secret (see [`redact_quoted`]): they name the key and say so instead.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// TOML key path, e.g. `budget.labels."loop:budget-xl".cost_usd`; empty for the whole file.
    pub key: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    /// The message as shown: a quoted secret-looking value replaced by words, secrets masked.
    pub fn shown_message(&self) -> String {
        redact_quoted(&self.message)
    }

    /// The hint as shown, like [`ConfigError::shown_message`].
    pub fn shown_hint(&self) -> Option<String> {
        self.hint.as_deref().map(redact_quoted)
    }
}

impl fmt::Debug for ConfigError {
    // Shown like the text and JSON forms: never the raw value of a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("file", &self.file)
            .field("key", &redact(&self.key))
            .field("line", &self.line)
            .field("column", &self.column)
            .field("message", &self.shown_message())
            .field("hint", &self.shown_hint())
            .finish()
    }
}

impl Serialize for ConfigError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("ConfigError", 6)?;
        s.serialize_field("file", &self.file)?;
        s.serialize_field("key", &redact(&self.key))?;
        s.serialize_field("line", &self.line)?;
        s.serialize_field("column", &self.column)?;
        s.serialize_field("message", &self.shown_message())?;
        s.serialize_field("hint", &self.shown_hint())?;
        s.end()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", redact(&self.key))?;
        }
        f.write_str(&self.shown_message())?;
        if let Some(hint) = self.shown_hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Something legal but probably unintended; printed by `config check`, never fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigWarning {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = redact_quoted(&self.message);
        if self.key.is_empty() {
            f.write_str(&message)
        } else {
            write!(f, "`{}`: {message}", redact(&self.key))
        }
    }
}

/// Why a configuration could not be loaded. Every variant is a user error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("configuration file `{}` not found", path.display())]
    NotFound { path: PathBuf, hint: String },
    #[error("`{}` is a directory, not a configuration file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("`{}` is empty", path.display())]
    Empty { path: PathBuf },
    #[error("`{}` is not valid UTF-8 (first invalid byte at line {line}, column {column})", path.display())]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Invalid::render(errors))]
    Invalid { errors: Vec<ConfigError> },
}

struct Invalid;

impl Invalid {
    fn render(errors: &[ConfigError]) -> String {
        let mut out = format!(
            "{} error{} in configuration:",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for e in errors {
            out.push_str("\n- ");
            out.push_str(&e.to_string().replace('\n', "\n  "));
        }
        out
    }
}

impl Hint for LoadError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            LoadError::NotFound { hint, .. } => Some(Cow::Borrowed(hint)),
            LoadError::IsDirectory { path } => Some(Cow::Owned(format!(
                "pass the file itself, e.g. `--config {}`",
                path.join("issueloop.toml").display()
            ))),
            LoadError::Empty { .. } => Some(Cow::Borrowed(
                "start from `examples/issueloop.toml`; at least `repos = [\"owner/name\"]` is needed",
            )),
            LoadError::NotUtf8 { .. } => Some(Cow::Borrowed("save the file as UTF-8")),
            // Each error of an invalid file carries its own hint.
            LoadError::Io { .. } | LoadError::Invalid { .. } => None,
        }
    }
}

impl LoadError {
    /// The individual errors, one per defect (a single one for file-level problems).
    pub fn errors(&self) -> Vec<ConfigError> {
        let file = match self {
            LoadError::Invalid { errors } => return errors.clone(),
            LoadError::NotFound { path, .. }
            | LoadError::IsDirectory { path }
            | LoadError::Empty { path }
            | LoadError::NotUtf8 { path, .. }
            | LoadError::Io { path, .. } => path.clone(),
        };
        vec![ConfigError {
            file,
            key: String::new(),
            line: None,
            column: None,
            // One line with its cause: a `ConfigError` is flat.
            message: self.chain().to_string(),
            hint: self.hint().map(Cow::into_owned),
        }]
    }
}
