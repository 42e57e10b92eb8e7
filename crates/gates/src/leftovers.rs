//! What gates leave behind: snapshots of `git status` (with a fingerprint of each dirty file's
//! content) before and after each gate, and the paths that differ between them.
//!
//! The worktree is written by the agent and the gates, so `git status` runs contained: the
//! repository comes from issueloop's record of a run's worktree (never from its `.git` file),
//! no user or system configuration is read, and no configuration can make git run a program
//! (`core.fsmonitor`, hooks, submodule recursion, lazy fetches are all switched off).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use issueloop_config::{Env, ErrorChain as _};

/// Where git finds a worktree's repository, from issueloop's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitLocation {
    /// The worktree's own gitdir in the mirror (`<mirror>/worktrees/<name>`).
    pub git_dir: PathBuf,
    /// The mirror, for everything that is not per worktree (configuration, objects, refs).
    pub common_dir: PathBuf,
    pub work_tree: PathBuf,
}

/// The repository of a run's worktree, from the owner record issueloop writes next to it
/// (`<worktree>.owner.json`, outside anything the agent may write). `None` for any other
/// checkout (`issueloop gates run --repo .`), where git finds it the usual way.
pub(crate) fn recorded_location(worktree: &Path) -> Option<GitLocation> {
    let name = worktree.file_name()?.to_str()?;
    let record = worktree.with_file_name(format!("{name}.owner.json"));
    let text = std::fs::read_to_string(record).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mirror = PathBuf::from(value.get("mirror")?.as_str()?);
    let worktree_name = value.get("worktree_name")?.as_str()?;
    let recorded = PathBuf::from(value.get("worktree")?.as_str()?);
    let plain = !worktree_name.is_empty()
        && !worktree_name.contains('/')
        && worktree_name != "."
        && worktree_name != "..";
    if !plain || recorded != worktree || !mirror.is_absolute() {
        return None;
    }
    Some(GitLocation {
        git_dir: mirror.join("worktrees").join(worktree_name),
        common_dir: mirror,
        work_tree: recorded,
    })
}

/// `git` in `worktree`, contained: see the module documentation. The environment and the
/// `-c` switches are the process crate's hermetic git ([`issueloop_process::git`]).
pub(crate) fn contained_git(worktree: &Path, env: &Env) -> issueloop_process::Launch {
    let mut launch = issueloop_process::git(worktree, env.get("PATH"))
        // Looking must not write: no index refresh, no lock files.
        .var("GIT_OPTIONAL_LOCKS", "0");
    if let Some(location) = recorded_location(worktree) {
        launch = launch
            .var("GIT_DIR", location.git_dir.to_string_lossy())
            .var("GIT_COMMON_DIR", location.common_dir.to_string_lossy())
            .var("GIT_WORK_TREE", location.work_tree.to_string_lossy());
    }
    launch
}

/// Dirty files larger than this are fingerprinted by size and modification time only.
const MAX_HASHED_BYTES: u64 = 8 * 1024 * 1024;

/// `git status` of a worktree: each dirty path with its status letters and content fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    entries: BTreeMap<String, (String, Option<u64>)>,
}

impl Snapshot {
    /// Parse `git status --porcelain=v1 -z` output; `fingerprint` reads a path's content.
    pub fn parse(output: &[u8], fingerprint: impl Fn(&str) -> Option<u64>) -> Snapshot {
        let mut entries = BTreeMap::new();
        let mut records = output.split(|b| *b == 0).filter(|r| !r.is_empty());
        while let Some(record) = records.next() {
            if record.len() < 4 {
                continue;
            }
            let status = String::from_utf8_lossy(&record[..2]).into_owned();
            let path = String::from_utf8_lossy(&record[3..]).into_owned();
            // A rename or copy is followed by its source path, which is not an entry of its own.
            if status.contains('R') || status.contains('C') {
                records.next();
            }
            let print = fingerprint(&path);
            entries.insert(path, (status, print));
        }
        Snapshot { entries }
    }

    /// Paths whose status or content differs between `self` (before) and `after`: created,
    /// changed, or restored/removed.
    pub fn changed_in(&self, after: &Snapshot) -> Vec<String> {
        let mut out: Vec<String> = after
            .entries
            .iter()
            .filter(|(path, entry)| self.entries.get(*path) != Some(entry))
            .map(|(path, _)| path.clone())
            .collect();
        out.extend(
            self.entries
                .keys()
                .filter(|path| !after.entries.contains_key(*path))
                .cloned(),
        );
        out.sort();
        out
    }
}

