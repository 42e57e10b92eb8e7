//! The built-in UTF-8 check of changed text files, run in-process (no program, so nothing for
//! the allowlist to approve and nothing that could write into the worktree).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// Result of the check: whether every file passed, and a report line per finding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Utf8Outcome {
    pub passed: bool,
    pub report: String,
}

/// Files larger than this are reported rather than read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Check that each file (relative to `worktree`) is valid UTF-8 without NUL bytes. Missing files
/// (deleted by the change) and symbolic links are skipped and said so; paths that leave the
/// worktree fail.
pub(crate) fn utf8_check(worktree: &Path, files: &[PathBuf]) -> Utf8Outcome {
    let mut report = String::new();
    let mut passed = true;
    let mut checked = 0usize;
    for rel in files {
        let shown = rel.display();
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            passed = false;
            let _ = writeln!(report, "{shown}: not a path inside the worktree");
            continue;
        }
        let path = worktree.join(rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = writeln!(report, "{shown}: skipped (not in the worktree)");
                continue;
            }
            Err(e) => {
                passed = false;
                let _ = writeln!(report, "{shown}: cannot read: {e}");
                continue;
            }
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            let _ = writeln!(report, "{shown}: skipped (not a regular file)");
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            passed = false;
            let _ = writeln!(
                report,
                "{shown}: {} bytes, more than the {MAX_FILE_BYTES} this check reads",
                meta.len()
            );
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                passed = false;
                let _ = writeln!(report, "{shown}: cannot read: {e}");
                continue;
            }
        };
        checked += 1;
        if let Some(finding) = finding(&bytes) {
            passed = false;
            let _ = writeln!(report, "{shown}:{finding}");
        }
    }
    let _ = writeln!(
        report,
        "{checked} file{} checked, {}",
        if checked == 1 { "" } else { "s" },
        if passed {
            "all valid UTF-8"
        } else {
            "problems above"
        }
    );
    Utf8Outcome { passed, report }
}

/// `line:column: what` for the first problem in a file, if any.
fn finding(bytes: &[u8]) -> Option<String> {
    let (offset, what) = match std::str::from_utf8(bytes) {
        Err(e) => (
            e.valid_up_to(),
            format!(
                "invalid UTF-8 (byte 0x{:02x} at offset {}); save the file as UTF-8",
                bytes[e.valid_up_to()],
                e.valid_up_to()
            ),
        ),
        Ok(text) => {
            let nul = text.find('\0')?;
            (
                nul,
                format!("NUL byte at offset {nul}: a binary file, or text saved as UTF-16"),
            )
        }
    };
    let before = &bytes[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Some(format!("{line}:{column}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_locate_the_first_problem() {
        assert_eq!(finding("héllo\nwörld\n".as_bytes()), None);
        let f = finding(b"ok\nab\xffc\n").unwrap();
        assert!(
            f.starts_with("2:3: invalid UTF-8 (byte 0xff at offset 5)"),
            "{f}"
        );
        let f = finding(b"a\0b").unwrap();
        assert!(f.starts_with("1:2: NUL byte"), "{f}");
        // UTF-16 with a byte order mark is not UTF-8.
        assert!(finding(&[0xff, 0xfe, b'a', 0]).is_some());
    }

    #[test]
    fn files_in_a_worktree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.md"), "# Title\n").unwrap();
        std::fs::write(dir.path().join("bad.md"), b"\xc3\x28\n").unwrap();
        let ok = utf8_check(dir.path(), &["good.md".into(), "gone.md".into()]);
        assert!(ok.passed, "{}", ok.report);
        assert!(ok.report.contains("gone.md: skipped"));
        assert!(ok.report.contains("1 file checked"));
        let bad = utf8_check(dir.path(), &["good.md".into(), "bad.md".into()]);
        assert!(!bad.passed);
        assert!(
            bad.report.contains("bad.md:1:1: invalid UTF-8"),
            "{}",
            bad.report
        );
        let escape = utf8_check(dir.path(), &["../etc/passwd".into(), "/etc/passwd".into()]);
        assert!(!escape.passed);
        assert_eq!(
            escape
                .report
                .matches("not a path inside the worktree")
                .count(),
            2
        );
    }
}
