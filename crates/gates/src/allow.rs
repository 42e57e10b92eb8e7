//! The gate allowlist, checked on the prepared argv: the program by name (looked up on `PATH`) or
//! by exact absolute path, then the rule's argv prefixes; for `uv run`, the command it runs too.

use std::fmt;

use issueloop_config::AllowRule;
use serde::Serialize;

use crate::prepare::{PreparedArgv, shell_join};

/// The allowlist's decision on one prepared argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateCheck {
    Allowed,
    Rejected {
        /// The prepared argv that was judged.
        argv: Vec<String>,
        reason: RejectReason,
    },
}

impl GateCheck {
    pub fn is_allowed(&self) -> bool {
        matches!(self, GateCheck::Allowed)
    }
}

/// Why the allowlist rejected an argv. `Display` says what to change and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RejectReason {
    /// No rule names this program.
    NotAllowlisted {
        program: String,
        policy_files: Vec<String>,
    },
    /// Rules name the program, but none allows these arguments.
    SubcommandNotAllowed {
        program: String,
        args: Vec<String>,
        /// The allowed prefixes, each as `program prefix…`.
        allowed: Vec<String>,
        policy_files: Vec<String>,
    },
    /// An absolute path that no rule names exactly.
    PathNotAllowlisted {
        program: String,
        name: String,
    },
    /// A relative path (`./pytest`, `.venv/bin/pytest`): a file inside the worktree, which the
    /// change under test controls. Never allowed.
    RelativePath {
        program: String,
    },
    /// An option that names a program or a package source, which no rule for the program
    /// allows (`uv run --python /tmp/x`, `cargo test --config …`).
    OptionNotAllowed {
        program: String,
        /// The option's spelling in a rule's `options` (`--python`).
        option: String,
        /// As written in the gate, with its value.
        written: String,
        /// What the option would let the gate do.
        why: String,
    },
    /// The command that `uv run` would run is rejected.
    UvRunPayload {
        inner: Box<RejectReason>,
    },
    EmptyArgv,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotAllowlisted {
                program,
                policy_files,
            } => write!(
                f,
                "program `{program}` is not in the gate allowlist ({}); to allow it, add \
                 `[[gates.allow]] program = \"{program}\"` to a policy file listed in \
                 `[policy] files`",
                in_force(policy_files)
            ),
            RejectReason::SubcommandNotAllowed {
                program,
                args,
                allowed,
                policy_files,
            } => {
                let shown: Vec<&String> = args.iter().take(2).collect();
                let attempted = std::iter::once(program)
                    .chain(shown)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                write!(
                    f,
                    "`{attempted}` is not allowed: the gate allowlist ({}) permits `{program}` only as {}; \
                     to allow it, add its arguments to `subcommands` of a `[[gates.allow]] program = \
                     \"{program}\"` rule in a policy file listed in `[policy] files`",
                    in_force(policy_files),
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            RejectReason::PathNotAllowlisted { program, name } => write!(
                f,
                "`{program}` is a path; the gate allowlist matches programs looked up on `PATH` \
                 (write `{name}`) or an exact absolute path (`[[gates.allow]] program = \"{program}\"`)"
            ),
            RejectReason::RelativePath { program } => write!(
                f,
                "`{program}` is a relative path, i.e. a file in the worktree under test; gates run \
                 programs found on `PATH` or at an absolute path"
            ),
            RejectReason::OptionNotAllowed {
                program,
                option,
                written,
                why,
            } => write!(
                f,
                "`{written}` is refused: it {why}, and a gate runs code the change under test \
                 controls; if this repository needs it, allow it with `options = [\"{option}\"]` \
                 in a `[[gates.allow]] program = \"{program}\"` rule of a policy file listed in \
                 `[policy] files`"
            ),
            RejectReason::UvRunPayload { inner } => {
                write!(f, "the command `uv run` would run is rejected: {inner}")
            }
            RejectReason::EmptyArgv => f.write_str("the argv is empty"),
        }
    }
}

