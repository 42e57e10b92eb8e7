//! Snapshots of what the binary wrote (the job summary, comments, PR records, `runs show`), with
//! the parts that vary between runs replaced: the world's temporary folder, run ids, commit SHAs,
//! timestamps and durations.

use super::World;

/// insta settings for the world `w`: its filters, and the snapshots next to the test file.
pub fn settings(w: &World) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_snapshot_path("snapshots");
    let root = w.root().display().to_string();
    // The folder itself (and through a symlinked /tmp), before anything else matches inside it.
    s.add_filter(&regex_escape(&root), "[ROOT]");
    if let Ok(real) = w.root().canonicalize() {
        s.add_filter(&regex_escape(&real.display().to_string()), "[ROOT]");
    }
    // A fake GitHub's address.
    s.add_filter(r"127\.0\.0\.1:\d+", "[HOST]");
    // Run ids (`20250102T030405Z-acme-app-1-7be1bf`), before the timestamps inside them.
    s.add_filter(r"\b\d{8}T\d{6}Z-[0-9A-Za-z._-]+-[0-9a-f]{6}\b", "[RUN_ID]");
    s.add_filter(r"\b[0-9a-f]{40}\b", "[SHA]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
        "[TIME]",
    );
    s.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?( UTC)?", "[TIME]");
    // `runs show`'s event times.
    s.add_filter(r"(?m)^\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[TIME]");
    s.add_filter(r"\b\d{4}-\d{2}-\d{2}\b", "[DAY]");
    // `1.2s`, `950ms`, `2m 05s`, `1h 02m`.
    s.add_filter(r"\b\d+(\.\d+)?(ms|µs|s|m|h)( \d+(s|m))?\b", "[DURATION]");
    // A run's worktree folder ends in random characters.
    s.add_filter(
        r"worktrees/([^/\s]+)/([^/\s]+)/[^/\s]+",
        "worktrees/$1/$2/[WORKTREE]",
    );
    // Concurrent runs open their PRs in any order.
    s.add_filter(r"pulls/\d+\.md", "pulls/[N].md");
    // `runs show`: a gate's time (the truncated rest of its line moves with its digits), and the
    // sandbox, which depends on the machine's kernel.
    s.add_filter(r"duration_ms=\d+[^\n]*", "duration_ms=[MS] …");
    s.add_filter(r"(?m)^(\[TIME\]  sandbox +).*$", "$1[MACHINE]");
    s
}

/// `run --once --json` with `$GITHUB_STEP_SUMMARY` set: the exit code, the JSON report, stderr,
/// and the job summary the binary appended to the file.
pub fn run_once_with_summary(
    w: &World,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String, String) {
    run_with_summary(w, w.command(), extra)
}

/// [`run_once_with_summary`] with the command `cmd` (e.g. a fake GitHub's, carrying its token).
pub fn run_with_summary(
    w: &World,
    mut cmd: assert_cmd::Command,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String, String) {
    let summary = w.root().join("step-summary.md");
    let _ = std::fs::remove_file(&summary);
    let out = cmd
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--json", "run", "--once"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let markdown = std::fs::read_to_string(&summary).unwrap_or_default();
    (out.status.code(), json, stderr, markdown)
}

/// `issueloop runs show <run_id>`'s standard output.
pub fn runs_show(w: &World, run_id: &str) -> String {
    let out = w.command().args(["runs", "show", run_id]).output().unwrap();
    assert!(
        out.status.success(),
        "runs show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
