//! Which process owns a worktree: a record written before anything else of the worktree exists
//! and removed after everything else is gone, so a run killed at any point leaves a record that
//! names what to clean, and a way to tell whether its owner is still alive.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::WorkspaceError;

/// What `cleanup_stale` needs to remove a worktree whose run died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnerRecord {
    pub pid: u32,
    /// Random per process: tells a reused PID (a container's PID 1 after a restart) apart.
    pub process_token: String,
    /// Process start time in clock ticks since boot (Linux), to tell reused PIDs apart.
    pub start_ticks: Option<u64>,
    pub boot_id: Option<String>,
    /// `owner/name` of the repository.
    pub repo: String,
    pub branch: String,
    /// The bare mirror the worktree belongs to.
    pub mirror: PathBuf,
    /// The worktree's name in the mirror (`<mirror>/worktrees/<name>`).
    pub worktree_name: String,
    /// The checkout.
    pub worktree: PathBuf,
}

/// This process, as an owner record records it.
pub(crate) struct ProcessIdentity {
    pub pid: u32,
    pub token: String,
    pub start_ticks: Option<u64>,
    pub boot_id: Option<String>,
}

pub(crate) fn this_process() -> &'static ProcessIdentity {
    static ME: OnceLock<ProcessIdentity> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let here = &nanos as *const u128 as usize;
        ProcessIdentity {
            pid,
            token: format!("{pid:x}-{nanos:x}-{here:x}"),
            start_ticks: linux_proc_stat(pid).map(|s| s.start_ticks),
            boot_id: boot_id(),
        }
    })
}

struct ProcStat {
    zombie: bool,
    start_ticks: u64,
}

/// State and start time of a process from `/proc/<pid>/stat` (Linux; `None` elsewhere).
fn linux_proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are
    // plain. After `)`: field 3 (state) is index 0, field 22 (starttime) index 19.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        zombie: matches!(fields.first(), Some(&("Z" | "X"))),
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Whether the run that wrote `record` may still be running. Unsure means alive: only the
/// worktrees of runs known to be dead are removed.
pub(crate) fn is_alive(record: &OwnerRecord) -> bool {
    let me = this_process();
    if record.boot_id.is_some() && me.boot_id.is_some() && record.boot_id != me.boot_id {
        return false; // the machine rebooted since
    }
    if record.pid == me.pid {
        return record.process_token == me.token;
    }
    let Ok(pid) = libc::pid_t::try_from(record.pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    if rc != 0 {
        // EPERM: it exists but belongs to someone else; anything else: it is gone.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    match linux_proc_stat(record.pid) {
        Some(stat) if stat.zombie => false,
        Some(stat) => record.start_ticks.is_none_or(|t| t == stat.start_ticks),
        None => true,
    }
}

impl OwnerRecord {
    /// Write the record atomically (a temporary file renamed into place).
    pub(crate) fn write(&self, path: &Path) -> Result<(), WorkspaceError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| WorkspaceError::Io {
            op: "cannot encode the owner record",
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(WorkspaceError::io("cannot write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(WorkspaceError::io("cannot write", path))
    }

    /// Read a record; `None` when it is unreadable (then its owner cannot be alive: a live
    /// run's record is written whole before anything else).
    pub(crate) fn read(path: &Path) -> Option<OwnerRecord> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_types,
    reason = "the tests start children directly to watch them live and die"
)]
mod tests {
    use super::*;

    fn record(pid: u32) -> OwnerRecord {
        let me = this_process();
        OwnerRecord {
            pid,
            process_token: me.token.clone(),
            start_ticks: None,
            boot_id: me.boot_id.clone(),
            repo: "acme/api".into(),
            branch: "loop/1-x".into(),
            mirror: "/m".into(),
            worktree_name: "w".into(),
            worktree: "/w".into(),
        }
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let mut r = record(std::process::id());
        assert!(is_alive(&r));
        r.process_token = "another-process".into();
        assert!(
            !is_alive(&r),
            "same pid, different token: a previous process"
        );
    }

    #[test]
    fn an_exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(&record(pid)));
    }

    #[test]
    fn a_live_child_is_alive_until_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut r = record(child.id());
        r.start_ticks = linux_proc_stat(child.id()).map(|s| s.start_ticks);
        assert!(is_alive(&r));
        if r.start_ticks.is_some() {
            let mut reused = r.clone();
            reused.start_ticks = Some(1);
            assert!(
                !is_alive(&reused),
                "a different start time is another process"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_alive(&r));
    }

    #[test]
    fn records_round_trip_and_garbage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.owner.json");
        record(7).write(&path).unwrap();
        assert_eq!(OwnerRecord::read(&path), Some(record(7)));
        std::fs::write(&path, "{ half").unwrap();
        assert_eq!(OwnerRecord::read(&path), None);
    }
}
