//! The `issueloop` binary: everything lives in the library; this only hardens the process and
//! hands over.

fn main() -> std::process::ExitCode {
    // First, before the async runtime or any thread or child exists: non-dumpable (no process of
    // the same user reads our environment or memory), a child subreaper (orphans of agents come
    // back to us, never to init), and the forge credentials out of `/proc/<pid>/environ`.
    issueloop_process::harden_process(issueloop::config::CREDENTIAL_VARS);
    issueloop::cli::main()
}