fn in_force(policy_files: &[String]) -> String {
    if policy_files.is_empty() {
        "no rules in force".to_owned()
    } else {
        format!(
            "rules from {}",
            policy_files
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Check a prepared argv against the allowlist rules of the repository it runs in.
///
/// The program must be a bare name that a rule names (it is then looked up on the gate's
/// `PATH`), or an absolute path that a rule names exactly; a relative path never passes. A rule
/// with `subcommands` also needs the arguments to start with one of its prefixes. For a
/// `uv run` gate the command uv runs is checked the same way (`uv run -m X` as `python -m X`,
/// a `.py` file as `python FILE`). Options that name a program or a package source
/// (`uv run --python /tmp/x`, `--with`, `cargo --config`, `npm --script-shell`) are refused
/// unless a rule for the program lists them in `options`.
pub fn check(prepared: &PreparedArgv, rules: &[AllowRule]) -> GateCheck {
    let argv = prepared.argv();
    let refused_option = || {
        crate::guarded::refused_options(prepared, rules)
            .into_iter()
            .next()
            .map(|u| RejectReason::OptionNotAllowed {
                program: u.program,
                option: u.guard.option.to_owned(),
                written: u.written,
                why: u.guard.why.to_owned(),
            })
    };
    let reason = match check_words(argv, rules) {
        Err(reason) => Some(reason),
        Ok(()) => refused_option().or_else(|| {
            prepared.uv_payload().and_then(|payload| {
                let payload: Vec<String> = if prepared.uv_runs_module() {
                    ["python", "-m"]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .chain(payload.iter().cloned())
                        .collect()
                } else if prepared.uv_runs_script()
                    || payload
                        .first()
                        .is_some_and(|p| p.ends_with(".py") || p.ends_with(".pyw"))
                {
                    std::iter::once("python".to_owned())
                        .chain(payload.iter().cloned())
                        .collect()
                } else {
                    payload.to_vec()
                };
                check_words(&payload, rules)
                    .err()
                    .map(|inner| RejectReason::UvRunPayload {
                        inner: Box::new(inner),
                    })
            })
        }),
    };
    match reason {
        None => GateCheck::Allowed,
        Some(reason) => GateCheck::Rejected {
            argv: argv.to_vec(),
            reason,
        },
    }
}

fn check_words(argv: &[String], rules: &[AllowRule]) -> Result<(), RejectReason> {
    let Some((program, args)) = argv.split_first() else {
        return Err(RejectReason::EmptyArgv);
    };
    if program.contains('/') && !program.starts_with('/') {
        return Err(RejectReason::RelativePath {
            program: program.clone(),
        });
    }
    let matching: Vec<&AllowRule> = rules.iter().filter(|r| &r.program == program).collect();
    if matching.is_empty() {
        if program.starts_with('/') {
            let name = program.rsplit('/').next().unwrap_or(program);
            return Err(RejectReason::PathNotAllowlisted {
                program: program.clone(),
                name: name.to_owned(),
            });
        }
        return Err(RejectReason::NotAllowlisted {
            program: program.clone(),
            policy_files: sources(rules.iter()),
        });
    }
    let allowed = matching.iter().any(|r| match &r.subcommands {
        None => true,
        Some(prefixes) => prefixes
            .iter()
            .any(|prefix| args.len() >= prefix.len() && args[..prefix.len()] == prefix[..]),
    });
    if allowed {
        return Ok(());
    }
    Err(RejectReason::SubcommandNotAllowed {
        program: program.clone(),
        args: args.to_vec(),
        allowed: matching
            .iter()
            .flat_map(|r| r.subcommands.iter().flatten())
            .map(|prefix| {
                shell_join(
                    &std::iter::once(program.clone())
                        .chain(prefix.iter().cloned())
                        .collect::<Vec<_>>(),
                )
            })
            .collect(),
        policy_files: sources(matching.into_iter()),
    })
}

fn sources<'a>(rules: impl Iterator<Item = &'a AllowRule>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rules {
        if !out.contains(&r.source) {
            out.push(r.source.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::RepoFacts;
    use crate::prepare::prepare;

    fn default_rules() -> Vec<AllowRule> {
        issueloop_config::builtin_policy().allowlist
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn locked_group() -> RepoFacts {
        RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            ..RepoFacts::default()
        }
    }

    fn judge(s: &str, facts: &RepoFacts, rules: &[AllowRule]) -> GateCheck {
        check(&prepare(&words(s), facts).unwrap(), rules)
    }

    #[test]
    fn default_policy_allows_the_usual_gates() {
        for s in [
            "pytest -p no:cacheprovider",
            "ruff check .",
            "ruff format --check .",
            "mypy src",
            "python -m pytest",
            "python3 -m compileall -q a.py",
            "cargo test --locked",
            "npm test",
            "npm run test",
            "uv run -m pytest",
            "uv run --group dev python -m pytest",
        ] {
            for facts in [RepoFacts::default(), locked_group()] {
                assert_eq!(
                    judge(s, &facts, &default_rules()),
                    GateCheck::Allowed,
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn the_prepared_form_is_what_is_checked() {
        // `ruff check .` becomes `uv run … ruff check .`, which needs `uv` allowlisted.
        let only_ruff: Vec<AllowRule> = default_rules()
            .into_iter()
            .filter(|r| r.program == "ruff")
            .collect();
        assert_eq!(
            judge("ruff check .", &RepoFacts::default(), &only_ruff),
            GateCheck::Allowed
        );
        let GateCheck::Rejected { argv, reason } =
            judge("ruff check .", &locked_group(), &only_ruff)
        else {
            panic!("`uv` is not allowlisted");
        };
        assert_eq!(argv, words("uv run --locked --group dev ruff check ."));
        assert!(matches!(&reason, RejectReason::NotAllowlisted { program, .. } if program == "uv"));
        assert!(
            reason
                .to_string()
                .contains("`builtin:policies/default.toml`"),
            "{reason}"
        );
    }

    #[test]
    fn subcommands_constrain_arguments() {
        let GateCheck::Rejected { reason, .. } = judge(
            "uv pip install requests",
            &RepoFacts::default(),
            &default_rules(),
        ) else {
            panic!("uv pip must be rejected");
        };
        let msg = reason.to_string();
        assert!(msg.contains("`uv pip install` is not allowed"), "{msg}");
        assert!(msg.contains("only as `uv run`"), "{msg}");
        assert!(msg.contains("`[policy] files`"), "{msg}");
        for s in [
            "cargo publish",
            "python -c print(1)",
            "python script.py",
            "npm install",
            "ruff",
        ] {
            assert!(
                !judge(s, &RepoFacts::default(), &default_rules()).is_allowed(),
                "{s}"
            );
        }
    }

    #[test]
    fn the_command_uv_runs_is_checked_too() {
        for s in [
            "uv run curl http://example.com",
            "uv run bash -c true",
            "uv run tool.py",
            "uv run --script tool.py",
            "uv run -m http.server",
            "uv run ./pytest",
        ] {
            let GateCheck::Rejected { reason, .. } = judge(s, &locked_group(), &default_rules())
            else {
                panic!("`{s}` must be rejected");
            };
            assert!(matches!(reason, RejectReason::UvRunPayload { .. }), "{s}");
            assert!(
                reason
                    .to_string()
                    .starts_with("the command `uv run` would run")
            );
        }
    }

    #[test]
    fn paths_are_strict() {
        for s in ["./pytest", "bin/pytest", ".venv/bin/pytest", "../pytest"] {
            let GateCheck::Rejected { reason, .. } =
                judge(s, &RepoFacts::default(), &default_rules())
            else {
                panic!("`{s}` must be rejected");
            };
            assert!(matches!(reason, RejectReason::RelativePath { .. }), "{s}");
        }
        let GateCheck::Rejected { reason, .. } = judge(
            "/usr/bin/pytest -q",
            &RepoFacts::default(),
            &default_rules(),
        ) else {
            panic!("an absolute path no rule names must be rejected");
        };
        assert!(reason.to_string().contains("write `pytest`"), "{reason}");
        let exact = vec![AllowRule {
            program: "/opt/tools/pytest".into(),
            subcommands: None,
            options: Vec::new(),
            source: "policies/extra.toml".into(),
        }];
        assert!(judge("/opt/tools/pytest -q", &RepoFacts::default(), &exact).is_allowed());
        // A rule with a relative path cannot make a worktree file runnable.
        let relative = vec![AllowRule {
            program: "./pytest".into(),
            subcommands: None,
            options: Vec::new(),
            source: "policies/extra.toml".into(),
        }];
        assert!(!judge("./pytest", &RepoFacts::default(), &relative).is_allowed());
    }

    #[test]
    fn rules_from_several_files_combine() {
        let mut rules = default_rules();
        rules.push(AllowRule {
            program: "uv".into(),
            subcommands: Some(vec![vec!["sync".into()]]),
            options: Vec::new(),
            source: "policies/team.toml".into(),
        });
        assert!(judge("uv sync --locked", &RepoFacts::default(), &rules).is_allowed());
        let GateCheck::Rejected { reason, .. } =
            judge("uv pip list", &RepoFacts::default(), &rules)
        else {
            panic!("uv pip must be rejected");
        };
        let msg = reason.to_string();
        assert!(msg.contains("`uv run`, `uv sync`"), "{msg}");
        assert!(
            msg.contains("`builtin:policies/default.toml`, `policies/team.toml`"),
            "{msg}"
        );
    }

    #[test]
    fn empty_rules_reject_everything() {
        let GateCheck::Rejected { reason, .. } = judge("pytest", &RepoFacts::default(), &[]) else {
            panic!("no rules, nothing allowed");
        };
        assert!(reason.to_string().contains("no rules in force"));
    }
}
