//! The managed `[profiles.issueloop-<name>]` table in the user's Codex `config.toml`: added
//! with a format-preserving editor (every other key, comment and table stays byte for byte),
//! idempotent, refused untouched when the file is not valid TOML or `profiles` is not a table,
//! verified by parsing before the file is replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use issueloop_config::Env;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// The keys issueloop manages in its profile: unattended (Codex never asks) and able to edit
/// the worktree, nothing outside it.
pub const MANAGED_KEYS: [(&str, &str); 2] = [
    ("approval_policy", "never"),
    ("sandbox_mode", "workspace-write"),
];

const HEADER: &str = "\n# Managed by issueloop (`issueloop setup --runtime codex`): unattended runs in a worktree.\n";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not valid TOML, so it was left untouched: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "`profiles` in `{}` is {found}, not a table, so the file was left untouched; make it a table (`[profiles.<name>]`) and run this again",
        .path.display()
    )]
    ProfilesNotTable { path: PathBuf, found: String },
    #[error(
        "`profiles.{profile}` in `{}` is {found}, not a table, so the file was left untouched; remove or rename it and run this again",
        .path.display()
    )]
    ProfileNotTable {
        path: PathBuf,
        profile: String,
        found: String,
    },
    #[error("the edited `{}` did not verify, so it was left untouched: {message}", .path.display())]
    Verify { path: PathBuf, message: String },
    #[error("cannot write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `install_codex_profile` did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SetupOutcome {
    pub path: PathBuf,
    pub profile: String,
    /// The file was written (false: it already had the profile).
    pub changed: bool,
    /// The managed keys set.
    pub set: Vec<KeySet>,
}

/// A managed key issueloop set, and the value it replaced (`None`: the key was missing).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeySet {
    pub key: String,
    pub value: String,
    pub was: Option<String>,
}

/// The result of editing a Codex configuration's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileEdit {
    /// The new text, `None` when the profile was already there as managed.
    pub text: Option<String>,
    pub set: Vec<KeySet>,
}

/// `issueloop-<backend_profile>`, `issueloop-worker` when none is configured.
pub fn codex_profile_name(backend_profile: Option<&str>) -> String {
    format!(
        "issueloop-{}",
        backend_profile
            .filter(|p| !p.trim().is_empty())
            .unwrap_or("worker")
    )
}

/// `$CODEX_HOME/config.toml`, else `~/.codex/config.toml`.
pub fn default_codex_config(env: &Env) -> Option<PathBuf> {
    if let Some(home) = env.get("CODEX_HOME") {
        return Some(Path::new(home).join("config.toml"));
    }
    env.get("HOME")
        .map(|h| Path::new(h).join(".codex").join("config.toml"))
}

/// Add (or complete) the managed profile in a Codex configuration's text. Pure: `path` only
/// names the file in errors.
pub fn add_codex_profile(
    text: &str,
    profile: &str,
    path: &Path,
) -> Result<ProfileEdit, SetupError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| SetupError::Invalid {
                path: path.to_owned(),
                message: e.to_string().trim().to_owned(),
            })?;
    match doc.get("profiles") {
        None => {
            let mut t = Table::new();
            // No bare `[profiles]` header: only `[profiles.<name>]` appears.
            t.set_implicit(true);
            doc.insert("profiles", Item::Table(t));
        }
        Some(item) if item.is_table_like() => {}
        Some(item) => {
            return Err(SetupError::ProfilesNotTable {
                path: path.to_owned(),
                found: describe(item),
            });
        }
    }
    let inline = matches!(
        doc.get("profiles"),
        Some(Item::Value(Value::InlineTable(_)))
    );
    let mut set = Vec::new();
    #[expect(
        clippy::expect_used,
        reason = "`profiles` is checked or inserted above"
    )]
    let profiles = doc
        .get_mut("profiles")
        .and_then(Item::as_table_like_mut)
        .expect("`profiles` was just checked or inserted as a table");
    match profiles.get_mut(profile) {
        None => {
            set = MANAGED_KEYS
                .iter()
                .map(|(k, v)| KeySet {
                    key: (*k).to_owned(),
                    value: (*v).to_owned(),
                    was: None,
                })
                .collect();
            profiles.insert(profile, new_profile_item(inline));
        }
        Some(item) if item.is_table_like() => {
            #[expect(clippy::expect_used, reason = "the match guard checked it")]
            let table = item.as_table_like_mut().expect("checked to be table-like");
            for (key, value) in MANAGED_KEYS {
                let current = table.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                if current.as_deref() != Some(value) {
                    let previous = table.get(key).map(|v| {
                        v.as_value()
                            .map(|v| v.to_string().trim().to_owned())
                            .unwrap_or_else(|| describe(v))
                    });
                    table.insert(key, toml_edit::value(value));
                    set.push(KeySet {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        was: previous,
                    });
                }
            }
        }
        Some(item) => {
            return Err(SetupError::ProfileNotTable {
                path: path.to_owned(),
                profile: profile.to_owned(),
                found: describe(item),
            });
        }
    }
    let new = doc.to_string();
    if new == text {
        return Ok(ProfileEdit {
            text: None,
            set: Vec::new(),
        });
    }
    verify(&new, profile, path)?;
    Ok(ProfileEdit {
        text: Some(new),
        set,
    })
}

