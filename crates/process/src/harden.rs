//! Process-wide hardening applied at the very start of `main`, before any thread or child exists.

/// What [`harden_process`] achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hardening {
    /// `PR_SET_DUMPABLE` is 0: `/proc/<pid>/environ`, `mem` and ptrace are closed to processes
    /// of the same user without `CAP_SYS_PTRACE`.
    pub non_dumpable: bool,
    /// `PR_SET_CHILD_SUBREAPER` is set: orphans below issueloop are re-parented to it.
    pub subreaper: bool,
    /// Secret variables whose values were moved out of the initial environment block (what
    /// `/proc/<pid>/environ` shows) into the heap.
    pub hidden_vars: usize,
}

/// Make this process non-dumpable and a child subreaper, and move the values of `secret_vars`
/// out of the environment block `/proc/<pid>/environ` reads (a process with `CAP_SYS_PTRACE`,
/// e.g. root, may still open that file of a non-dumpable process; its memory it may not, once
/// sandboxed). Call first thing in `main`, before any thread exists: the environment (with the
/// forge token) must never be readable, not even briefly. `std::env` still sees every variable.
pub fn harden_process(secret_vars: &[&str]) -> Hardening {
    // SAFETY: called before any other thread exists (the contract above), so nothing reads or
    // writes the environment concurrently.
    let hidden_vars = unsafe { hide_from_environ_block(secret_vars) };
    // SAFETY: prctl with these options takes integer arguments only.
    let non_dumpable =
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } == 0;
    // SAFETY: as above.
    let subreaper =
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } == 0;
    let hardening = Hardening {
        non_dumpable,
        subreaper,
        hidden_vars,
    };
    let _ = APPLIED.set(hardening);
    hardening
}

static APPLIED: std::sync::OnceLock<Hardening> = std::sync::OnceLock::new();

/// What [`harden_process`] achieved in this process (`None`: it was not called).
pub fn hardening() -> Option<Hardening> {
    APPLIED.get().copied()
}

unsafe extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Point each `NAME=value` entry of a secret at a heap copy and zero the value's bytes in the
/// original block.
///
/// # Safety
///
/// No other thread may touch the environment meanwhile.
unsafe fn hide_from_environ_block(names: &[&str]) -> usize {
    let mut hidden = 0;
    // SAFETY: `environ` is the C library's NULL-terminated array of NUL-terminated strings;
    // entries are replaced by leaked heap strings that stay valid for the process's life.
    unsafe {
        let mut entry = environ;
        if entry.is_null() {
            return 0;
        }
        while !(*entry).is_null() {
            let original = *entry;
            let bytes = std::ffi::CStr::from_ptr(original).to_bytes();
            if let Some(eq) = bytes.iter().position(|b| *b == b'=')
                && names.iter().any(|n| n.as_bytes() == &bytes[..eq])
                && let Ok(copy) = std::ffi::CString::new(bytes)
            {
                let len = bytes.len();
                *entry = copy.into_raw();
                std::ptr::write_bytes(original.add(eq + 1), 0, len - eq - 1);
                hidden += 1;
            }
            entry = entry.add(1);
        }
    }
    hidden
}

/// Whether this process is dumpable (for `doctor` and tests).
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no pointer and returns the flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}
