//! Hostile agents against the git workspace, through the binary on the local forge: each test
//! is an attack an agent can make from its worktree (which it may write, with the worktree's
//! own gitdir), and asserts its effect never happens: a push or fetch redirected through the
//! shared mirror's configuration, a program run by issueloop's own git through
//! `core.fsmonitor` or hooks, a change hidden from the diff policy through the index or a
//! re-pointed `.git` file, and a gate that names the interpreter `uv` should run.

#![expect(
    clippy::disallowed_methods,
    reason = "a test reads its own test settings from the environment"
)]

mod support;

use support::hostile_git::{
    branches_and_objects, canonical, commit_to_bare, hostile_agent, marker_hooks, marker_program,
    sh_quote,
};
use support::{Knobs, MAINTAINER, World, run_of, seed_remote};

/// The agent adds `url.<other>.insteadOf = <remote>` (and `pushInsteadOf`) to the shared
/// mirror's configuration. issueloop's push still reaches the real remote, nothing reaches the
/// other repository, and the next tick still fetches from the real remote.
#[test]
fn a_mirror_insteadof_never_redirects_a_push_or_a_fetch() {
    let mut w = World::new(Knobs::default());
    let other = w.root().join("other.git");
    seed_remote(&other);
    let remote = canonical(&w.remote);
    let other = canonical(&other);
    let before_other = branches_and_objects(&other);
    let attack = format!(
        "common=$(cd \"$(git rev-parse --git-common-dir)\" && pwd)\n\
         git config -f \"$common/config\" url.{other}.insteadOf {remote}\n\
         git config -f \"$common/config\" url.{other}.pushInsteadOf {remote}\n\
         git config -f \"$common/config\" url.file://{other_raw}.insteadOf {remote}\n",
        other = sh_quote(&other),
        remote = sh_quote(&remote),
        other_raw = other.display(),
    );
    hostile_agent(&w, "", &attack);
    let first = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        run_of(&report, first)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    assert_eq!(w.remote_branches(), ["loop/1-add-feature"]);
    assert_eq!(
        branches_and_objects(&other),
        before_other,
        "nothing reached the other repository"
    );

    // The real remote moves on; the other repository does not have that commit. The next run
    // starts from it only if it fetched from the real remote.
    let moved = commit_to_bare(&w.remote, "main", "real.txt", "only on the real remote\n");
    let second = w.add_issue("Another feature", "scenario: good", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        run_of(&report, second)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    let descends = support::git::git_output(
        &w.remote,
        &[
            "merge-base",
            "--is-ancestor",
            &moved,
            "refs/heads/loop/2-another-feature",
        ],
    );
    assert!(
        descends.status.success(),
        "the second run started from the real remote's main"
    );
    assert_eq!(branches_and_objects(&other), before_other);
}

/// The agent sets `core.fsmonitor` and `core.hooksPath` (hooks for checkout, commit, push,
/// index changes) in the shared mirror's configuration and in its worktree's
/// `config.worktree`. None of these programs ever runs: not during the gates' `git status`,
/// not while committing or pushing.
#[test]
fn fsmonitor_and_hooks_set_by_the_agent_never_run() {
    let mut w = World::new(Knobs::default());
    let evil = w.root().join("evil");
    let marker = w.root().join("marker.txt");
    marker_program(&evil.join("fsmonitor"), &marker);
    marker_hooks(&evil.join("hooks"), &marker);
    let attack = format!(
        "common=$(cd \"$(git rev-parse --git-common-dir)\" && pwd)\n\
         gitdir=$(cd \"$(git rev-parse --git-dir)\" && pwd)\n\
         for f in \"$common/config\" \"$gitdir/config.worktree\"; do\n\
           git config -f \"$f\" core.fsmonitor {fsmonitor}\n\
           git config -f \"$f\" core.hooksPath {hooks}\n\
         done\n\
         git config -f \"$common/config\" core.repositoryformatversion 1\n\
         git config -f \"$common/config\" extensions.worktreeConfig true\n\
         cp -R {hooks}/. \"$common/hooks/\" 2>/dev/null || (mkdir -p \"$common/hooks\" && cp -R {hooks}/. \"$common/hooks/\")\n",
        fsmonitor = sh_quote(&evil.join("fsmonitor")),
        hooks = sh_quote(&evil.join("hooks")),
    );
    hostile_agent(&w, "", &attack);
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        run_of(&report, n)["status"],
        "pr_opened",
        "{report:#}\n{stderr}"
    );
    assert!(
        !marker.exists(),
        "a program the agent configured ran: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    assert_eq!(w.remote_branches(), ["loop/1-add-feature"]);
}

/// The agent edits a denied file, then marks it unchanged in its index
/// (`--assume-unchanged` and `--skip-worktree`): the diff policy still sees the edit.
#[test]
fn an_index_that_hides_a_denied_edit_does_not_hide_it_from_the_policy() {
    let mut w = World::new(Knobs::default());
    hostile_agent(
        &w,
        "",
        "git update-index --assume-unchanged .github/workflows/ci.yml\n",
    );
    let n = w.add_issue("Touch CI", "scenario: denied", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["reason"], "policy_violation", "{report:#}\n{stderr}");
    assert!(w.remote_branches().is_empty(), "{:?}", w.remote_branches());
    assert!(w.issue_text(n).contains(".github/workflows/ci.yml"));
}

/// The agent re-points its worktree's `.git` file at a repository of its own whose work tree
/// is a clean copy of the start commit: the diff policy still judges the real worktree.
#[test]
fn a_repointed_git_file_does_not_hide_a_denied_edit() {
    let mut w = World::new(Knobs::default());
    let attack = "wt=$(pwd)\n\
         tip=$(git rev-parse HEAD)\n\
         common=$(cd \"$(git rev-parse --git-common-dir)\" && pwd)\n\
         gitdir=$(cd \"$(git rev-parse --git-dir)\" && pwd)\n\
         fake=\"$gitdir/fake.git\"\n\
         clean=\"$gitdir/clean\"\n\
         git init -q --bare \"$fake\"\n\
         echo \"$common/objects\" > \"$fake/objects/info/alternates\"\n\
         mkdir -p \"$clean\"\n\
         GIT_DIR=\"$fake\" GIT_WORK_TREE=\"$clean\" git read-tree -u --reset \"$tip\"\n\
         GIT_DIR=\"$fake\" git update-ref --no-deref HEAD \"$tip\"\n\
         git config -f \"$fake/config\" core.bare false\n\
         git config -f \"$fake/config\" core.worktree \"$clean\"\n\
         printf 'gitdir: %s\\n' \"$fake\" > \"$wt/.git\"\n";
    hostile_agent(&w, "", attack);
    let n = w.add_issue("Touch CI", "scenario: denied", MAINTAINER);
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["reason"], "policy_violation", "{report:#}\n{stderr}");
    assert!(w.remote_branches().is_empty(), "{:?}", w.remote_branches());
}

