//! Policy files (`policies/*.toml`: gate allowlist, denied paths, diff limits, secret patterns)
//! and the model price table, with the compiled-in defaults and how configuration extends them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::ConfigError;
use crate::load::parse_strict;
use crate::model::RepoName;
use crate::money::Usd;
use crate::raw::{RawModels, RawPolicyFile};

/// A program a gate may run, optionally only with given argv prefixes (`uv` + `run`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowRule {
    pub program: String,
    /// Allowed argv prefixes after the program, each split on spaces (`"-m pytest"`); `None`
    /// allows any arguments.
    pub subcommands: Option<Vec<Vec<String>>>,
    /// Options of the program a gate may use although they name a program or a package
    /// source (`--with`; see [`crate::GUARDED_GATE_OPTIONS`]). Empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Which policy file the rule came from.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretPattern {
    pub name: String,
    pub regex: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyLimits {
    pub max_changed_files: u32,
    pub max_file_bytes: u64,
}

/// An explicit loosening of the default policy, printed by `config check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loosening {
    /// Key path in the configuration that loosens the policy.
    pub key: String,
    pub description: String,
}

/// Per-repository policy settings (`[policy.repos."owner/name"]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepoPolicy {
    /// Replaces the global `allowed_paths` for this repository.
    pub allowed_paths: Option<Vec<String>>,
    /// Added to the denied paths.
    pub denied_paths: Vec<String>,
    /// Denied paths this repository may touch anyway (an explicit, printed loosening).
    pub allow_denied: Vec<String>,
    pub allow_submodules: bool,
    pub max_changed_files: Option<u32>,
    pub max_file_bytes: Option<u64>,
}

/// The policy in force: the compiled-in default, extended by policy files and configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyConfig {
    /// The policy files in force, in order (`builtin:policies/default.toml` first, then each
    /// file's absolute path).
    pub sources: Vec<String>,
    pub allowlist: Vec<AllowRule>,
    pub allowed_paths: Vec<String>,
    pub denied_paths: Vec<String>,
    pub limits: PolicyLimits,
    pub secret_patterns: Vec<SecretPattern>,
    pub repos: BTreeMap<RepoName, RepoPolicy>,
    pub loosenings: Vec<Loosening>,
}

/// The policy for one repository, flattened: what the diff policy and gates check against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectivePolicy {
    pub allowed_paths: Vec<String>,
    pub denied_paths: Vec<String>,
    pub allow_denied: Vec<String>,
    pub allow_submodules: bool,
    pub max_changed_files: u32,
    pub max_file_bytes: u64,
    pub secret_patterns: Vec<SecretPattern>,
    pub allowlist: Vec<AllowRule>,
    /// Where to loosen it, for messages: `[policy.repos."owner/name"]` or `[policy]`.
    pub config_table: String,
}

impl PolicyConfig {
    /// The policy for `repo` (`None`: a checkout outside any configured repository).
    pub fn for_repo(&self, repo: Option<&RepoName>) -> EffectivePolicy {
        let repo_policy = repo.and_then(|r| self.repos.get(r));
        let mut denied = self.denied_paths.clone();
        let mut allowed = self.allowed_paths.clone();
        let mut allow_denied = Vec::new();
        let mut limits = self.limits;
        let mut allow_submodules = false;
        if let Some(rp) = repo_policy {
            denied.extend(rp.denied_paths.iter().cloned());
            if let Some(a) = &rp.allowed_paths {
                allowed = a.clone();
            }
            allow_denied = rp.allow_denied.clone();
            allow_submodules = rp.allow_submodules;
            if let Some(n) = rp.max_changed_files {
                limits.max_changed_files = n;
            }
            if let Some(n) = rp.max_file_bytes {
                limits.max_file_bytes = n;
            }
        }
        EffectivePolicy {
            allowed_paths: allowed,
            denied_paths: denied,
            allow_denied,
            allow_submodules,
            max_changed_files: limits.max_changed_files,
            max_file_bytes: limits.max_file_bytes,
            secret_patterns: self.secret_patterns.clone(),
            allowlist: self.allowlist.clone(),
            config_table: match repo {
                Some(r) => format!("[policy.repos.\"{r}\"]"),
                None => "[policy]".to_owned(),
            },
        }
    }
}

