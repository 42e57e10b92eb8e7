//! Repository facts that gate selection and preparation depend on, read from a worktree's own
//! files: the Python dev set, `uv.lock`, tests, `Cargo.toml`, `package.json`'s test script.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::GateError;
use crate::uv_options::normalize_name;

/// What a worktree's files say about how to verify a change in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepoFacts {
    /// `pyproject.toml` exists at the root.
    pub pyproject: bool,
    /// A `dev` dependency group: `[dependency-groups].dev` or the legacy
    /// `[tool.uv].dev-dependencies` (uv treats both as the group `dev`).
    pub dev_group: bool,
    /// A `dev` extra: `[project.optional-dependencies].dev`.
    pub dev_extra: bool,
    /// `[tool.uv].default-groups`.
    pub default_groups: DefaultGroups,
    /// Normalized names of the requirements in the dev set (group and extra, includes resolved).
    pub dev_requirements: BTreeSet<String>,
    /// `uv.lock` exists at the root.
    pub uv_lock: bool,
    /// Python tests exist: a `tests/` or `test/` folder with Python files, `test_*.py` or
    /// `*_test.py` files, `conftest.py`, or pytest configuration.
    pub python_tests: bool,
    /// pytest is configured (`pytest.ini`, `[tool.pytest.ini_options]`, `[tool:pytest]` in
    /// `setup.cfg`, `[pytest]` in `tox.ini`).
    pub pytest_configured: bool,
    /// `Cargo.toml` exists at the root.
    pub cargo: bool,
    /// `Cargo.lock` exists at the root.
    pub cargo_lock: bool,
    /// `package.json` has a `test` script other than npm's placeholder.
    pub npm_test: bool,
}

/// `[tool.uv].default-groups`: which groups `uv run` includes without being asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "groups")]
pub enum DefaultGroups {
    /// Not set: uv's default, `["dev"]`.
    #[default]
    Unset,
    /// `"all"`.
    All,
    /// An explicit list (normalized names).
    List(Vec<String>),
}

/// Which form of the dev set `uv run` is asked to include.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevSelector {
    /// `--group dev`.
    Group,
    /// `--extra dev`.
    Extra,
}

impl RepoFacts {
    /// The dev set's selector, if the repository declares one. A dev group wins over a dev
    /// extra: it is what uv itself treats as the development dependencies.
    pub fn dev_selector(&self) -> Option<DevSelector> {
        if self.dev_group {
            Some(DevSelector::Group)
        } else if self.dev_extra {
            Some(DevSelector::Extra)
        } else {
            None
        }
    }

    /// The group `dev` is among the groups `uv run` includes by default.
    pub fn dev_is_default_group(&self) -> bool {
        match &self.default_groups {
            DefaultGroups::Unset | DefaultGroups::All => true,
            DefaultGroups::List(groups) => groups.iter().any(|g| g == "dev"),
        }
    }

    /// Bare Python gates run through `uv run --locked`: the repository declares a dev set and
    /// has a `uv.lock` (without one, `--locked` cannot pass and a run would write `uv.lock`).
    pub fn runs_python_through_uv(&self) -> bool {
        self.uv_lock && self.dev_selector().is_some()
    }

    /// The dev set names this requirement (normalized comparison).
    pub fn dev_requires(&self, name: &str) -> bool {
        self.dev_requirements.contains(&normalize_name(name))
    }

    /// Read the facts of the worktree at `worktree`: a few root files plus a bounded walk of its
    /// tree (version control, virtual environments, build output and hidden folders skipped).
    pub fn scan(worktree: &Path) -> Result<RepoFacts, GateError> {
        let pyproject = read_optional(&worktree.join("pyproject.toml"))?;
        let package_json = read_optional(&worktree.join("package.json"))?;
        let setup_cfg = read_optional(&worktree.join("setup.cfg"))?;
        let tox_ini = read_optional(&worktree.join("tox.ini"))?;
        let paths = list_files(worktree);
        RepoFacts::from_files(&RepoFiles {
            root: worktree,
            pyproject_toml: pyproject.as_deref(),
            package_json: package_json.as_deref(),
            setup_cfg: setup_cfg.as_deref(),
            tox_ini: tox_ini.as_deref(),
            paths: &paths,
        })
    }

