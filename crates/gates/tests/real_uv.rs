//! Gates against real `uv` in throwaway projects of each kind (dependency group, optional extra,
//! legacy `dev-dependencies`, no dev set): every prepared gate that should pass exits 0, `uv.lock`
//! is byte-identical afterwards and `git status --porcelain` is empty.
//!
//! uv's cache is shared by all these tests (under cargo's target folder), so pytest is downloaded
//! once per machine.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use issueloop_config::AllowRule;
use issueloop_gates::{GateStatus, RepoFacts, plan, run_gates, select};
use support::Repo;

fn uv_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache")
}

const PASSING_TEST: &str = "import unittest\n\n\nclass Arithmetic(unittest.TestCase):\n    def test_adds(self):\n        self.assertEqual(1 + 1, 2)\n";
const MODULE: &str = "def add(a, b):\n    return a + b\n";

fn pyproject(name: &str, dev_section: &str) -> String {
    format!(
        "[project]\nname = \"{name}\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = []\n{dev_section}"
    )
}

/// A committed project with `uv.lock` made by `uv lock`.
async fn project(name: &str, dev_section: &str) -> Repo {
    let repo = Repo::new(&[
        ("pyproject.toml", &pyproject(name, dev_section)),
        ("calc.py", MODULE),
        ("tests/test_calc.py", PASSING_TEST),
        ("README.md", "# calc\n"),
    ]);
    let mut uv = tokio::process::Command::new("uv");
    uv.args(["lock", "--quiet"])
        .current_dir(repo.path())
        .env("UV_CACHE_DIR", uv_cache())
        .env_remove("VIRTUAL_ENV")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), uv.output())
        .await
        .expect("`uv lock` finishes")
        .expect("`uv` is installed");
    assert!(
        out.status.success(),
        "uv lock: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.commit_all();
    repo
}

/// Select (or take `explicit`), prepare, check and run the gates for a change to `calc.py` and
/// `README.md`; every gate must pass and leave the checkout exactly as it was.
async fn gates_pass_and_leave_nothing(
    repo: &Repo,
    explicit: Option<&[Vec<String>]>,
    want: &[&str],
) {
    let facts = RepoFacts::scan(repo.path()).expect("facts");
    let changed = [PathBuf::from("calc.py"), PathBuf::from("README.md")];
    let gates = select(&facts, &changed, explicit);
    let planned = plan(
        &gates,
        &facts,
        &issueloop_config::builtin_policy().allowlist,
    );
    let lock_before = std::fs::read(repo.path().join("uv.lock")).unwrap();
    let mut opts = repo.run_options();
    opts.env
        .set("UV_CACHE_DIR", uv_cache().display().to_string());
    let report = run_gates(repo.path(), &planned, &opts).await.unwrap();
    let commands: Vec<&str> = report.results.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, want);
    for r in &report.results {
        assert_eq!(
            r.status,
            GateStatus::Passed,
            "`{}`: {:?}\n{}",
            r.command,
            r.reason,
            r.output
        );
        assert!(
            r.left_files.is_empty(),
            "`{}` left {:?}",
            r.command,
            r.left_files
        );
    }
    assert!(report.passed());
    assert_eq!(
        std::fs::read(repo.path().join("uv.lock")).unwrap(),
        lock_before,
        "uv.lock changed"
    );
    assert_eq!(repo.status(), "", "git status is not empty");
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn dependency_group() {
    let repo = project("group-kind", "\n[dependency-groups]\ndev = [\"pytest\"]\n").await;
    gates_pass_and_leave_nothing(
        &repo,
        None,
        &[
            "uv run --locked --group dev pytest -p no:cacheprovider",
            "builtin:utf8-check README.md",
        ],
    )
    .await;
    let explicit = [
        argv(&["python", "-m", "pytest", "-p", "no:cacheprovider", "-q"]),
        argv(&["python3", "-m", "compileall", "-q", "calc.py"]),
        argv(&[
            "uv",
            "run",
            "--only-group=dev",
            "python",
            "-m",
            "unittest",
            "discover",
            "-s",
            "tests",
        ]),
    ];
    gates_pass_and_leave_nothing(
        &repo,
        Some(&explicit),
        &[
            "uv run --locked --group dev python -m pytest -p no:cacheprovider -q",
            "uv run --locked --group dev python3 -m compileall -q calc.py",
            "uv run --locked --only-group=dev python -m unittest discover -s tests",
        ],
    )
    .await;
}

