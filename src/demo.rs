//! `issueloop demo`: builds a throwaway sandbox (a local forge whose remote is a small Python
//! project, three labelled issues, a stand-in agent for the `command` backend) from the files in
//! `examples/demo/`, compiled into the binary so the demo works from any directory.

use std::path::{Path, PathBuf};

/// The demo's files, relative to `examples/demo/`.
const ASSETS: &[(&str, &str)] = &[
    ("agent.py", include_str!("../examples/demo/agent.py")),
    (
        "issueloop.toml",
        include_str!("../examples/demo/issueloop.toml"),
    ),
];

/// The project that becomes the remote repository, relative to `examples/demo/project/`.
const PROJECT: &[(&str, &str)] = &[
    (
        ".github/workflows/ci.yml",
        include_str!("../examples/demo/project/.github/workflows/ci.yml"),
    ),
    (
        ".gitignore",
        include_str!("../examples/demo/project/.gitignore"),
    ),
    (
        "pyproject.toml",
        include_str!("../examples/demo/project/pyproject.toml"),
    ),
    (
        "src/textkit/__init__.py",
        include_str!("../examples/demo/project/src/textkit/__init__.py"),
    ),
    (
        "src/textkit/words.py",
        include_str!("../examples/demo/project/src/textkit/words.py"),
    ),
    (
        "tests/test_words.py",
        include_str!("../examples/demo/project/tests/test_words.py"),
    ),
    ("uv.lock", include_str!("../examples/demo/project/uv.lock")),
];

/// The issues, oldest first.
const ISSUES: &[&str] = &[
    include_str!("../examples/demo/issues/1-add-slugify.md"),
    include_str!("../examples/demo/issues/2-test-python-3-13-in-ci.md"),
    include_str!("../examples/demo/issues/3-add-truncate-words.md"),
];

/// The demo repository's name on the local forge.
pub const DEMO_REPO: &str = "demo/textkit";
/// The maintainer who labelled the demo issues (write permission, so the labels are trusted).
const MAINTAINER: &str = "maintainer";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the demo repository: {0}")]
    Git(#[from] issueloop_workspace::WorkspaceError),
    #[error("demo issue {number} has no `title:` line in its front matter")]
    BadIssue { number: usize },
}

/// What [`build_sandbox`] made.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub remote: PathBuf,
    pub forge: PathBuf,
    /// `uv` was not found, so the gate is `python3 -m compileall` instead of pytest through uv.
    pub without_uv: bool,
}

/// Write the sandbox into `dir` (which should be empty).
pub fn build_sandbox(dir: &Path, uv_available: bool) -> Result<Sandbox, DemoError> {
    let dir = std::path::absolute(dir).map_err(|source| DemoError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for (name, text) in ASSETS {
        let text = text.replace("@SANDBOX@", &dir.display().to_string());
        write(&dir.join(name), &text)?;
    }
    let config = dir.join("issueloop.toml");
    if !uv_available {
        // Without uv the project's locked dev set cannot be used: byte-compile instead, and
        // say so in the configuration a person will read.
        let mut text = std::fs::read_to_string(&config).map_err(|source| DemoError::Io {
            path: config.clone(),
            source,
        })?;
        text.push_str(&format!(
            "\n# `uv` was not found when this sandbox was built: the gate byte-compiles the code\n\
             # instead of running the tests through `uv run --locked --group dev pytest`.\n\
             [gates.repos.\"{DEMO_REPO}\"]\n\
             commands = [[\"python3\", \"-m\", \"compileall\", \"-q\", \"src\", \"tests\"]]\n"
        ));
        write(&config, &text)?;
    }

    let remote = dir.join("textkit.git");
    seed_repository(&remote)?;

    let forge = dir.join("forge");
    let repo_dir = forge.join(DEMO_REPO);
    write(
        &repo_dir.join("repo.toml"),
        &format!(
            "# The demo repository: its git remote, and who may do what.\n\
             remote = \"../../../textkit.git\"\n\
             default_branch = \"main\"\n\
             bot = \"issueloop\"\n\n\
             [permissions]\n\
             {MAINTAINER} = \"maintain\"\n"
        ),
    )?;
    let base = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    for (i, source) in ISSUES.iter().enumerate() {
        let number = i + 1;
        let (title, labels, body) = parse_issue(source).ok_or(DemoError::BadIssue { number })?;
        let created = base + jiff::SignedDuration::from_mins(i as i64);
        let labelled = created + jiff::SignedDuration::from_secs(30);
        let mut text = String::from("+++\n");
        text.push_str(&format!("title = {}\n", toml_string(&title)));
        text.push_str("state = \"open\"\n");
        text.push_str(&format!("author = \"{MAINTAINER}\"\n"));
        text.push_str(&format!("created_at = \"{created}\"\n"));
        text.push_str(&format!(
            "labels = [{}]\n",
            labels
                .iter()
                .map(|l| toml_string(l))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for label in &labels {
            text.push_str(&format!(
                "\n[[events]]\nlabel = {}\nactor = \"{MAINTAINER}\"\nat = \"{labelled}\"\naction = \"labeled\"\n",
                toml_string(label)
            ));
        }
        text.push_str("+++\n");
        text.push_str(body.trim_start());
        write(&repo_dir.join("issues").join(format!("{number}.md")), &text)?;
    }
    Ok(Sandbox {
        dir,
        config,
        remote,
        forge,
        without_uv: !uv_available,
    })
}

/// `title:` and `labels: [a, b]` front matter between `---` lines, then the body.
fn parse_issue(source: &str) -> Option<(String, Vec<String>, String)> {
    let rest = source.strip_prefix("---\n")?;
    let (front, body) = rest.split_once("\n---\n")?;
    let mut title = None;
    let mut labels = Vec::new();
    for line in front.lines() {
        if let Some(t) = line.strip_prefix("title:") {
            title = Some(t.trim().to_owned());
        } else if let Some(l) = line.strip_prefix("labels:") {
            labels = l
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    Some((title?, labels, body.to_owned()))
}

fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_owned()
}

/// The project as a bare git repository (a remote, as on a forge) with one commit on `main`.
fn seed_repository(path: &Path) -> Result<(), DemoError> {
    let who = issueloop_workspace::Identity {
        name: "textkit maintainers".into(),
        email: "maintainers@textkit.invalid".into(),
    };
    issueloop_workspace::seed_bare_repository(path, PROJECT, &who, "textkit: words helpers")?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    let io = |source| DemoError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_issue_parses() {
        for (i, source) in ISSUES.iter().enumerate() {
            let (title, labels, body) =
                parse_issue(source).unwrap_or_else(|| panic!("issue {}", i + 1));
            assert!(!title.is_empty());
            assert_eq!(labels, ["loop:approved"]);
            assert!(body.contains("## Acceptance"));
        }
    }

    #[test]
    fn sandbox_loads_as_a_valid_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = build_sandbox(dir.path(), false).unwrap();
        let config = issueloop_config::load_file(&sandbox.config).unwrap();
        assert_eq!(config.repos[0].full(), DEMO_REPO);
        assert!(
            config.gates.repos.values().next().is_some(),
            "fallback gate without uv"
        );
        let main = issueloop_workspace::hermetic::git_command(&sandbox.remote)
            .args(["rev-parse", "--verify", "refs/heads/main"])
            .output()
            .unwrap();
        assert!(main.status.success(), "the remote has `main`");
        assert!(sandbox.forge.join("demo/textkit/issues/3.md").exists());
    }
}
