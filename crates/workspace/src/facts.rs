//! Change facts from git: every path of a checkout that differs from a base commit (committed
//! since, staged, modified, untracked), with kind, modes, symlink target, submodule pointer,
//! size, binary-ness and added lines; plus ignored files, for the denied-path rule.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use git2::{
    Commit, Delta, Diff, DiffFindOptions, DiffOptions, FileMode as GitMode, ObjectType, Oid, Patch,
    Repository, RepositoryOpenFlags as OpenFlags,
};
use issueloop_policy::{
    AddedLine, AddedLines, ChangeFacts, ChangeKind, ChangedPath, FileMode, IgnoredScan,
    LinkResolution, Symlink,
};

use crate::error::WorkspaceError;
use crate::hermetic;

/// Bytes of one file's added text read for the secret scan; beyond it the scan is marked
/// incomplete (and the policy says so).
pub const SCAN_LIMIT_BYTES: u64 = 4 * 1024 * 1024;
/// Ignored entries looked at for denied paths; beyond it the look is marked incomplete.
pub const IGNORED_SCAN_LIMIT: u64 = 50_000;
/// Bytes git reads to decide whether content is binary.
const BINARY_PROBE_BYTES: usize = 8000;

/// The change in the checkout containing `dir` against `base` (a revision such as a branch,
/// tag or commit id; `None`: `HEAD`, i.e. the uncommitted change). For `policy check`.
pub fn change_facts_at(dir: &Path, base: Option<&str>) -> Result<ChangeFacts, WorkspaceError> {
    hermetic::init()?;
    let not_a_worktree = || WorkspaceError::NotAWorkingTree {
        path: dir.to_owned(),
    };
    let repo = Repository::open_ext(dir, OpenFlags::empty(), std::iter::empty::<&OsStr>())
        .map_err(|_| not_a_worktree())?;
    if repo.is_bare() {
        return Err(not_a_worktree());
    }
    collect_against(&repo, base)
}

pub(crate) fn collect_against(
    repo: &Repository,
    base: Option<&str>,
) -> Result<ChangeFacts, WorkspaceError> {
    let commit = match base {
        Some(rev) => Some(
            repo.revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .map_err(|_| WorkspaceError::UnknownRevision {
                    base: rev.to_owned(),
                    repo: repo.workdir().unwrap_or(repo.path()).to_owned(),
                })?,
        ),
        None => match repo.head() {
            Ok(head) => Some(head.peel_to_commit().map_err(WorkspaceError::git(
                "cannot read the commit `HEAD` points to",
            ))?),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
                ) =>
            {
                None
            }
            Err(e) => {
                return Err(WorkspaceError::Git {
                    op: "cannot read `HEAD`".into(),
                    source: e,
                });
            }
        },
    };
    collect(repo, commit.as_ref(), false)
}

