//! Launching children for real: output, timeouts, every descendant ended, and the sandbox.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use issueloop_process::{Launch, Network, Sandbox, support};

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned())])
}

fn sh(script: &str) -> Launch {
    Launch::new("/bin/sh").arg("-c").arg(script).env(env())
}

fn alive(pid: i32) -> bool {
    // A zombie has ended; only a running (or sleeping) process counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_for_file(path: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never written", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_and_exit_code_are_kept() {
    let done = sh("echo out; echo err >&2; exit 3").run().await.unwrap();
    assert_eq!(done.code(), Some(3));
    assert!(
        done.output.contains("out") && done.output.contains("err"),
        "{}",
        done.output
    );
    let ok = sh("true").run().await.unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_is_only_what_was_given() {
    // SAFETY: test process; nothing else reads the environment concurrently in this test.
    let done = sh("env").var("ONLY", "this").run().await.unwrap();
    assert!(done.output.contains("ONLY=this"));
    assert!(!done.output.contains("HOME="), "{}", done.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_not_found() {
    let err = Launch::new("/nonexistent/program").run().await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setsid_escapee_ends_with_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 60' </dev/null >/dev/null 2>&1 & sleep 0.3; exit 0",
        pidfile.display()
    );
    let done = sh(&script).run().await.unwrap();
    assert_eq!(done.code(), Some(0));
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    assert!(!alive(pid), "the setsid daemon {pid} outlived its launch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_stops_the_child_and_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 60' & sleep 60",
        pidfile.display()
    );
    let start = Instant::now();
    let done = sh(&script)
        .timeout(Duration::from_millis(500))
        .kill_grace(Duration::from_millis(200))
        .run()
        .await
        .unwrap();
    assert!(done.timed_out);
    assert!(start.elapsed() < Duration::from_secs(5));
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_child_ends_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 60' & sleep 60",
        pidfile.display()
    );
    let running = sh(&script).spawn().await.unwrap();
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    assert!(alive(pid));
    drop(running);
    let until = Instant::now() + Duration::from_secs(1);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive(pid), "still running a second after the drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_confines_writes_to_the_writable_paths() {
    if !support().is_available() {
        eprintln!("skipped: no Landlock on this kernel");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("inside");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let script = format!(
        "echo a > {in}/f && echo ok-in; echo b > {out}/f && echo ok-out; cat /etc/hostname >/dev/null && echo ok-read",
        in = inside.display(),
        out = outside.display()
    );
    let done = sh(&script)
        .sandbox(Some(Sandbox::new([inside.clone()])))
        .run()
        .await
        .unwrap();
    assert!(done.output.contains("ok-in"), "{}", done.output);
    assert!(done.output.contains("ok-read"), "{}", done.output);
    assert!(!done.output.contains("ok-out"), "{}", done.output);
    assert!(inside.join("f").exists());
    assert!(!outside.join("f").exists());

    // Unsandboxed, the same script writes both.
    let done = sh(&script).run().await.unwrap();
    assert!(done.output.contains("ok-out"), "{}", done.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandboxed_child_cannot_read_the_parents_environment() {
    if !support().is_available() {
        eprintln!("skipped: no Landlock on this kernel");
        return;
    }
    // As issueloop does first thing in `main`.
    let hardening = issueloop_process::harden_process(&[]);
    assert!(hardening.non_dumpable && !issueloop_process::is_dumpable());
    let me = std::process::id();
    let script = format!(": < /proc/{me}/mem && echo read-it || echo denied");
    let done = sh(&script)
        .sandbox(Some(Sandbox::new([])))
        .run()
        .await
        .unwrap();
    assert!(done.output.contains("denied"), "{}", done.output);
    // Unsandboxed, root reads it (the attack the sandbox stops).
    if unsafe { libc::geteuid() } == 0 {
        let done = sh(&script).run().await.unwrap();
        assert!(done.output.contains("read-it"), "{}", done.output);
    }
    // And it may not signal us either (ABI ≥ 6).
    if support().scopes_signals() {
        let done = sh(&format!("kill -0 {me} && echo signalled || echo refused"))
            .sandbox(Some(Sandbox::new([])))
            .run()
            .await
            .unwrap();
        assert!(done.output.contains("refused"), "{}", done.output);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_deny_refuses_tcp() {
    if !support().restricts_network() {
        eprintln!("skipped: Landlock ABI < 4");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\nexcept OSError as e:\n    print('refused', e)\n"
    );
    let run = |net| {
        Launch::new("python3")
            .arg("-c")
            .arg(&probe)
            .env(env())
            .sandbox(Some(Sandbox::new([]).with_network(net)))
            .run()
    };
    let denied = run(Network::Deny).await.unwrap();
    assert!(denied.output.contains("refused"), "{}", denied.output);
    let open = run(Network::Open).await.unwrap();
    assert!(open.output.contains("connected"), "{}", open.output);
}