    /// The facts from file contents, without I/O.
    pub fn from_files(files: &RepoFiles<'_>) -> Result<RepoFacts, GateError> {
        let mut facts = RepoFacts::default();
        let has = |name: &str| files.paths.iter().any(|p| p == Path::new(name));
        if let Some(text) = files.pyproject_toml {
            facts.pyproject = true;
            read_pyproject(text, &files.root.join("pyproject.toml"), &mut facts)?;
        }
        if let Some(text) = files.package_json {
            facts.npm_test = read_package_json(text, &files.root.join("package.json"))?;
        }
        facts.uv_lock = has("uv.lock");
        facts.cargo = has("Cargo.toml");
        facts.cargo_lock = has("Cargo.lock");
        facts.pytest_configured |= has("pytest.ini")
            || files
                .setup_cfg
                .is_some_and(|t| has_ini_section(t, "tool:pytest"))
            || files.tox_ini.is_some_and(|t| has_ini_section(t, "pytest"));
        facts.python_tests =
            facts.pytest_configured || files.paths.iter().any(|p| is_python_test(p));
        Ok(facts)
    }
}

/// Contents of the files [`RepoFacts`] are read from.
#[derive(Clone, Copy, Debug)]
pub struct RepoFiles<'a> {
    /// The worktree, for error messages.
    pub root: &'a Path,
    pub pyproject_toml: Option<&'a str>,
    pub package_json: Option<&'a str>,
    pub setup_cfg: Option<&'a str>,
    pub tox_ini: Option<&'a str>,
    /// Files of the worktree, relative to it.
    pub paths: &'a [PathBuf],
}

fn read_optional(path: &Path) -> Result<Option<String>, GateError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| GateError::MalformedFile {
                path: path.to_owned(),
                line: None,
                message: format!(
                    "not UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GateError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[derive(Deserialize)]
struct PyprojectWire {
    project: Option<ProjectWire>,
    #[serde(rename = "dependency-groups")]
    dependency_groups: Option<BTreeMap<String, Vec<GroupEntry>>>,
    tool: Option<ToolWire>,
}

#[derive(Deserialize)]
struct ProjectWire {
    name: Option<String>,
    #[serde(rename = "optional-dependencies")]
    optional_dependencies: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize)]
struct ToolWire {
    uv: Option<UvWire>,
    pytest: Option<toml::Value>,
}

#[derive(Deserialize)]
struct UvWire {
    #[serde(rename = "dev-dependencies")]
    dev_dependencies: Option<Vec<String>>,
    #[serde(rename = "default-groups")]
    default_groups: Option<DefaultGroupsWire>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DefaultGroupsWire {
    List(Vec<String>),
    Word(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GroupEntry {
    Requirement(String),
    Include {
        #[serde(rename = "include-group")]
        include_group: String,
    },
}

fn read_pyproject(text: &str, path: &Path, facts: &mut RepoFacts) -> Result<(), GateError> {
    let malformed = |line: Option<usize>, message: String| GateError::MalformedFile {
        path: path.to_owned(),
        line,
        message,
    };
    let wire: PyprojectWire = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        malformed(line, e.message().trim().to_owned())
    })?;
    let project_name = wire
        .project
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .map(normalize_name);
    let groups: BTreeMap<String, Vec<GroupEntry>> = wire
        .dependency_groups
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (normalize_name(&k), v))
        .collect();
    let extras: BTreeMap<String, Vec<String>> = wire
        .project
        .and_then(|p| p.optional_dependencies)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (normalize_name(&k), v))
        .collect();
    let uv = wire.tool.as_ref().and_then(|t| t.uv.as_ref());
    facts.pytest_configured = wire.tool.as_ref().is_some_and(|t| t.pytest.is_some());

    let mut requirements = BTreeSet::new();
    if groups.contains_key("dev") {
        facts.dev_group = true;
        let mut visiting = Vec::new();
        collect_group(&groups, "dev", &mut visiting, &mut requirements)
            .map_err(|m| malformed(None, m))?;
    }
    if let Some(legacy) = uv.and_then(|u| u.dev_dependencies.as_ref()) {
        facts.dev_group = true;
        requirements.extend(legacy.iter().filter_map(|r| requirement_name(r)));
    }
    if let Some(dev) = extras.get("dev") {
        facts.dev_extra = true;
        collect_extra(dev, &extras, project_name.as_deref(), &mut requirements);
    }
    facts.dev_requirements = requirements;
    facts.default_groups = match uv.and_then(|u| u.default_groups.as_ref()) {
        None => DefaultGroups::Unset,
        Some(DefaultGroupsWire::Word(w)) if w == "all" => DefaultGroups::All,
        Some(DefaultGroupsWire::Word(w)) => {
            return Err(malformed(
                None,
                format!(
                    "`tool.uv.default-groups` is `\"{w}\"`; write a list of group names or `\"all\"`"
                ),
            ));
        }
        Some(DefaultGroupsWire::List(l)) => {
            DefaultGroups::List(l.iter().map(|g| normalize_name(g)).collect())
        }
    };
    Ok(())
}

