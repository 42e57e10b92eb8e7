//! Containment of one run's agents and gates: the run's own directory (temporary files and
//! tool caches), the environment that points tools at it, and the Landlock sandboxes built from
//! `[sandbox]` — writes only to the worktree, its private gitdir, the run directory, the
//! harness's state and the configured extra paths.

use std::path::{Path, PathBuf};

use issueloop_config::{Config, Env, SandboxConfig, SandboxNetwork};
use issueloop_ledger::Event;
use issueloop_process::{Network, Sandbox, Support};
use issueloop_runtime::SandboxDecision;

/// Tool caches that get a directory of the run's own, unless the variable already names a
/// directory inside one of `[sandbox] extra_writable` (a shared cache the user opted into).
const CACHE_VARS: &[(&str, &str)] = &[
    ("UV_CACHE_DIR", "uv"),
    ("npm_config_cache", "npm"),
    ("CARGO_HOME", "cargo"),
];

/// One run's containment; its directory is removed when this is dropped.
pub(crate) struct Containment {
    _dir: tempfile::TempDir,
    /// The environment snapshot with `TMPDIR` and the caches pointed into the run directory.
    pub env: Env,
    pub agent: Option<Sandbox>,
    pub gates: Option<Sandbox>,
    pub event: Event,
}

impl Containment {
    /// Set up the run directory and the sandboxes for a run in `worktree` (whose private gitdir
    /// is `gitdir`).
    pub fn new(
        config: &Config,
        env: &Env,
        worktree: &Path,
        gitdir: &Path,
        support: Support,
    ) -> std::io::Result<Containment> {
        let base = env
            .get("TMPDIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && !p.starts_with(worktree))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let dir = tempfile::Builder::new()
            .prefix("issueloop-run-")
            .tempdir_in(&base)?;
        let run_dir = std::fs::canonicalize(dir.path())?;
        let extra: Vec<PathBuf> = config
            .sandbox
            .extra_writable
            .iter()
            .map(|p| p.as_path().to_owned())
            .collect();
        let run_env = run_env(env, &run_dir, &extra);
        for var in ["TMPDIR"]
            .into_iter()
            .chain(CACHE_VARS.iter().map(|(v, _)| *v))
        {
            if let Some(p) = run_env.get(var)
                && Path::new(p).starts_with(&run_dir)
            {
                std::fs::create_dir_all(p)?;
            }
        }
        let decision = issueloop_runtime::sandbox_decision(config.sandbox.mode, support);
        let harness: Vec<PathBuf> = config
            .runtime_profile
            .table()
            .iter()
            .flat_map(|(_, kind)| issueloop_runtime::harness_state_paths(*kind, env))
            .collect();
        // A state folder the harness has not made yet is made now: the sandbox can only grant
        // what exists, and the sandboxed harness could not create it in `$HOME` itself.
        for dir in harness.iter().filter(|p| p.extension().is_none()) {
            if !dir.exists()
                && let Err(e) = std::fs::create_dir_all(dir)
            {
                tracing::warn!(path = %dir.display(), "cannot create the harness's state folder: {e}");
            }
        }
        let specs = sandboxes(
            decision,
            &config.sandbox,
            &Writable {
                worktree,
                gitdir,
                run_dir: &run_dir,
                harness: &harness,
                extra: &extra,
            },
        );
        let (agent, gates) = match specs {
            Some((a, g)) => (Some(a), Some(g)),
            None => (None, None),
        };
        let event = Event::Sandbox {
            mode: config.sandbox.mode.as_str().to_owned(),
            status: decision.status().to_owned(),
            landlock_abi: match support {
                Support::Available { abi } => Some(abi),
                _ => None,
            },
            writable: agent
                .as_ref()
                .map(|s| s.writable.iter().map(|p| p.display().to_string()).collect())
                .unwrap_or_default(),
            gate_network: match config.sandbox.network {
                SandboxNetwork::Open => "open",
                SandboxNetwork::Deny => "deny",
            }
            .to_owned(),
        };
        Ok(Containment {
            _dir: dir,
            env: run_env,
            agent,
            gates,
            event,
        })
    }
}

/// Adjust a harness's own sandbox to run inside issueloop's: Codex's `workspace-write` sandbox
/// builds a mount namespace (bubblewrap), which Landlock refuses to a sandboxed process, so every
/// command Codex runs would fail. Inside issueloop's sandbox, which already confines writes to
/// the run, Codex is told not to add its own.
pub(crate) fn inside_our_sandbox(invocation: &mut issueloop_runtime::Invocation) {
    if invocation.backend != issueloop_config::BackendKind::Codex {
        return;
    }
    let mut args = invocation.args.iter_mut().peekable();
    while let Some(arg) = args.next() {
        if arg == "--sandbox"
            && let Some(value) = args.next()
        {
            *value = "danger-full-access".to_owned();
        }
    }
}

/// The environment of a run's children: `TMPDIR` and each tool cache in the run directory.
fn run_env(env: &Env, run_dir: &Path, extra_writable: &[PathBuf]) -> Env {
    let mut out = env.clone();
    out.set("TMPDIR", run_dir.join("tmp").display().to_string());
    for (var, name) in CACHE_VARS {
        let shared = env
            .get(var)
            .is_some_and(|p| extra_writable.iter().any(|w| Path::new(p).starts_with(w)));
        if !shared {
            out.set(*var, run_dir.join("cache").join(name).display().to_string());
        }
    }
    out
}

/// What a run's children may write.
struct Writable<'a> {
    worktree: &'a Path,
    gitdir: &'a Path,
    run_dir: &'a Path,
    harness: &'a [PathBuf],
    extra: &'a [PathBuf],
}

