//! The mirror is issueloop's, not the agent's: its configuration is repaired to exactly what
//! issueloop wrote before every use, and every repository handle issueloop opens (for fetches,
//! pushes, change facts and commits) reads no configuration file and nothing of the agent's
//! worktree gitdir (`.git` file, `HEAD`, index, `config.worktree`).
//!
//! An agent runs in a worktree of the shared mirror and can find the mirror through
//! `git rev-parse --git-common-dir`. Whatever it writes there (`url.*.insteadOf` to redirect a
//! push, `core.fsmonitor` or hooks for issueloop's own git to run, grafts to fake history) is
//! removed before issueloop reads the mirror, and would not be read anyway: network operations
//! and the worktree's change go through a handle whose configuration is an empty one issueloop
//! holds in memory, whose work tree is the path issueloop recorded, and whose index is a
//! private file next to the worktree that the agent cannot write.

use std::path::{Path, PathBuf};

use git2::{Config, Index, Oid, Repository};

use crate::error::WorkspaceError;
use crate::worktree::Worktree;

/// The configuration a mirror holds: exactly what creating a bare repository writes.
pub(crate) const MIRROR_CONFIG: &str =
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";

/// Keys a mirror's configuration may hold (what libgit2 or git write when creating a bare
/// repository on some platform). Any other key was written by someone else.
const KNOWN_KEYS: &[(&str, Option<&str>)] = &[
    ("core.repositoryformatversion", Some("0")),
    ("core.bare", Some("true")),
    ("core.filemode", None),
    ("core.symlinks", None),
    ("core.ignorecase", None),
    ("core.precomposeunicode", None),
    ("core.logallrefupdates", None),
];

/// Files issueloop never writes into a mirror, each of which would change what git reads from
/// it: fake history (`info/grafts`, `shallow`), objects from elsewhere (alternates), per-worktree
/// configuration.
const FOREIGN_FILES: &[&str] = &[
    "info/grafts",
    "shallow",
    "objects/info/alternates",
    "objects/info/http-alternates",
    "config.worktree",
];

/// What [`repair_mirror`] removed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Repair {
    /// Configuration keys issueloop did not write (`url.file:///x.insteadof`).
    pub keys: Vec<String>,
    /// Foreign files removed, relative to the mirror.
    pub files: Vec<String>,
}

impl Repair {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.files.is_empty()
    }
}

/// Whether a mirror configuration's entries are all ones issueloop (or git creating a bare
/// repository) wrote; the foreign keys otherwise. Pure.
pub(crate) fn foreign_keys<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut out: Vec<String> = entries
        .into_iter()
        .filter(|(name, value)| {
            let name = name.to_ascii_lowercase();
            !KNOWN_KEYS.iter().any(|(known, wanted)| {
                *known == name && wanted.is_none_or(|w| w.eq_ignore_ascii_case(value.trim()))
            })
        })
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Put the mirror's configuration back to what issueloop wrote and remove files it never
/// writes. Atomic (a new file renamed over the old one, so a symlink planted in its place is
/// replaced, never followed) and safe to run while other runs use the mirror.
pub(crate) fn repair_mirror(mirror: &Path) -> Result<Repair, WorkspaceError> {
    let mut repair = Repair::default();
    let config = mirror.join("config");
    let current = match std::fs::symlink_metadata(&config) {
        Ok(meta) if meta.is_file() => std::fs::read(&config).ok(),
        _ => None,
    };
    let clean = match &current {
        Some(bytes) if bytes.as_slice() == MIRROR_CONFIG.as_bytes() => true,
        Some(_) => {
            // Entries as git reads them (includes followed), without reading anything else.
            let keys = read_entries(&config);
            match keys {
                Some(entries) => {
                    repair.keys =
                        foreign_keys(entries.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    repair.keys.is_empty()
                }
                None => {
                    repair.keys.push("(unreadable configuration)".into());
                    false
                }
            }
        }
        None => {
            repair
                .keys
                .push("(configuration missing or not a file)".into());
            false
        }
    };
    if !clean {
        let tmp = mirror.join(unique_tmp_name("config"));
        std::fs::write(&tmp, MIRROR_CONFIG).map_err(WorkspaceError::io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &config).map_err(WorkspaceError::io("cannot replace", &config))?;
    }
    for rel in FOREIGN_FILES {
        let path = mirror.join(rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            crate::worktree::remove_path(&path)?;
            repair.files.push((*rel).to_owned());
        }
    }
    if !repair.is_empty() {
        tracing::warn!(
            mirror = %mirror.display(),
            keys = ?repair.keys,
            files = ?repair.files,
            "the mirror held configuration or files issueloop did not write; removed them"
        );
    }
    Ok(repair)
}

fn read_entries(path: &Path) -> Option<Vec<(String, String)>> {
    let config = Config::open(path).ok()?;
    let mut out = Vec::new();
    let mut entries = config.entries(None).ok()?;
    while let Some(entry) = entries.next() {
        let entry = entry.ok()?;
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let value = String::from_utf8_lossy(entry.value_bytes()).into_owned();
        out.push((name, value));
    }
    Some(out)
}

/// Open the mirror for issueloop's own use: repaired first, then with an empty in-memory
/// configuration, so no `url.*.insteadOf`, `pushInsteadOf`, `http.*`, `core.sshCommand` or
/// credential helper from any file applies to a fetch or a push.
pub(crate) fn open_mirror(mirror: &Path) -> Result<Repository, WorkspaceError> {
    repair_mirror(mirror)?;
    let repo = Repository::open_bare(mirror).map_err(WorkspaceError::git(format!(
        "cannot open the mirror `{}`",
        mirror.display()
    )))?;
    detach_config(&repo, mirror)?;
    Ok(repo)
}

/// Replace the configuration `repo` reads with an empty one held in memory.
pub(crate) fn detach_config(repo: &Repository, path: &Path) -> Result<(), WorkspaceError> {
    let op = || format!("cannot isolate `{}` from its configuration", path.display());
    let empty = Config::new().map_err(WorkspaceError::git(op()))?;
    repo.set_config(&empty).map_err(WorkspaceError::git(op()))
}

/// Where issueloop keeps a worktree's own index (a stat cache of the checkout at the tip
/// commit), next to its owner record and outside anything the agent may write.
pub(crate) fn private_index_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.index"))
}