/// Requirement names of a dependency group, following `{include-group = "…"}` entries.
fn collect_group(
    groups: &BTreeMap<String, Vec<GroupEntry>>,
    name: &str,
    visiting: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    if visiting.iter().any(|v| v == name) {
        visiting.push(name.to_owned());
        return Err(format!(
            "`dependency-groups` include each other in a cycle: {}",
            visiting.join(" → ")
        ));
    }
    let Some(entries) = groups.get(name) else {
        return Err(format!(
            "`dependency-groups` includes the group `{name}`, which is not defined"
        ));
    };
    visiting.push(name.to_owned());
    for entry in entries {
        match entry {
            GroupEntry::Requirement(r) => out.extend(requirement_name(r)),
            GroupEntry::Include { include_group } => {
                collect_group(groups, &normalize_name(include_group), visiting, out)?;
            }
        }
    }
    visiting.pop();
    Ok(())
}

/// Requirement names of an extra, following self-references like `myproject[test]`.
fn collect_extra(
    requirements: &[String],
    extras: &BTreeMap<String, Vec<String>>,
    project: Option<&str>,
    out: &mut BTreeSet<String>,
) {
    let mut pending: Vec<&[String]> = vec![requirements];
    let mut seen = BTreeSet::new();
    while let Some(reqs) = pending.pop() {
        for r in reqs {
            let Some(name) = requirement_name(r) else {
                continue;
            };
            if Some(name.as_str()) == project {
                for extra in requirement_extras(r) {
                    if let Some(more) = extras.get(&extra)
                        && seen.insert(extra)
                    {
                        pending.push(more);
                    }
                }
            } else {
                out.insert(name);
            }
        }
    }
}

/// The normalized distribution name at the start of a PEP 508 requirement.
fn requirement_name(requirement: &str) -> Option<String> {
    let name: String = requirement
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then(|| normalize_name(&name))
}

fn requirement_extras(requirement: &str) -> Vec<String> {
    let Some((_, rest)) = requirement.split_once('[') else {
        return Vec::new();
    };
    let inner = rest.split(']').next().unwrap_or("");
    inner
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(normalize_name)
        .collect()
}

#[derive(Deserialize)]
struct PackageJsonWire {
    scripts: Option<BTreeMap<String, serde_json::Value>>,
}

/// Whether `package.json` has a real `test` script (npm's `npm init` placeholder does not count).
fn read_package_json(text: &str, path: &Path) -> Result<bool, GateError> {
    let wire: PackageJsonWire =
        serde_json::from_str(text).map_err(|e| GateError::MalformedFile {
            path: path.to_owned(),
            line: Some(e.line()),
            message: e.to_string(),
        })?;
    Ok(wire
        .scripts
        .and_then(|s| s.get("test").and_then(|t| t.as_str().map(str::to_owned)))
        .is_some_and(|t| !t.trim().is_empty() && !t.contains("no test specified")))
}

fn has_ini_section(text: &str, section: &str) -> bool {
    text.lines()
        .any(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')) == Some(section))
}

fn is_python_test(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if !name.ends_with(".py") {
        return false;
    }
    if name == "conftest.py" || name.starts_with("test_") || name.ends_with("_test.py") {
        return true;
    }
    path.parent().is_some_and(|dir| {
        dir.components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "test")))
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Folders never walked: version control, environments, dependencies, build output, caches.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "target",
    "venv",
    "__pycache__",
    "site-packages",
];
/// Bounds of the walk, so a huge checkout cannot make a scan slow.
const MAX_DEPTH: usize = 8;
const MAX_ENTRIES: usize = 20_000;

