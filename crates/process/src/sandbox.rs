//! The Landlock sandbox of a launched child: reads open everywhere, writes only beneath the
//! paths it is given (and a few harmless devices), optionally no TCP, and no signals to or
//! ptrace of processes outside it (which also hides their `/proc/<pid>/environ` and memory).
//!
//! The ruleset is built in the parent (paths opened there) and only `restrict_self` runs in the
//! child between fork and exec, where nothing may allocate.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

/// The newest Landlock ABI whose rights this sandbox asks for (filesystem incl. device ioctls
/// and truncation, TCP, signal scoping). Older kernels get what they support (best effort),
/// unless Landlock is missing altogether and the mode is `required`.
const ABI_TARGET: ABI = ABI::V6;

/// Devices every child may write (they store nothing).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// Whether a sandboxed child may open TCP connections and listen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    #[default]
    Open,
    /// No TCP `connect` or `bind` (Landlock ABI ≥ 4; older kernels leave it open).
    Deny,
}

/// What a sandboxed child may write, and whether it must be enforced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Directories (and files) the child may write beneath. Paths that do not exist are skipped.
    pub writable: Vec<PathBuf>,
    pub network: Network,
    /// `true`: refuse to start the child when the kernel cannot enforce the sandbox.
    pub required: bool,
}

impl Sandbox {
    /// A sandbox writing only beneath `writable`.
    pub fn new(writable: impl IntoIterator<Item = PathBuf>) -> Self {
        Sandbox {
            writable: writable.into_iter().collect(),
            network: Network::Open,
            required: true,
        }
    }

    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    pub fn best_effort(mut self) -> Self {
        self.required = false;
        self
    }
}

/// What the running kernel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Landlock works, with this ABI version.
    Available { abi: i32 },
    /// Built in but not enabled at boot (`lsm=` lacks `landlock`).
    NotEnabled,
    /// The kernel has no Landlock.
    NotImplemented,
}

impl Support {
    pub fn is_available(self) -> bool {
        matches!(self, Support::Available { .. })
    }

    /// Whether TCP restriction is enforced (ABI ≥ 4).
    pub fn restricts_network(self) -> bool {
        matches!(self, Support::Available { abi } if abi >= 4)
    }

    /// Whether signals to processes outside the sandbox are refused (ABI ≥ 6).
    pub fn scopes_signals(self) -> bool {
        matches!(self, Support::Available { abi } if abi >= 6)
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Available { abi } => write!(f, "Landlock ABI {abi}"),
            Support::NotEnabled => f.write_str("Landlock built in but not enabled (boot `lsm=`)"),
            Support::NotImplemented => f.write_str("no Landlock in this kernel"),
        }
    }
}

/// Ask the kernel which Landlock ABI it offers.
pub fn support() -> Support {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag only
    // returns the ABI version (or -1 with errno); it touches no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if v > 0 {
        return Support::Available {
            abi: i32::try_from(v).unwrap_or(i32::MAX),
        };
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => Support::NotEnabled,
        _ => Support::NotImplemented,
    }
}

/// The running kernel's release (`uname -r`), for error messages.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Why a sandbox cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox is required but the kernel cannot enforce it: {support} (kernel {kernel}); \
         Landlock needs Linux ≥ 5.13 with `landlock` in the boot `lsm=` list"
    )]
    Unavailable { support: Support, kernel: String },
    #[error("cannot build the Landlock ruleset")]
    Ruleset(#[from] landlock::RulesetError),
}

/// A ruleset ready to be enforced in a child.
pub(crate) struct Prepared {
    ruleset: Option<RulesetCreated>,
    required: bool,
}

impl Prepared {
    /// Build the ruleset for `sandbox` (in the parent: it opens the paths).
    pub(crate) fn new(sandbox: &Sandbox) -> Result<Prepared, SandboxError> {
        if sandbox.required && !support().is_available() {
            return Err(SandboxError::Unavailable {
                support: support(),
                kernel: kernel_release(),
            });
        }
        let abi = ABI_TARGET;
        let mut ruleset = landlock::Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(abi))?
            .scope(Scope::Signal)?;
        if sandbox.network == Network::Deny {
            ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
        }
        let writable: Vec<&Path> = sandbox
            .writable
            .iter()
            .map(PathBuf::as_path)
            .chain(DEVICES.iter().map(Path::new))
            .collect();
        let created = ruleset
            .create()?
            .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
            .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))?;
        Ok(Prepared {
            ruleset: Some(created),
            required: sandbox.required,
        })
    }

    /// Enforce the ruleset on the calling process. Runs between fork and exec: no allocation.
    pub(crate) fn enforce(&mut self) -> std::io::Result<()> {
        let Some(ruleset) = self.ruleset.take() else {
            return Ok(());
        };
        drop_ptrace_capability();
        match ruleset.restrict_self() {
            Ok(status) if status.ruleset == RulesetStatus::NotEnforced && self.required => {
                Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
            }
            Ok(_) => Ok(()),
            Err(_) if !self.required => Ok(()),
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
        }
    }
}

/// `CAP_SYS_PTRACE` (linux/capability.h).
const CAP_SYS_PTRACE: u32 = 19;

/// Remove `CAP_SYS_PTRACE` from the bounding, effective, permitted and inheritable sets. Landlock
/// refuses ptrace of processes outside the sandbox, but not the `/proc/<pid>/environ` and `mem`
/// reads that a process with this capability (root) may do of a non-dumpable one; without it,
/// issueloop's non-dumpable flag holds against a child running as root too. Between fork and
/// exec: raw system calls on stack memory only. Without `CAP_SETPCAP` (not root) there is
/// nothing to drop and the calls fail harmlessly.
fn drop_ptrace_capability() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl and capget/capset with pointers to properly laid out stack structures
    // (linux/capability.h, version 3 takes two `Data` entries).
    unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            CAP_SYS_PTRACE as libc::c_ulong,
            0,
            0,
            0,
        );
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) == 0 {
            let bit = !(1u32 << CAP_SYS_PTRACE);
            data[0].effective &= bit;
            data[0].permitted &= bit;
            data[0].inheritable &= bit;
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
        }
    }
}