/// The worktree's gitdir in the mirror (`<mirror>/worktrees/<name>`): the agent's, since its
/// own git writes `HEAD` and the index there. issueloop writes into it only to keep the
/// agent's view clean after a commit, and never reads it.
pub(crate) fn admin_dir(mirror: &Path, name: &str) -> PathBuf {
    mirror.join("worktrees").join(name)
}

/// Open `mirror` with `workdir` as its work tree and the private index at `index`, which is
/// made to hold the tree of the commit `tip` if it does not already.
pub(crate) fn open_contained(
    mirror: &Path,
    workdir: &Path,
    index: &Path,
    tip: Option<Oid>,
) -> Result<Repository, WorkspaceError> {
    let repo = open_mirror(mirror)?;
    let op = || {
        format!(
            "cannot open `{}` as a work tree of `{}`",
            workdir.display(),
            mirror.display()
        )
    };
    repo.set_workdir(workdir, false)
        .map_err(WorkspaceError::git(op()))?;
    let mut private = match Index::open(index) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(index = %index.display(), "rebuilding the worktree's private index: {e}");
            crate::worktree::remove_path(index)?;
            Index::open(index).map_err(WorkspaceError::git(op()))?
        }
    };
    if let Some(tip) = tip {
        let tree = repo
            .find_commit(tip)
            .map(|c| c.tree_id())
            .map_err(WorkspaceError::git(format!("cannot read commit `{tip}`")))?;
        // The index is the tip's tree with stat data; anything else (a crash between a commit
        // and the index update, a missing file) is rebuilt from the tree.
        let holds = private.has_conflicts() || private.write_tree_to(&repo).ok() != Some(tree);
        if holds {
            let tree = repo.find_tree(tree).map_err(WorkspaceError::git(op()))?;
            private
                .read_tree(&tree)
                .and_then(|()| private.write())
                .map_err(WorkspaceError::git(op()))?;
        }
    }
    repo.set_index(&mut private)
        .map_err(WorkspaceError::git(op()))?;
    Ok(repo)
}

/// A temporary file name unique across processes and threads.
fn unique_tmp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}.issueloop-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write `bytes` to `path` through a new file renamed over it: a symlink at `path` is replaced,
/// never followed.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), WorkspaceError> {
    let Some(name) = path.file_name() else {
        return Err(WorkspaceError::io("cannot write", path)(
            std::io::Error::other("not a file path"),
        ));
    };
    let tmp = path.with_file_name(unique_tmp_name(&name.to_string_lossy()));
    crate::worktree::remove_path(&tmp)?;
    std::fs::write(&tmp, bytes).map_err(WorkspaceError::io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(WorkspaceError::io("cannot replace", path))
}

