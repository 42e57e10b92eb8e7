//! Gate selection for one worktree: the repository's explicit gates from configuration win;
//! otherwise gates are chosen from the repository's facts and the paths the change touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::facts::RepoFacts;
use crate::prepare::shell_join;

/// Where a gate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOrigin {
    /// `[gates.repos."owner/name"] commands` in the configuration.
    Explicit,
    /// Chosen from the repository's files and the change.
    Auto,
}

/// What a gate does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateSpec {
    /// A program with arguments (never a shell string), run in the worktree.
    Command(Vec<String>),
    /// The built-in UTF-8 check of these files (relative to the worktree), run in-process.
    Utf8Check(Vec<PathBuf>),
}

/// One verification step for one worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// Short name for reports (`pytest`, `ruff`, `cargo test`, or the explicit argv).
    pub name: String,
    pub origin: GateOrigin,
    pub spec: GateSpec,
}

/// How the built-in UTF-8 check shows in reports and logs.
pub const UTF8_CHECK_PROGRAM: &str = "builtin:utf8-check";

impl Gate {
    fn auto(name: &str, argv: Vec<String>) -> Gate {
        Gate {
            name: name.to_owned(),
            origin: GateOrigin::Auto,
            spec: GateSpec::Command(argv),
        }
    }

    /// The gate as words: its argv, or `builtin:utf8-check <files>`.
    pub fn words(&self) -> Vec<String> {
        match &self.spec {
            GateSpec::Command(argv) => argv.clone(),
            GateSpec::Utf8Check(files) => std::iter::once(UTF8_CHECK_PROGRAM.to_owned())
                .chain(files.iter().map(|f| f.display().to_string()))
                .collect(),
        }
    }
}

/// Select the gates of one worktree.
///
/// `explicit` (the repository's `[gates.repos."owner/name"] commands`) wins when given, even when
/// empty. Otherwise, from `facts` and `changed` (paths relative to the worktree that exist in it:
/// added, modified, renamed-to):
///
/// - a change touching only documentation gets only the UTF-8 check of its text files;
/// - a Python change in a repository with a locked dev set gets `pytest -p no:cacheprovider`
///   when Python tests exist and the dev set has pytest, else `python3 -m compileall -q` over
///   the changed `.py` files; plus `ruff check --no-cache --force-exclude` and
///   `mypy --no-incremental --cache-dir=/dev/null` over the changed Python files when the dev
///   set has them; without a locked dev set, `python3 -m compileall -q` over the changed files;
/// - a Rust change in a Cargo repository gets `cargo test` (`--locked` with a `Cargo.lock`);
/// - a JavaScript change in a repository with an npm `test` script gets `npm test`;
/// - changed documentation files also get the UTF-8 check in a mixed change;
/// - a changed file of no particular kind (`data.json`, `Makefile`) counts as a change to every
///   ecosystem the repository has.
///
/// No changed path, no auto-selected gate.
pub fn select(
    facts: &RepoFacts,
    changed: &[PathBuf],
    explicit: Option<&[Vec<String>]>,
) -> Vec<Gate> {
    if let Some(explicit) = explicit {
        return explicit
            .iter()
            .map(|argv| Gate {
                name: shell_join(argv),
                origin: GateOrigin::Explicit,
                spec: GateSpec::Command(argv.clone()),
            })
            .collect();
    }
    let changed: BTreeSet<&PathBuf> = changed.iter().collect();
    let classified: Vec<(Kind, &PathBuf)> = changed.iter().map(|p| (classify(p), *p)).collect();
    let touched = |k: Kind| classified.iter().any(|(c, _)| *c == k);
    let other = touched(Kind::Other);
    let mut gates = Vec::new();

    if (touched(Kind::Python) || other) && (facts.pyproject || touched(Kind::Python)) {
        python_gates(facts, &classified, &mut gates);
    }
    if facts.cargo && (touched(Kind::Rust) || other) {
        let mut argv = words(&["cargo", "test"]);
        if facts.cargo_lock {
            argv.push("--locked".to_owned());
        }
        gates.push(Gate::auto("cargo test", argv));
    }
    if facts.npm_test && (touched(Kind::Node) || other) {
        gates.push(Gate::auto("npm test", words(&["npm", "test"])));
    }
    let docs: Vec<PathBuf> = classified
        .iter()
        .filter(|(k, p)| *k == Kind::Docs && !has_binary_extension(p))
        .map(|(_, p)| (*p).clone())
        .collect();
    if !docs.is_empty() {
        gates.push(Gate {
            name: "utf8-check".to_owned(),
            origin: GateOrigin::Auto,
            spec: GateSpec::Utf8Check(docs),
        });
    }
    gates
}