#[tokio::test]
async fn optional_extra() {
    let repo = project(
        "extra-kind",
        "\n[project.optional-dependencies]\ndev = [\"pytest\"]\n",
    )
    .await;
    gates_pass_and_leave_nothing(
        &repo,
        None,
        &[
            "uv run --locked --extra dev pytest -p no:cacheprovider",
            "builtin:utf8-check README.md",
        ],
    )
    .await;
}

#[tokio::test]
async fn legacy_dev_dependencies() {
    let repo = project(
        "legacy-kind",
        "\n[tool.uv]\ndev-dependencies = [\"pytest\"]\n",
    )
    .await;
    gates_pass_and_leave_nothing(
        &repo,
        None,
        &[
            "uv run --locked --group dev pytest -p no:cacheprovider",
            "builtin:utf8-check README.md",
        ],
    )
    .await;
}

#[tokio::test]
async fn no_dev_set() {
    let repo = project("plain-kind", "").await;
    gates_pass_and_leave_nothing(
        &repo,
        None,
        &[
            "python3 -m compileall -q calc.py",
            "builtin:utf8-check README.md",
        ],
    )
    .await;
    let explicit = [argv(&[
        "uv", "run", "python", "-m", "unittest", "discover", "-s", "tests",
    ])];
    gates_pass_and_leave_nothing(
        &repo,
        Some(&explicit),
        &["uv run --locked python -m unittest discover -s tests"],
    )
    .await;
}

#[tokio::test]
async fn a_stale_lock_fails_the_gate_instead_of_being_rewritten() {
    let repo = project("stale-kind", "\n[dependency-groups]\ndev = [\"pytest\"]\n").await;
    // The change adds a dependency without locking it.
    repo.write(
        "pyproject.toml",
        &pyproject(
            "stale-kind",
            "\n[dependency-groups]\ndev = [\"pytest\", \"iniconfig\"]\n",
        ),
    );
    let lock_before = std::fs::read(repo.path().join("uv.lock")).unwrap();
    let facts = RepoFacts::scan(repo.path()).unwrap();
    let planned = plan(
        &select(&facts, &[PathBuf::from("pyproject.toml")], None),
        &facts,
        &issueloop_config::builtin_policy().allowlist,
    );
    let mut opts = repo.run_options();
    opts.env
        .set("UV_CACHE_DIR", uv_cache().display().to_string());
    let report = run_gates(repo.path(), &planned, &opts).await.unwrap();
    let r = &report.results[0];
    assert_eq!(
        r.command,
        "uv run --locked --group dev pytest -p no:cacheprovider"
    );
    assert_eq!(r.status, GateStatus::Failed, "{}", r.output);
    assert!(r.output.contains("needs to be updated"), "{}", r.output);
    assert_eq!(
        std::fs::read(repo.path().join("uv.lock")).unwrap(),
        lock_before
    );
    assert!(r.left_files.is_empty());
}

#[tokio::test]
async fn a_command_uv_cannot_find_is_not_found() {
    let repo = project("missing-kind", "").await;
    let mut rules = issueloop_config::builtin_policy().allowlist;
    rules.push(AllowRule {
        program: "no-such-tool-issueloop".into(),
        subcommands: None,
        options: Vec::new(),
        source: "tests".into(),
    });
    let facts = RepoFacts::scan(repo.path()).unwrap();
    let explicit = [argv(&["uv", "run", "no-such-tool-issueloop", "--check"])];
    let planned = plan(&select(&facts, &[], Some(&explicit)), &facts, &rules);
    let mut opts = repo.run_options();
    opts.env
        .set("UV_CACHE_DIR", uv_cache().display().to_string());
    let report = run_gates(repo.path(), &planned, &opts).await.unwrap();
    let r = &report.results[0];
    assert_eq!(r.command, "uv run --locked no-such-tool-issueloop --check");
    assert_eq!(r.status, GateStatus::NotFound, "{}", r.output);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("found no `no-such-tool-issueloop`")
    );
    assert_eq!(repo.status(), "");
}
