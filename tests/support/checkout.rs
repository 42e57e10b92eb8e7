//! A configuration written the way a user writes it: `issueloop.toml` in a folder of the world
//! with only paths relative to that folder (and the defaults for the cache and the state), the
//! agent as a program next to it, and the binary run from a chosen folder without `--config`.

#![allow(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

use std::path::{Path, PathBuf};

use super::{REPO, World};

/// Where a relative configuration was written.
pub struct Checkout {
    /// The folder holding `issueloop.toml`.
    pub dir: PathBuf,
}

impl Checkout {
    pub fn config(&self) -> PathBuf {
        self.dir.join("issueloop.toml")
    }

    /// The default `[git] cache_dir`, `.issueloop/cache`, next to the configuration.
    pub fn cache(&self) -> PathBuf {
        self.dir.join(".issueloop/cache")
    }

    /// The default `[state] path`, `.issueloop/state.sqlite`, next to the configuration.
    pub fn state(&self) -> PathBuf {
        self.dir.join(".issueloop/state.sqlite")
    }
}

/// Write `issueloop.toml` into `sub` (a folder of the world's root, `""` for the root itself):
/// the local forge and the agent named by paths relative to that folder, no `[git]` and no
/// `[state]` table (so the defaults `.issueloop/cache` and `.issueloop/state.sqlite` apply), and
/// `extra` TOML appended. The agent is the scripted `agent.py`, copied to `<sub>/bin/agent` and
/// named `bin/agent`.
pub fn write_relative_config(world: &World, sub: &str, extra: &str) -> Checkout {
    let dir = world.root().join(sub);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let agent = dir.join("bin/agent");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/agent.py"),
        &agent,
    )
    .unwrap();
    make_executable(&agent);
    // `forge` sits in the root: `../forge` from a sub-folder.
    let up = "../".repeat(Path::new(sub).components().count());
    std::fs::write(
        dir.join("issueloop.toml"),
        format!(
            r#"repos = ["{REPO}"]

[forge]
kind = "local"
local_path = "{up}forge"

[budget]
daily_cap_usd = 10.0
min_useful_usd = 0.10

[budget.default]
cost_usd = 1.0
wall_clock = "2m"
max_turns = 5

[runtime_profile]
default = "command"

[backends.command]
argv = ["bin/agent"]
format = "claude_code"
env = ["E2E_AGENT_LOG"]

[run]
reflect_attempts = 0

[sandbox]
# Where the tests watch the agent from (its log).
extra_writable = ["{up}observe"]

[gates.repos."{REPO}"]
commands = [["python3", "-m", "unittest", "discover", "-s", "tests", "-t", "."]]
{extra}"#
        ),
    )
    .unwrap();
    Checkout { dir }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).unwrap();
}

/// The binary with the world's environment, run from `cwd`, with neither `--config` nor
/// `ISSUELOOP_CONFIG`: the default `./issueloop.toml` applies unless `args` name one.
pub fn command_in(world: &World, cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_issueloop"));
    cmd.current_dir(cwd)
        .env_remove("ISSUELOOP_CONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("ISSUELOOP_FAILPOINT")
        .env("RUST_LOG", "info")
        .env("E2E_AGENT_LOG", &world.agent_log)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

/// `issueloop --json run --once [args…]` from `cwd` (global flags like `--config` may stand
/// among `args`): the exit code, the parsed JSON report and stderr.
pub fn run_once_in(
    world: &World,
    cwd: &Path,
    args: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let out = command_in(world, cwd)
        .args(["--json", "run", "--once"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), json, stderr)
}
