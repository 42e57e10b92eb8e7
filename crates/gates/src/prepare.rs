//! `prepare`: rewrite a gate's argv so that it runs against the repository's locked dev set,
//! from a typed parse of `uv run`'s option segment (the rules of DESIGN.md §4).

use std::fmt;
use std::path::Path;

use crate::error::GateError;
use crate::facts::{DevSelector, RepoFacts};
use crate::uv_options::{ParsedOption, Stop, normalize_name, parse_options};

/// A gate's argv after preparation: what the allowlist checks and what runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedArgv {
    argv: Vec<String>,
    uv_run: Option<UvRunShape>,
}

/// Where the payload of a prepared `uv run` argv starts and how uv runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UvRunShape {
    payload: usize,
    module: bool,
    script: bool,
}

impl PreparedArgv {
    /// An argv used as it is (no rewriting applies to it).
    fn unchanged(argv: &[String]) -> Self {
        Self {
            argv: argv.to_vec(),
            uv_run: None,
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub fn into_argv(self) -> Vec<String> {
        self.argv
    }

    /// The program, as written (`uv`, `pytest`, `/usr/bin/python3`).
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// For a `uv run` gate, the command uv runs and its arguments (after the options and `--`).
    pub fn uv_payload(&self) -> Option<&[String]> {
        self.uv_run.map(|s| &self.argv[s.payload..])
    }

    /// For a `uv run` gate, the option segment between `run` and the payload (`--` included).
    pub fn uv_options(&self) -> Option<&[String]> {
        self.uv_run.map(|s| &self.argv[2..s.payload])
    }

    /// `uv run -m …`: the payload names a Python module.
    pub fn uv_runs_module(&self) -> bool {
        self.uv_run.is_some_and(|s| s.module)
    }

    /// `uv run --script …`/`--gui-script …`: the payload names a script file.
    pub fn uv_runs_script(&self) -> bool {
        self.uv_run.is_some_and(|s| s.script)
    }
}

impl fmt::Display for PreparedArgv {
    /// The argv as one shell-escaped line, for logs and messages (gates never run through a shell).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_join(&self.argv))
    }
}

/// An argv as one shell-escaped line: what a person can paste into a shell to run the same thing.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .enumerate()
        .map(|(i, word)| quote_word(word, i == 0))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_word(word: &str, first: bool) -> String {
    // `=` needs no quotes inside an argument (`--group=dev`); only a first word like `A=b` would
    // read as an assignment, and a leading `=` is an expansion in zsh.
    let plain = |c: char| c.is_ascii_alphanumeric() || "+-./:@]_=".contains(c);
    if !first && !word.is_empty() && !word.starts_with('=') && word.chars().all(plain) {
        return word.to_owned();
    }
    match shlex::try_quote(word) {
        Ok(q) => q.into_owned(),
        // Only a NUL byte cannot be quoted for a shell; show it unambiguously instead.
        Err(_) => format!("{word:?}"),
    }
}

/// Bare Python tools that run through `uv run` in a repository with a locked dev set.
const PYTHON_GATE_PROGRAMS: &[&str] = &["pytest", "py.test", "ruff", "mypy", "python", "python3"];

/// Prepare `argv` for the repository described by `facts`:
///
/// - `uv run …` gets `--locked` unless `--locked` or `--frozen` stands in uv's option segment,
///   and the dev selector (`--group dev` or `--extra dev`) unless the dev set is already
///   selected; options written before `run` (`uv -q run …`) move after it.
/// - A bare `pytest`/`ruff`/`mypy`/`python`/`python3` in a repository whose dev set is locked
///   (`uv.lock`) becomes `uv run --locked <selector> …`.
/// - A gate that excludes the dev set fails closed with [`GateError::ExcludesDevSet`].
/// - Anything else is left as it is; the allowlist decides whether it may run.
///
/// Pure and idempotent: preparing a prepared argv returns it unchanged.
pub fn prepare(argv: &[String], facts: &RepoFacts) -> Result<PreparedArgv, GateError> {
    let Some(program) = argv.first() else {
        return Err(GateError::EmptyArgv);
    };
    if Path::new(program).file_name().and_then(|n| n.to_str()) == Some("uv") {
        return match UvRun::parse(argv)? {
            Some(run) => run.prepare(facts),
            None => Ok(PreparedArgv::unchanged(argv)),
        };
    }
    if PYTHON_GATE_PROGRAMS.contains(&program.as_str()) && facts.runs_python_through_uv() {
        let mut wrapped = Vec::with_capacity(argv.len() + 2);
        wrapped.push("uv".to_owned());
        wrapped.push("run".to_owned());
        wrapped.extend(argv.iter().cloned());
        return match UvRun::parse(&wrapped)? {
            Some(run) => run.prepare(facts),
            None => Ok(PreparedArgv::unchanged(argv)),
        };
    }
    Ok(PreparedArgv::unchanged(argv))
}

/// The `uv run` options that matter to preparation; everything else is [`UvArg::Other`].
/// Group and extra names are normalized the way uv normalizes them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum UvArg {
    Locked,
    Frozen,
    Group(String),
    NoGroup(String),
    OnlyGroup(String),
    AllGroups,
    NoDefaultGroups,
    Dev,
    NoDev,
    OnlyDev,
    Extra(String),
    NoExtra(String),
    AllExtras,
    Module,
    Script,
    NoProject,
    NoSync,
    Other,
}

