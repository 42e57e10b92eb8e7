//! The default set-up, run the way users run it: `issueloop.toml` with only relative paths and
//! the default cache and state locations, the binary started from the checkout with no
//! `--config` (as the shipped workflow does), with a relative `--config`, and from a parent
//! folder; the demo sandbox driven from inside it; and the exit codes a CI job sees.

mod support;

use std::path::Path;

use support::checkout::{command_in, run_once_in, write_relative_config};
use support::{Knobs, MAINTAINER, World, run_of};

fn assert_one_draft_pr(w: &World, n: u64, report: &serde_json::Value, stderr: &str) {
    let run = run_of(report, n);
    assert_eq!(run["status"], "pr_opened", "{report:#}\n{stderr}");
    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert!(pulls[0].contains("draft = true"), "{}", pulls[0]);
}

#[test]
fn no_config_flag_from_the_checkout_opens_a_draft_pr() {
    let mut w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "", "");
    let n = w.add_issue("Add feature", "scenario: good\ncost: 0.30", MAINTAINER);

    let (code, report, stderr) = run_once_in(&w, w.root(), &[]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_one_draft_pr(&w, n, &report, &stderr);
    // The defaults landed next to the configuration, and the cache holds the mirror.
    assert!(checkout.state().is_file(), "{stderr}");
    assert!(
        checkout.cache().join("mirrors/acme/app.git").is_dir(),
        "{stderr}"
    );
    assert_eq!(w.remote_branches(), ["loop/1-add-feature"]);
}

#[test]
fn a_relative_config_flag_from_the_checkout_opens_a_draft_pr() {
    let mut w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "", "");
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);

    let (code, report, stderr) = run_once_in(&w, w.root(), &["--config", "issueloop.toml"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_one_draft_pr(&w, n, &report, &stderr);
    assert!(checkout.state().is_file());
}

#[test]
fn a_config_in_a_sub_folder_resolves_its_paths_there() {
    let mut w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "sub", "");
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);

    let (code, report, stderr) = run_once_in(&w, w.root(), &["--config", "sub/issueloop.toml"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_one_draft_pr(&w, n, &report, &stderr);
    // Against `sub/`, not the working directory.
    assert!(checkout.state().is_file(), "{stderr}");
    assert!(checkout.cache().join("mirrors/acme/app.git").is_dir());
    assert!(!w.root().join(".issueloop").exists());
}

#[test]
fn config_check_prints_the_resolved_paths() {
    let w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "sub", "");
    let root = w.root().canonicalize().unwrap();
    let sub = root.join("sub");

    let out = command_in(&w, &root)
        .args(["config", "check", "--config", "sub/./issueloop.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for (key, path) in [
        ("file", sub.join("issueloop.toml")),
        ("git.cache_dir", sub.join(".issueloop/cache")),
        ("state.path", sub.join(".issueloop/state.sqlite")),
        ("forge.local_path", root.join("forge")),
        ("backends.command.argv[0]", sub.join("bin/agent")),
    ] {
        let line = format!("{key:<28} {}", path.display());
        assert!(stdout.contains(&line), "missing `{line}` in:\n{stdout}");
    }

    // The default `./issueloop.toml` from inside `sub/`, and `ISSUELOOP_CONFIG` (relative, like
    // `--config`) from the root: the same resolution.
    let out = command_in(&w, &checkout.dir)
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = command_in(&w, &root)
        .env("ISSUELOOP_CONFIG", "sub/issueloop.toml")
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let from_env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_env["paths"], v["paths"]);
    let paths = &v["paths"];
    assert_eq!(paths["file"], sub.join("issueloop.toml").to_str().unwrap());
    assert_eq!(
        paths["git.cache_dir"],
        sub.join(".issueloop/cache").to_str().unwrap()
    );
    assert_eq!(v["git"]["cache_dir"], paths["git.cache_dir"]);
    assert_eq!(
        v["state"]["path"],
        sub.join(".issueloop/state.sqlite").to_str().unwrap()
    );
    assert_eq!(
        v["forge"]["local_path"],
        root.join("forge").to_str().unwrap()
    );
    // Every path is absolute and has no `.` or `..` left in it.
    for (key, value) in paths.as_object().unwrap() {
        let p = Path::new(value.as_str().unwrap());
        assert!(p.is_absolute(), "{key}: {p:?}");
        assert!(
            p.components().all(|c| !matches!(
                c,
                std::path::Component::CurDir | std::path::Component::ParentDir
            )),
            "{key}: {p:?}"
        );
    }
}

