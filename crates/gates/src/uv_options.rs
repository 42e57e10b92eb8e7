//! `uv run`'s option table (uv 0.13's own `uv run --help`) and a parser that splits an argv into
//! uv's option segment and the payload command, the way uv's argument parser does.

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arity {
    Flag,
    Value,
}

/// One option of `uv run` (or of `uv` itself, which `uv run` accepts too).
#[derive(Debug)]
pub(crate) struct OptionSpec {
    /// Long name without the leading `--`.
    pub long: &'static str,
    pub short: Option<char>,
    pub arity: Arity,
}

const fn value(long: &'static str, short: Option<char>) -> OptionSpec {
    OptionSpec {
        long,
        short,
        arity: Arity::Value,
    }
}

const fn flag(long: &'static str, short: Option<char>) -> OptionSpec {
    OptionSpec {
        long,
        short,
        arity: Arity::Flag,
    }
}

/// Every option `uv run --help` lists in uv 0.13, in its order, plus the hidden ones uv 0.13
/// still accepts (`--dev`, `--native-tls`, `--preview`, …). An option missing here makes
/// preparation fail closed: without knowing whether it takes a value, the payload cannot be found.
pub(crate) const UV_RUN_OPTIONS: &[OptionSpec] = &[
    // Options
    value("extra", None),
    flag("all-extras", None),
    value("no-extra", None),
    flag("no-dev", None),
    flag("only-dev", None),
    value("group", None),
    value("no-group", None),
    flag("no-default-groups", None),
    value("only-group", None),
    flag("all-groups", None),
    flag("module", Some('m')),
    flag("no-editable", None),
    value("no-editable-package", None),
    flag("exact", None),
    value("env-file", None),
    flag("no-env-file", None),
    value("with", Some('w')),
    value("with-editable", None),
    value("with-requirements", None),
    flag("isolated", None),
    flag("active", None),
    flag("no-sync", None),
    flag("locked", None),
    flag("frozen", None),
    flag("script", Some('s')),
    flag("gui-script", None),
    flag("all-packages", None),
    value("package", None),
    flag("no-project", None),
    value("python-platform", None),
    // Index options
    value("index", None),
    value("default-index", None),
    value("index-url", Some('i')),
    value("extra-index-url", None),
    value("find-links", Some('f')),
    flag("no-index", None),
    value("index-strategy", None),
    value("keyring-provider", None),
    // Resolver options
    flag("upgrade", Some('U')),
    value("upgrade-package", Some('P')),
    value("upgrade-group", None),
    value("resolution", None),
    value("prerelease", None),
    value("prerelease-package", None),
    value("fork-strategy", None),
    value("exclude-newer", None),
    value("exclude-newer-package", None),
    flag("no-sources", None),
    value("no-sources-package", None),
    // Installer options
    flag("reinstall", None),
    value("reinstall-package", None),
    value("link-mode", None),
    flag("compile-bytecode", None),
    // Build options
    value("config-setting", Some('C')),
    value("config-settings-package", None),
    flag("no-build-isolation", None),
    value("no-build-isolation-package", None),
    flag("no-build", None),
    value("no-build-package", None),
    flag("no-binary", None),
    value("no-binary-package", None),
    flag("require-build-hashes", None),
    flag("no-require-build-hashes", None),
    // Cache options
    flag("no-cache", Some('n')),
    value("cache-dir", None),
    flag("refresh", None),
    value("refresh-package", None),
    // Python options
    value("python", Some('p')),
    flag("managed-python", None),
    flag("no-managed-python", None),
    flag("no-python-downloads", None),
    // Global options
    flag("quiet", Some('q')),
    flag("verbose", Some('v')),
    value("color", None),
    flag("system-certs", None),
    flag("offline", None),
    value("allow-insecure-host", None),
    flag("no-progress", None),
    value("directory", None),
    value("project", None),
    value("config-file", None),
    flag("no-config", None),
    flag("help", Some('h')),
    // Hidden in the help text, accepted by uv 0.13.
    flag("dev", None),
    flag("no-active", None),
    flag("native-tls", None),
    flag("preview", None),
    flag("no-preview", None),
    value("preview-features", None),
    flag("show-settings", None),
];

/// Flags of `uv` itself that only make sense before a subcommand (`uv --version`).
const UV_TOP_LEVEL_FLAGS: &[OptionSpec] = &[flag("version", Some('V'))];