/// A configured gate `uv run --python <program> …` would have uv run that program as the
/// interpreter. It is refused before anything starts. (A stand-in `uv` on `PATH` does what uv
/// does with `--python PATH`: it runs it.)
#[test]
fn a_gate_naming_its_interpreter_is_refused_and_never_runs() {
    let mut w = World::new(Knobs::default());
    let evil = w.root().join("evil");
    let marker = w.root().join("marker.txt");
    let python = evil.join("python");
    marker_program(&python, &marker);
    let bin = w.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let uv = bin.join("uv");
    std::fs::write(
        &uv,
        "#!/bin/sh\n# Like uv: the interpreter given with --python/-p is run (uv queries it).\n\
         while [ $# -gt 0 ]; do\n\
           case \"$1\" in\n\
             --python|-p) shift; \"$1\" -c 'import sys'; ;;\n\
           esac\n\
           shift\n\
         done\n\
         exit 0\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&uv, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = std::fs::read_to_string(&w.config).unwrap().replace(
        "commands = [[\"python3\", \"-m\", \"unittest\", \"discover\", \"-s\", \"tests\", \"-t\", \".\"]]",
        &format!(
            "commands = [[\"uv\", \"run\", \"--python\", {:?}, \"python\", \"-m\", \"unittest\"]]",
            python.display().to_string()
        ),
    );
    assert!(config.contains("\"--python\""));
    std::fs::write(&w.config, config).unwrap();
    let n = w.add_issue("Add feature", "scenario: good", MAINTAINER);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = w
        .command()
        .env("PATH", path)
        .args(["--json", "run", "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = run_of(&report, n);
    assert_eq!(run["reason"], "gate_rejected", "{report:#}\n{stderr}");
    assert!(
        !marker.exists(),
        "the named interpreter ran: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    assert!(w.pulls().is_empty());
    assert!(
        w.issue_text(n).contains("--python"),
        "the refusal names the option"
    );
}