#[test]
fn the_demo_driven_from_inside_its_sandbox_opens_the_third_pr() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = |cwd: &Path, args: &[&str]| {
        assert_cmd::Command::new(env!("CARGO_BIN_EXE_issueloop"))
            .current_dir(cwd)
            .env_remove("ISSUELOOP_CONFIG")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_TOKEN")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(args)
            .timeout(std::time::Duration::from_secs(180))
            .output()
            .unwrap()
    };
    // `issueloop demo --dir D` with a relative D.
    let out = demo(tmp.path(), &["demo", "--dir", "sandbox"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| demo/textkit#3 Add `truncate_words` | skipped | `daily_cap_reached` |"),
        "{stdout}"
    );

    // `cd D`, raise the cap, `issueloop run --once --issue 3`.
    let sandbox = tmp.path().join("sandbox");
    let config = sandbox.join("issueloop.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("daily_cap_usd = 1.00"), "{text}");
    std::fs::write(
        &config,
        text.replace("daily_cap_usd = 1.00", "daily_cap_usd = 5.00"),
    )
    .unwrap();
    let out = demo(&sandbox, &["--json", "run", "--once", "--issue", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        run_of(&report, 3)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    let pulls = std::fs::read_dir(sandbox.join("forge/demo/textkit/pulls"))
        .unwrap()
        .count();
    assert_eq!(pulls, 2, "the first tick's PR and issue 3's");
}

#[test]
fn a_workspace_error_fails_the_tick_and_a_policy_refusal_does_not() {
    let mut w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "", "");

    // A refusal the loop is designed to make: exit 0.
    let n = w.add_issue("Edit CI", "scenario: denied", MAINTAINER);
    let (code, report, stderr) = run_once_in(&w, w.root(), &[]);
    assert_eq!(
        run_of(&report, n)["reason"],
        "policy_violation",
        "{report:#}\n{stderr}"
    );
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");

    // The mirror cannot be created (a file stands where its directory goes): the run fails
    // with `workspace_error`, and the tick exits 1 so a CI job turns red.
    let mirror = checkout.cache().join("mirrors/acme/app.git");
    std::fs::remove_dir_all(&mirror).unwrap();
    std::fs::write(&mirror, "not a repository").unwrap();
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let (code, report, stderr) = run_once_in(&w, w.root(), &["--issue", &n.to_string()]);
    let run = run_of(&report, n);
    assert_eq!(run["reason"], "workspace_error", "{report:#}\n{stderr}");
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert!(
        stderr.contains("infrastructure failure: acme/app#2: workspace_error"),
        "{stderr}"
    );
    assert!(w.pulls().is_empty());
}

#[test]
fn an_agent_that_cannot_start_fails_the_tick() {
    let mut w = World::new(Knobs::default());
    let checkout = write_relative_config(&w, "", "");
    // An executable file (so the start-up check finds it) whose interpreter does not exist:
    // the process cannot be spawned.
    std::fs::write(
        checkout.dir.join("bin/agent"),
        "#!/nonexistent/interpreter\n",
    )
    .unwrap();
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let (code, report, stderr) = run_once_in(&w, w.root(), &[]);
    let run = run_of(&report, n);
    assert_eq!(run["reason"], "agent_not_started", "{report:#}\n{stderr}");
    assert!(
        run["detail"].as_str().unwrap().contains("cannot start"),
        "{run:#}"
    );
    assert_eq!(run["cost_usd"], 0.0, "nothing ran, nothing is charged");
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert!(w.pulls().is_empty());
}
