//! The configuration as written: strict serde structs (`deny_unknown_fields`), every field
//! optional so the semantic pass can fill defaults and report every problem at once.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub forge: Option<RawForge>,
    pub repos: Option<Vec<String>>,
    pub labels: Option<RawLabels>,
    pub budget: Option<RawBudget>,
    pub runtime_profile: Option<RawRuntimeProfile>,
    pub backends: Option<BTreeMap<String, RawBackend>>,
    pub run: Option<RawRun>,
    pub gates: Option<RawGates>,
    pub policy: Option<RawPolicy>,
    pub git: Option<RawGit>,
    pub publish: Option<RawPublish>,
    pub service: Option<RawService>,
    pub state: Option<RawState>,
    pub sandbox: Option<RawSandbox>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForge {
    pub kind: Option<String>,
    pub api_url: Option<String>,
    pub local_path: Option<String>,
    pub app: Option<RawApp>,
    pub max_writes_per_minute: Option<u32>,
    pub request_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub app_id: Option<u64>,
    pub private_key_path: Option<String>,
    pub installation_id: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLabels {
    pub prefix: Option<String>,
    pub approved: Option<String>,
    pub in_progress: Option<String>,
    pub pr_opened: Option<String>,
    pub failed: Option<String>,
    pub blocked: Option<String>,
    pub draft: Option<String>,
    pub priority: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub daily_cap_usd: Option<f64>,
    pub max_runs_per_day: Option<u32>,
    pub min_useful_usd: Option<f64>,
    pub reservation_grace: Option<String>,
    pub default: Option<RawRunBudget>,
    pub labels: Option<BTreeMap<String, RawRunBudget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRunBudget {
    pub cost_usd: Option<f64>,
    pub wall_clock: Option<String>,
    pub max_turns: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuntimeProfile {
    pub default: Option<String>,
    pub backend_profile: Option<String>,
    pub stages: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    pub binary: Option<String>,
    pub argv: Option<Vec<String>>,
    pub format: Option<String>,
    pub model: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRun {
    pub reflect_attempts: Option<u32>,
    pub evaluate: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGates {
    pub timeout: Option<String>,
    pub output_limit_bytes: Option<u64>,
    pub repos: Option<BTreeMap<String, RawRepoGates>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRepoGates {
    pub commands: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub files: Option<Vec<String>>,
    pub allowed_paths: Option<Vec<String>>,
    pub denied_paths: Option<Vec<String>>,
    pub max_changed_files: Option<u32>,
    pub max_file_bytes: Option<u64>,
    pub repos: Option<BTreeMap<String, RawRepoPolicy>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRepoPolicy {
    pub allowed_paths: Option<Vec<String>>,
    pub denied_paths: Option<Vec<String>>,
    pub allow_denied: Option<Vec<String>>,
    pub allow_submodules: Option<bool>,
    pub max_changed_files: Option<u32>,
    pub max_file_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGit {
    pub cache_dir: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub branch_prefix: Option<String>,
    pub protected_branches: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublish {
    pub draft_fallback: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub max_concurrent_runs: Option<u32>,
    pub shutdown_grace: Option<String>,
    pub lease_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub path: Option<String>,
    pub backend: Option<String>,
    pub url: Option<String>,
    pub branch: Option<String>,
    pub repo: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSandbox {
    pub mode: Option<String>,
    pub extra_writable: Option<Vec<String>>,
    pub network: Option<String>,
}

/// A policy file (`policies/*.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyFile {
    pub gates: Option<RawPolicyGates>,
    pub paths: Option<RawPolicyPaths>,
    pub limits: Option<RawPolicyLimits>,
    pub secrets: Option<Vec<RawSecretPattern>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyGates {
    pub allow: Option<Vec<RawAllowRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllowRule {
    pub program: String,
    pub subcommands: Option<Vec<String>>,
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyPaths {
    pub denied: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyLimits {
    pub max_changed_files: Option<u32>,
    pub max_file_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretPattern {
    pub name: String,
    pub regex: String,
}

/// A model price table (`policies/models.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModels {
    pub models: Option<BTreeMap<String, RawModelPrice>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModelPrice {
    #[serde(rename = "match")]
    pub matches: Option<Vec<String>>,
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}
