//! The environment a gate runs with, built from an allowlist of variables (never a denylist):
//! no credentials, no `UV_*`/`PIP_*`/`PYTHON*` setting that changes what a gate means, and
//! caches pointed outside the worktree.

use std::collections::BTreeMap;
use std::path::Path;

use issueloop_config::{CREDENTIAL_VARS, Env};

/// Variables passed through as they are: where programs are, who and where the user is,
/// language, terminal, certificates and proxies for downloads.
const PASSED: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "NO_COLOR",
    "CI",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// Variables naming a location. They are passed only when they are absolute paths outside the
/// worktree: they move where tools keep their caches and toolchains, never what a gate checks.
const LOCATIONS: &[&str] = &[
    "TMPDIR",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "PYENV_ROOT",
    "UV_CACHE_DIR",
    "UV_PYTHON_INSTALL_DIR",
    "npm_config_cache",
];

/// Used when the snapshot has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The environment of a gate run in `worktree`, with caches under `scratch` (outside it).
pub(crate) fn gate_env(env: &Env, worktree: &Path, scratch: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in env.iter() {
        let passed = PASSED.contains(&key) || key.starts_with("LC_");
        let location = LOCATIONS.contains(&key) && outside(value, worktree);
        if passed || location {
            out.insert(key.to_owned(), value.to_owned());
        }
    }
    out.insert(
        "PATH".to_owned(),
        sanitized_path(env.get("PATH").unwrap_or(DEFAULT_PATH), worktree),
    );
    let scratch_dir = |name: &str| scratch.join(name).display().to_string();
    // Bytecode neither written next to sources nor into the worktree by `compileall`.
    out.insert("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned());
    out.insert("PYTHONPYCACHEPREFIX".to_owned(), scratch_dir("pycache"));
    // Tool caches outside the worktree, for gates that do not disable them by flag.
    out.insert("MYPY_CACHE_DIR".to_owned(), scratch_dir("mypy"));
    out.insert("RUFF_CACHE_DIR".to_owned(), scratch_dir("ruff"));
    out.insert("CARGO_TARGET_DIR".to_owned(), scratch_dir("cargo-target"));
    for var in CREDENTIAL_VARS {
        out.remove(*var);
    }
    out
}

/// `PATH` without empty or relative entries (they resolve against the worktree) and without
/// entries inside the worktree: a gate's program is never a file the change under test wrote.
pub(crate) fn sanitized_path(path: &str, worktree: &Path) -> String {
    let kept: Vec<&str> = path
        .split(':')
        .filter(|entry| outside(entry, worktree))
        .collect();
    if kept.is_empty() {
        DEFAULT_PATH.to_owned()
    } else {
        kept.join(":")
    }
}

/// An absolute path that is neither the worktree nor inside it.
fn outside(value: &str, worktree: &Path) -> bool {
    let p = Path::new(value);
    p.is_absolute() && !p.starts_with(worktree) && !value.split('/').any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_from_an_allowlist() {
        let mut pairs = vec![
            ("PATH", "/usr/bin:.::relative/bin:/w/.venv/bin:/opt/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
            ("UV_NO_DEV", "1"),
            ("UV_FROZEN", "1"),
            ("UV_PROJECT_ENVIRONMENT", "/elsewhere"),
            ("UV_CACHE_DIR", "/cache/uv"),
            ("UV_PYTHON_INSTALL_DIR", "/w/pythons"),
            ("XDG_CACHE_HOME", "relative"),
            ("PIP_INDEX_URL", "http://evil"),
            ("VIRTUAL_ENV", "/venv"),
            ("PYTHONPATH", "/x"),
            ("PYTHONDONTWRITEBYTECODE", "0"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("GIT_DIR", "/elsewhere/.git"),
            ("RANDOM_THING", "x"),
        ];
        pairs.extend(CREDENTIAL_VARS.iter().map(|v| (*v, "ghp_secret")));
        let env = Env::from_pairs(pairs);
        let out = gate_env(&env, Path::new("/w"), Path::new("/scratch"));
        assert_eq!(out["PATH"], "/usr/bin:/opt/bin");
        assert_eq!(out["HOME"], "/home/u");
        assert_eq!(out["LC_ALL"], "C.UTF-8");
        assert_eq!(out["UV_CACHE_DIR"], "/cache/uv");
        assert_eq!(out["PYTHONDONTWRITEBYTECODE"], "1");
        assert_eq!(out["PYTHONPYCACHEPREFIX"], "/scratch/pycache");
        assert_eq!(out["MYPY_CACHE_DIR"], "/scratch/mypy");
        for gone in [
            "UV_NO_DEV",
            "UV_FROZEN",
            "UV_PROJECT_ENVIRONMENT",
            "UV_PYTHON_INSTALL_DIR",
            "XDG_CACHE_HOME",
            "PIP_INDEX_URL",
            "VIRTUAL_ENV",
            "PYTHONPATH",
            "AWS_SECRET_ACCESS_KEY",
            "GIT_DIR",
            "RANDOM_THING",
        ] {
            assert!(!out.contains_key(gone), "{gone} must not pass");
        }
        for var in CREDENTIAL_VARS {
            assert!(!out.contains_key(*var), "{var} must not pass");
        }
        assert!(!out.values().any(|v| v.contains("ghp_")));
    }

    #[test]
    fn path_falls_back_when_nothing_is_left() {
        assert_eq!(sanitized_path(".:bin", Path::new("/w")), DEFAULT_PATH);
        assert_eq!(sanitized_path("/w/bin:/w", Path::new("/w")), DEFAULT_PATH);
        assert_eq!(
            sanitized_path("/usr/../w/bin", Path::new("/w")),
            DEFAULT_PATH
        );
        assert_eq!(sanitized_path("/wx/bin", Path::new("/w")), "/wx/bin");
        let env = Env::default();
        assert_eq!(
            gate_env(&env, Path::new("/w"), Path::new("/s"))["PATH"],
            DEFAULT_PATH
        );
    }
}
