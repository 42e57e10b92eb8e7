//! The environment an agent (or a `--version` probe) gets: an allowlist of basic variables plus
//! what its harness declares, never a forge credential; and program lookup on that `PATH`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use issueloop_config::{CREDENTIAL_VARS, Env, looks_like_github_token};

/// Variables every agent gets when they are set: what a CLI needs to find itself, its home,
/// its locale, temporary space, certificates and proxies.
pub const BASE_ENV_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TERM",
    "TZ",
    "TMPDIR",
    // Per-run caches when sandboxed (see `[sandbox]`).
    "UV_CACHE_DIR",
    "npm_config_cache",
    "CARGO_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The scrubbed environment and what was held back (names only, never values).
#[derive(Clone, Debug, Default)]
pub struct AgentEnv {
    pub vars: BTreeMap<String, String>,
    pub withheld: Vec<String>,
}

/// Build an agent's environment from the snapshot: the basic variables plus `declared`. Forge
/// credentials ([`CREDENTIAL_VARS`]) never pass, even when declared, and neither does any
/// variable whose value looks like a GitHub token.
pub fn agent_env(declared: &[String], env: &Env) -> AgentEnv {
    let mut out = AgentEnv::default();
    let names = BASE_ENV_VARS
        .iter()
        .copied()
        .chain(declared.iter().map(String::as_str));
    for name in names {
        if out.vars.contains_key(name) {
            continue;
        }
        if CREDENTIAL_VARS.contains(&name) {
            if env.get(name).is_some()
                && !out
                    .withheld
                    .iter()
                    .any(|w| w.split(' ').next() == Some(name))
            {
                out.withheld.push(format!(
                    "{name} (a forge credential; never passed to an agent)"
                ));
            }
            continue;
        }
        let Some(value) = env.get(name) else {
            continue;
        };
        if looks_like_github_token(value) {
            out.withheld
                .push(format!("{name} (its value looks like a GitHub token)"));
            continue;
        }
        out.vars.insert(name.to_owned(), value.to_owned());
    }
    out
}

/// Where `program` is: a path (with a `/`, relative to `base`) or a name searched on the
/// snapshot's `PATH`. `None` when it is not an executable file.
pub fn find_program(program: &str, env: &Env, base: &Path) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = base.join(program);
        return is_executable(&p).then_some(p);
    }
    env.get("PATH")?
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_pass_even_when_declared() {
        let env = Env::from_pairs([
            ("PATH", "/bin"),
            ("HOME", "/home/u"),
            ("GITHUB_TOKEN", "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("GH_TOKEN", "x"),
            ("OPENAI_API_KEY", "sk-1"),
            ("SNEAKY", "github_pat_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("UNRELATED", "1"),
        ]);
        let declared: Vec<String> = ["GITHUB_TOKEN", "GH_TOKEN", "OPENAI_API_KEY", "SNEAKY"]
            .map(String::from)
            .to_vec();
        let a = agent_env(&declared, &env);
        assert_eq!(
            a.vars.keys().collect::<Vec<_>>(),
            ["HOME", "OPENAI_API_KEY", "PATH"]
        );
        assert_eq!(a.withheld.len(), 3, "{:?}", a.withheld);
        assert!(!format!("{a:?}").contains("ghp_"));
        assert!(!format!("{a:?}").contains("github_pat_"));
    }

    #[test]
    fn programs_are_found_on_the_snapshot_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("agent");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("data"), "").unwrap();
        let env = Env::from_pairs([("PATH", format!("/nonexistent::{}", dir.path().display()))]);
        assert_eq!(
            find_program("agent", &env, Path::new("/")),
            Some(bin.clone())
        );
        assert_eq!(
            find_program("data", &env, Path::new("/")),
            None,
            "not executable"
        );
        assert_eq!(find_program("missing", &env, Path::new("/")), None);
        assert_eq!(
            find_program("./agent", &env, dir.path()),
            Some(dir.path().join("./agent"))
        );
        assert_eq!(find_program("agent", &Env::default(), Path::new("/")), None);
    }
}
