//! The scripted model server (`model_server.py`) from a test: started on a free local port with
//! a script, its request log read back, and stopped when the test drops it. Also where the real
//! agent CLIs are (`.ci/install-agent-clis` puts them there).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "a test runs programs directly (git, the binary under test) to set up and observe and reads its own test settings from the environment"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running scripted model server.
pub struct ModelServer {
    child: Child,
    /// Held open: the server exits when it closes (the test ended, even by a panic).
    _stdin: Option<ChildStdin>,
    pub port: u16,
    pub log: PathBuf,
}

impl ModelServer {
    /// Start the server in `dir` with `script` (see `model_server.py` for its keys).
    pub fn start(dir: &Path, script: serde_json::Value) -> ModelServer {
        std::fs::create_dir_all(dir).unwrap();
        let script_path = dir.join("model-script.json");
        std::fs::write(&script_path, serde_json::to_vec_pretty(&script).unwrap()).unwrap();
        let port_file = dir.join("model-server.port");
        let log = dir.join("model-requests.jsonl");
        let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/model_server.py");
        let mut child = Command::new("python3")
            .arg(&program)
            .arg("--script")
            .arg(&script_path)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .arg("--lifetime")
            .arg("600")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs the scripted model server");
        let stdin = child.stdin.take();
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse::<u16>()
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the scripted model server exited ({status}): {err}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the scripted model server did not start within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        ModelServer {
            child,
            _stdin: stdin,
            port,
            log,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The requests the server answered as a model (a tool call or a final message).
    pub fn model_turns(&self) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| {
                let a = r["answer"].as_str().unwrap_or_default();
                a == "text" || a.starts_with("tool ")
            })
            .collect()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        // Our own child, by its id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `.ci/install-agent-clis` installs the CLIs: `$ISSUELOOP_AGENT_CLIS`, else
/// `target/agent-clis` in the checkout.
pub fn agent_clis_dir() -> PathBuf {
    match std::env::var_os("ISSUELOOP_AGENT_CLIS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/agent-clis"),
    }
}

/// The installed CLI `bin` (`claude`, `codex`, `pi`, `opencode`, `gemini`). Missing: `None`
/// with the reason printed, so the test skips; but under `CI=true` a missing CLI fails the test.
pub fn agent_cli(bin: &str) -> Option<PathBuf> {
    let dir = agent_clis_dir();
    let path = dir.join("node_modules/.bin").join(bin);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "`{}` is not installed; run `.ci/install-agent-clis` (or set ISSUELOOP_AGENT_CLIS to where they are)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}");
    }
    eprintln!("skipped: {why}");
    None
}