fn by_long(name: &str) -> Option<&'static OptionSpec> {
    UV_RUN_OPTIONS
        .iter()
        .chain(UV_TOP_LEVEL_FLAGS)
        .find(|o| o.long == name)
}

fn by_short(c: char) -> Option<&'static OptionSpec> {
    UV_RUN_OPTIONS
        .iter()
        .chain(UV_TOP_LEVEL_FLAGS)
        .find(|o| o.short == Some(c))
}

/// One option as written, resolved to its long name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedOption {
    pub long: &'static str,
    pub value: Option<String>,
}

/// Where the options ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// At a token that is not an option (a subcommand or the payload command), at this index.
    Positional(usize),
    /// At `--`, at this index; the payload starts after it.
    Separator(usize),
    /// The argv ended.
    End,
}

/// Parse options starting at `argv[start]` until the first positional token, `--` or the end.
///
/// Spellings follow uv's argument parser: `--group dev`, `--group=dev`, `-p 3.12`, `-p3.12`,
/// `-p=3.12`, and clusters of short flags (`-qq`, `-qp3.12`). An option that takes a value
/// consumes the next token whatever it is, except that a token starting with `-` is refused the
/// way uv refuses it (it is an option, not a value). Errors are messages for the caller to wrap.
pub(crate) fn parse_options(
    argv: &[String],
    start: usize,
) -> Result<(Vec<ParsedOption>, Stop), String> {
    let mut options = Vec::new();
    let mut i = start;
    while i < argv.len() {
        let token = argv[i].as_str();
        if token == "--" {
            return Ok((options, Stop::Separator(i)));
        }
        if let Some(long) = token.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let spec = by_long(name).ok_or_else(|| {
                format!("`--{name}` is not an option of `uv run` (uv 0.13); check the spelling")
            })?;
            match (spec.arity, inline) {
                (Arity::Flag, Some(_)) => {
                    return Err(format!(
                        "`--{name}` is a flag and takes no value (`{token}`)"
                    ));
                }
                (Arity::Flag, None) => options.push(ParsedOption {
                    long: spec.long,
                    value: None,
                }),
                (Arity::Value, Some(v)) => options.push(ParsedOption {
                    long: spec.long,
                    value: Some(v.to_owned()),
                }),
                (Arity::Value, None) => {
                    let v = value_token(argv, i + 1, &format!("--{name}"))?;
                    options.push(ParsedOption {
                        long: spec.long,
                        value: Some(v),
                    });
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        if token.len() > 1 && token.starts_with('-') {
            // A cluster of short options: flags, then at most one value option that takes the rest
            // of the token (or the next token) as its value.
            let cluster = &token[1..];
            let mut consumed_next = false;
            for (pos, c) in cluster.char_indices() {
                let spec = by_short(c).ok_or_else(|| {
                    format!("`-{c}` (in `{token}`) is not an option of `uv run` (uv 0.13)")
                })?;
                if spec.arity == Arity::Flag {
                    options.push(ParsedOption {
                        long: spec.long,
                        value: None,
                    });
                    continue;
                }
                let rest = &cluster[pos + c.len_utf8()..];
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                let v = if rest.is_empty() {
                    consumed_next = true;
                    value_token(argv, i + 1, &format!("-{c}"))?
                } else {
                    rest.to_owned()
                };
                options.push(ParsedOption {
                    long: spec.long,
                    value: Some(v),
                });
                break;
            }
            i += if consumed_next { 2 } else { 1 };
            continue;
        }
        return Ok((options, Stop::Positional(i)));
    }
    Ok((options, Stop::End))
}

fn value_token(argv: &[String], i: usize, option: &str) -> Result<String, String> {
    match argv.get(i) {
        None => Err(format!("`{option}` needs a value and none follows")),
        Some(v) if v.len() > 1 && v.starts_with('-') => Err(format!(
            "`{option}` needs a value, found the option `{v}`; write `{option}=VALUE` if the value starts with `-`"
        )),
        Some(v) => Ok(v.clone()),
    }
}

/// PEP 503/685 name normalization, as uv applies it to group and extra names (`Dev_Tools` and
/// `dev-tools` are the same group).
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            pending_dash = true;
            continue;
        }
        if pending_dash && !out.is_empty() {
            out.push('-');
        }
        pending_dash = false;
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    type Options = Vec<(&'static str, Option<String>)>;

    fn parse(s: &str) -> Result<(Options, Stop), String> {
        parse_options(&args(s), 0)
            .map(|(o, stop)| (o.into_iter().map(|p| (p.long, p.value)).collect(), stop))
    }

    #[test]
    fn every_spelling_of_a_value_option() {
        for s in ["--group dev x", "--group=dev x"] {
            let (o, stop) = parse(s).unwrap();
            assert_eq!(o, vec![("group", Some("dev".into()))], "{s}");
            assert_eq!(stop, Stop::Positional(s.split(' ').count() - 1), "{s}");
        }
        for s in [
            "-p 3.12 x",
            "-p3.12 x",
            "-p=3.12 x",
            "--python 3.12 x",
            "--python=3.12 x",
        ] {
            let (o, _) = parse(s).unwrap();
            assert_eq!(o, vec![("python", Some("3.12".into()))], "{s}");
        }
    }

    #[test]
    fn short_clusters() {
        let (o, stop) = parse("-qqm x").unwrap();
        assert_eq!(o, vec![("quiet", None), ("quiet", None), ("module", None)]);
        assert_eq!(stop, Stop::Positional(1));
        let (o, _) = parse("-qp3.12 x").unwrap();
        assert_eq!(o, vec![("quiet", None), ("python", Some("3.12".into()))]);
        let (o, stop) = parse("-qw ruff x").unwrap();
        assert_eq!(o, vec![("quiet", None), ("with", Some("ruff".into()))]);
        assert_eq!(stop, Stop::Positional(2));
    }

    #[test]
    fn stops() {
        assert_eq!(parse("--locked -- x").unwrap().1, Stop::Separator(1));
        assert_eq!(parse("--locked").unwrap().1, Stop::End);
        assert_eq!(parse("- x").unwrap().1, Stop::Positional(0));
    }

    #[test]
    fn errors() {
        assert!(parse("--bogus x").unwrap_err().contains("`--bogus`"));
        assert!(
            parse("--locked=true x")
                .unwrap_err()
                .contains("takes no value")
        );
        assert!(parse("--group").unwrap_err().contains("needs a value"));
        assert!(
            parse("--group --locked x")
                .unwrap_err()
                .contains("found the option")
        );
        assert!(parse("-Z x").unwrap_err().contains("`-Z`"));
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut longs: Vec<&str> = UV_RUN_OPTIONS.iter().map(|o| o.long).collect();
        longs.sort_unstable();
        let n = longs.len();
        longs.dedup();
        assert_eq!(n, longs.len());
        let mut shorts: Vec<char> = UV_RUN_OPTIONS.iter().filter_map(|o| o.short).collect();
        shorts.sort_unstable();
        let n = shorts.len();
        shorts.dedup();
        assert_eq!(n, shorts.len());
    }

    /// The table matches uv's own help text, kept next to the design notes.
    #[test]
    fn table_matches_uv_help_text() {
        let help = include_str!("../tests/fixtures/uv-run-help.txt");
        let mut seen = Vec::new();
        for line in help.lines() {
            let t = line.trim_start();
            let (short, rest) = match t.strip_prefix('-') {
                Some(r) if !r.starts_with('-') => {
                    let c = r.chars().next().unwrap_or(' ');
                    (Some(c), r.get(3..).unwrap_or(""))
                }
                _ => (None, t),
            };
            let Some(rest) = rest.strip_prefix("--") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let takes_value = rest[name.len()..].starts_with(" <");
            let spec = by_long(&name).unwrap_or_else(|| panic!("`--{name}` missing from table"));
            assert_eq!(spec.short, short, "short of --{name}");
            assert_eq!(spec.arity == Arity::Value, takes_value, "arity of --{name}");
            seen.push(name);
        }
        assert!(seen.len() > 80, "parsed only {} options", seen.len());
        let hidden = [
            "dev",
            "no-active",
            "native-tls",
            "preview",
            "no-preview",
            "preview-features",
            "show-settings",
        ];
        for o in UV_RUN_OPTIONS {
            assert!(
                seen.iter().any(|s| s == o.long) || hidden.contains(&o.long),
                "`--{}` is in the table but not in uv's help",
                o.long
            );
        }
    }

    #[test]
    fn names_normalize_like_uv() {
        assert_eq!(normalize_name("Dev"), "dev");
        assert_eq!(normalize_name("dev_tools"), "dev-tools");
        assert_eq!(normalize_name("Dev.__Tools"), "dev-tools");
    }
}
