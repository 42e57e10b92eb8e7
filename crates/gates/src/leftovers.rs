//! What gates leave behind: snapshots of `git status` (with a fingerprint of each dirty file's
//! content) before and after each gate, and the paths that differ between them.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use issueloop_config::{CREDENTIAL_VARS, Env};

/// Variables that would make git look at another repository than the worktree's.
const GIT_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

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
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(worktree)
        // Do not refresh the index while looking: the check must not write anything itself.
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
        ])
        .env_clear()
        .envs(
            env.iter()
                .filter(|(k, _)| !CREDENTIAL_VARS.contains(k) && !GIT_LOCATION_VARS.contains(k)),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(format!("`git status` took longer than {timeout:?}")),
        Ok(Err(e)) => return Err(format!("cannot run `git status`: {e}")),
        Ok(Ok(o)) => o,
    };
    if !output.status.success() {
        return Err(format!(
            "`git status` in `{}` failed ({}): {}",
            worktree.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(Snapshot::parse(&output.stdout, |p| {
        fingerprint(worktree, p)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