impl UvArg {
    fn from_parsed(p: &ParsedOption) -> UvArg {
        let name = || normalize_name(p.value.as_deref().unwrap_or(""));
        match p.long {
            "locked" => UvArg::Locked,
            "frozen" => UvArg::Frozen,
            "group" => UvArg::Group(name()),
            "no-group" => UvArg::NoGroup(name()),
            "only-group" => UvArg::OnlyGroup(name()),
            "all-groups" => UvArg::AllGroups,
            "no-default-groups" => UvArg::NoDefaultGroups,
            "dev" => UvArg::Dev,
            "no-dev" => UvArg::NoDev,
            "only-dev" => UvArg::OnlyDev,
            "extra" => UvArg::Extra(name()),
            "no-extra" => UvArg::NoExtra(name()),
            "all-extras" => UvArg::AllExtras,
            "module" => UvArg::Module,
            "script" | "gui-script" => UvArg::Script,
            "no-project" => UvArg::NoProject,
            "no-sync" => UvArg::NoSync,
            _ => UvArg::Other,
        }
    }
}

/// A parsed `uv [options] run [options] [--] payload…` argv.
struct UvRun<'a> {
    argv: &'a [String],
    /// Index of the `run` token.
    run: usize,
    /// Index of the payload's first token.
    payload: usize,
    args: Vec<UvArg>,
}

