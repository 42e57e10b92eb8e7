//! Which process made a reservation (host, pid and the pid's start time), and the pure rule that
//! says when a later tick on the same host may treat that process as dead.

/// The process that made a reservation. The start time tells a live process from a later one
/// that was given the same pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessOwner {
    pub host: String,
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot), as text.
    pub start: String,
}

impl ProcessOwner {
    /// This process, where the host and the start time can be read (Linux); `None` elsewhere,
    /// and then only the time-based expiry applies to its reservations.
    pub fn current() -> Option<ProcessOwner> {
        let pid = std::process::id();
        Some(ProcessOwner {
            host: hostname()?,
            pid,
            start: process_start(pid)?,
        })
    }
}

/// This machine's name, from the kernel.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The start time of a live process `pid` (field 22 of `/proc/<pid>/stat`), `None` when no such
/// process exists (or it cannot be read).
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_from_stat(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted after its last `)`.
pub fn start_from_stat(stat: &str) -> Option<String> {
    let (_, after) = stat.rsplit_once(')')?;
    // After `)`: field 3 (state) is the first; field 22 is the 20th.
    after.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether the process that owns a reservation is known to be gone, judged from `here` (this
/// host) and `alive_start` (the start time of a live process with the owner's pid, if any).
/// Only a reservation made on this host can be judged; a pid that is alive but started at
/// another time was reused by another process.
pub fn owner_is_gone(owner: &ProcessOwner, here: &str, alive_start: Option<&str>) -> bool {
    if owner.host != here {
        return false;
    }
    match alive_start {
        None => true,
        Some(start) => start != owner.start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> ProcessOwner {
        ProcessOwner {
            host: "runner-1".into(),
            pid: 4242,
            start: "987654".into(),
        }
    }

    #[test]
    fn gone_table() {
        // (host we run on, start time of a live process with that pid, gone?)
        let table = [
            ("runner-1", None, true),            // dead
            ("runner-1", Some("987654"), false), // alive: the same process
            ("runner-1", Some("1000000"), true), // pid reused by a later process
            ("runner-2", None, false),           // another host: the clock decides
            ("runner-2", Some("987654"), false),
        ];
        for (here, alive, gone) in table {
            assert_eq!(
                owner_is_gone(&owner(), here, alive),
                gone,
                "{here} {alive:?}"
            );
        }
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 555123 20 21";
        assert_eq!(
            start_from_stat(&format!("4242 (agent) {tail}")).as_deref(),
            Some("555123")
        );
        assert_eq!(
            start_from_stat(&format!("4242 (a b) c)) {tail}")).as_deref(),
            Some("555123")
        );
        assert_eq!(start_from_stat("4242 (short) S 1"), None);
        assert_eq!(start_from_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_reads_its_own_start() {
        if let Some(me) = ProcessOwner::current() {
            assert_eq!(process_start(me.pid).as_deref(), Some(me.start.as_str()));
            assert!(!owner_is_gone(
                &me,
                &me.host,
                process_start(me.pid).as_deref()
            ));
        }
    }
}