impl Worktree {
    /// The worktree as issueloop sees it: the mirror, read with no configuration, the recorded
    /// checkout as its work tree, and the private index. Never the checkout's `.git` file, nor
    /// the `HEAD`, index or configuration of its gitdir, which the agent may have rewritten.
    pub fn repository(&self) -> Result<Repository, WorkspaceError> {
        open_contained(
            self.mirror(),
            self.path(),
            &self.private_index(),
            Some(self.tip),
        )
    }

    /// [`Worktree::repository`] with an index holding the tree of `base` (a revision), kept
    /// in memory: for comparing the working files with another commit than the tip.
    pub(crate) fn repository_at(&self, base: &str) -> Result<Repository, WorkspaceError> {
        let repo = open_mirror(self.mirror())?;
        let op = || format!("cannot compare `{}` with `{base}`", self.path().display());
        repo.set_workdir(self.path(), false)
            .map_err(WorkspaceError::git(op()))?;
        let mut index = Index::new().map_err(WorkspaceError::git(op()))?;
        {
            let tree = repo
                .revparse_single(base)
                .and_then(|o| o.peel_to_tree())
                .map_err(|_| WorkspaceError::UnknownRevision {
                    base: base.to_owned(),
                    repo: self.path().to_owned(),
                })?;
            index.read_tree(&tree).map_err(WorkspaceError::git(op()))?;
        }
        repo.set_index(&mut index)
            .map_err(WorkspaceError::git(op()))?;
        Ok(repo)
    }

    pub(crate) fn private_index(&self) -> PathBuf {
        private_index_path(&self.guard.dir, &self.guard.record.worktree_name)
    }

    /// After a commit: the private index holds the new tree, and the agent's gitdir its branch
    /// in `HEAD` and the same index, so its next `git status` starts clean.
    pub(crate) fn reset_views(&self, repo: &Repository, tree: Oid) -> Result<(), WorkspaceError> {
        let op = || format!("cannot reset the index of `{}`", self.path().display());
        let tree = repo.find_tree(tree).map_err(WorkspaceError::git(op()))?;
        let private = self.private_index();
        let mut index = Index::open(&private).map_err(WorkspaceError::git(op()))?;
        index
            .read_tree(&tree)
            .and_then(|()| index.write())
            .map_err(WorkspaceError::git(op()))?;
        let admin = admin_dir(self.mirror(), &self.guard.record.worktree_name);
        let bytes = std::fs::read(&private).map_err(WorkspaceError::io("cannot read", &private))?;
        replace_file(&admin.join("index"), &bytes)?;
        replace_file(
            &admin.join("HEAD"),
            format!("ref: refs/heads/{}\n", self.branch()).as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_table() {
        type Case = (
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                &[
                    ("core.repositoryformatversion", "0"),
                    ("core.filemode", "true"),
                    ("core.bare", "true"),
                ],
                &[],
            ),
            (
                &[
                    ("core.ignorecase", "true"),
                    ("core.logallrefupdates", "false"),
                ],
                &[],
            ),
            (
                &[("url./tmp/evil.git.insteadof", "/srv/app.git")],
                &["url./tmp/evil.git.insteadof"],
            ),
            (
                &[("url.x.pushInsteadOf", "y"), ("remote.origin.pushurl", "z")],
                &["remote.origin.pushurl", "url.x.pushinsteadof"],
            ),
            (&[("core.fsmonitor", "/tmp/x")], &["core.fsmonitor"]),
            (&[("core.hooksPath", "/tmp/h")], &["core.hookspath"]),
            (&[("core.sshCommand", "x")], &["core.sshcommand"]),
            (&[("credential.helper", "x")], &["credential.helper"]),
            (&[("http.extraHeader", "x")], &["http.extraheader"]),
            (&[("include.path", "/tmp/x")], &["include.path"]),
            // A known key with a value issueloop never writes.
            (&[("core.bare", "false")], &["core.bare"]),
            (
                &[
                    ("core.repositoryformatversion", "1"),
                    ("extensions.worktreeconfig", "true"),
                ],
                &["core.repositoryformatversion", "extensions.worktreeconfig"],
            ),
        ];
        for (entries, want) in cases {
            assert_eq!(&foreign_keys(entries.iter().copied()), want, "{entries:?}");
        }
    }
}
