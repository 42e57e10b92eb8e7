//! Gate options that name a program or a package source (`uv run --python /tmp/x`,
//! `uv run --with pkg`, `cargo test --config build.rustc-wrapper=…`, `npm test --script-shell=…`):
//! found in a prepared argv by a pure function, refused unless a `[[gates.allow]]` rule for the
//! program lists the option in `options`.

use issueloop_config::{AllowRule, GuardedOption, guarded_option};

use crate::prepare::PreparedArgv;
use crate::uv_options::parse_options;

/// One use of a guarded option in an argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GuardedUse {
    /// The program as the allowlist rules name it (`uv`, `/usr/bin/cargo`).
    pub program: String,
    pub guard: &'static GuardedOption,
    /// The option as written, with its value (`--python /tmp/x`, `--config=build.x=y`).
    pub written: String,
}

/// The guarded options `prepared` uses that no rule for its program allows, in argv order.
pub(crate) fn refused_options(prepared: &PreparedArgv, rules: &[AllowRule]) -> Vec<GuardedUse> {
    guarded_uses(prepared)
        .into_iter()
        .filter(|u| {
            !rules
                .iter()
                .any(|r| r.program == u.program && r.options.iter().any(|o| o == u.guard.option))
        })
        .collect()
}

/// Every use of a guarded option in `prepared`. For `uv run`, the option segment as uv parses
/// it (the payload's own arguments are not uv's); for other programs, every word before `--`.
pub(crate) fn guarded_uses(prepared: &PreparedArgv) -> Vec<GuardedUse> {
    let argv = prepared.argv();
    let Some(program) = argv.first() else {
        return Vec::new();
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    let found: Vec<(&'static str, String)> = match name {
        "uv" => match prepared.uv_options() {
            Some(segment) => uv_run_uses(segment),
            None => uv_other_uses(&argv[1..]),
        },
        "cargo" => cargo_uses(&argv[1..]),
        "npm" => npm_uses(&argv[1..]),
        _ => Vec::new(),
    };
    found
        .into_iter()
        .filter_map(|(option, written)| {
            guarded_option(name, option).map(|guard| GuardedUse {
                program: program.clone(),
                guard,
                written,
            })
        })
        .collect()
}

fn uv_run_uses(segment: &[String]) -> Vec<(&'static str, String)> {
    // A segment that does not parse was refused by preparation already.
    let Ok((options, _)) = parse_options(segment, 0) else {
        return Vec::new();
    };
    options
        .into_iter()
        .filter_map(|o| uv_use(o.long, o.value))
        .collect()
}

/// `uv` with another subcommand than `run` (allowed by a policy file, e.g. `uv sync`): its long
/// options and the short spellings of guarded ones, until `--`.
fn uv_other_uses(args: &[String]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut words = args.iter().take_while(|w| *w != "--").peekable();
    while let Some(word) = words.next() {
        let (long, inline) = if let Some(long) = word.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            }
        } else if let Some(short) = word.strip_prefix('-') {
            let Some(c) = short.chars().next() else {
                continue;
            };
            let long = match c {
                'p' => "python",
                'i' => "index-url",
                'f' => "find-links",
                'w' => "with",
                _ => continue,
            };
            let rest = &short[c.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            (long.to_owned(), (!rest.is_empty()).then(|| rest.to_owned()))
        } else {
            continue;
        };
        let Some(guard) = guarded_option("uv", &format!("--{long}")) else {
            continue;
        };
        let value = inline.or_else(|| words.next().cloned());
        if let Some(found) = uv_use(guard.option.trim_start_matches("--"), value) {
            out.push(found);
        }
    }
    out
}

/// A guarded uv option as written; `--python` only when its value is not a version request.
fn uv_use(long: &str, value: Option<String>) -> Option<(&'static str, String)> {
    let guard = guarded_option("uv", &format!("--{long}"))?;
    let value = value.unwrap_or_default();
    if guard.option == "--python" && is_version_request(&value) {
        return None;
    }
    Some((guard.option, format!("{} {value}", guard.option)))
}

