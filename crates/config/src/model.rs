//! The validated configuration: every default filled in, every name normalized, every path
//! resolved against the configuration file's directory and held as an [`AbsPath`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::money::Usd;
use crate::path::AbsPath;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::error::ConfigWarning;
use crate::policy::{ModelTable, PolicyConfig};
use crate::runtime::{BackendKind, RuntimeProfile};

/// A validated configuration. Build it with [`crate::load_file`] or [`crate::load_str`].
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The file this came from, `None` for the built-in defaults.
    pub file: Option<AbsPath>,
    /// Directory relative paths were resolved against (the file's directory).
    pub base_dir: AbsPath,
    pub forge: ForgeConfig,
    pub repos: Vec<RepoName>,
    pub labels: Labels,
    pub budget: BudgetConfig,
    pub runtime_profile: RuntimeProfile,
    pub backends: BTreeMap<BackendKind, BackendSettings>,
    pub run: RunSettings,
    pub gates: GatesConfig,
    pub policy: PolicyConfig,
    pub git: GitConfig,
    pub publish: PublishConfig,
    pub service: ServiceConfig,
    pub state: StateConfig,
    pub sandbox: crate::sandbox::SandboxConfig,
    #[serde(skip)]
    pub models: ModelTable,
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// The configuration used when no file is given (e.g. `policy check` in any repository):
    /// every default, no repositories, default paths under `base_dir` (a relative `base_dir`
    /// is taken relative to the current directory).
    pub fn builtin(base_dir: PathBuf) -> Config {
        // Only an unreadable working directory fails; then the root stands in for it.
        let base = AbsPath::from_cwd(&base_dir)
            .unwrap_or_else(|_| AbsPath::resolve(&AbsPath::root(), &base_dir));
        crate::validate::builtin(base)
    }

    /// Settings of a backend (defaults when the configuration has no `[backends.<name>]`).
    pub fn backend(&self, kind: BackendKind) -> BackendSettings {
        self.backends.get(&kind).cloned().unwrap_or_default()
    }
}

