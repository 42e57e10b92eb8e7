//! An exclusive advisory file lock (`flock`) with a timeout. The kernel releases it when the
//! holder exits, however it exits, so a killed run never leaves this lock held.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::WorkspaceError;

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    // Closing the file releases the lock.
    _file: File,
}

impl FileLock {
    /// Take the lock on `path` (created if missing), waiting at most `timeout`.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<FileLock, WorkspaceError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(WorkspaceError::io("cannot create the directory", parent))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(WorkspaceError::io("cannot open the lock file", path))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            // SAFETY: `flock` on a file descriptor this function owns for its whole life.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EWOULDBLOCK | libc::EINTR) => {}
                _ => return Err(WorkspaceError::io("cannot lock", path)(err)),
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(WorkspaceError::LockTimeout {
                    path: path.to_owned(),
                    waited,
                });
            }
            // Another process holds it (a fetch, a commit); poll with a growing pause.
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_then_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lock");
        let held = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = FileLock::acquire(&path, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, WorkspaceError::LockTimeout { .. }), "{err}");
        assert!(err.to_string().contains("m.lock"), "{err}");
        drop(held);
        FileLock::acquire(&path, Duration::from_millis(30)).unwrap();
    }
}
