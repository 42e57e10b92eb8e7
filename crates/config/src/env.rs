//! A snapshot of the process environment, read once by the CLI and passed down, plus the
//! [`Secret`] wrapper that keeps tokens out of `Debug`/`Display` output.

use std::collections::BTreeMap;
use std::fmt;

/// Environment variables as seen when the process started. Tests build their own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Snapshot of the real process environment (non-UTF-8 variables are skipped).
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the process environment is read"
    )]
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The GitHub token from `GITHUB_TOKEN`, else `GH_TOKEN`.
    pub fn github_token(&self) -> Option<Secret> {
        self.get("GITHUB_TOKEN")
            .or_else(|| self.get("GH_TOKEN"))
            .map(|t| Secret::new(t.to_owned()))
    }

    /// True when running inside GitHub Actions.
    pub fn in_github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }
}

impl fmt::Debug for Env {
    // Never print values: the environment holds tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Names of environment variables that carry forge credentials (and the state database's URL,
/// with its password). They are removed from every agent's and gate's environment, whatever a
/// configuration asks to pass through.
pub const CREDENTIAL_VARS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_PAT",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "ISSUELOOP_GITHUB_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    // An agent that could reach the ledger could rewrite the day's spend.
    "ISSUELOOP_DATABASE_URL",
];

/// A secret string (a token, a private key) that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value. Call only where it is sent to the forge.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("ghp_abcdefghijklmnopqrstuvwxyz0123456789".into());
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let env = Env::from_pairs([("GITHUB_TOKEN", s.expose())]);
        assert!(!format!("{env:?}").contains("ghp_"));
    }

    #[test]
    fn token_falls_back_to_gh_token_and_ignores_empty() {
        let env = Env::from_pairs([("GITHUB_TOKEN", ""), ("GH_TOKEN", "x")]);
        assert_eq!(
            env.github_token().map(|s| s.expose().to_owned()),
            Some("x".into())
        );
    }
}