/// Facts of the working tree of `repo` (worktree and index) against `base` (`None`: against
/// an empty tree).
pub(crate) fn collect(
    repo: &Repository,
    base: Option<&Commit<'_>>,
    refresh_index: bool,
) -> Result<ChangeFacts, WorkspaceError> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| WorkspaceError::NotAWorkingTree {
            path: repo.path().to_owned(),
        })?
        .to_owned();
    let root = workdir
        .canonicalize()
        .map_err(WorkspaceError::io("cannot resolve", &workdir))?;
    let op = || format!("cannot compare `{}` with its base", workdir.display());
    let tree = base
        .map(|c| c.tree())
        .transpose()
        .map_err(WorkspaceError::git(op()))?;

    let mut options = DiffOptions::new();
    options
        // issueloop's private index of a run's worktree is a stat cache: refresh it while
        // comparing. Anyone else's index (`policy check` on a checkout) is left as it is.
        .update_index(refresh_index)
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(true)
        .recurse_ignored_dirs(false)
        .include_typechange(true)
        .include_unreadable(true)
        // Submodules are compared below from the index and their own HEADs; the diff would
        // open every submodule and honour `submodule.*.ignore`, which could hide a bump.
        .ignore_submodules(true)
        // `.gitattributes` may mark a file binary or `-diff`; the secret scan reads it anyway.
        .force_text(true)
        .skip_binary_check(true)
        .context_lines(0);
    let mut diff = repo
        .diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut options))
        .map_err(WorkspaceError::git(op()))?;
    diff.find_similar(Some(
        DiffFindOptions::new()
            .renames(true)
            .for_untracked(true)
            .copies(false),
    ))
    .map_err(WorkspaceError::git(op()))?;

    let mut paths = Vec::new();
    let mut ignored = Vec::new();
    for (idx, delta) in diff.deltas().enumerate() {
        let kind = match delta.status() {
            Delta::Unmodified => continue,
            Delta::Ignored => {
                if let Some(p) = delta.new_file().path_bytes() {
                    ignored.push(p.to_vec());
                }
                continue;
            }
            Delta::Added | Delta::Untracked | Delta::Copied => ChangeKind::Added,
            Delta::Deleted => ChangeKind::Deleted,
            Delta::Modified | Delta::Conflicted | Delta::Unreadable => ChangeKind::Modified,
            Delta::Renamed => ChangeKind::Renamed {
                from: lossy(delta.old_file().path_bytes().unwrap_or_default()).0,
            },
            Delta::Typechange => ChangeKind::TypeChanged,
        };
        let side = if kind == ChangeKind::Deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let raw_path = side.path_bytes().unwrap_or_default();
        let untracked_dir = delta.status() == Delta::Untracked && raw_path.ends_with(b"/");
        let raw_path = raw_path.strip_suffix(b"/").unwrap_or(raw_path);
        let (path, not_utf8) = lossy(raw_path);
        let mut changed = ChangedPath::new(path, kind.clone());
        changed.path_not_utf8 = not_utf8;
        if let ChangeKind::Renamed { .. } = kind {
            changed.path_not_utf8 |= lossy(delta.old_file().path_bytes().unwrap_or_default()).1;
        }
        if kind != ChangeKind::Added {
            changed.old_mode = map_mode(delta.old_file().mode());
            changed.old_id = Some(delta.old_file().id().to_string());
        }
        if kind != ChangeKind::Deleted {
            let abs = workdir.join(bytes_path(raw_path));
            if untracked_dir {
                // An untracked directory git does not descend into: another repository (the
                // agent cloned or created one). `git add` would record it as a submodule.
                changed.new_mode = Some(FileMode::Submodule);
                changed.new_id = repository_head(&abs).map(|id| id.to_string());
            } else if map_mode(delta.new_file().mode()) == Some(FileMode::Submodule) {
                changed.new_mode = Some(FileMode::Submodule);
                changed.new_id = Some(
                    repository_head(&abs)
                        .unwrap_or(delta.new_file().id())
                        .to_string(),
                );
            } else {
                changed.new_mode = map_mode(delta.new_file().mode());
                content_facts(&mut changed, &abs, &root, &diff, idx)?;
            }
        }
        paths.push(changed);
    }
    submodule_pointer_changes(repo, &workdir, tree.as_ref(), &mut paths)?;
    let ignored_scan = scan_ignored(&workdir, &ignored, &mut paths);
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ChangeFacts {
        base: base.map(|c| c.id().to_string()),
        paths,
        ignored_scan,
    })
}

fn lossy(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), false),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    }
}

fn bytes_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

fn map_mode(mode: GitMode) -> Option<FileMode> {
    match mode {
        GitMode::Blob | GitMode::BlobGroupWritable => Some(FileMode::Regular),
        GitMode::BlobExecutable => Some(FileMode::Executable),
        GitMode::Link => Some(FileMode::Symlink),
        GitMode::Commit => Some(FileMode::Submodule),
        GitMode::Unreadable | GitMode::Tree => None,
    }
}

/// The commit checked out in the repository at `dir`, if it is one.
pub(crate) fn repository_head(dir: &Path) -> Option<Oid> {
    if !dir.join(".git").exists() {
        return None;
    }
    let repo =
        Repository::open_ext(dir, OpenFlags::NO_SEARCH, std::iter::empty::<&OsStr>()).ok()?;
    let head = repo.head().ok()?;
    head.peel_to_commit().ok().map(|c| c.id())
}

/// Size, content fingerprint, binary-ness, symlink target and added lines of the new side.
fn content_facts(
    changed: &mut ChangedPath,
    abs: &Path,
    root: &Path,
    diff: &Diff<'_>,
    idx: usize,
) -> Result<(), WorkspaceError> {
    let meta = std::fs::symlink_metadata(abs).map_err(WorkspaceError::io("cannot read", abs))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(abs).map_err(WorkspaceError::io("cannot read", abs))?;
        let bytes = {
            use std::os::unix::ffi::OsStrExt;
            target.as_os_str().as_bytes().to_vec()
        };
        changed.new_mode = Some(FileMode::Symlink);
        changed.size = Some(bytes.len() as u64);
        changed.new_id = Some(blob_id(&bytes).to_string());
        changed.symlink = Some(Symlink {
            target: String::from_utf8_lossy(&bytes).into_owned(),
            resolves_to: resolve_link(abs, &target, root),
        });
        return Ok(());
    }
    if !meta.is_file() {
        return Ok(());
    }
    changed.size = Some(meta.len());
    let mut file = std::fs::File::open(abs).map_err(WorkspaceError::io("cannot read", abs))?;
    let mut head = Vec::new();
    (&mut file)
        .take(SCAN_LIMIT_BYTES + 1)
        .read_to_end(&mut head)
        .map_err(WorkspaceError::io("cannot read", abs))?;
    let whole = head.len() as u64 <= SCAN_LIMIT_BYTES;
    changed.new_id = Some(if whole {
        blob_id(&head).to_string()
    } else {
        Oid::hash_file(ObjectType::Blob, abs)
            .map_err(WorkspaceError::git(format!(
                "cannot hash `{}`",
                abs.display()
            )))?
            .to_string()
    });
    changed.binary = head[..head.len().min(BINARY_PROBE_BYTES)].contains(&0);
    let diffable_old = matches!(
        changed.old_mode,
        Some(FileMode::Regular | FileMode::Executable)
    );
    changed.added = if changed.kind != ChangeKind::Added && diffable_old && !changed.binary && whole
    {
        added_lines_from_patch(diff, idx)?
    } else {
        // New files, binary files and files too large to diff: every line counts as added.
        all_lines(&head[..head.len().min(SCAN_LIMIT_BYTES as usize)], !whole)
    };
    Ok(())
}

