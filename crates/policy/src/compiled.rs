//! The effective policy compiled once: glob sets for allowed, denied and excepted paths, secret
//! regexes, limits. Compilation errors quote the pattern and the key it came from.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use issueloop_config::EffectivePolicy;
use regex::Regex;

use crate::error::PolicyError;

/// A policy ready to judge changes. Build it once per repository with [`CompiledPolicy::new`].
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub(crate) allowed: GlobList,
    pub(crate) denied: GlobList,
    pub(crate) allow_denied: GlobList,
    pub(crate) allow_submodules: bool,
    pub(crate) max_changed_files: u32,
    pub(crate) max_file_bytes: u64,
    pub(crate) secrets: Vec<SecretRegex>,
    /// `[policy.repos."owner/name"]` or `[policy]`, for fix hints.
    pub(crate) config_table: String,
}

#[derive(Clone, Debug)]
pub(crate) struct SecretRegex {
    pub name: String,
    pub regex: Regex,
}

/// How the globs of one list match.
#[derive(Clone, Copy)]
enum Matching {
    /// Exact case (allowed paths, exceptions).
    CaseSensitive,
    /// Any case: `.GitHub/workflows` is as denied as `.github/workflows` (case-insensitive file
    /// systems make them the same directory).
    CaseInsensitive,
}

/// Globs with the pattern each came from. `*` and `?` do not cross `/`; `**` does.
#[derive(Clone, Debug)]
pub(crate) struct GlobList {
    patterns: Vec<String>,
    set: GlobSet,
    /// For each glob in `set`, the index of the pattern it came from.
    origin: Vec<usize>,
}

impl GlobList {
    fn compile(key: &str, patterns: &[String], matching: Matching) -> Result<Self, PolicyError> {
        let mut builder = GlobSetBuilder::new();
        let mut origin = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            builder.add(glob(key, pattern, pattern, matching)?);
            origin.push(i);
            // `dir/**` also covers `dir` itself, so a symlink, file or submodule named `dir`
            // cannot stand in for the denied directory.
            if let Some(stem) = pattern.strip_suffix("/**")
                && !stem.is_empty()
            {
                builder.add(glob(key, pattern, stem, matching)?);
                origin.push(i);
            }
        }
        let set = builder.build().map_err(|e| PolicyError::InvalidGlob {
            key: key.to_owned(),
            pattern: patterns.join("`, `"),
            reason: e.to_string(),
        })?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
            origin,
        })
    }

    /// The first pattern (in configuration order) that matches `path`.
    pub(crate) fn first_match(&self, path: &str) -> Option<&str> {
        self.set
            .matches(path)
            .into_iter()
            .map(|i| self.origin[i])
            .min()
            .map(|i| self.patterns[i].as_str())
    }

    pub(crate) fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

fn glob(key: &str, pattern: &str, text: &str, matching: Matching) -> Result<Glob, PolicyError> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .case_insensitive(matches!(matching, Matching::CaseInsensitive))
        .build()
        .map_err(|e| PolicyError::InvalidGlob {
            key: key.to_owned(),
            pattern: pattern.to_owned(),
            reason: e.kind().to_string(),
        })
}

impl CompiledPolicy {
    /// Compile the globs and secret patterns of `policy`. Errors name the key and quote the
    /// pattern that does not compile.
    pub fn new(policy: &EffectivePolicy) -> Result<Self, PolicyError> {
        let table = &policy.config_table;
        let secrets = policy
            .secret_patterns
            .iter()
            .map(|s| {
                Regex::new(&s.regex)
                    .map(|regex| SecretRegex {
                        name: s.name.clone(),
                        regex,
                    })
                    .map_err(|e| PolicyError::InvalidSecretPattern {
                        name: s.name.clone(),
                        pattern: s.regex.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            allowed: GlobList::compile(
                &format!("{table} allowed_paths"),
                &policy.allowed_paths,
                Matching::CaseSensitive,
            )?,
            denied: GlobList::compile(
                &format!("{table} denied_paths"),
                &policy.denied_paths,
                Matching::CaseInsensitive,
            )?,
            allow_denied: GlobList::compile(
                &format!("{table} allow_denied"),
                &policy.allow_denied,
                Matching::CaseSensitive,
            )?,
            allow_submodules: policy.allow_submodules,
            max_changed_files: policy.max_changed_files,
            max_file_bytes: policy.max_file_bytes,
            secrets,
            config_table: policy.config_table.clone(),
        })
    }

    /// The table a person edits to loosen this policy for one repository: the repository's own
    /// table, or a placeholder one when the policy is not tied to a configured repository.
    pub(crate) fn repo_table(&self) -> &str {
        if self.config_table.starts_with("[policy.repos.") {
            &self.config_table
        } else {
            "[policy.repos.\"owner/name\"]"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str], matching: Matching) -> GlobList {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        GlobList::compile("denied_paths", &patterns, matching).unwrap()
    }

    #[test]
    fn star_stays_in_its_directory_and_double_star_does_not() {
        let l = list(&["*.pem", "docs/**"], Matching::CaseSensitive);
        assert_eq!(l.first_match("key.pem"), Some("*.pem"));
        assert_eq!(l.first_match("certs/key.pem"), None);
        assert_eq!(l.first_match("docs/a/b.md"), Some("docs/**"));
        assert_eq!(l.first_match("docs"), Some("docs/**"), "dir/** covers dir");
        assert_eq!(l.first_match("docsx"), None);
    }

    #[test]
    fn case_insensitive_lists_match_any_case() {
        let l = list(&[".github/**"], Matching::CaseInsensitive);
        assert_eq!(l.first_match(".GitHub/workflows/x.yml"), Some(".github/**"));
        let l = list(&[".github/**"], Matching::CaseSensitive);
        assert_eq!(l.first_match(".GitHub/workflows/x.yml"), None);
    }

    #[test]
    fn first_match_is_in_configuration_order() {
        let l = list(&["**/*.key", "*.key"], Matching::CaseSensitive);
        assert_eq!(l.first_match("a.key"), Some("**/*.key"));
    }

    #[test]
    fn glob_errors_quote_the_pattern_and_key() {
        let err = GlobList::compile(
            "[policy] denied_paths",
            &["src/[".to_owned()],
            Matching::CaseSensitive,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`src/[`"), "{text}");
        assert!(text.contains("[policy] denied_paths"), "{text}");
    }

    #[test]
    fn secret_pattern_errors_name_the_pattern() {
        let mut p = issueloop_config::builtin_policy().for_repo(None);
        p.secret_patterns.push(issueloop_config::SecretPattern {
            name: "broken".into(),
            regex: "(unclosed".into(),
        });
        let text = CompiledPolicy::new(&p).unwrap_err().to_string();
        assert!(
            text.contains("`broken`") && text.contains("`(unclosed`"),
            "{text}"
        );
    }
}