/// Whether a `--python` value asks for a Python version rather than naming a program: `3.12`,
/// `3.13t`, `>=3.11,<3.13`, `cpython@3.12`, `pypy3.10`, `cp312`, `python3.12`. Paths and any
/// other name (which uv would look up and run) are not. Pure.
pub(crate) fn is_version_request(value: &str) -> bool {
    fn version(s: &str) -> bool {
        let s = s.strip_suffix('t').unwrap_or(s);
        s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_digit() || c == '.')
            && !s.contains("..")
    }
    let v = value.trim();
    if version(v) {
        return true;
    }
    if v.starts_with(['<', '>', '=', '!', '~']) {
        return v.chars().any(|c| c.is_ascii_digit())
            && v.chars()
                .all(|c| c.is_ascii_digit() || ".,<>=!~* ".contains(c));
    }
    let lower = v.to_ascii_lowercase();
    for implementation in [
        "cpython", "graalpy", "python", "pypy", "any", "cp", "pp", "gp",
    ] {
        if let Some(rest) = lower.strip_prefix(implementation) {
            let rest = rest.strip_prefix('@').unwrap_or(rest);
            return rest.is_empty() || version(rest);
        }
    }
    false
}

/// cargo's `--config` and `-Z` (global options, accepted anywhere before `--`).
fn cargo_uses(args: &[String]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut words = args.iter().take_while(|w| *w != "--").peekable();
    while let Some(word) = words.next() {
        if word == "--config" || word == "-Z" {
            let value = words.next().cloned().unwrap_or_default();
            let option = if word == "-Z" { "-Z" } else { "--config" };
            out.push((option, format!("{word} {value}")));
        } else if word.starts_with("--config=") {
            out.push(("--config", word.clone()));
        } else if word.starts_with("-Z") {
            out.push(("-Z", word.clone()));
        }
    }
    out
}

