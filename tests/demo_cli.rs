//! `issueloop demo` through the real binary: one tick in a fresh sandbox ends with a draft PR,
//! a policy refusal and a daily-cap skip, and says where to look.

use assert_cmd::Command;

#[test]
fn demo_shows_the_three_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sandbox");
    let out = Command::cargo_bin("issueloop")
        .unwrap()
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_TOKEN", "ghp_DemoMustNeverSeeThisToken0123456789ab")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["demo", "--dir"])
        .arg(&sandbox)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for row in [
        "| demo/textkit#1 Add a `slugify` function | PR opened |",
        "| demo/textkit#2 Test on Python 3.13 in CI | failed | `policy_violation` |",
        "| demo/textkit#3 Add `truncate_words` | skipped | `daily_cap_reached` |",
    ] {
        assert!(
            stdout.contains(row),
            "missing `{row}` in:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("where to look:"));
    assert!(!stdout.contains("ghp_") && !stderr.contains("ghp_"));
    let pulls = std::fs::read_dir(sandbox.join("forge/demo/textkit/pulls"))
        .unwrap()
        .count();
    assert_eq!(pulls, 1);
    assert!(sandbox.join("state.sqlite").exists());
}

#[test]
fn demo_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let out = Command::cargo_bin("issueloop")
        .unwrap()
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
}
