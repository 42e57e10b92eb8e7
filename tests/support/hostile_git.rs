//! Hostile agents for the git containment tests: the scripted agent (`agent.py`) wrapped in a
//! shell script that attacks the workspace around it, programs that leave a marker file when
//! something runs them, and a second bare repository an attack tries to redirect to.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use super::World;

/// Make every agent of `world` run `before`, then the scripted agent (which makes the issue's
/// change and prints its stream), then `after`, all with `sh -eu` in the worktree.
///
/// The sandbox is off (`[sandbox] mode = "off"`): with it, the agent could not write the mirror
/// at all. These attacks must fail because of what issueloop reads back, sandbox or not.
pub fn hostile_agent(world: &World, before: &str, after: &str) -> PathBuf {
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/agent.py");
    let script = world.root().join("hostile-agent.sh");
    std::fs::write(
        &script,
        format!(
            "set -eu\n{before}\npython3 {agent}\n{after}\n",
            agent = sh_quote(&agent)
        ),
    )
    .unwrap();
    let config = std::fs::read_to_string(&world.config).unwrap();
    let replaced: Vec<String> = config
        .lines()
        .map(|line| {
            if line.starts_with("argv = [\"python3\"") {
                format!("argv = [\"sh\", {:?}]", script.display().to_string())
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_ne!(
        replaced.join("\n"),
        config.trim_end(),
        "agent argv not found"
    );
    assert!(
        config
            .trim_end()
            .ends_with("extra_writable = [\"observe\"]"),
        "the `[sandbox]` table is last"
    );
    std::fs::write(&world.config, replaced.join("\n") + "\nmode = \"off\"\n").unwrap();
    script
}

/// An executable at `path` that appends a line to `marker` whenever anything runs it (as a
/// program, a hook, an fsmonitor or a Python interpreter), and exits 0.
pub fn marker_program(path: &Path, marker: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\necho \"$0 $*\" >> {}\nexit 0\n",
            sh_quote(marker)
        ),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory of hooks git would run (`post-checkout`, `pre-commit`, …), each a marker program.
pub fn marker_hooks(dir: &Path, marker: &Path) {
    for hook in [
        "post-checkout",
        "pre-commit",
        "post-commit",
        "pre-push",
        "post-index-change",
        "reference-transaction",
        "fsmonitor-watchman",
        "pre-auto-gc",
    ] {
        marker_program(&dir.join(hook), marker);
    }
}

/// Quote for `sh`.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The path as the forge and git see it (symlinks such as `/tmp` resolved).
pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// Add a commit holding `file` to `branch` of the bare repository at `repo`.
pub fn commit_to_bare(repo: &Path, branch: &str, file: &str, text: &str) -> String {
    super::git::commit_file_to_bare(
        repo,
        branch,
        file,
        text,
        file,
        ("acme", "acme@example.invalid"),
    )
}

/// Branches (other than `main`) and the number of objects of a bare repository.
pub fn branches_and_objects(repo: &Path) -> (Vec<String>, usize) {
    (
        super::git::branches_except_main(repo),
        super::git::all_objects(repo).len(),
    )
}