pub(crate) fn blob_id(bytes: &[u8]) -> Oid {
    // Hashing a buffer cannot fail for a blob; the zero id would only make a later commit
    // refuse the path as changed.
    Oid::hash_object(ObjectType::Blob, bytes).unwrap_or(Oid::ZERO_SHA1)
}

fn all_lines(content: &[u8], truncated: bool) -> AddedLines {
    let lines = content
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| AddedLine {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            text: String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned(),
        })
        .collect();
    AddedLines { lines, truncated }
}

fn added_lines_from_patch(diff: &Diff<'_>, idx: usize) -> Result<AddedLines, WorkspaceError> {
    let patch = Patch::from_diff(diff, idx)
        .map_err(WorkspaceError::git("cannot compute the added lines"))?;
    let mut out = AddedLines::default();
    let Some(patch) = patch else {
        return Ok(out);
    };
    let mut bytes = 0u64;
    for hunk in 0..patch.num_hunks() {
        let lines = patch
            .num_lines_in_hunk(hunk)
            .map_err(WorkspaceError::git("cannot read a diff hunk"))?;
        for l in 0..lines {
            let line = patch
                .line_in_hunk(hunk, l)
                .map_err(WorkspaceError::git("cannot read a diff line"))?;
            if line.origin() != '+' {
                continue;
            }
            let content = line.content();
            bytes += content.len() as u64;
            if bytes > SCAN_LIMIT_BYTES {
                out.truncated = true;
                return Ok(out);
            }
            let text = content.strip_suffix(b"\n").unwrap_or(content);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            out.lines.push(AddedLine {
                number: line.new_lineno().unwrap_or_default(),
                text: String::from_utf8_lossy(text).into_owned(),
            });
        }
    }
    Ok(out)
}