fn new_profile_item(inline: bool) -> Item {
    if inline {
        let mut t = InlineTable::new();
        for (k, v) in MANAGED_KEYS {
            t.insert(k, v.into());
        }
        Item::Value(Value::InlineTable(t))
    } else {
        let mut t = Table::new();
        for (k, v) in MANAGED_KEYS {
            t.insert(k, toml_edit::value(v));
        }
        t.decor_mut().set_prefix(HEADER);
        Item::Table(t)
    }
}

fn describe(item: &Item) -> String {
    match item {
        Item::None => "empty".into(),
        Item::Value(v) => format!("a {} (`{}`)", v.type_name(), v.to_string().trim()),
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "an array of tables".into(),
    }
}

/// The edited text parses as TOML and holds the managed keys.
fn verify(text: &str, profile: &str, path: &Path) -> Result<(), SetupError> {
    let fail = |message: String| SetupError::Verify {
        path: path.to_owned(),
        message,
    };
    let parsed: toml::Table = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
    let table = parsed
        .get("profiles")
        .and_then(|p| p.get(profile))
        .ok_or_else(|| fail(format!("`profiles.{profile}` is missing")))?;
    for (k, v) in MANAGED_KEYS {
        if table.get(k).and_then(|x| x.as_str()) != Some(v) {
            return Err(fail(format!("`profiles.{profile}.{k}` is not `{v}`")));
        }
    }
    Ok(())
}

/// Add (or complete) the managed profile in the Codex configuration at `path`, creating the
/// file when it does not exist. Writes nothing when the profile is already there.
pub fn install_codex_profile(path: &Path, profile: &str) -> Result<SetupOutcome, SetupError> {
    // Edit the file a symlink points to, not the link.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let (text, existing) = match std::fs::read_to_string(&target) {
        Ok(t) => (t, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
        Err(source) => {
            return Err(SetupError::Read {
                path: target,
                source,
            });
        }
    };
    let ProfileEdit { text: edited, set } = add_codex_profile(&text, profile, &target)?;
    let Some(edited) = edited else {
        return Ok(SetupOutcome {
            path: target,
            profile: profile.to_owned(),
            changed: false,
            set,
        });
    };
    let edited = if existing {
        edited
    } else {
        edited.trim_start().to_owned()
    };
    write_atomically(&target, &edited)?;
    Ok(SetupOutcome {
        path: target,
        profile: profile.to_owned(),
        changed: true,
        set,
    })
}

/// Whether the Codex configuration at `path` has `[profiles.<profile>]`.
pub fn has_codex_profile(path: &Path, profile: &str) -> Result<bool, SetupError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(SetupError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let parsed: toml::Table = toml::from_str(&text).map_err(|e| SetupError::Invalid {
        path: path.to_owned(),
        message: e.to_string().trim().to_owned(),
    })?;
    Ok(parsed
        .get("profiles")
        .and_then(|p| p.get(profile))
        .is_some_and(|t| t.is_table()))
}

