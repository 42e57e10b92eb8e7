//! Gate options that name a program or a package source (`uv run --with`, `cargo --config`,
//! `npm --script-shell`, …): refused in a gate unless a `[[gates.allow]]` rule of a policy file
//! lists them in `options`. The table lives here so that the policy files can be validated
//! against it; `issueloop-gates` applies it.

use std::path::Path;

use crate::error::ConfigError;
use crate::path::{KeyPath, line_col};
use crate::policy::AllowRule;
use crate::suggest::did_you_mean;

/// One option a gate may not use unless allowed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardedOption {
    /// The program whose option it is (`uv`, `cargo`, `npm`).
    pub program: &'static str,
    /// The option's long spelling, as written in `options = […]` (`--with`, `-Z` for cargo).
    pub option: &'static str,
    /// What it would let a gate do, completing "it …".
    pub why: &'static str,
}

const fn guard(program: &'static str, option: &'static str, why: &'static str) -> GuardedOption {
    GuardedOption {
        program,
        option,
        why,
    }
}

const RUNS: &str = "names a program the gate would run";
const INSTALLS: &str = "installs packages the lock file does not pin";
const SOURCE: &str = "names a package source the lock file does not pin";
const ELSEWHERE: &str = "runs the project of another directory than the worktree";
const CONFIG: &str = "reads settings (indexes, wrappers, shells) from a file of its choosing";

/// Every option a gate may not use unless a policy file allows it.
pub const GUARDED_GATE_OPTIONS: &[GuardedOption] = &[
    // `uv run` (`-p`/`--python` only with a path or a program name; a version stays fine).
    guard(
        "uv",
        "--python",
        "names the interpreter uv runs (a path or a program name)",
    ),
    guard("uv", "--with", INSTALLS),
    guard("uv", "--with-editable", INSTALLS),
    guard("uv", "--with-requirements", INSTALLS),
    guard("uv", "--index", SOURCE),
    guard("uv", "--index-url", SOURCE),
    guard("uv", "--default-index", SOURCE),
    guard("uv", "--extra-index-url", SOURCE),
    guard("uv", "--find-links", SOURCE),
    guard("uv", "--keyring-provider", RUNS),
    guard(
        "uv",
        "--allow-insecure-host",
        "accepts a package source without TLS verification",
    ),
    guard(
        "uv",
        "--cache-dir",
        "installs from a cache of its choosing, which may hold any package",
    ),
    guard(
        "uv",
        "--env-file",
        "sets environment variables from a file of its choosing",
    ),
    guard("uv", "--directory", ELSEWHERE),
    guard("uv", "--project", ELSEWHERE),
    guard("uv", "--config-file", CONFIG),
    // cargo
    guard(
        "cargo",
        "--config",
        "overrides Cargo settings, such as `build.rustc-wrapper`, a runner or a registry",
    ),
    guard(
        "cargo",
        "-Z",
        "enables unstable Cargo features, some of which read settings from elsewhere",
    ),
    // npm
    guard("npm", "--script-shell", RUNS),
    guard(
        "npm",
        "--node-options",
        "makes node load code of its choosing",
    ),
    guard("npm", "--prefix", ELSEWHERE),
    guard("npm", "--userconfig", CONFIG),
    guard("npm", "--globalconfig", CONFIG),
    guard("npm", "--registry", SOURCE),
];

/// The guarded option `option` of `program`, if it is one.
pub fn guarded_option(program: &str, option: &str) -> Option<&'static GuardedOption> {
    GUARDED_GATE_OPTIONS
        .iter()
        .find(|g| g.program == program && g.option == option)
}

/// Check the `options` of each rule of a policy file against the table: every entry must be a
/// guarded option of the rule's program. Errors name the key and the valid spellings.
pub(crate) fn validate_rule_options(
    rules: &[AllowRule],
    file: &Path,
    text: &str,
    doc: Option<&toml_edit::Document<String>>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        for (j, option) in rule.options.iter().enumerate() {
            if guarded_option(&rule.program, option).is_some() {
                continue;
            }
            let key = KeyPath::root()
                .key("gates")
                .key("allow")
                .index(i)
                .key("options")
                .index(j);
            let (line, column) = doc
                .and_then(|d| key.span_in(d))
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            let valid: Vec<&str> = GUARDED_GATE_OPTIONS
                .iter()
                .filter(|g| g.program == rule.program)
                .map(|g| g.option)
                .collect();
            let message = if valid.is_empty() {
                format!(
                    "`{option}`: issueloop refuses no option of `{}`, so there is nothing to allow",
                    rule.program
                )
            } else {
                format!(
                    "`{option}` is not an option issueloop refuses for `{}`{}",
                    rule.program,
                    did_you_mean(option, valid.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default()
                )
            };
            errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_string(),
                line,
                column,
                message,
                hint: (!valid.is_empty()).then(|| {
                    format!(
                        "options that can be allowed for `{}`: {}",
                        rule.program,
                        valid
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy_file;

    fn parse(text: &str) -> Result<Vec<AllowRule>, Vec<ConfigError>> {
        parse_policy_file(text, Path::new("policies/team.toml"), "policies/team.toml")
            .map(|f| f.allowlist)
    }

    #[test]
    fn allowed_options_are_checked_against_the_table() {
        let rules = parse(
            "[[gates.allow]]\nprogram = \"uv\"\nsubcommands = [\"run\"]\noptions = [\"--with\", \"--python\"]\n",
        )
        .unwrap();
        assert_eq!(rules[0].options, ["--with", "--python"]);

        let errors = parse(
            "[[gates.allow]]\nprogram = \"uv\"\noptions = [\"--with\", \"--wiht\"]\n\n[[gates.allow]]\nprogram = \"pytest\"\noptions = [\"-p\"]\n",
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{text:#?}");
        assert_eq!(errors[0].key, "gates.allow[0].options[1]");
        assert_eq!(errors[0].line, Some(3));
        assert!(text[0].contains("did you mean `--with`"), "{}", text[0]);
        assert!(
            text[0].contains("`--index-url`"),
            "the hint lists them: {}",
            text[0]
        );
        assert_eq!(errors[1].key, "gates.allow[1].options[0]");
        assert!(
            text[1].contains("refuses no option of `pytest`"),
            "{}",
            text[1]
        );
    }

    #[test]
    fn every_guarded_option_is_spelled_as_its_program_takes_it() {
        for g in GUARDED_GATE_OPTIONS {
            assert!(["uv", "cargo", "npm"].contains(&g.program), "{g:?}");
            assert!(g.option.starts_with('-'), "{g:?}");
            assert!(!g.why.is_empty());
        }
    }
}