/// Where the symlink at `link` (pointing to `target`) leads when followed on disk.
fn resolve_link(link: &Path, target: &Path, root: &Path) -> LinkResolution {
    let joined = match link.parent() {
        Some(parent) if target.is_relative() => parent.join(target),
        _ => target.to_owned(),
    };
    let inside = |p: &Path| {
        p.strip_prefix(root).ok().map(|rel| {
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
    };
    if let Ok(real) = joined.canonicalize() {
        return match inside(&real) {
            Some(rel) => LinkResolution::Inside(rel),
            None => LinkResolution::Outside,
        };
    }
    // The target does not exist: follow what does exist of it. If that already leaves the
    // worktree, so does the link; else judge the written target alone.
    let mut existing = joined;
    while existing.pop() {
        if let Ok(real) = existing.canonicalize() {
            return match inside(&real) {
                Some(_) => LinkResolution::Dangling,
                None => LinkResolution::Outside,
            };
        }
    }
    LinkResolution::Dangling
}

/// Submodules recorded on both sides whose pointer moved: staged (index) or checked out in
/// the submodule itself. The diff leaves these out (see `ignore_submodules` above).
fn submodule_pointer_changes(
    repo: &Repository,
    workdir: &Path,
    tree: Option<&git2::Tree<'_>>,
    paths: &mut Vec<ChangedPath>,
) -> Result<(), WorkspaceError> {
    const GITLINK: u32 = 0o160000;
    let index = repo
        .index()
        .map_err(WorkspaceError::git("cannot read the index"))?;
    let gitlinks: Vec<(Vec<u8>, Oid)> = index
        .iter()
        .filter(|e| e.mode == GITLINK)
        .map(|e| (e.path, e.id))
        .collect();
    for (raw_path, index_id) in gitlinks {
        let rel = bytes_path(&raw_path);
        let (path, not_utf8) = lossy(&raw_path);
        if paths.iter().any(|p| p.path == path) {
            continue;
        }
        let Some(old) = tree.and_then(|t| t.get_path(&rel).ok()) else {
            continue; // added: reported by the diff
        };
        if old.filemode() != GITLINK as i32 {
            continue; // a type change: reported by the diff
        }
        let new = repository_head(&workdir.join(&rel)).unwrap_or(index_id);
        if new == old.id() {
            continue;
        }
        let mut changed = ChangedPath::new(path, ChangeKind::Modified);
        changed.path_not_utf8 = not_utf8;
        changed.old_mode = Some(FileMode::Submodule);
        changed.new_mode = Some(FileMode::Submodule);
        changed.old_id = Some(old.id().to_string());
        changed.new_id = Some(new.to_string());
        paths.push(changed);
    }
    Ok(())
}

/// Whether an ignored directory is a tool's own and not looked into: a tagged cache
/// (`CACHEDIR.TAG`, e.g. `target/`, `.pytest_cache/`), a Python virtual environment, or
/// `node_modules`.
fn is_tool_directory(dir: &Path) -> bool {
    dir.file_name() == Some(OsStr::new("node_modules"))
        || dir.join("CACHEDIR.TAG").is_file()
        || dir.join("pyvenv.cfg").is_file()
}

/// Add ignored files (walking ignored directories, bounded) to `paths` as ignored facts.
fn scan_ignored(workdir: &Path, entries: &[Vec<u8>], paths: &mut Vec<ChangedPath>) -> IgnoredScan {
    let mut scan = IgnoredScan::default();
    for raw in entries {
        let raw = raw.strip_suffix(b"/").unwrap_or(raw);
        walk_ignored(workdir, raw.to_vec(), &mut scan, paths);
        if scan.truncated {
            break;
        }
    }
    scan
}

fn walk_ignored(
    workdir: &Path,
    raw: Vec<u8>,
    scan: &mut IgnoredScan,
    paths: &mut Vec<ChangedPath>,
) {
    if scan.checked >= IGNORED_SCAN_LIMIT {
        scan.truncated = true;
        return;
    }
    scan.checked += 1;
    let abs = workdir.join(bytes_path(&raw));
    let (path, not_utf8) = lossy(&raw);
    let Ok(meta) = std::fs::symlink_metadata(&abs) else {
        return; // gone since the diff: nothing to judge
    };
    if meta.is_dir() {
        if is_tool_directory(&abs) {
            scan.skipped_dirs.push(path);
            return;
        }
        let Ok(entries) = std::fs::read_dir(&abs) else {
            return;
        };
        let mut names: Vec<Vec<u8>> = entries
            .flatten()
            .map(|e| {
                use std::os::unix::ffi::OsStrExt;
                e.file_name().as_bytes().to_vec()
            })
            .collect();
        names.sort();
        for name in names {
            let mut child = raw.clone();
            child.push(b'/');
            child.extend_from_slice(&name);
            walk_ignored(workdir, child, scan, paths);
            if scan.truncated {
                return;
            }
        }
        return;
    }
    let mut changed = ChangedPath::new(path, ChangeKind::Added);
    changed.path_not_utf8 = not_utf8;
    changed.ignored = true;
    changed.new_mode = Some(if meta.file_type().is_symlink() {
        FileMode::Symlink
    } else {
        FileMode::Regular
    });
    changed.size = Some(meta.len());
    paths.push(changed);
}

/// The `owner/name` the checkout containing `dir` was cloned from (its `origin` remote), to
/// pick that repository's policy.
pub fn origin_repo_name(dir: &Path) -> Option<issueloop_config::RepoName> {
    hermetic::init().ok()?;
    let repo = Repository::open_ext(dir, OpenFlags::empty(), std::iter::empty::<&OsStr>()).ok()?;
    let remote = repo.find_remote("origin").ok()?;
    repo_name_from_url(remote.url().ok()?)
}

/// `owner/name` from a remote URL: `https://host/owner/name.git`,
/// `git@host:owner/name.git`, `ssh://git@host/owner/name`.
pub fn repo_name_from_url(url: &str) -> Option<issueloop_config::RepoName> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/')?.1,
        None => url.split_once(':')?.1,
    };
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let name = parts.next()?;
    let owner = parts.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    format!("{owner}/{name}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_from_remote_urls() {
        for url in [
            "https://github.com/acme/api.git",
            "https://github.com/acme/api",
            "git@github.com:acme/api.git",
            "ssh://git@github.example.com:22/acme/api.git",
            "https://ghe.example.com/acme/api/",
        ] {
            assert_eq!(
                repo_name_from_url(url).map(|r| r.full()),
                Some("acme/api".to_owned()),
                "{url}"
            );
        }
        assert_eq!(repo_name_from_url("/srv/git/api.git"), None);
    }
}