/// npm's configuration flags before `--`, the way npm reads them: `--name value`,
/// `--name=value`, `_` and `-` alike, `-C` for `--prefix`, and any `…:registry` for a scope.
fn npm_uses(args: &[String]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for word in args.iter().take_while(|w| *w != "--") {
        let name = if word == "-C" || word.starts_with("-C=") {
            "prefix".to_owned()
        } else if let Some(long) = word.strip_prefix("--") {
            let name = long.split_once('=').map_or(long, |(n, _)| n);
            name.to_ascii_lowercase().replace('_', "-")
        } else {
            continue;
        };
        let name = if name.ends_with(":registry") {
            "registry"
        } else {
            name.as_str()
        };
        if let Some(guard) = guarded_option("npm", &format!("--{name}")) {
            out.push((guard.option, word.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::RepoFacts;
    use crate::prepare::prepare;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn options_of(s: &str) -> Vec<String> {
        let prepared = prepare(&words(s), &RepoFacts::default()).unwrap();
        guarded_uses(&prepared)
            .into_iter()
            .map(|u| u.written)
            .collect()
    }

    #[test]
    fn guarded_options_table() {
        let cases: &[(&str, &[&str])] = &[
            // uv run: a version is fine, a path or a program name is not.
            ("uv run --python 3.12 pytest", &[]),
            ("uv run -p 3.12 pytest", &[]),
            ("uv run -p3.13t pytest", &[]),
            ("uv run --python=cpython@3.12 pytest", &[]),
            ("uv run --python >=3.11,<3.13 pytest", &[]),
            ("uv run -p pypy3.10 pytest", &[]),
            ("uv run -p python3.12 pytest", &[]),
            ("uv run --python /tmp/x pytest", &["--python /tmp/x"]),
            ("uv run -p/tmp/x pytest", &["--python /tmp/x"]),
            (
                "uv run -p=./venv/bin/python pytest",
                &["--python ./venv/bin/python"],
            ),
            ("uv run -p evil pytest", &["--python evil"]),
            ("uv run -qp/tmp/x pytest", &["--python /tmp/x"]),
            ("uv -p /tmp/x run pytest", &["--python /tmp/x"]),
            ("uv run --with rich pytest", &["--with rich"]),
            ("uv run -w rich pytest", &["--with rich"]),
            (
                "uv run --with-editable ../lib pytest",
                &["--with-editable ../lib"],
            ),
            (
                "uv run --with-requirements r.txt pytest",
                &["--with-requirements r.txt"],
            ),
            (
                "uv run --index x=https://e.test pytest",
                &["--index x=https://e.test"],
            ),
            (
                "uv run -i https://e.test pytest",
                &["--index-url https://e.test"],
            ),
            (
                "uv run --default-index https://e.test pytest",
                &["--default-index https://e.test"],
            ),
            (
                "uv run --extra-index-url https://e.test pytest",
                &["--extra-index-url https://e.test"],
            ),
            ("uv run -f ./wheels pytest", &["--find-links ./wheels"]),
            ("uv run --env-file .env pytest", &["--env-file .env"]),
            (
                "uv run --directory /elsewhere pytest",
                &["--directory /elsewhere"],
            ),
            (
                "uv run --project /elsewhere pytest",
                &["--project /elsewhere"],
            ),
            (
                "uv run --config-file uv.toml pytest",
                &["--config-file uv.toml"],
            ),
            (
                "uv run --keyring-provider subprocess pytest",
                &["--keyring-provider subprocess"],
            ),
            ("uv run --cache-dir /tmp/c pytest", &["--cache-dir /tmp/c"]),
            (
                "uv run --python /tmp/x --with rich pytest",
                &["--python /tmp/x", "--with rich"],
            ),
            // The payload's own arguments are not uv's.
            ("uv run pytest --with rich -p /tmp/x", &[]),
            ("uv run -- pytest --python /tmp/x", &[]),
            ("uv run --group dev --locked pytest", &[]),
            // uv with another subcommand.
            (
                "uv sync --index-url https://e.test",
                &["--index-url https://e.test"],
            ),
            ("uv sync -p/tmp/x", &["--python /tmp/x"]),
            ("uv sync -p 3.12", &[]),
            // cargo
            (
                "cargo test --config build.rustc-wrapper=/tmp/x",
                &["--config build.rustc-wrapper=/tmp/x"],
            ),
            ("cargo --config=x.toml test", &["--config=x.toml"]),
            ("cargo test -Zunstable-options", &["-Zunstable-options"]),
            ("cargo test -Z config-include", &["-Z config-include"]),
            ("cargo test --locked -- --config x", &[]),
            ("cargo test --locked", &[]),
            // npm
            ("npm test --script-shell=/tmp/x", &["--script-shell=/tmp/x"]),
            ("npm test --script_shell /tmp/x", &["--script_shell"]),
            ("npm --prefix /elsewhere test", &["--prefix"]),
            ("npm -C /elsewhere test", &["-C"]),
            ("npm test --userconfig=/tmp/rc", &["--userconfig=/tmp/rc"]),
            ("npm test --globalconfig /tmp/rc", &["--globalconfig"]),
            (
                "npm test --registry=https://e.test",
                &["--registry=https://e.test"],
            ),
            (
                "npm test --@acme:registry=https://e.test",
                &["--@acme:registry=https://e.test"],
            ),
            (
                "npm test --node-options=--require=/tmp/x.js",
                &["--node-options=--require=/tmp/x.js"],
            ),
            ("npm test -- --script-shell=/tmp/x", &[]),
            ("npm run test --silent", &[]),
            // Other programs have no guarded options.
            ("pytest --python /tmp/x", &[]),
        ];
        for (argv, want) in cases {
            assert_eq!(&options_of(argv), want, "{argv}");
        }
    }

    #[test]
    fn version_requests() {
        for ok in [
            "3",
            "3.12",
            "3.12.1",
            "3.13t",
            ">=3.11",
            ">=3.11,<3.13",
            "cpython",
            "cp312",
            "cpython@3.12",
            "cpython3.12",
            "pypy3.10",
            "pypy@3.10",
            "graalpy",
            "python",
            "python3",
            "python3.12",
            "any",
        ] {
            assert!(is_version_request(ok), "{ok}");
        }
        for refused in [
            "",
            "/tmp/x",
            "./python",
            "../venv",
            "~/bin/python",
            ".venv",
            "evil",
            "bash",
            "python3.12/../../x",
            "3.12/x",
            "cpython-x",
            "C:\\python.exe",
            "3..12",
        ] {
            assert!(!is_version_request(refused), "{refused}");
        }
    }

    #[test]
    fn a_rule_listing_the_option_allows_it_for_that_program_only() {
        let prepared = prepare(
            &words("uv run --with rich --python /opt/py/bin/python3 pytest"),
            &RepoFacts::default(),
        )
        .unwrap();
        let mut rules = issueloop_config::builtin_policy().allowlist;
        let refused: Vec<&str> = refused_options(&prepared, &rules)
            .iter()
            .map(|u| u.guard.option)
            .collect();
        assert_eq!(refused, ["--with", "--python"]);
        rules.push(AllowRule {
            program: "uv".into(),
            subcommands: Some(vec![vec!["run".into()]]),
            options: vec!["--with".into()],
            source: "policies/team.toml".into(),
        });
        rules.push(AllowRule {
            program: "cargo".into(),
            subcommands: None,
            options: vec!["--python".into()],
            source: "policies/other.toml".into(),
        });
        let refused: Vec<&str> = refused_options(&prepared, &rules)
            .iter()
            .map(|u| u.guard.option)
            .collect();
        assert_eq!(refused, ["--python"]);
    }
}
