//! What a change consists of, as facts gathered from git: every changed path with its kind,
//! modes, symlink target, submodule pointer, size and the added lines the secret scan reads.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every path a change touches, relative to the worktree root, against one base commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFacts {
    /// Commit the change is measured against (`None`: a repository without commits).
    pub base: Option<String>,
    /// Changed paths, sorted by path. Ignored files that were found are included with
    /// `ignored: true`; only the denied-path rule looks at those.
    pub paths: Vec<ChangedPath>,
    /// How far the look into ignored files went.
    pub ignored_scan: IgnoredScan,
}

impl ChangeFacts {
    /// The paths that would be committed (everything but ignored files).
    pub fn tracked(&self) -> impl Iterator<Item = &ChangedPath> {
        self.paths.iter().filter(|p| !p.ignored)
    }

    /// True when nothing would be committed.
    pub fn is_empty(&self) -> bool {
        self.tracked().next().is_none()
    }
}

/// How much of the ignored files was looked at for denied paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredScan {
    /// Ignored entries checked.
    pub checked: u64,
    /// The scan stopped at its entry limit before seeing every ignored file.
    pub truncated: bool,
    /// Ignored directories not looked into: cache directories (`CACHEDIR.TAG`), Python virtual
    /// environments (`pyvenv.cfg`) and `node_modules`.
    pub skipped_dirs: Vec<String>,
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedPath {
    /// Path relative to the worktree root, `/`-separated.
    pub path: String,
    /// The path in git is not valid UTF-8; `path` is a lossy rendering of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_not_utf8: bool,
    /// Serialized as `"kind": "renamed", "from": "…"` beside the other fields.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Mode before the change (`None` for an added path).
    pub old_mode: Option<FileMode>,
    /// Mode after the change (`None` for a deleted path).
    pub new_mode: Option<FileMode>,
    /// Git object id before the change (blob, or commit for a submodule).
    pub old_id: Option<String>,
    /// Fingerprint of the content after the change: the blob id of the file's bytes as found
    /// in the worktree (unfiltered), the link target for a symlink, the commit for a submodule.
    pub new_id: Option<String>,
    /// Where a symlink (after the change) points.
    pub symlink: Option<Symlink>,
    /// The new content looks binary (a NUL byte in its first 8000 bytes, like git decides).
    pub binary: bool,
    /// Size in bytes after the change (`None` for a deleted path or a submodule).
    pub size: Option<u64>,
    /// Ignored by git: never committed, judged by the denied-path rule only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    /// Lines the change adds, for the secret scan. Never serialized: they may hold a secret.
    #[serde(skip)]
    pub added: AddedLines,
}

impl ChangedPath {
    /// A path with only its kind and modes; the other facts empty.
    pub fn new(path: impl Into<String>, kind: ChangeKind) -> Self {
        Self {
            path: path.into(),
            path_not_utf8: false,
            kind,
            old_mode: None,
            new_mode: None,
            old_id: None,
            new_id: None,
            symlink: None,
            binary: false,
            size: None,
            ignored: false,
            added: AddedLines::default(),
        }
    }

    /// Every path this change touches: the path, and for a rename the path it came from.
    pub fn touched_paths(&self) -> impl Iterator<Item = &str> {
        let from = match &self.kind {
            ChangeKind::Renamed { from } => Some(from.as_str()),
            _ => None,
        };
        std::iter::once(self.path.as_str()).chain(from)
    }

    /// True when either side is a submodule (a gitlink) and the pointer differs.
    pub fn is_submodule_change(&self) -> bool {
        let sub = |m: Option<FileMode>| m == Some(FileMode::Submodule);
        (sub(self.old_mode) || sub(self.new_mode))
            && (self.old_mode != self.new_mode || self.old_id != self.new_id)
    }

    /// True when the change flips the executable bit of a file.
    pub fn exec_bit_changed(&self) -> bool {
        matches!(
            (self.old_mode, self.new_mode),
            (Some(FileMode::Regular), Some(FileMode::Executable))
                | (Some(FileMode::Executable), Some(FileMode::Regular))
        )
    }
}

/// What happened to a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    /// Moved from `from` (both paths are judged).
    Renamed {
        from: String,
    },
    /// The type changed: a file became a symlink, a symlink a submodule, ….
    TypeChanged,
}

impl ChangeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Renamed { .. } => "renamed",
            ChangeKind::TypeChanged => "type_changed",
        }
    }
}

/// The kind of entry git records for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMode {
    /// `100644`
    Regular,
    /// `100755`
    Executable,
    /// `120000`
    Symlink,
    /// `160000`, a gitlink.
    Submodule,
}

impl FileMode {
    /// The octal mode git writes.
    pub fn octal(self) -> &'static str {
        match self {
            FileMode::Regular => "100644",
            FileMode::Executable => "100755",
            FileMode::Symlink => "120000",
            FileMode::Submodule => "160000",
        }
    }
}

/// A symlink's target and where it leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    /// The target as written in the link.
    pub target: String,
    /// Where the link leads when followed on disk.
    pub resolves_to: LinkResolution,
}

/// Where a symlink leads when every link on the way is followed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "path")]
pub enum LinkResolution {
    /// A path inside the worktree, relative to its root.
    Inside(String),
    /// Somewhere outside the worktree.
    Outside,
    /// The target does not exist (judged on the written target alone).
    Dangling,
}

/// Lines added by a change, bounded per file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AddedLines {
    pub lines: Vec<AddedLine>,
    /// More lines were added than were kept.
    pub truncated: bool,
}

/// One added line: its 1-based number in the new file and its text.
#[derive(Clone, PartialEq, Eq)]
pub struct AddedLine {
    pub number: u32,
    pub text: String,
}

impl fmt::Debug for AddedLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddedLines")
            .field("lines", &self.lines)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl fmt::Debug for AddedLine {
    // The text may be a secret: show its size, never its content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} ({} bytes)", self.number, self.text.len())
    }
}