/// The agents' and the gates' sandboxes (`None`: unsandboxed). Agents also write their
/// worktree's private gitdir (git's index and `HEAD`) and their harness's state; gates neither.
/// Agents keep the network (their model's API); gates follow `[sandbox] network`.
fn sandboxes(
    decision: SandboxDecision,
    config: &SandboxConfig,
    w: &Writable<'_>,
) -> Option<(Sandbox, Sandbox)> {
    let SandboxDecision::Enforce { required } = decision else {
        return None;
    };
    let common = [w.worktree.to_owned(), w.run_dir.to_owned()]
        .into_iter()
        .chain(w.extra.iter().cloned());
    let mut agent = Sandbox::new(
        common
            .clone()
            .chain([w.gitdir.to_owned()])
            .chain(w.harness.iter().cloned()),
    );
    let mut gates = Sandbox::new(common).with_network(match config.network {
        SandboxNetwork::Open => Network::Open,
        SandboxNetwork::Deny => Network::Deny,
    });
    if !required {
        agent = agent.best_effort();
        gates = gates.best_effort();
    }
    Some((agent, gates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use issueloop_config::SandboxMode;

    #[test]
    fn caches_are_the_runs_own_unless_shared_on_purpose() {
        let env = Env::from_pairs([
            ("TMPDIR", "/tmp"),
            ("UV_CACHE_DIR", "/shared/uv"),
            ("CARGO_HOME", "/home/u/.cargo"),
            ("GITHUB_TOKEN", "kept-in-the-snapshot"),
        ]);
        let out = run_env(&env, Path::new("/run"), &[PathBuf::from("/shared")]);
        assert_eq!(out.get("TMPDIR"), Some("/run/tmp"));
        assert_eq!(out.get("UV_CACHE_DIR"), Some("/shared/uv"));
        assert_eq!(out.get("CARGO_HOME"), Some("/run/cache/cargo"));
        assert_eq!(out.get("npm_config_cache"), Some("/run/cache/npm"));
        // The snapshot is otherwise unchanged (the child environments are built from it by
        // their allowlists, which drop credentials).
        assert_eq!(out.get("GITHUB_TOKEN"), Some("kept-in-the-snapshot"));
        let isolated = run_env(&env, Path::new("/run"), &[]);
        assert_eq!(isolated.get("UV_CACHE_DIR"), Some("/run/cache/uv"));
    }

    #[test]
    fn sandboxes_table() {
        let harness = [PathBuf::from("/h/.claude")];
        let w = Writable {
            worktree: Path::new("/wt"),
            gitdir: Path::new("/mirror/worktrees/x"),
            run_dir: Path::new("/run"),
            harness: &harness,
            extra: &[PathBuf::from("/extra")],
        };
        let config = SandboxConfig {
            mode: SandboxMode::Required,
            extra_writable: vec![issueloop_config::AbsPath::new("/extra").unwrap()],
            network: SandboxNetwork::Deny,
        };
        for decision in [
            SandboxDecision::Off,
            SandboxDecision::Unavailable,
            SandboxDecision::Refuse,
        ] {
            assert!(sandboxes(decision, &config, &w).is_none(), "{decision:?}");
        }
        let (agent, gates) =
            sandboxes(SandboxDecision::Enforce { required: true }, &config, &w).unwrap();
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            agent.writable,
            p(&["/wt", "/run", "/extra", "/mirror/worktrees/x", "/h/.claude"])
        );
        assert_eq!(agent.network, Network::Open);
        assert!(agent.required);
        assert_eq!(gates.writable, p(&["/wt", "/run", "/extra"]));
        assert_eq!(gates.network, Network::Deny);
        let (agent, _) =
            sandboxes(SandboxDecision::Enforce { required: false }, &config, &w).unwrap();
        assert!(!agent.required);
        // Never the mirror itself, the state database or the config.
        assert!(!agent.writable.iter().any(|p| p == Path::new("/mirror")));
    }
}
