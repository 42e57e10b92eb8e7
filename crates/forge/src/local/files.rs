//! The local forge's files: Markdown with TOML front matter between `+++` lines, written
//! atomically (temporary file, then rename), under a lock file per repository folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ForgeError;

const FENCE: &str = "+++";

/// `repo.toml`: the repository's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoFile {
    /// Path of the git repository (bare or not), relative to the repository folder.
    pub remote: PathBuf,
    /// Default branch; the remote's `HEAD` when absent.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// Login recorded for what issueloop writes (labels, comments, PRs).
    #[serde(default)]
    pub bot: Option<String>,
    /// login → `admin` | `maintain` | `write` | `triage` | `read` | `none`.
    #[serde(default)]
    pub permissions: std::collections::BTreeMap<String, String>,
}

/// Front matter of `issues/<n>.md`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueFront {
    pub title: String,
    #[serde(default = "open")]
    pub state: String,
    #[serde(default)]
    pub author: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Who applied or removed each label, and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<LabelRecord>,
    /// Edits of the body after creation: who, when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<EditRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<CommentRecord>,
}

fn open() -> String {
    "open".to_owned()
}

fn labeled() -> String {
    "labeled".to_owned()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRecord {
    pub label: String,
    pub actor: String,
    pub at: Timestamp,
    /// `labeled` or `unlabeled`.
    #[serde(default = "labeled")]
    pub action: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRecord {
    pub actor: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRecord {
    pub id: u64,
    pub author: String,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    pub body: String,
}

/// Front matter of `pulls/<n>.md`; the file's Markdown is the PR body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullFront {
    pub number: u64,
    pub issue: u64,
    pub branch: String,
    pub base: String,
    pub title: String,
    pub draft: bool,
    #[serde(default = "open")]
    pub state: String,
    pub author: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `claims/<n>.lock`: the claim and its lease. Written under the folder lock, so one run holds
/// it; the holding run moves `expires` forward while it lives.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimFile {
    pub branch: String,
    pub at: Timestamp,
    /// Who holds it: process id and start time, for a person reading the file.
    pub holder: String,
    /// The holding run's id (absent in claims written before leases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// When the lease lapses unless renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// How long one renewal lasts, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

impl ClaimFile {
    /// The lease this file records, when it records one.
    pub fn lease(&self) -> Option<issueloop_triage::LeaseFacts> {
        Some(issueloop_triage::LeaseFacts {
            holder: self.run.clone()?,
            expires: self.expires?,
            ttl: Duration::from_secs(self.ttl_secs?),
        })
    }
}

/// A document: front matter and Markdown.
pub struct Document<T> {
    pub front: T,
    pub body: String,
}

pub fn parse_document<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<Document<T>, ForgeError> {
    let bad = |message: String| ForgeError::Local {
        path: path.to_owned(),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix(FENCE)
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
        .ok_or_else(|| {
            bad(format!(
                "the file must start with a `{FENCE}` line opening its TOML front matter"
            ))
        })?;
    let end = find_fence(rest)
        .ok_or_else(|| bad(format!("no closing `{FENCE}` line after the front matter")))?;
    let front_text = &rest[..end];
    let after = &rest[end + FENCE.len()..];
    let body = after
        .strip_prefix("\r\n")
        .or_else(|| after.strip_prefix('\n'))
        .unwrap_or(after)
        .to_owned();
    let front = toml::from_str(front_text).map_err(|e| {
        bad(format!(
            "front matter: {}",
            e.to_string().trim_end().replace('\n', " ")
        ))
    })?;
    Ok(Document { front, body })
}

/// Byte offset of a line that is exactly `+++`.
fn find_fence(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == FENCE {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

pub fn render_document<T: Serialize>(doc: &Document<T>) -> Result<String, ForgeError> {
    let front = toml::to_string_pretty(&doc.front).map_err(|e| ForgeError::Local {
        path: PathBuf::new(),
        message: format!("cannot write front matter: {e}"),
    })?;
    let mut out = format!("{FENCE}\n{}", front.trim_end());
    out.push('\n');
    out.push_str(FENCE);
    out.push('\n');
    out.push_str(&doc.body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

pub fn read_document<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Document<T>, ForgeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ForgeError::Local {
        path: path.to_owned(),
        message: format!("cannot read: {e}"),
    })?;
    parse_document(path, &text)
}

pub fn write_document<T: Serialize>(path: &Path, doc: &Document<T>) -> Result<(), ForgeError> {
    let text = render_document(doc).map_err(|e| match e {
        ForgeError::Local { message, .. } => ForgeError::Local {
            path: path.to_owned(),
            message,
        },
        other => other,
    })?;
    write_atomic(path, text.as_bytes())
}

/// Writes `path` so a reader sees the old content or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ForgeError> {
    let err = |message: String| ForgeError::Local {
        path: path.to_owned(),
        message,
    };
    let dir = path
        .parent()
        .ok_or_else(|| err("no parent folder".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the folder: {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(format!("cannot write: {e}")));
    }
    Ok(())
}

/// An exclusive lock on a repository folder's `.lock` file (`flock`), held while the folder's
/// files are read, changed and written back. The kernel releases it when the holder's file is
/// closed, however the holder ends: a process killed in the middle (SIGKILL during a lease
/// renewal) leaves a file behind but no lock, so the next run goes on at once. The file itself
/// stays; its presence means nothing.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    pub async fn acquire(dir: &Path, timeout: Duration) -> Result<Self, ForgeError> {
        let path = dir.join(".lock");
        std::fs::create_dir_all(dir).map_err(|e| ForgeError::Local {
            path: dir.to_owned(),
            message: format!("cannot create the folder: {e}"),
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| ForgeError::Local {
                path: path.clone(),
                message: format!("cannot open the lock file: {e}"),
            })?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(ForgeError::Local {
                        path,
                        message: format!("cannot lock: {e}"),
                    });
                }
            }
            if started.elapsed() > timeout {
                return Err(ForgeError::Local {
                    path,
                    message: format!(
                        "still locked after {}: another issueloop process is writing this folder",
                        issueloop_config::human_duration(timeout)
                    ),
                });
            }
            // Another process is writing; its critical section is a few file writes.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_file_left_by_a_killed_holder_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // What a process killed while holding the lock leaves: the file, no lock.
        std::fs::write(dir.path().join(".lock"), "pid 4242\n").unwrap();
        let started = std::time::Instant::now();
        let lock = FolderLock::acquire(dir.path(), Duration::from_secs(30)).await;
        assert!(lock.is_ok(), "{lock:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_held_lock_keeps_others_out_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = FolderLock::acquire(dir.path(), Duration::from_secs(1))
            .await
            .unwrap();
        let other = FolderLock::acquire(dir.path(), Duration::from_millis(100)).await;
        let Err(ForgeError::Local { message, .. }) = other else {
            panic!("a second holder got the lock: {other:?}");
        };
        assert!(message.contains("still locked"), "{message}");
        drop(held);
        assert!(
            FolderLock::acquire(dir.path(), Duration::from_millis(100))
                .await
                .is_ok()
        );
    }

    #[test]
    fn issue_documents_round_trip() {
        let text = r#"+++
title = "Parser rejects empty input"
author = "bob"
created_at = "2025-01-06T09:00:00Z"
labels = ["loop:approved"]

[[events]]
label = "loop:approved"
actor = "alice"
at = "2025-01-06T09:05:00Z"
+++
The parser fails on `""`.

## Acceptance
- [ ] empty input parses
"#;
        let doc: Document<IssueFront> = parse_document(Path::new("1.md"), text).unwrap();
        assert_eq!(doc.front.state, "open");
        assert_eq!(doc.front.events[0].action, "labeled");
        assert!(doc.body.starts_with("The parser fails"));
        let mut doc = doc;
        doc.front.comments.push(CommentRecord {
            id: 1,
            author: "issueloop".into(),
            at: "2025-01-06T10:00:00Z".parse().unwrap(),
            updated_at: None,
            body: "<!-- m -->\nline one\nline \"two\" +++\n".into(),
        });
        let written = render_document(&doc).unwrap();
        let back: Document<IssueFront> = parse_document(Path::new("1.md"), &written).unwrap();
        assert_eq!(back.body, doc.body);
        assert_eq!(back.front.comments[0].body, doc.front.comments[0].body);
    }

    #[test]
    fn malformed_documents_name_the_problem() {
        let err = |t: &str| {
            parse_document::<IssueFront>(Path::new("x/3.md"), t)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(
            err("title = 1").contains("must start with a `+++` line"),
            "{}",
            err("title = 1")
        );
        assert!(err("+++\ntitle = \"t\"\n").contains("no closing `+++`"));
        let e = err("+++\ntitle = \"t\"\ncreated_at = \"yesterday\"\n+++\n");
        assert!(e.contains("front matter") && e.contains("x/3.md"), "{e}");
        let e = err("+++\ntitle = \"t\"\ncreated_at = \"2025-01-01T00:00:00Z\"\ncolour = 1\n+++\n");
        assert!(e.contains("colour"), "{e}");
    }
}
