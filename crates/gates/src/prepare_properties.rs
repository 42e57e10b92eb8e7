//! Property tests of `prepare` over argvs built from uv's real option table, in every spelling:
//! idempotent, the payload never moves, nothing written by the gate author is lost, and every
//! `uv run` ends up with a lock guard in its option segment.

use proptest::prelude::*;

use crate::facts::{DefaultGroups, RepoFacts};
use crate::prepare::prepare;
use crate::uv_options::{Arity, UV_RUN_OPTIONS};

const VALUES: &[&str] = &["dev", "Dev", "docs", "lint", "3.12", "x"];
const PAYLOAD_WORDS: &[&str] = &[
    "--locked", "--frozen", "--no-dev", "--group", "dev", "-p3.12", "--", "-m", "run", "x y", "-q",
    "tests",
];
const PROGRAMS: &[&str] = &[
    "pytest", "python", "python3", "ruff", "mypy", "tool", "cargo",
];

/// One option of the table, written in one of its spellings.
fn option_tokens() -> impl Strategy<Value = Vec<String>> {
    (
        0..UV_RUN_OPTIONS.len(),
        0usize..4,
        proptest::sample::select(VALUES),
    )
        .prop_map(|(i, spelling, value)| {
            let o = &UV_RUN_OPTIONS[i];
            let long = format!("--{}", o.long);
            match (o.arity, o.short, spelling) {
                (Arity::Flag, Some(c), s) if s % 2 == 1 => vec![format!("-{c}")],
                (Arity::Flag, _, _) => vec![long],
                (Arity::Value, _, 0) => vec![long, value.to_owned()],
                (Arity::Value, _, 1) => vec![format!("{long}={value}")],
                (Arity::Value, Some(c), 2) => vec![format!("-{c}"), value.to_owned()],
                (Arity::Value, Some(c), _) => vec![format!("-{c}{value}")],
                (Arity::Value, None, _) => vec![long, value.to_owned()],
            }
        })
}

fn payload() -> impl Strategy<Value = Vec<String>> {
    (
        proptest::sample::select(PROGRAMS),
        proptest::collection::vec(proptest::sample::select(PAYLOAD_WORDS), 0..5),
    )
        .prop_map(|(program, rest)| {
            std::iter::once(program)
                .chain(rest)
                .map(str::to_owned)
                .collect()
        })
}

fn facts() -> impl Strategy<Value = RepoFacts> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..3).prop_map(
        |(dev_group, dev_extra, uv_lock, default_groups)| RepoFacts {
            pyproject: true,
            dev_group,
            dev_extra,
            uv_lock,
            default_groups: match default_groups {
                0 => DefaultGroups::Unset,
                1 => DefaultGroups::All,
                _ => DefaultGroups::List(vec!["lint".into()]),
            },
            ..RepoFacts::default()
        },
    )
}

/// A `uv [pre] run [options] [--] payload` argv, with its parts.
fn uv_run_argv() -> impl Strategy<Value = (Vec<String>, Vec<String>, Vec<String>)> {
    (
        proptest::collection::vec(option_tokens(), 0..3),
        proptest::collection::vec(option_tokens(), 0..6),
        any::<bool>(),
        payload(),
    )
        .prop_map(|(pre, options, separator, payload)| {
            let pre: Vec<String> = pre.concat();
            let mut options: Vec<String> = options.concat();
            if separator {
                options.push("--".to_owned());
            }
            let mut argv = vec!["uv".to_owned()];
            argv.extend(pre.iter().cloned());
            argv.push("run".to_owned());
            argv.extend(options.iter().cloned());
            argv.extend(payload.iter().cloned());
            let written: Vec<String> = pre.into_iter().chain(options).collect();
            (argv, written, payload)
        })
}

fn is_subsequence(needle: &[String], hay: &[String]) -> bool {
    let mut hay = hay.iter();
    needle.iter().all(|n| hay.any(|h| h == n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn uv_run_gates(facts in facts(), (argv, written, payload) in uv_run_argv()) {
        match prepare(&argv, &facts) {
            Ok(p) => {
                let again = prepare(p.argv(), &facts).ok();
                prop_assert_eq!(again.as_ref(), Some(&p), "not idempotent");
                prop_assert_eq!(p.uv_payload(), Some(&payload[..]), "payload moved: `{}`", p);
                let options = p.uv_options().unwrap_or_default();
                prop_assert!(is_subsequence(&written, options), "options lost: `{}`", p);
                prop_assert!(
                    options.iter().any(|o| o == "--locked" || o == "--frozen"),
                    "no lock guard: `{}`", p
                );
            }
            Err(e) => prop_assert_eq!(e.kind(), "excludes_dev_set", "{}", e),
        }
    }

    #[test]
    fn bare_gates(facts in facts(), argv in payload()) {
        let p = prepare(&argv, &facts);
        prop_assert!(p.is_ok(), "a bare gate never fails: {:?}", p.err());
        let Ok(p) = p else { return Ok(()) };
        let again = prepare(p.argv(), &facts).ok();
        prop_assert_eq!(again.as_ref(), Some(&p));
        match p.uv_payload() {
            Some(payload) => {
                prop_assert!(facts.runs_python_through_uv());
                prop_assert_eq!(payload, &argv[..]);
            }
            None => prop_assert_eq!(p.argv(), &argv[..]),
        }
    }
}