/// `owner/name` of a repository.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub fn full(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.full()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl FromStr for RepoName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.len() <= 100
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match s.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(RepoName {
                owner: owner.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(format!(
                "`{s}` is not a repository name of the form `owner/name`"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKind {
    Github,
    Local,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Local => "local",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    /// REST API base URL (`https://api.github.com`, or `https://HOST/api/v3` for Enterprise Server).
    pub api_url: String,
    /// Folder of the local forge (`kind = "local"`).
    pub local_path: AbsPath,
    pub app: Option<AppConfig>,
    /// Cap on content-creating requests (comments, PRs, labels, refs) per minute.
    pub max_writes_per_minute: u32,
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppConfig {
    pub app_id: u64,
    pub private_key_path: AbsPath,
    pub installation_id: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Labels {
    pub prefix: String,
    pub approved: String,
    pub in_progress: String,
    pub pr_opened: String,
    pub failed: String,
    pub blocked: String,
    pub draft: String,
    /// Priority labels, highest first. Issues carrying an earlier one are taken first.
    pub priority: Vec<String>,
}

/// One run's limits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunBudget {
    pub cost_usd: Usd,
    #[serde(with = "duration_text")]
    pub wall_clock: Duration,
    pub max_turns: u32,
}

/// What a budget label raises; a field it leaves out is not raised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelBudget {
    pub cost_usd: Option<Usd>,
    #[serde(with = "duration_text_opt")]
    pub wall_clock: Option<Duration>,
    pub max_turns: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetConfig {
    /// USD per UTC day across all runs. Nothing raises it.
    pub daily_cap_usd: Usd,
    pub max_runs_per_day: u32,
    /// A run whose clamped budget is below this is skipped rather than started.
    pub min_useful_usd: Usd,
    /// How long past its wall-clock budget an unsettled reservation lives before it is charged.
    #[serde(with = "duration_text")]
    pub reservation_grace: Duration,
    pub default: RunBudget,
    /// Budget labels (defaults `loop:budget-large`, `loop:budget-xl`, plus the configured ones).
    pub labels: BTreeMap<String, LabelBudget>,
}

/// Per-backend settings (`[backends.<name>]`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BackendSettings {
    /// Program to run (harness backends); default: the harness's usual binary name.
    pub binary: Option<String>,
    /// Full argv (the `command` backend).
    pub argv: Option<Vec<String>>,
    /// Output format of the `command` backend: a harness name or `text`.
    pub format: Option<String>,
    pub model: Option<String>,
    /// Extra arguments appended to the harness's argv.
    pub args: Vec<String>,
    /// Environment variables passed through to the agent (credential variables never are).
    pub env: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSettings {
    /// How many times the agent may repair failing gates (stage `reflect`).
    pub reflect_attempts: u32,
    /// Run stage `evaluate` (a review of the diff against the acceptance criteria).
    pub evaluate: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct GatesConfig {
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Bytes of each gate's output kept (head and tail).
    pub output_limit_bytes: usize,
    /// Explicit gates per repository; they replace auto-selection for that repository.
    pub repos: BTreeMap<RepoName, Vec<Vec<String>>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GitConfig {
    /// Where mirrors and worktrees live.
    pub cache_dir: AbsPath,
    pub author_name: String,
    pub author_email: String,
    pub branch_prefix: String,
    /// Branch names never committed to (the repository's default branch is added at run time).
    pub protected_branches: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftFallback {
    /// Open a regular PR titled `[draft] …` with the draft label.
    Label,
    /// Fail the run with the reason.
    Fail,
}

#[derive(Clone, Debug, Serialize)]
pub struct PublishConfig {
    pub draft_fallback: DraftFallback,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceConfig {
    /// Cron expression with seconds (a 5-field expression is accepted and gets `0` seconds).
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    pub max_concurrent_runs: u32,
    #[serde(with = "duration_text")]
    pub shutdown_grace: Duration,
    /// How long a claim's lease lasts without a renewal; a running run renews it every third of
    /// this, and another runner may take the claim over only once it has expired.
    #[serde(with = "duration_text")]
    pub lease_ttl: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct StateConfig {
    /// Which store holds the ledger and the journal.
    pub backend: crate::state::StateBackend,
    /// The SQLite file holding the ledger and the journal (`backend = "sqlite"`).
    pub path: AbsPath,
    /// The PostgreSQL URL (`backend = "postgres"`); `None`: `ISSUELOOP_DATABASE_URL` gives it.
    /// Shown and serialized with its password replaced.
    pub url: Option<crate::state::DatabaseUrl>,
    /// The branch holding the log (`backend = "github"`).
    pub branch: String,
    /// The repository holding the log (`backend = "github"`); `None`: the first of `repos`.
    pub repo: Option<RepoName>,
}

/// Parse a duration written like `45m`, `1h30m`, `90s`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write it like `45m`, `1h30m` or `90s`"))?;
    if signed.is_negative() {
        return Err(format!("`{s}` is negative"));
    }
    Duration::try_from(signed).map_err(|_| format!("`{s}` is out of range"))
}

/// Format a duration the way it is written in configuration (`1h 30m`).
pub fn format_duration(d: Duration) -> String {
    match jiff::SignedDuration::try_from(d) {
        Ok(s) => format!("{s:#}"),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

mod duration_text {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }
}

mod duration_text_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_friendly_forms() {
        assert_eq!(parse_duration("45m"), Ok(Duration::from_secs(45 * 60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5m").is_err());
        assert_eq!(format_duration(Duration::from_secs(45 * 60)), "45m");
    }

    #[test]
    fn repo_names() {
        assert!("acme/api".parse::<RepoName>().is_ok());
        assert!("acme".parse::<RepoName>().is_err());
        assert!("acme/api/x".parse::<RepoName>().is_err());
        assert!("/api".parse::<RepoName>().is_err());
        assert!("acme/..".parse::<RepoName>().is_err());
        let r: RepoName = serde_json::from_str("\"acme/api\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"acme/api\"");
        assert!(serde_json::from_str::<RepoName>("\"acme\"").is_err());
    }
}
