//! Reading and strictly parsing TOML files into the raw structs: syntax errors with line and
//! column, every unknown key and every type error collected (not just the first), each with a
//! "did you mean" where one fits.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, LoadError};
use crate::model::Config;
use crate::path::{AbsPath, KeyPath, Seg, line_col};
use crate::raw::RawConfig;
use crate::suggest::did_you_mean;

/// Load and validate a configuration file. A relative `path` is taken relative to the current
/// directory; every path in the file is resolved against the file's directory.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let text = read_text(
        path,
        "create one from `examples/issueloop.toml`, or pass `--config PATH`",
    )?;
    load_str(&text, path)
}

/// Validate configuration text as if it were read from `path` (relative paths in it resolve
/// against `path`'s directory; a relative `path` is taken relative to the current directory).
pub fn load_str(text: &str, path: &Path) -> Result<Config, LoadError> {
    if text.trim().is_empty() {
        return Err(LoadError::Empty {
            path: path.to_owned(),
        });
    }
    // Resolved once, here: the file's directory is the base of every path in it.
    let abs_file = AbsPath::from_cwd(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let (raw, mut errors, doc) = parse_strict::<RawConfig>(text, path);
    let Some(doc) = doc else {
        return Err(LoadError::Invalid { errors });
    };
    let located = crate::validate::Locator {
        file: path.to_owned(),
        base_dir: abs_file.parent(),
        abs_file: Some(abs_file),
        text,
        doc: &doc,
    };
    match crate::validate::validate(raw.unwrap_or_default(), &located, &errors) {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(LoadError::Invalid { errors }),
        Err(mut semantic) => {
            errors.append(&mut semantic);
            crate::validate::sort_errors(&mut errors);
            Err(LoadError::Invalid { errors })
        }
    }
}

/// Read a file as UTF-8 text with a one-line error for every way that can fail.
pub(crate) fn read_text(path: &Path, not_found_hint: &str) -> Result<String, LoadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::NotFound {
                path: path.to_owned(),
                hint: not_found_hint.to_owned(),
            });
        }
        Err(source) => {
            return Err(LoadError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if meta.is_dir() {
        return Err(LoadError::IsDirectory {
            path: path.to_owned(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let (line, column) = line_col(&text, valid);
        LoadError::NotUtf8 {
            path: path.to_owned(),
            line,
            column,
        }
    })
}

/// Parse `text` into `T`, collecting every syntax, unknown-key and type error instead of
/// stopping at the first. Returns the value (when it could be built), the errors, and the parsed
/// document (for locating keys in later passes; `None` on a syntax error).
pub(crate) fn parse_strict<T: DeserializeOwned>(
    text: &str,
    file: &Path,
) -> (
    Option<T>,
    Vec<ConfigError>,
    Option<toml_edit::Document<String>>,
) {
    let doc = match toml_edit::Document::parse(text.to_owned()) {
        Ok(doc) => doc,
        Err(e) => return (None, vec![syntax_error(text, file, &e)], None),
    };
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            let err = ConfigError {
                file: file.to_owned(),
                key: String::new(),
                line,
                column,
                message: e.message().to_owned(),
                hint: None,
            };
            return (None, vec![err], Some(doc));
        }
    };
    let mut errors = Vec::new();
    // Each pass removes the offending key and tries again, so every defect is reported once.
    // The bound is the number of keys: every pass removes one.
    for _ in 0..=count_keys(&table) {
        match serde_path_to_error::deserialize::<_, T>(table.clone()) {
            Ok(value) => return (Some(value), errors, Some(doc)),
            Err(e) => {
                let path = to_key_path(e.path());
                let message = e.inner().message().to_owned();
                let (path, error) = describe(path, &message, text, file, &doc);
                errors.push(error);
                if !remove_at(&mut table, &path) {
                    break;
                }
            }
        }
    }
    (None, errors, Some(doc))
}

fn count_keys(table: &toml::Table) -> usize {
    table
        .values()
        .map(|v| 1 + count_value_keys(v))
        .sum::<usize>()
        + 1
}

fn count_value_keys(v: &toml::Value) -> usize {
    match v {
        toml::Value::Table(t) => count_keys(t),
        toml::Value::Array(a) => a.iter().map(|v| 1 + count_value_keys(v)).sum(),
        _ => 0,
    }
}

fn to_key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    KeyPath(
        path.iter()
            .filter_map(|s| match s {
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// Turn a serde message at `path` into a located error; returns the path of the item to remove.
fn describe(
    path: KeyPath,
    message: &str,
    text: &str,
    file: &Path,
    doc: &toml_edit::Document<String>,
) -> (KeyPath, ConfigError) {
    let (path, message, hint) = if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde: "unknown field `x`, expected one of `a`, `b`" / "expected `a`" / "there are no fields"
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        // serde_path_to_error stops at the table holding the unknown key; point at the key.
        let path = if path.last_key() == Some(field) {
            path
        } else {
            path.key(field)
        };
        let hint = match did_you_mean(field, candidates.iter().copied()) {
            Some(s) => Some(format!("did you mean `{s}`?")),
            None if !candidates.is_empty() => Some(format!(
                "valid keys here: {}",
                candidates
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => None,
        };
        (path, format!("unknown key `{field}`"), hint)
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        (
            path,
            format!("missing required key `{field}`"),
            Some(format!("add `{field} = …` to this table")),
        )
    } else {
        let hint = type_hint(&path, message);
        (path, message.to_owned(), hint)
    };
    let (line, column) = path
        .span_in(doc)
        .map(|s| line_col(text, s.start))
        .map_or((None, None), |(l, c)| (Some(l), Some(c)));
    let error = ConfigError {
        file: file.to_owned(),
        key: path.to_string(),
        line,
        column,
        message,
        hint,
    };
    (path, error)
}

fn type_hint(path: &KeyPath, message: &str) -> Option<String> {
    let key = path.last_key().unwrap_or_default();
    if key == "commands"
        || (matches!(path.0.last(), Some(Seg::Index(_))) && path.to_string().contains("commands"))
    {
        return Some(
            "write each gate as an argv array, e.g. `commands = [[\"pytest\", \"-q\"]]`; gates never run through a shell".into(),
        );
    }
    if message.contains("expected f64") || message.contains("expected a float") {
        return Some(format!("write `{key}` as a number, e.g. `{key} = 5.0`"));
    }
    if message.contains("expected u32") || message.contains("expected u64") {
        return Some(format!("write `{key}` as a whole number ≥ 0"));
    }
    if message.contains("expected a string") {
        return Some(format!("quote the value of `{key}`"));
    }
    None
}

fn syntax_error(text: &str, file: &Path, e: &toml_edit::TomlError) -> ConfigError {
    let (line, column) = e
        .span()
        .map(|s| line_col(text, s.start))
        .map_or((None, None), |(l, c)| (Some(l), Some(c)));
    let message = e
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .to_owned();
    let src_line = line
        .and_then(|l| text.lines().nth(l - 1))
        .unwrap_or_default();
    let key = src_line
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .unwrap_or_default();
    let hint = if src_line.contains('=')
        && src_line
            .split_once('=')
            .is_some_and(|(_, v)| !v.trim_start().starts_with(['"', '\'', '[', '{']))
        && src_line
            .split_once('=')
            .is_some_and(|(_, v)| v.contains(['*', '/', '?', ' ']))
    {
        Some(format!(
            "quote the value: `{key} = \"{}\"`",
            src_line
                .split_once('=')
                .map(|(_, v)| v.trim())
                .unwrap_or_default()
        ))
    } else {
        Some("check the TOML syntax on this line (strings need quotes, tables `[name]`)".into())
    };
    ConfigError {
        file: file.to_owned(),
        key,
        line,
        column,
        message: format!("invalid TOML: {message}"),
        hint,
    }
}

/// Remove the item at `path` from `table`. Returns false when nothing was removed.
fn remove_at(table: &mut toml::Table, path: &KeyPath) -> bool {
    let Some((last, parents)) = path.0.split_last() else {
        return false;
    };
    let mut current = Container::Table(table);
    for seg in parents {
        current = match (current, seg) {
            (Container::Table(t), Seg::Key(k)) => match t.get_mut(k) {
                Some(toml::Value::Table(t)) => Container::Table(t),
                Some(toml::Value::Array(a)) => Container::Array(a),
                _ => return false,
            },
            (Container::Array(a), Seg::Index(i)) => match a.get_mut(*i) {
                Some(toml::Value::Table(t)) => Container::Table(t),
                Some(toml::Value::Array(a)) => Container::Array(a),
                _ => return false,
            },
            _ => return false,
        };
    }
    match (current, last) {
        (Container::Table(t), Seg::Key(k)) => t.remove(k).is_some(),
        (Container::Array(a), Seg::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

enum Container<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

/// Resolve a path written in a configuration file against the file's directory.
pub(crate) fn resolve_path(base_dir: &AbsPath, value: &str) -> AbsPath {
    AbsPath::resolve(base_dir, value)
}

/// Resolve a program written in a configuration file (`[backends.*] binary`, the `command`
/// backend's `argv[0]`): a bare name (`claude`) stays a `PATH` lookup; anything with a `/`
/// (`bin/agent`, `./agent`, `../tools/agent`) is a path relative to the file's directory.
pub(crate) fn resolve_program(base_dir: &AbsPath, program: &str) -> String {
    if program.contains('/') {
        AbsPath::resolve(base_dir, program)
            .to_string_lossy()
            .into_owned()
    } else {
        program.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_with_a_slash_are_paths_from_the_file_and_bare_names_stay_lookups() {
        let base = AbsPath::new("/srv/loop").unwrap();
        let table = [
            ("claude", "claude"),
            ("python3", "python3"),
            ("bin/agent", "/srv/loop/bin/agent"),
            ("./bin/agent", "/srv/loop/bin/agent"),
            ("../tools/./agent", "/srv/tools/agent"),
            ("/usr/local/bin/codex", "/usr/local/bin/codex"),
        ];
        for (written, resolved) in table {
            assert_eq!(resolve_program(&base, written), resolved, "{written}");
        }
    }

    #[test]
    fn every_path_of_a_relative_file_is_absolute_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"repos = ["acme/api"]
[forge]
kind = "local"
local_path = "./forge"
[forge.app]
app_id = 1
private_key_path = "keys/../keys/app.pem"
[git]
cache_dir = "./.issueloop/cache"
[state]
path = "../elsewhere/./state.sqlite"
[runtime_profile]
default = "command"
[backends.command]
argv = ["./bin/agent", "./stays-an-argument"]
[backends.codex]
binary = "tools/codex"
[backends.claude]
binary = "claude"
"#;
        let file = dir.path().join("sub/./issueloop.toml");
        let c = load_str(text, &file).unwrap();
        let base = dir.path().join("sub");
        assert_eq!(c.base_dir, base);
        assert_eq!(
            c.file.as_deref(),
            Some(base.join("issueloop.toml").as_path())
        );
        assert_eq!(c.forge.local_path, base.join("forge"));
        assert_eq!(
            c.forge
                .app
                .as_ref()
                .map(|a| a.private_key_path.to_path_buf()),
            Some(base.join("keys/app.pem"))
        );
        assert_eq!(c.git.cache_dir, base.join(".issueloop/cache"));
        assert_eq!(c.state.path, dir.path().join("elsewhere/state.sqlite"));
        let command = c.backend(crate::BackendKind::Command);
        assert_eq!(
            command.argv.unwrap(),
            [
                base.join("bin/agent").to_string_lossy().into_owned(),
                "./stays-an-argument".to_owned()
            ]
        );
        assert_eq!(
            c.backend(crate::BackendKind::Codex).binary.unwrap(),
            base.join("tools/codex").to_string_lossy()
        );
        assert_eq!(
            c.backend(crate::BackendKind::ClaudeCode).binary.as_deref(),
            Some("claude")
        );

        // A file named without a directory lives in the current one.
        let c = load_str("repos = [\"acme/api\"]\n", Path::new("issueloop.toml")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.base_dir, cwd);
        assert_eq!(c.git.cache_dir, cwd.join(".issueloop/cache"));
        assert_eq!(c.state.path, cwd.join(".issueloop/state.sqlite"));
        assert_eq!(c.forge.local_path, cwd.join(".issueloop/forge"));
    }
}