/// A parsed policy file.
#[derive(Clone, Debug, Default)]
pub(crate) struct PolicyFile {
    pub allowlist: Vec<AllowRule>,
    pub denied: Vec<String>,
    pub max_changed_files: Option<u32>,
    pub max_file_bytes: Option<u64>,
    pub secrets: Vec<SecretPattern>,
}

pub(crate) fn parse_policy_file(
    text: &str,
    file: &Path,
    source: &str,
) -> Result<PolicyFile, Vec<ConfigError>> {
    let (raw, errors, doc) = parse_strict::<RawPolicyFile>(text, file);
    let raw = match raw {
        Some(raw) if errors.is_empty() => raw,
        _ => return Err(errors),
    };
    let allowlist = raw
        .gates
        .and_then(|g| g.allow)
        .unwrap_or_default()
        .into_iter()
        .map(|r| AllowRule {
            program: r.program,
            subcommands: r.subcommands.map(|subs| {
                subs.iter()
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .collect()
            }),
            options: r.options.unwrap_or_default(),
            source: source.to_owned(),
        })
        .collect::<Vec<_>>();
    let option_errors =
        crate::gate_options::validate_rule_options(&allowlist, file, text, doc.as_ref());
    if !option_errors.is_empty() {
        return Err(option_errors);
    }
    let limits = raw.limits.unwrap_or_default();
    Ok(PolicyFile {
        allowlist,
        denied: raw.paths.and_then(|p| p.denied).unwrap_or_default(),
        max_changed_files: limits.max_changed_files,
        max_file_bytes: limits.max_file_bytes,
        secrets: raw
            .secrets
            .unwrap_or_default()
            .into_iter()
            .map(|s| SecretPattern {
                name: s.name,
                regex: s.regex,
            })
            .collect(),
    })
}

pub(crate) const BUILTIN_POLICY_SOURCE: &str = "builtin:policies/default.toml";

/// The compiled-in default policy, on its own.
pub fn builtin_policy() -> PolicyConfig {
    let file = builtin_policy_file();
    PolicyConfig {
        sources: vec![BUILTIN_POLICY_SOURCE.to_owned()],
        allowlist: file.allowlist,
        allowed_paths: vec!["**".to_owned()],
        denied_paths: file.denied,
        limits: PolicyLimits {
            max_changed_files: file.max_changed_files.unwrap_or(20),
            max_file_bytes: file.max_file_bytes.unwrap_or(1024 * 1024),
        },
        secret_patterns: file.secrets,
        repos: BTreeMap::new(),
        loosenings: Vec::new(),
    }
}

pub(crate) fn builtin_policy_file() -> PolicyFile {
    // The embedded file is checked by a unit test; an error here is a build defect, and the
    // empty policy it would fall back to denies nothing, so the test must keep it valid.
    parse_policy_file(
        crate::DEFAULT_POLICY_TOML,
        Path::new("policies/default.toml"),
        BUILTIN_POLICY_SOURCE,
    )
    .unwrap_or_default()
}

/// Price of one model in USD per million tokens.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelPrice {
    pub id: String,
    /// Model ids or prefixes (ending in `*`) that resolve to this entry.
    pub matches: Vec<String>,
    pub input: Usd,
    pub output: Usd,
    pub cache_read: Usd,
    pub cache_write: Usd,
}

/// The model price table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelTable {
    pub models: Vec<ModelPrice>,
}

impl ModelTable {
    /// The price entry for a model id: an exact id or match first, else the longest matching
    /// prefix pattern. Provider prefixes (`openai/gpt-5`) are ignored.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        let model = model.rsplit('/').next().unwrap_or(model);
        let mut best: Option<(usize, &ModelPrice)> = None;
        for entry in &self.models {
            if entry.id == model {
                return Some(entry);
            }
            for m in &entry.matches {
                let score = match m.strip_suffix('*') {
                    Some(prefix) if model.starts_with(prefix) => prefix.len(),
                    None if m == model => usize::MAX,
                    _ => continue,
                };
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, entry));
                }
            }
        }
        best.map(|(_, e)| e)
    }
}