fn python_gates(facts: &RepoFacts, classified: &[(Kind, &PathBuf)], gates: &mut Vec<Gate>) {
    let python_files = |exts: &[&str]| -> Vec<String> {
        classified
            .iter()
            .filter(|(_, p)| extension(p).is_some_and(|e| exts.contains(&e.as_str())))
            .filter_map(|(_, p)| file_arg(p))
            .collect()
    };
    let sources = python_files(&["py"]);
    let lintable = python_files(&["py", "pyi"]);
    let compileall = |gates: &mut Vec<Gate>| {
        if !sources.is_empty() {
            let mut argv = words(&["python3", "-m", "compileall", "-q"]);
            argv.extend(sources.iter().cloned());
            gates.push(Gate::auto("compileall", argv));
        }
    };
    if !facts.runs_python_through_uv() {
        compileall(gates);
        return;
    }
    if facts.python_tests && facts.dev_requires("pytest") {
        gates.push(Gate::auto(
            "pytest",
            words(&["pytest", "-p", "no:cacheprovider"]),
        ));
    } else {
        compileall(gates);
    }
    if facts.dev_requires("ruff") && !lintable.is_empty() {
        let mut argv = words(&["ruff", "check", "--no-cache", "--force-exclude"]);
        argv.extend(lintable.iter().cloned());
        gates.push(Gate::auto("ruff", argv));
    }
    if facts.dev_requires("mypy") && !lintable.is_empty() {
        let mut argv = words(&["mypy", "--no-incremental", "--cache-dir=/dev/null"]);
        argv.extend(lintable.iter().cloned());
        gates.push(Gate::auto("mypy", argv));
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// A path as a program argument: `./` in front of a name that would read as an option; `None`
/// for a name that is not UTF-8 (gate argvs are strings).
fn file_arg(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    Some(if s.starts_with('-') {
        format!("./{s}")
    } else {
        s.to_owned()
    })
}

/// What a changed path is a change to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Docs,
    Python,
    Rust,
    Node,
    Other,
}

const DOC_EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "rst", "txt", "adoc", "asciidoc", "org", "textile", "rdoc",
];
const DOC_NAMES: &[&str] = &[
    "readme",
    "license",
    "licence",
    "copying",
    "changelog",
    "changes",
    "news",
    "notice",
    "authors",
    "contributors",
    "contributing",
];
const BINARY_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "ico", "bmp", "tif", "tiff", "pdf", "zip", "gz", "tgz",
    "xz", "bz2", "woff", "woff2", "ttf", "otf", "eot", "mp3", "mp4", "mov", "webm", "wav", "ogg",
    "psd", "ai", "sketch", "pyc",
];

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn has_binary_extension(path: &Path) -> bool {
    extension(path).is_some_and(|e| BINARY_EXTENSIONS.contains(&e.as_str()))
}

