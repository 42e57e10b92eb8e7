//! The one way issueloop starts a child process (agents, gates, version probes, git): an argv with an
//! environment built by the caller from an allowlist, bounded head-and-tail capture, a timeout,
//! and a keeper process that ends every descendant with the child — including those that leave
//! its process group with `setsid` — when it exits, when issueloop asks, and when issueloop dies.
//! With a [`Sandbox`], the child runs under Landlock: writes only beneath its run's directories,
//! optionally no TCP, no signals to or ptrace of processes outside it. [`git`] is the hermetic
//! git command line on top of it.
//!
//! [`harden_process`] is what `main` calls first: issueloop becomes non-dumpable (no process of
//! the same user reads its environment or memory through `/proc` or ptrace) and a child
//! subreaper (processes orphaned below it are re-parented to it, never to init).

#![expect(
    clippy::disallowed_types,
    reason = "this crate is the launcher every other one goes through"
)]

mod capture;
mod git;
mod harden;
mod keeper;
mod launch;
mod sandbox;

pub use capture::BoundedCapture;
pub use git::{GIT_SAFETY_CONFIG, GIT_TIMEOUT, git, git_environment};
pub use harden::{Hardening, harden_process, hardening, is_dumpable};
pub use launch::{
    DEFAULT_OUTPUT_LIMIT, DEFAULT_STDOUT_LIMIT, Finished, Launch, LaunchError, Output, Running,
    head_tail, read_some,
};
pub use sandbox::{Network, Sandbox, SandboxError, Support, kernel_release, support};