pub(crate) fn parse_models(text: &str, file: &Path) -> Result<ModelTable, Vec<ConfigError>> {
    let (raw, errors, _) = parse_strict::<RawModels>(text, file);
    let raw = match raw {
        Some(raw) if errors.is_empty() => raw,
        _ => return Err(errors),
    };
    Ok(ModelTable {
        models: raw
            .models
            .unwrap_or_default()
            .into_iter()
            .map(|(id, p)| ModelPrice {
                matches: p.matches.unwrap_or_default(),
                input: Usd::from_dollars(p.input),
                output: Usd::from_dollars(p.output),
                cache_read: Usd::from_dollars(p.cache_read.unwrap_or(p.input)),
                cache_write: Usd::from_dollars(p.cache_write.unwrap_or(p.input)),
                id,
            })
            .collect(),
    })
}

/// The compiled-in model price table.
pub fn builtin_models() -> ModelTable {
    parse_models(
        crate::DEFAULT_MODELS_TOML,
        Path::new("policies/models.toml"),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_policy_is_valid_and_complete() {
        let errs = parse_policy_file(
            crate::DEFAULT_POLICY_TOML,
            Path::new("policies/default.toml"),
            "builtin",
        )
        .err();
        assert_eq!(errs, None);
        let p = builtin_policy();
        for denied in [
            ".github/**",
            ".git/**",
            ".env",
            ".env.*",
            "*.pem",
            "*.key",
            "id_*",
            "**/secrets/**",
        ] {
            assert!(
                p.denied_paths.iter().any(|d| d == denied),
                "{denied} missing"
            );
        }
        assert_eq!(p.limits.max_changed_files, 20);
        assert_eq!(p.limits.max_file_bytes, 1024 * 1024);
        assert!(p.secret_patterns.len() >= 3);
        for s in &p.secret_patterns {
            assert!(
                regex::Regex::new(&s.regex).is_ok(),
                "{} does not compile",
                s.name
            );
        }
        let uv = p.allowlist.iter().find(|r| r.program == "uv").unwrap();
        assert_eq!(uv.subcommands, Some(vec![vec!["run".to_owned()]]));
    }

    #[test]
    fn embedded_models_are_valid() {
        let errs = parse_models(
            crate::DEFAULT_MODELS_TOML,
            Path::new("policies/models.toml"),
        )
        .err();
        assert_eq!(errs, None);
        let t = builtin_models();
        assert_eq!(
            t.lookup("gpt-5.1-codex").map(|m| m.id.as_str()),
            Some("gpt-5")
        );
        assert_eq!(
            t.lookup("claude-opus-4-5-20251101").map(|m| m.id.as_str()),
            Some("claude-opus-4-5")
        );
        assert_eq!(
            t.lookup("claude-opus-4-1").map(|m| m.id.as_str()),
            Some("claude-opus-4")
        );
        assert_eq!(
            t.lookup("openai/gpt-4.1").map(|m| m.id.as_str()),
            Some("gpt-4.1")
        );
        assert_eq!(t.lookup("unsloth/Qwen3.6-35B"), None);
    }

    #[test]
    fn repo_policy_extends_and_records_exceptions() {
        let mut p = builtin_policy();
        let repo: RepoName = "acme/api".parse().unwrap();
        p.repos.insert(
            repo.clone(),
            RepoPolicy {
                denied_paths: vec!["migrations/**".into()],
                allow_denied: vec![".github/workflows/ci.yml".into()],
                max_changed_files: Some(5),
                ..Default::default()
            },
        );
        let eff = p.for_repo(Some(&repo));
        assert!(eff.denied_paths.contains(&".github/**".to_owned()));
        assert!(eff.denied_paths.contains(&"migrations/**".to_owned()));
        assert_eq!(
            eff.allow_denied,
            vec![".github/workflows/ci.yml".to_owned()]
        );
        assert_eq!(eff.max_changed_files, 5);
        assert_eq!(eff.config_table, "[policy.repos.\"acme/api\"]");
        assert_eq!(p.for_repo(None).max_changed_files, 20);
    }
}
