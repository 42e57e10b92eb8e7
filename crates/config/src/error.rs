//! Configuration errors a person can act on: what, where (file, line, column, key) and a hint.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem in a configuration or policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    pub file: PathBuf,
    /// TOML key path, e.g. `budget.labels."loop:budget-xl".cost_usd`; empty for the whole file.
    pub key: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
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
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
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
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

/// Why a configuration could not be loaded. Every variant is a user error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("configuration file `{}` not found\n  hint: {hint}", path.display())]
    NotFound { path: PathBuf, hint: String },
    #[error("`{}` is a directory, not a configuration file\n  hint: pass the file itself, e.g. `--config {}`", path.display(), path.join("issueloop.toml").display())]
    IsDirectory { path: PathBuf },
    #[error("`{}` is empty\n  hint: start from `examples/issueloop.toml`; at least `repos = [\"owner/name\"]` is needed", path.display())]
    Empty { path: PathBuf },
    #[error("`{}` is not valid UTF-8 (first invalid byte at line {line}, column {column})\n  hint: save the file as UTF-8", path.display())]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("cannot read `{}`: {source}", path.display())]
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

impl LoadError {
    /// The individual errors, one per defect (a single one for file-level problems).
    pub fn errors(&self) -> Vec<ConfigError> {
        match self {
            LoadError::Invalid { errors } => errors.clone(),
            other => {
                let (file, msg) = match other {
                    LoadError::NotFound { path, .. }
                    | LoadError::IsDirectory { path }
                    | LoadError::Empty { path }
                    | LoadError::NotUtf8 { path, .. }
                    | LoadError::Io { path, .. } => (path.clone(), other.to_string()),
                    LoadError::Invalid { .. } => unreachable_invalid(),
                };
                let (message, hint) = match msg.split_once("\n  hint: ") {
                    Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
                    None => (msg, None),
                };
                vec![ConfigError {
                    file,
                    key: String::new(),
                    line: None,
                    column: None,
                    message,
                    hint,
                }]
            }
        }
    }
}

fn unreachable_invalid() -> (PathBuf, String) {
    (PathBuf::new(), String::new())
}