/// Files of the worktree relative to it, breadth first, bounded; unreadable folders are skipped
/// (a fact they would have contributed is then missing, which only selects fewer gates).
fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<(PathBuf, usize)> =
        std::collections::VecDeque::from([(PathBuf::new(), 0)]);
    let mut seen = 0usize;
    while let Some((rel, depth)) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            seen += 1;
            if seen > MAX_ENTRIES {
                return out;
            }
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                continue;
            };
            // `file_type` does not follow symbolic links: a link is never walked into.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = rel.join(name_str);
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH
                    && !name_str.starts_with('.')
                    && !SKIPPED_DIRS.contains(&name_str)
                {
                    queue.push_back((path, depth + 1));
                }
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pyproject: &str, paths: &[&str]) -> Result<RepoFacts, GateError> {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        RepoFacts::from_files(&RepoFiles {
            root: Path::new("/w"),
            pyproject_toml: Some(pyproject),
            package_json: None,
            setup_cfg: None,
            tox_ini: None,
            paths: &paths,
        })
    }

    #[test]
    fn dependency_group() {
        let f = facts(
            "[dependency-groups]\ndev = [\"pytest>=8\", \"Ruff==0.6\", {include-group = \"typing\"}]\ntyping = [\"mypy\"]\n",
            &["uv.lock", "tests/test_a.py"],
        )
        .unwrap();
        assert!(f.dev_group && !f.dev_extra && f.uv_lock && f.python_tests);
        assert_eq!(f.dev_selector(), Some(DevSelector::Group));
        assert!(f.dev_requires("pytest") && f.dev_requires("ruff") && f.dev_requires("mypy"));
        assert!(f.runs_python_through_uv());
    }

    #[test]
    fn optional_extra_with_self_reference() {
        let f = facts(
            "[project]\nname = \"My_Pkg\"\n[project.optional-dependencies]\nDev = [\"my-pkg[test]\", \"ruff\"]\ntest = [\"pytest\"]\n",
            &[],
        )
        .unwrap();
        assert!(f.dev_extra && !f.dev_group);
        assert_eq!(f.dev_selector(), Some(DevSelector::Extra));
        assert!(f.dev_requires("pytest") && f.dev_requires("ruff"));
        assert!(!f.dev_requires("my-pkg"));
        assert!(!f.runs_python_through_uv(), "no uv.lock");
    }

    #[test]
    fn legacy_dev_dependencies_and_default_groups() {
        let f = facts(
            "[tool.uv]\ndev-dependencies = [\"pytest\"]\ndefault-groups = [\"lint\"]\n",
            &[],
        )
        .unwrap();
        assert!(f.dev_group);
        assert_eq!(f.default_groups, DefaultGroups::List(vec!["lint".into()]));
        assert!(!f.dev_is_default_group());
        let all = facts("[tool.uv]\ndefault-groups = \"all\"\n", &[]).unwrap();
        assert_eq!(all.default_groups, DefaultGroups::All);
        assert!(all.dev_is_default_group());
        assert_eq!(all.dev_selector(), None);
    }

    #[test]
    fn no_dev_set() {
        let f = facts("[project]\nname = \"x\"\ndependencies = []\n", &["x.py"]).unwrap();
        assert_eq!(f.dev_selector(), None);
        assert!(f.pyproject && !f.python_tests);
    }

    #[test]
    fn malformed_pyproject_names_file_and_line() {
        let e = facts("[project]\nname = \"x\"\n[dependency-groups\n", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`/w/pyproject.toml` line 3"), "{msg}");
        assert_eq!(e.kind(), "malformed_file");
        let e = facts("[dependency-groups]\ndev = \"pytest\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = facts("[tool.uv]\ndefault-groups = \"some\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("default-groups"), "{e}");
        let e = facts(
            "[dependency-groups]\ndev = [{include-group = \"a\"}]\na = [{include-group = \"dev\"}]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        let e = facts(
            "[dependency-groups]\ndev = [{include-group = \"nope\"}]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");
    }

    #[test]
    fn tests_present() {
        for p in [
            "tests/test_x.py",
            "test/helpers.py",
            "pkg/x_test.py",
            "conftest.py",
            "src/pkg/tests/util.py",
        ] {
            assert!(facts("", &[p]).unwrap().python_tests, "{p}");
        }
        for p in ["tests/data.json", "src/pkg/x.py", "testing.py"] {
            assert!(!facts("", &[p]).unwrap().python_tests, "{p}");
        }
        assert!(
            facts("[tool.pytest.ini_options]\naddopts = \"-q\"\n", &[])
                .unwrap()
                .python_tests
        );
        assert!(facts("", &["pytest.ini"]).unwrap().python_tests);
        let paths: Vec<PathBuf> = vec![];
        let cfg = RepoFacts::from_files(&RepoFiles {
            root: Path::new("/w"),
            pyproject_toml: None,
            package_json: None,
            setup_cfg: Some("[metadata]\nname = x\n[tool:pytest]\n"),
            tox_ini: None,
            paths: &paths,
        })
        .unwrap();
        assert!(cfg.pytest_configured && !cfg.pyproject);
    }

    #[test]
    fn cargo_and_npm() {
        let paths: Vec<PathBuf> = vec!["Cargo.toml".into(), "Cargo.lock".into()];
        let files = |pkg: &'static str| RepoFiles {
            root: Path::new("/w"),
            pyproject_toml: None,
            package_json: Some(pkg),
            setup_cfg: None,
            tox_ini: None,
            paths: &paths,
        };
        let f = RepoFacts::from_files(&files(r#"{"scripts": {"test": "jest"}}"#)).unwrap();
        assert!(f.cargo && f.cargo_lock && f.npm_test);
        let placeholder = r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#;
        assert!(!RepoFacts::from_files(&files(placeholder)).unwrap().npm_test);
        assert!(!RepoFacts::from_files(&files("{}")).unwrap().npm_test);
        let e = RepoFacts::from_files(&files("{\n\"scripts\": [}")).unwrap_err();
        assert!(e.to_string().contains("package.json` line 2"), "{e}");
    }
}