/// Write a temporary file beside `target` (same permissions), then rename it over `target`.
fn write_atomically(target: &Path, text: &str) -> Result<(), SetupError> {
    let err = |source| SetupError::Write {
        path: target.to_owned(),
        source,
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.toml.")
        .tempfile_in(&dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    if let Ok(meta) = std::fs::metadata(target) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(err)?;
    }
    tmp.persist(target).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "issueloop-worker";

    fn add(text: &str) -> Result<Option<String>, SetupError> {
        add_codex_profile(text, P, Path::new("config.toml")).map(|e| e.text)
    }

    #[test]
    fn an_empty_file_gets_only_the_profile_table() {
        let out = add("").unwrap().unwrap();
        assert!(!out.contains("[profiles]\n"), "{out}");
        assert!(out.contains("[profiles.issueloop-worker]\napproval_policy = \"never\"\nsandbox_mode = \"workspace-write\"\n"), "{out}");
        assert_eq!(add(&out).unwrap(), None, "idempotent");
    }

    #[test]
    fn existing_keys_comments_and_subtables_stay() {
        let text = "# my codex\nmodel = \"o3\"  # fast\n\n[profiles.mine]\nmodel = \"gpt-5\"\n\n[profiles.mine.sandbox_workspace_write]\nnetwork_access = true\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\n";
        let out = add(text).unwrap().unwrap();
        let block = format!(
            "{HEADER}[profiles.issueloop-worker]\napproval_policy = \"never\"\nsandbox_mode = \"workspace-write\"\n"
        );
        assert_eq!(out.matches(&block).count(), 1, "{out}");
        assert_eq!(
            out.replace(&block, ""),
            text,
            "everything else stays byte for byte"
        );
        // Next to the other profiles, not after unrelated tables.
        assert!(out.find(&block) < out.find("[mcp_servers.docs]"));
        assert_eq!(add(&out).unwrap(), None);
    }

    #[test]
    fn a_partial_managed_profile_is_completed_keeping_user_keys() {
        let text = "[profiles.issueloop-worker]\nmodel = \"gpt-5\"\nsandbox_mode = \"danger-full-access\"\n";
        let edit = add_codex_profile(text, P, Path::new("c.toml")).unwrap();
        let out = edit.text.unwrap();
        assert!(out.contains("model = \"gpt-5\""));
        assert!(out.contains("sandbox_mode = \"workspace-write\""));
        let set: Vec<(&str, Option<&str>)> = edit
            .set
            .iter()
            .map(|k| (k.key.as_str(), k.was.as_deref()))
            .collect();
        assert_eq!(
            set,
            [
                ("approval_policy", None),
                ("sandbox_mode", Some("\"danger-full-access\""))
            ]
        );
    }

    #[test]
    fn inline_profiles_get_an_inline_entry() {
        let text = "profiles = { mine = { model = \"o3\" } }\n";
        let out = add(text).unwrap().unwrap();
        assert!(out.contains("mine = { model = \"o3\" }"), "{out}");
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            parsed["profiles"][P]["sandbox_mode"].as_str(),
            Some("workspace-write")
        );
        assert_eq!(add(&out).unwrap(), None);
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = add("profiles = \"x\"\n").unwrap_err();
        assert!(matches!(e, SetupError::ProfilesNotTable { .. }), "{e}");
        assert!(e.to_string().contains("a string (`\"x\"`)"), "{e}");
        let e = add("[profiles]\nissueloop-worker = 3\n").unwrap_err();
        assert!(matches!(e, SetupError::ProfileNotTable { .. }), "{e}");
        let e = add("model = \n").unwrap_err();
        assert!(matches!(e, SetupError::Invalid { .. }), "{e}");
        let e = add("[[profiles]]\nname = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("array of tables"), "{e}");
    }

    #[test]
    fn install_writes_atomically_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "model = \"o3\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = install_codex_profile(&path, P).unwrap();
        assert!(o.changed);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(has_codex_profile(&path, P).unwrap());
        let o = install_codex_profile(&path, P).unwrap();
        assert!(!o.changed);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn install_creates_a_missing_file_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.codex/config.toml");
        install_codex_profile(&path, P).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Managed by issueloop"), "{text}");

        let real = dir.path().join("real.toml");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        install_codex_profile(&link, P).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::read_to_string(&real).unwrap().contains(P));
    }

    #[test]
    fn names_and_default_location() {
        assert_eq!(codex_profile_name(None), "issueloop-worker");
        assert_eq!(codex_profile_name(Some("review")), "issueloop-review");
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            default_codex_config(&env),
            Some(PathBuf::from("/home/u/.codex/config.toml"))
        );
        let env = Env::from_pairs([("HOME", "/home/u"), ("CODEX_HOME", "/etc/codex")]);
        assert_eq!(
            default_codex_config(&env),
            Some(PathBuf::from("/etc/codex/config.toml"))
        );
    }
}
