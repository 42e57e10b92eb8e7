//! The keeper: a small process between issueloop and every child it launches, forked between
//! fork and exec, that adopts everything the child starts and ends all of it when the child ends,
//! when issueloop asks, or when issueloop dies. Only async-signal-safe code (raw system calls, no
//! allocation): it runs in a fork of a multi-threaded process.
//!
//! ```text
//! issueloop ── keeper (subreaper, PDEATHSIG = KILL_ALL, outside the sandbox)
//!                └─ child (own process group, PDEATHSIG = SIGKILL, sandboxed) ─ its descendants
//! ```
//!
//! A descendant that leaves the child's process group and session (`setsid`, a double fork) is
//! re-parented to the keeper, never to init or issueloop, so the keeper always knows every
//! process of the launch: its own children, listed by the kernel in
//! `/proc/self/task/<pid>/children`.

use std::io;

/// Sent to the keeper: end every process of the launch now (also its parent-death signal).
pub(crate) const KILL_ALL: libc::c_int = libc::SIGUSR1;

/// Exit code of a keeper that found its parent already gone.
const ORPHANED: libc::c_int = 125;

/// The signals the keeper waits for with `sigtimedwait` (blocked, never handled).
const WAITED: [libc::c_int; 5] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    KILL_ALL,
];

/// Split the freshly forked child into the keeper and the child that goes on to exec. Returns
/// in the child only; the keeper never returns.
///
/// # Safety
///
/// Call only between fork and exec (a `pre_exec` closure): it forks again and may `_exit`.
pub(crate) unsafe fn split(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY (whole function): only async-signal-safe system calls on stack memory.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, KILL_ALL as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // issueloop may have died before the line above took effect.
        if libc::getppid() != parent {
            libc::_exit(ORPHANED);
        }
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Blocked before the fork, so no request or child exit is missed; the child unblocks.
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in WAITED {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        let keeper = libc::getpid();
        match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // The child: its own process group (so the keeper can signal it without
                // signalling itself), killed when the keeper goes.
                if libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != keeper {
                    libc::_exit(ORPHANED);
                }
                if libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }
            child => keep(child, &set),
        }
    }
}

/// The keeper's whole life: wait for signals and child exits, forward TERM to the child's group,
/// and once the child has ended (or on [`KILL_ALL`]) kill every remaining process, reap them all,
/// and exit as the child did.
unsafe fn keep(child: libc::pid_t, waited: &libc::sigset_t) -> ! {
    // SAFETY (whole function): only async-signal-safe system calls on stack memory.
    unsafe {
        // Nothing of the parent's stays open here: the pipes to issueloop must reach EOF when
        // the child and its descendants close them, and std's exec-error pipe must close.
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..4096 {
                libc::close(fd);
            }
        }
        // Inherited handlers (tokio's) are never run here: every waited signal is blocked and
        // taken with sigtimedwait, with its default disposition.
        for sig in WAITED {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut status: Option<libc::c_int> = None;
        let mut killing = false;
        loop {
            loop {
                let mut st: libc::c_int = 0;
                let r = libc::waitpid(-1, &mut st, libc::WNOHANG);
                if r > 0 {
                    if r == child {
                        status = Some(st);
                        killing = true;
                    }
                    continue;
                }
                if r == 0 {
                    break;
                }
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                // ECHILD: no process of the launch is left.
                finish(status);
            }
            if killing {
                kill_all(child);
            }
            let timeout = libc::timespec {
                tv_sec: if killing { 0 } else { 1 },
                tv_nsec: if killing { 20_000_000 } else { 0 },
            };
            let sig = libc::sigtimedwait(waited, std::ptr::null_mut(), &timeout);
            match sig {
                libc::SIGTERM | libc::SIGINT | libc::SIGHUP if !killing => {
                    libc::kill(-child, sig);
                }
                KILL_ALL => killing = true,
                _ => {}
            }
        }
    }
}

/// SIGKILL to the child's group and to every child of the keeper (orphans re-parented to it).
unsafe fn kill_all(child: libc::pid_t) {
    // SAFETY (whole function): only async-signal-safe system calls on stack memory.
    unsafe {
        libc::kill(-child, libc::SIGKILL);
        // "/proc/self/task/<pid>/children": the keeper has one thread, whose id is its pid.
        let mut path = [0u8; 64];
        let prefix = b"/proc/self/task/";
        let suffix = b"/children\0";
        path[..prefix.len()].copy_from_slice(prefix);
        let mut at = prefix.len();
        let mut digits = [0u8; 12];
        let mut n = libc::getpid();
        let mut d = 0;
        loop {
            digits[d] = b'0' + (n % 10) as u8;
            d += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while d > 0 {
            d -= 1;
            path[at] = digits[d];
            at += 1;
        }
        path[at..at + suffix.len()].copy_from_slice(suffix);
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut buf = [0u8; 1024];
        let mut pid: libc::pid_t = 0;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            for &b in &buf[..n as usize] {
                if b.is_ascii_digit() {
                    pid = pid
                        .saturating_mul(10)
                        .saturating_add(libc::pid_t::from(b - b'0'));
                } else {
                    if pid > 1 {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    pid = 0;
                }
            }
        }
        if pid > 1 {
            libc::kill(pid, libc::SIGKILL);
        }
        libc::close(fd);
    }
}

/// Exit the way the child did: its exit code, or its signal.
unsafe fn finish(status: Option<libc::c_int>) -> ! {
    // SAFETY (whole function): only async-signal-safe system calls.
    unsafe {
        match status {
            Some(st) if libc::WIFEXITED(st) => libc::_exit(libc::WEXITSTATUS(st)),
            Some(st) if libc::WIFSIGNALED(st) => {
                let sig = libc::WTERMSIG(st);
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), sig);
                libc::_exit(128 + sig)
            }
            _ => libc::_exit(ORPHANED),
        }
    }
}