/// Fingerprint of a file's content (`None` for a folder, a deleted file or a link).
fn fingerprint(worktree: &Path, rel: &str) -> Option<u64> {
    let path = worktree.join(rel);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    let mut hasher = DefaultHasher::new();
    meta.len().hash(&mut hasher);
    if meta.file_type().is_symlink() {
        std::fs::read_link(&path).ok()?.hash(&mut hasher);
    } else if meta.is_file() && meta.len() <= MAX_HASHED_BYTES {
        std::fs::read(&path).ok()?.hash(&mut hasher);
    } else {
        meta.modified().ok()?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// Take a snapshot with `git status`, bounded by `timeout`. The error says why it could not.
pub(crate) async fn snapshot(
    worktree: &Path,
    env: &Env,
    timeout: Duration,
) -> Result<Snapshot, String> {
    // Do not refresh the index while looking: the check must not write anything itself.
    let launch = contained_git(worktree, env)
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=dirty",
        ])
        .timeout(timeout);
    let output = match launch.output().await {
        Err(e) => return Err(format!("cannot run `git status`: {}", e.chain())),
        Ok(o) if o.timed_out => return Err(format!("`git status` took longer than {timeout:?}")),
        Ok(o) => o,
    };
    if !output.success() {
        return Err(format!(
            "`git status` in `{}` failed ({}): {}",
            worktree.display(),
            output
                .code()
                .map_or_else(|| "killed".to_owned(), |c| format!("exit status: {c}")),
            output.stderr.trim()
        ));
    }
    if !output.stdout_complete() {
        return Err(format!(
            "`git status` in `{}` printed more than {} bytes",
            worktree.display(),
            output.stdout.len()
        ));
    }
    Ok(Snapshot::parse(&output.stdout, |p| {
        fingerprint(worktree, p)
    }))
}

#[cfg(test)]
#[expect(
    clippy::disallowed_types,
    reason = "the tests build their repositories with the git command line"
)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    fn marker_program(path: &Path, marker: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            path,
            format!("#!/bin/sh\necho ran >> '{}'\nexit 0\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn configuration_in_the_repository_runs_no_program() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        git(&repo, &["add", "."]);
        let marker = dir.path().join("marker");
        let program = dir.path().join("prog");
        marker_program(&program, &marker);
        let hooks = dir.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        for hook in ["post-index-change", "reference-transaction"] {
            marker_program(&hooks.join(hook), &marker);
        }
        let config = repo.join(".git/config");
        for (k, v) in [
            ("core.fsmonitor", program.to_str().unwrap()),
            ("core.hooksPath", hooks.to_str().unwrap()),
        ] {
            git(&repo, &["config", "-f", config.to_str().unwrap(), k, v]);
        }
        std::fs::write(repo.join("a.txt"), "changed\n").unwrap();
        let snap = snapshot(&repo, &Env::default(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(snap.entries.contains_key("a.txt"), "{snap:?}");
        assert!(
            !marker.exists(),
            "a configured program ran: {}",
            std::fs::read_to_string(&marker).unwrap_or_default()
        );
    }

    #[test]
    fn a_run_worktree_is_located_from_its_record_not_its_git_file() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("fix-1-1");
        std::fs::create_dir(&wt).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: /tmp/evil\n").unwrap();
        assert_eq!(
            recorded_location(&wt),
            None,
            "no record: git's own discovery"
        );
        let record = serde_json::json!({
            "pid": 1,
            "mirror": "/cache/mirrors/acme/app.git",
            "worktree_name": "fix-1-1",
            "worktree": wt,
        });
        std::fs::write(dir.path().join("fix-1-1.owner.json"), record.to_string()).unwrap();
        assert_eq!(
            recorded_location(&wt),
            Some(GitLocation {
                git_dir: PathBuf::from("/cache/mirrors/acme/app.git/worktrees/fix-1-1"),
                common_dir: PathBuf::from("/cache/mirrors/acme/app.git"),
                work_tree: wt.clone(),
            })
        );
        // A record naming another checkout, or a name that climbs out, is not used.
        for (name, worktree) in [("fix-1-1", PathBuf::from("/elsewhere")), ("..", wt.clone())] {
            let record = serde_json::json!({
                "mirror": "/cache/mirrors/acme/app.git",
                "worktree_name": name,
                "worktree": worktree,
            });
            std::fs::write(dir.path().join("fix-1-1.owner.json"), record.to_string()).unwrap();
            assert_eq!(recorded_location(&wt), None);
        }
    }

    #[test]
    fn parses_porcelain_z_and_diffs() {
        let before = Snapshot::parse(b" M a.py\0R  new.py\0old.py\0?? notes.md\0", |p| {
            Some(p.len() as u64)
        });
        assert_eq!(before.entries.len(), 3);
        assert!(before.entries.contains_key("new.py"));
        assert!(!before.entries.contains_key("old.py"));
        let same = before.clone();
        assert!(before.changed_in(&same).is_empty());
        let after = Snapshot::parse(b" M a.py\0R  new.py\0old.py\0?? .pytest_cache/v/x\0", |p| {
            Some(if p == "a.py" { 99 } else { p.len() as u64 })
        });
        assert_eq!(
            before.changed_in(&after),
            [".pytest_cache/v/x", "a.py", "notes.md"]
        );
    }
}