fn classify(path: &Path) -> Kind {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match name.as_str() {
        "pyproject.toml" | "uv.lock" | "setup.cfg" | "tox.ini" | "pytest.ini" => {
            return Kind::Python;
        }
        n if n.starts_with("requirements") && n.ends_with(".txt") => return Kind::Python,
        "cargo.toml" | "cargo.lock" | "rust-toolchain" | "rust-toolchain.toml" => {
            return Kind::Rust;
        }
        "package.json"
        | "package-lock.json"
        | "npm-shrinkwrap.json"
        | "yarn.lock"
        | "pnpm-lock.yaml"
        | "tsconfig.json" => return Kind::Node,
        _ => {}
    }
    match extension(path).as_deref() {
        Some("py" | "pyi") => return Kind::Python,
        Some("rs") => return Kind::Rust,
        Some("js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "mts" | "cts" | "vue" | "svelte") => {
            return Kind::Node;
        }
        Some(e) if DOC_EXTENSIONS.contains(&e) => return Kind::Docs,
        _ => {}
    }
    let stem = name.split('.').next().unwrap_or("");
    let in_docs_folder = path
        .components()
        .next()
        .is_some_and(|c| matches!(c.as_os_str().to_str(), Some("docs" | "doc")));
    if DOC_NAMES.contains(&stem) || in_docs_folder {
        Kind::Docs
    } else {
        Kind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_repo() -> RepoFacts {
        RepoFacts {
            pyproject: true,
            dev_group: true,
            uv_lock: true,
            python_tests: true,
            dev_requirements: ["pytest", "ruff", "mypy"].map(String::from).into(),
            ..RepoFacts::default()
        }
    }

    fn paths(p: &[&str]) -> Vec<PathBuf> {
        p.iter().map(PathBuf::from).collect()
    }

    fn shown(gates: &[Gate]) -> Vec<String> {
        gates.iter().map(|g| shell_join(&g.words())).collect()
    }

    #[test]
    fn explicit_gates_win_even_when_empty() {
        let explicit = vec![vec!["make".to_owned(), "check".to_owned()]];
        let gates = select(&python_repo(), &paths(&["a.py"]), Some(&explicit));
        assert_eq!(shown(&gates), ["make check"]);
        assert_eq!(gates[0].origin, GateOrigin::Explicit);
        assert!(select(&python_repo(), &paths(&["a.py"]), Some(&[])).is_empty());
    }

    #[test]
    fn python_change_with_tests_and_tools() {
        let gates = select(
            &python_repo(),
            &paths(&["src/pkg/a.py", "src/pkg/a.pyi"]),
            None,
        );
        assert_eq!(
            shown(&gates),
            [
                "pytest -p no:cacheprovider",
                "ruff check --no-cache --force-exclude src/pkg/a.py src/pkg/a.pyi",
                "mypy --no-incremental --cache-dir=/dev/null src/pkg/a.py src/pkg/a.pyi",
            ]
        );
    }

    #[test]
    fn python_change_without_tests_compiles_the_changed_files() {
        let facts = RepoFacts {
            python_tests: false,
            dev_requirements: BTreeSet::new(),
            ..python_repo()
        };
        let gates = select(
            &facts,
            &paths(&["b.py", "a.py", "-odd.py", "notes.md"]),
            None,
        );
        assert_eq!(
            shown(&gates),
            [
                "python3 -m compileall -q ./-odd.py a.py b.py",
                "builtin:utf8-check notes.md"
            ]
        );
        // Tests exist but pytest is not in the dev set: nothing would run them.
        let no_pytest = RepoFacts {
            dev_requirements: ["ruff".to_owned()].into(),
            ..python_repo()
        };
        assert_eq!(
            shown(&select(&no_pytest, &paths(&["a.py"]), None)),
            [
                "python3 -m compileall -q a.py",
                "ruff check --no-cache --force-exclude a.py"
            ]
        );
    }

    #[test]
    fn python_change_without_locked_dev_set() {
        let facts = RepoFacts {
            uv_lock: false,
            ..python_repo()
        };
        assert_eq!(
            shown(&select(&facts, &paths(&["a.py"]), None)),
            ["python3 -m compileall -q a.py"]
        );
        let plain = RepoFacts::default();
        assert_eq!(
            shown(&select(&plain, &paths(&["tool.py"]), None)),
            ["python3 -m compileall -q tool.py"]
        );
    }

    #[test]
    fn non_python_changes_in_a_python_repo() {
        // A data file may break tests: it counts as a change to every ecosystem present.
        assert_eq!(
            shown(&select(&python_repo(), &paths(&["data/cases.json"]), None)),
            ["pytest -p no:cacheprovider"]
        );
        assert_eq!(
            shown(&select(&python_repo(), &paths(&["pyproject.toml"]), None)),
            ["pytest -p no:cacheprovider"]
        );
    }

    #[test]
    fn docs_only_change_gets_only_the_utf8_check() {
        let gates = select(
            &python_repo(),
            &paths(&[
                "README.md",
                "docs/guide.rst",
                "docs/img/logo.png",
                "LICENSE",
                "CHANGELOG",
            ]),
            None,
        );
        assert_eq!(
            shown(&gates),
            ["builtin:utf8-check CHANGELOG LICENSE README.md docs/guide.rst"]
        );
        assert!(matches!(gates[0].spec, GateSpec::Utf8Check(_)));
    }

    #[test]
    fn rust_and_node_repositories() {
        let rust = RepoFacts {
            cargo: true,
            cargo_lock: true,
            ..RepoFacts::default()
        };
        assert_eq!(
            shown(&select(&rust, &paths(&["src/lib.rs"]), None)),
            ["cargo test --locked"]
        );
        let unlocked = RepoFacts {
            cargo_lock: false,
            ..rust.clone()
        };
        assert_eq!(
            shown(&select(&unlocked, &paths(&["Cargo.toml"]), None)),
            ["cargo test"]
        );
        assert!(
            select(&rust, &paths(&["README.md"]), None)
                .iter()
                .all(|g| g.name == "utf8-check")
        );
        let node = RepoFacts {
            npm_test: true,
            ..RepoFacts::default()
        };
        assert_eq!(
            shown(&select(&node, &paths(&["src/app.ts"]), None)),
            ["npm test"]
        );
        assert!(select(&node, &paths(&["src/lib.rs"]), None).is_empty());
    }

    #[test]
    fn selection_is_per_repository() {
        let changed = paths(&["src/a.py", "src/lib.rs"]);
        let python = select(&python_repo(), &changed, None);
        let rust = select(
            &RepoFacts {
                cargo: true,
                ..RepoFacts::default()
            },
            &changed,
            None,
        );
        assert_ne!(shown(&python), shown(&rust));
        assert!(shown(&rust).contains(&"cargo test".to_owned()));
        assert!(!shown(&python).iter().any(|g| g.starts_with("cargo")));
    }

    #[test]
    fn nothing_changed_nothing_selected() {
        assert!(select(&python_repo(), &[], None).is_empty());
    }
}