impl<'a> UvRun<'a> {
    /// `Ok(None)` when the argv is `uv` with another subcommand (or none).
    fn parse(argv: &'a [String]) -> Result<Option<UvRun<'a>>, GateError> {
        let fail = |message: String| GateError::UvOption {
            argv: shell_join(argv),
            message,
        };
        let (before, stop) = parse_options(argv, 1).map_err(fail)?;
        let run = match stop {
            Stop::Positional(i) if argv[i] == "run" => i,
            _ => return Ok(None),
        };
        let (segment, stop) = parse_options(argv, run + 1).map_err(fail)?;
        let payload = match stop {
            Stop::Positional(i) => i,
            Stop::Separator(i) => i + 1,
            Stop::End => argv.len(),
        };
        if payload >= argv.len() {
            return Err(GateError::NoCommand {
                argv: shell_join(argv),
            });
        }
        let args = before
            .iter()
            .chain(&segment)
            .map(UvArg::from_parsed)
            .collect();
        Ok(Some(UvRun {
            argv,
            run,
            payload,
            args,
        }))
    }

    fn has(&self, pred: impl Fn(&UvArg) -> bool) -> bool {
        self.args.iter().any(pred)
    }

    fn prepare(&self, facts: &RepoFacts) -> Result<PreparedArgv, GateError> {
        let mut added: Vec<&str> = Vec::new();
        if !self.has(|a| matches!(a, UvArg::Locked | UvArg::Frozen)) {
            added.push("--locked");
        }
        // A script declares its own dependencies inline; the project's dev set does not apply.
        if !self.has(|a| *a == UvArg::Script)
            && let Some(selector) = facts.dev_selector()
        {
            self.dev_selector(facts, selector, &mut added)?;
        }
        Ok(self.render(&added))
    }

    fn excludes(&self, option: String, why: &str) -> GateError {
        GateError::ExcludesDevSet {
            argv: shell_join(self.argv),
            option,
            why: why.to_owned(),
        }
    }

    /// Fail closed on anything that excludes the dev set, else add its selector when missing.
    fn dev_selector(
        &self,
        facts: &RepoFacts,
        selector: DevSelector,
        added: &mut Vec<&str>,
    ) -> Result<(), GateError> {
        const STALE: &str =
            "so its result would depend on whatever an earlier sync left in `.venv`";
        for arg in &self.args {
            let excluded = match arg {
                UvArg::NoDev => {
                    Some(("--no-dev".to_owned(), "leaves out the dev dependency group"))
                }
                UvArg::NoGroup(g) if g == "dev" => Some((
                    "--no-group dev".to_owned(),
                    "leaves out the dev dependency group",
                )),
                UvArg::NoExtra(e) if e == "dev" => {
                    Some(("--no-extra dev".to_owned(), "leaves out the dev extra"))
                }
                UvArg::NoProject => Some((
                    "--no-project".to_owned(),
                    "runs without the project and so without its dev set",
                )),
                UvArg::NoSync => Some((
                    "--no-sync".to_owned(),
                    "does not sync the environment with the lock file",
                )),
                _ => None,
            };
            if let Some((option, what)) = excluded {
                return Err(self.excludes(option, &format!("{what}, {STALE}")));
            }
        }
        let group_selected = self.has(|a| match a {
            UvArg::Group(g) | UvArg::OnlyGroup(g) => g == "dev",
            UvArg::AllGroups | UvArg::OnlyDev | UvArg::Dev => true,
            _ => false,
        });
        if facts.dev_group
            && facts.dev_is_default_group()
            && !group_selected
            && self.has(|a| *a == UvArg::NoDefaultGroups)
        {
            return Err(self.excludes(
                "--no-default-groups".to_owned(),
                &format!(
                    "drops the default groups, `dev` among them, and does not add `dev` back, {STALE}"
                ),
            ));
        }
        let only = self.args.iter().find_map(|a| match a {
            UvArg::OnlyGroup(g) => Some(format!("--only-group {g}")),
            UvArg::OnlyDev => Some("--only-dev".to_owned()),
            _ => None,
        });
        match selector {
            DevSelector::Group if group_selected => {}
            // `--group` next to `--only-group` is an error in uv; another `--only-group` is not.
            DevSelector::Group if only.is_some() => added.extend(["--only-group", "dev"]),
            DevSelector::Group => added.extend(["--group", "dev"]),
            DevSelector::Extra => {
                if let Some(only) = only {
                    return Err(self.excludes(
                        only,
                        "installs only dependency groups, without the project and its `dev` extra",
                    ));
                }
                if !self
                    .has(|a| matches!(a, UvArg::Extra(e) if e == "dev") || *a == UvArg::AllExtras)
                {
                    added.extend(["--extra", "dev"]);
                }
            }
        }
        Ok(())
    }

    /// `uv run <added> <options written before run> <options> [--] <payload>`.
    fn render(&self, added: &[&str]) -> PreparedArgv {
        let argv = self.argv;
        let mut out = Vec::with_capacity(argv.len() + added.len());
        out.push(argv[0].clone());
        out.push("run".to_owned());
        out.extend(added.iter().map(|s| (*s).to_owned()));
        out.extend(argv[1..self.run].iter().cloned());
        out.extend(argv[self.run + 1..self.payload].iter().cloned());
        let payload = out.len();
        out.extend(argv[self.payload..].iter().cloned());
        PreparedArgv {
            argv: out,
            uv_run: Some(UvRunShape {
                payload,
                module: self.has(|a| *a == UvArg::Module),
                script: self.has(|a| *a == UvArg::Script),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::DefaultGroups;

    fn group() -> RepoFacts {
        RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            ..RepoFacts::default()
        }
    }

    fn extra() -> RepoFacts {
        RepoFacts {
            pyproject: true,
            dev_extra: true,
            uv_lock: true,
            ..RepoFacts::default()
        }
    }

    fn no_dev() -> RepoFacts {
        RepoFacts {
            pyproject: true,
            uv_lock: true,
            ..RepoFacts::default()
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn prep(s: &str, facts: &RepoFacts) -> Result<String, GateError> {
        let p = prepare(&words(s), facts)?;
        let again = prepare(p.argv(), facts).expect("a prepared argv prepares again");
        assert_eq!(again, p, "not idempotent for `{s}`");
        Ok(p.to_string())
    }

    fn ok(s: &str, facts: &RepoFacts) -> String {
        prep(s, facts).unwrap_or_else(|e| panic!("`{s}`: {e}"))
    }

    fn err(s: &str, facts: &RepoFacts) -> GateError {
        match prep(s, facts) {
            Ok(p) => panic!("`{s}` prepared to `{p}` but should fail closed"),
            Err(e) => e,
        }
    }

    #[test]
    fn bare_python_gates_run_through_uv_with_the_dev_set() {
        let table = [
            ("pytest", "uv run --locked --group dev pytest"),
            (
                "pytest -q tests",
                "uv run --locked --group dev pytest -q tests",
            ),
            ("ruff check .", "uv run --locked --group dev ruff check ."),
            ("mypy src", "uv run --locked --group dev mypy src"),
            (
                "python -m pytest",
                "uv run --locked --group dev python -m pytest",
            ),
            (
                "python3 -m compileall -q a.py",
                "uv run --locked --group dev python3 -m compileall -q a.py",
            ),
            // The gate's own `--locked` is the payload's business, not uv's.
            (
                "pytest --locked",
                "uv run --locked --group dev pytest --locked",
            ),
        ];
        for (input, want) in table {
            assert_eq!(ok(input, &group()), want, "{input}");
        }
        assert_eq!(ok("pytest", &extra()), "uv run --locked --extra dev pytest");
    }

    #[test]
    fn bare_gates_are_left_alone_without_a_locked_dev_set() {
        for s in ["pytest", "ruff check .", "python -m pytest"] {
            assert_eq!(ok(s, &no_dev()), s);
            let unlocked = RepoFacts {
                uv_lock: false,
                ..group()
            };
            assert_eq!(ok(s, &unlocked), s, "no uv.lock");
        }
        // Not a Python tool, or a path: never wrapped.
        for s in ["cargo test", "npm test", "./pytest", "/usr/bin/pytest -q"] {
            assert_eq!(ok(s, &group()), s);
        }
    }

    #[test]
    fn uv_run_always_gets_the_lock_guard_in_its_option_segment() {
        let table = [
            ("uv run pytest", "uv run --locked pytest"),
            ("uv run --locked pytest", "uv run --locked pytest"),
            ("uv run --frozen pytest", "uv run --frozen pytest"),
            ("uv run -- pytest", "uv run --locked -- pytest"),
            // `--locked` after the payload command belongs to the payload.
            ("uv run pytest --locked", "uv run --locked pytest --locked"),
            (
                "uv run -- pytest --frozen",
                "uv run --locked -- pytest --frozen",
            ),
            (
                "uv run python -m mytool --frozen",
                "uv run --locked python -m mytool --frozen",
            ),
            // With no dev set, dev exclusions are nobody's business.
            ("uv run --no-dev pytest", "uv run --locked --no-dev pytest"),
        ];
        for (input, want) in table {
            assert_eq!(ok(input, &no_dev()), want, "{input}");
        }
    }

    #[test]
    fn value_options_in_every_spelling_keep_the_payload_in_place() {
        let table = [
            (
                "uv run --package api pytest",
                "uv run --locked --group dev --package api pytest",
            ),
            (
                "uv run --package=api pytest",
                "uv run --locked --group dev --package=api pytest",
            ),
            (
                "uv run -p 3.12 pytest",
                "uv run --locked --group dev -p 3.12 pytest",
            ),
            (
                "uv run -p3.12 pytest",
                "uv run --locked --group dev -p3.12 pytest",
            ),
            (
                "uv run -p=3.12 pytest",
                "uv run --locked --group dev -p=3.12 pytest",
            ),
            (
                "uv run --python 3.12 pytest",
                "uv run --locked --group dev --python 3.12 pytest",
            ),
            (
                "uv run --with rich pytest",
                "uv run --locked --group dev --with rich pytest",
            ),
            (
                "uv run -w rich pytest",
                "uv run --locked --group dev -w rich pytest",
            ),
            (
                "uv run -qw rich pytest",
                "uv run --locked --group dev -qw rich pytest",
            ),
            (
                "uv run --env-file .env.test pytest",
                "uv run --locked --group dev --env-file .env.test pytest",
            ),
            (
                "uv run --directory sub pytest",
                "uv run --locked --group dev --directory sub pytest",
            ),
            (
                "uv run --extra docs pytest",
                "uv run --locked --group dev --extra docs pytest",
            ),
            (
                "uv run -C key=val pytest",
                "uv run --locked --group dev -C key=val pytest",
            ),
            // Flags take nothing: the next token is the payload.
            (
                "uv run --managed-python pytest",
                "uv run --locked --group dev --managed-python pytest",
            ),
            (
                "uv run --isolated pytest",
                "uv run --locked --group dev --isolated pytest",
            ),
            (
                "uv run -q -v pytest",
                "uv run --locked --group dev -q -v pytest",
            ),
            (
                "uv run -m pytest -x",
                "uv run --locked --group dev -m pytest -x",
            ),
            (
                "uv run --all-packages pytest",
                "uv run --locked --group dev --all-packages pytest",
            ),
        ];
        for (input, want) in table {
            assert_eq!(ok(input, &group()), want, "{input}");
        }
        let p = prepare(&words("uv run -m pytest -x"), &group()).unwrap();
        assert!(p.uv_runs_module());
        assert_eq!(p.uv_payload().unwrap(), &words("pytest -x")[..]);
    }

    #[test]
    fn options_before_run_move_after_it() {
        assert_eq!(
            ok("uv -q --directory sub run pytest", &group()),
            "uv run --locked --group dev -q --directory sub pytest"
        );
        assert_eq!(
            ok("uv --offline run --frozen pytest", &no_dev()),
            "uv run --offline --frozen pytest"
        );
        // Another subcommand, or none: left alone for the allowlist to judge.
        for s in [
            "uv pip install x",
            "uv --version",
            "uv sync --locked",
            "uv tool run ruff",
        ] {
            assert_eq!(ok(s, &group()), s);
        }
    }

    #[test]
    fn dev_group_already_selected_counts() {
        for s in [
            "uv run --group dev pytest",
            "uv run --group=dev pytest",
            "uv run --group Dev pytest",
            "uv run --all-groups pytest",
            "uv run --only-group dev pytest",
            "uv run --only-group=dev pytest",
            "uv run --only-dev pytest",
            "uv run --dev pytest",
        ] {
            let want = s.replacen("uv run", "uv run --locked", 1);
            assert_eq!(ok(s, &group()), want, "{s}");
        }
    }

    #[test]
    fn non_dev_selectors_do_not_count() {
        assert_eq!(
            ok("uv run --group docs pytest", &group()),
            "uv run --locked --group dev --group docs pytest"
        );
        assert_eq!(
            ok("uv run --extra docs pytest", &extra()),
            "uv run --locked --extra dev --extra docs pytest"
        );
        // A dev *extra* does not select the dev *group*.
        assert_eq!(
            ok("uv run --extra dev pytest", &group()),
            "uv run --locked --group dev --extra dev pytest"
        );
        assert_eq!(
            ok("uv run --group dev pytest", &extra()),
            "uv run --locked --extra dev --group dev pytest"
        );
    }

    #[test]
    fn only_group_gets_another_only_group_never_a_group() {
        assert_eq!(
            ok("uv run --only-group docs sphinx-build", &group()),
            "uv run --locked --only-group dev --only-group docs sphinx-build"
        );
        assert_eq!(
            ok("uv run --only-group=lint ruff check", &group()),
            "uv run --locked --only-group dev --only-group=lint ruff check"
        );
    }

    #[test]
    fn dev_extra_already_selected_counts() {
        for s in [
            "uv run --extra dev pytest",
            "uv run --extra=dev pytest",
            "uv run --all-extras pytest",
        ] {
            let want = s.replacen("uv run", "uv run --locked", 1);
            assert_eq!(ok(s, &extra()), want, "{s}");
        }
    }

    #[test]
    fn excluding_the_dev_set_fails_closed() {
        let table = [
            ("uv run --no-dev pytest", "--no-dev"),
            ("uv run --no-group dev pytest", "--no-group dev"),
            ("uv run --no-group=dev pytest", "--no-group dev"),
            (
                "uv run --all-groups --no-group dev pytest",
                "--no-group dev",
            ),
            ("uv run --no-extra dev pytest", "--no-extra dev"),
            ("uv run --no-default-groups pytest", "--no-default-groups"),
            ("uv run --no-project pytest", "--no-project"),
            ("uv run --no-sync pytest", "--no-sync"),
            ("uv -q run --no-dev pytest", "--no-dev"),
        ];
        for (input, option) in table {
            let e = err(input, &group());
            assert_eq!(e.kind(), "excludes_dev_set", "{input}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("remove `{option}`")),
                "{input}: {msg}"
            );
            assert!(msg.contains(&format!("`{input}`")), "{input}: {msg}");
        }
        for input in [
            "uv run --no-dev pytest",
            "uv run --all-extras --no-extra dev pytest",
        ] {
            assert_eq!(err(input, &extra()).kind(), "excludes_dev_set", "{input}");
        }
        // The dev extra cannot be added next to `--only-*`.
        for input in [
            "uv run --only-group docs pytest",
            "uv run --only-dev pytest",
        ] {
            let msg = err(input, &extra()).to_string();
            assert!(msg.contains("`dev` extra"), "{msg}");
        }
    }

    #[test]
    fn no_default_groups_is_fine_when_dev_is_re_added_or_not_a_default() {
        for s in [
            "uv run --no-default-groups --group dev pytest",
            "uv run --no-default-groups --all-groups pytest",
            "uv run --no-default-groups --only-group dev pytest",
        ] {
            let want = s.replacen("uv run", "uv run --locked", 1);
            assert_eq!(ok(s, &group()), want);
        }
        let not_default = RepoFacts {
            default_groups: DefaultGroups::List(vec!["lint".into()]),
            ..group()
        };
        assert_eq!(
            ok("uv run --no-default-groups pytest", &not_default),
            "uv run --locked --group dev --no-default-groups pytest"
        );
        // A dev extra is not a default group.
        assert_eq!(
            ok("uv run --no-default-groups pytest", &extra()),
            "uv run --locked --extra dev --no-default-groups pytest"
        );
    }

    #[test]
    fn scripts_get_the_lock_guard_but_no_dev_selector() {
        assert_eq!(
            ok("uv run --script tool.py", &group()),
            "uv run --locked --script tool.py"
        );
        assert_eq!(
            ok("uv run -s tool.py", &group()),
            "uv run --locked -s tool.py"
        );
    }

    #[test]
    fn unparseable_uv_options_fail_closed() {
        for (s, kind) in [
            ("uv run --bogus pytest", "uv_option"),
            ("uv run --locked=yes pytest", "uv_option"),
            ("uv run --group", "uv_option"),
            ("uv run -p", "uv_option"),
            ("uv run --group --locked pytest", "uv_option"),
            ("uv run", "no_command"),
            ("uv run --locked", "no_command"),
            ("uv run --locked --", "no_command"),
        ] {
            assert_eq!(err(s, &group()).kind(), kind, "{s}");
        }
        assert_eq!(prepare(&[], &group()).unwrap_err().kind(), "empty_argv");
    }

    #[test]
    fn display_is_shell_escaped() {
        let argv = vec![
            "pytest".to_owned(),
            "-k".to_owned(),
            "not slow".to_owned(),
            "it's".to_owned(),
        ];
        let p = prepare(&argv, &group()).unwrap();
        assert_eq!(
            p.to_string(),
            r#"uv run --locked --group dev pytest -k 'not slow' "it's""#
        );
        assert_eq!(shlex::split(&p.to_string()).unwrap(), p.argv());
        assert_eq!(shell_join(&["a\0b".to_owned()]), "\"a\\0b\"");
        let w = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            shell_join(&w(&["uv", "run", "--group=dev", "=x", "a b"])),
            "uv run --group=dev '=x' 'a b'"
        );
        assert_eq!(shell_join(&w(&["A=b", "c"])), "'A=b' c");
    }
}
