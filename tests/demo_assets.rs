//! The assets `issueloop demo` builds its sandbox from (`examples/demo/`): the configuration
//! validates and arranges the three outcomes, the issues parse, and the fake agent makes each
//! change and reports it in Claude Code's stream format, with the project's gates passing.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]
#![expect(
    clippy::disallowed_types,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use issueloop_config::{BackendKind, ForgeKind, Stage};

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

fn load_demo_config(sandbox: &Path) -> issueloop_config::Config {
    let template =
        std::fs::read_to_string(demo_dir().join("issueloop.toml")).expect("read demo config");
    let sandbox_str = sandbox.to_str().expect("utf-8 temp path");
    let text = template.replace("@SANDBOX@", sandbox_str);
    let path = sandbox.join("issueloop.toml");
    issueloop_config::load_str(&text, &path).unwrap_or_else(|e| panic!("demo config: {e}"))
}

#[test]
fn demo_config_arranges_the_three_outcomes() {
    let sandbox = tempfile::tempdir().expect("temp dir");
    let config = load_demo_config(sandbox.path());
    assert_eq!(config.forge.kind, ForgeKind::Local);
    assert_eq!(config.forge.local_path, sandbox.path().join("forge"));
    assert_eq!(
        config.runtime_profile.resolve(Stage::Execute),
        BackendKind::Command
    );
    let command = config.backend(BackendKind::Command);
    assert_eq!(
        command.argv,
        Some(vec![
            "python3".to_owned(),
            format!("{}/agent.py", sandbox.path().display())
        ])
    );
    assert_eq!(command.format.as_deref(), Some("claude_code"));

    // Two runs at the default budget use up the cap exactly; the third finds nothing left.
    let budget = &config.budget;
    assert_eq!(
        budget.default.cost_usd + budget.default.cost_usd,
        budget.daily_cap_usd
    );
    assert!(
        budget.max_runs_per_day >= 3,
        "the run count must not be what stops issue 3"
    );
    assert!(budget.min_useful_usd < budget.default.cost_usd);
    assert!(
        config.service.max_concurrent_runs >= 3,
        "all three issues in one tick"
    );

    // The second issue's change is refused by the default policy.
    let repo = config.repos.first().expect("one repo");
    let policy = config.policy.for_repo(Some(repo));
    assert!(
        policy.denied_paths.iter().any(|g| g == ".github/**"),
        "`.github/workflows/ci.yml` must be denied: {:?}",
        policy.denied_paths
    );
}

/// `(title, labels, body)` of an issue file with `title:` and `labels: [...]` front matter.
fn parse_issue(text: &str) -> (String, Vec<String>, String) {
    let rest = text.strip_prefix("---\n").expect("front matter opens");
    let (front, body) = rest.split_once("\n---\n").expect("front matter closes");
    let mut title = None;
    let mut labels = Vec::new();
    for line in front.lines() {
        if let Some(t) = line.strip_prefix("title: ") {
            title = Some(t.to_owned());
        } else if let Some(l) = line.strip_prefix("labels: ") {
            labels = l
                .trim_matches(['[', ']'])
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect();
        }
    }
    (title.expect("a title"), labels, body.to_owned())
}

fn issues() -> Vec<(String, String, Vec<String>, String)> {
    let mut files: Vec<_> = std::fs::read_dir(demo_dir().join("issues"))
        .expect("issues dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let (title, labels, body) =
                parse_issue(&std::fs::read_to_string(&p).expect("read issue"));
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, title, labels, body)
        })
        .collect()
}

#[test]
fn demo_issues_are_approved_and_ordered() {
    let issues = issues();
    let names: Vec<_> = issues.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "1-add-slugify.md",
            "2-test-python-3-13-in-ci.md",
            "3-add-truncate-words.md"
        ]
    );
    for (name, title, labels, body) in &issues {
        assert!(!title.is_empty(), "{name}");
        assert_eq!(labels, &["loop:approved"], "{name}");
        assert!(body.contains("## Acceptance criteria"), "{name}");
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let empty = dir.join("..").join("empty-gitconfig");
    std::fs::write(&empty, "").expect("empty git config");
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", &empty)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 git output")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Run the agent in `worktree` with `brief` the way the `command` backend does; returns the
/// parsed stream.
fn run_agent(worktree: &Path, brief: &str) -> (bool, Vec<serde_json::Value>) {
    let brief_file = worktree.join("..").join("brief.md");
    std::fs::write(&brief_file, brief).expect("write brief");
    let mut child = Command::new("python3")
        .arg(demo_dir().join("agent.py"))
        .current_dir(worktree)
        .env("ISSUELOOP_BRIEF_FILE", &brief_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(brief.as_bytes()).expect("send brief");
    }
    let out = child.wait_with_output().expect("agent finishes");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stream");
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect();
    (out.status.success(), events)
}

#[test]
fn the_agent_makes_each_change_and_reports_a_cost() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let project = tmp.path().join("project");
    copy_dir(&demo_dir().join("project"), &project);
    git(&project, &["init", "-q", "-b", "main"]);
    git(&project, &["add", "-A"]);
    git(&project, &["commit", "-q", "-m", "textkit"]);

    let expected_changes = [
        "M  src/textkit/__init__.py\nA  src/textkit/slugify.py\nA  tests/test_slugify.py\n",
        "M  .github/workflows/ci.yml\n",
        "M  src/textkit/words.py\nA  tests/test_truncate.py\n",
    ];
    for ((name, title, _, body), expected) in issues().into_iter().zip(expected_changes) {
        let brief = format!("# {title}\n\n{body}\n\nDenied paths: `.github/**`, `.git/**`\n");
        for attempt in 0..2 {
            let (ok, events) = run_agent(&project, &brief);
            assert!(ok, "{name}: agent failed");
            assert_eq!(events.first().map(|e| &e["subtype"]), Some(&"init".into()));
            let result = events.last().expect("a result frame");
            assert_eq!(result["type"], "result", "{name}");
            assert_eq!(result["subtype"], "success", "{name}");
            assert_eq!(result["is_error"], false, "{name}");
            assert_eq!(result["total_cost_usd"], 0.5, "{name}");
            git(&project, &["add", "-A"]);
            // A second attempt (a repair after failing gates) changes nothing more.
            assert_eq!(
                git(&project, &["status", "--porcelain"]),
                expected,
                "{name}, attempt {attempt}"
            );
        }
        git(&project, &["reset", "-q", "--hard"]);
        git(&project, &["clean", "-q", "-fd"]);
    }

    let (ok, events) = run_agent(&project, "Rewrite everything in Rust");
    assert!(!ok, "an unknown issue fails");
    let result = events.last().expect("a result frame");
    assert_eq!(result["is_error"], true);
    assert_eq!(git(&project, &["status", "--porcelain"]), "");
}

#[test]
fn the_project_gates_pass_after_the_change() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let project = tmp.path().join("project");
    copy_dir(&demo_dir().join("project"), &project);
    let (_, _, _, body) = issues().into_iter().next().expect("first issue");
    let (ok, _) = run_agent(&project, &body);
    assert!(ok);
    let out = Command::new("uv")
        .args([
            "run",
            "--locked",
            "--group",
            "dev",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
        ])
        .current_dir(&project)
        .env("UV_PROJECT_ENVIRONMENT", tmp.path().join("venv"))
        .output()
        .expect("uv runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 passed"));
}
