//! The start-up check shared by `doctor`, `run` and `serve`: which backend each stage resolves
//! to, whether its program is installed (and its version), and anything else that would make a
//! run fail at start — a missing GitHub token or App key, an unwritable state store, a Codex
//! profile that was never set up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use issueloop_config::{BackendKind, Config, Env, ForgeKind, SandboxMode, Stage};
use issueloop_process::Support;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::adapter::{ProfileMapping, profile_mapping, unmapped_profile_warning};
use crate::agent_env::{agent_env, find_program};
use crate::codex_setup::{codex_profile_name, default_codex_config, has_codex_profile};

/// How long a `--version` probe may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// One row of the stage → backend table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageCheck {
    #[serde(skip)]
    pub stage: Stage,
    pub backend: BackendKind,
    /// Where the backend came from (`runtime_profile.stages`, `runtime_profile.default`, …).
    pub from: &'static str,
    /// The program as configured.
    pub binary: String,
    pub path: Option<PathBuf>,
    pub found: bool,
    pub version: Option<String>,
    /// Whether this stage runs an agent with this configuration (a missing program only
    /// blocks start for those).
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    BackendMissing,
    GithubToken,
    GithubAppKey,
    StateStore,
    CodexProfile,
    Sandbox,
    /// The installed Gemini CLI has no `--skip-trust`, which issueloop passes so that Gemini
    /// runs headless in a worktree it has never seen.
    GeminiTrust,
}

/// Something that would make a run fail at start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    pub hint: Option<String>,
}

/// The outcome of the start-up check.
#[derive(Clone, Debug, PartialEq)]
pub struct Preflight {
    pub stages: Vec<StageCheck>,
    pub problems: Vec<Problem>,
    /// Worth knowing, not blocking (an unused backend missing, a model without a price, …).
    pub warnings: Vec<String>,
}

impl Preflight {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The message `run` and `serve` refuse to start with, or `None` when nothing blocks.
    pub fn refusal(&self) -> Option<String> {
        if self.problems.is_empty() {
            return None;
        }
        let mut out = format!(
            "issueloop cannot start: {} problem{} (`issueloop doctor` shows the full check)",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        );
        for p in &self.problems {
            out.push_str(&format!("\n  - {}", p.message));
            if let Some(h) = &p.hint {
                out.push_str(&format!("\n    hint: {h}"));
            }
        }
        Some(out)
    }
}

/// `{"ok": …, "stages": {"interview": {...}, ...}, "problems": [...], "warnings": [...]}`, the
/// stages in pipeline order.
impl Serialize for Preflight {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Stages<'a>(&'a [StageCheck]);
        impl Serialize for Stages<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for c in self.0 {
                    m.serialize_entry(c.stage.as_str(), c)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("ok", &self.ok())?;
        m.serialize_entry("stages", &Stages(&self.stages))?;
        m.serialize_entry("problems", &self.problems)?;
        m.serialize_entry("warnings", &self.warnings)?;
        m.end()
    }
}

/// Whether `stage` runs an agent with this configuration. `interview` builds the brief
/// deterministically; `evaluate` runs when `run.evaluate` is on; `reflect` when
/// `run.reflect_attempts` > 0.
/// What a run does about the sandbox, given the setting and the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum SandboxDecision {
    /// Agents and gates run under Landlock; `required`: a child that cannot be sandboxed is
    /// not started.
    Enforce { required: bool },
    /// `best_effort` on a kernel without Landlock: runs unsandboxed, with a warning.
    Unavailable,
    /// `mode = "off"`.
    Off,
    /// `required` on a kernel without Landlock: issueloop does not start.
    Refuse,
}

impl SandboxDecision {
    /// The journal's and `doctor`'s word for it.
    pub fn status(self) -> &'static str {
        match self {
            SandboxDecision::Enforce { .. } => "enforced",
            SandboxDecision::Unavailable => "unavailable",
            SandboxDecision::Off => "off",
            SandboxDecision::Refuse => "refused",
        }
    }

    pub fn enforced(self) -> bool {
        matches!(self, SandboxDecision::Enforce { .. })
    }
}

/// Decide what to do about the sandbox (pure).
pub fn sandbox_decision(mode: SandboxMode, support: Support) -> SandboxDecision {
    match (mode, support.is_available()) {
        (SandboxMode::Off, _) => SandboxDecision::Off,
        (SandboxMode::Required, true) => SandboxDecision::Enforce { required: true },
        (SandboxMode::BestEffort, true) => SandboxDecision::Enforce { required: false },
        (SandboxMode::Required, false) => SandboxDecision::Refuse,
        (SandboxMode::BestEffort, false) => SandboxDecision::Unavailable,
    }
}

/// The sandbox's problem or warning for the start-up check.
fn sandbox_check(
    mode: SandboxMode,
    support: Support,
    kernel: &str,
) -> Result<Option<String>, Problem> {
    match sandbox_decision(mode, support) {
        SandboxDecision::Refuse => Err(Problem {
            kind: ProblemKind::Sandbox,
            message: format!(
                "the agent sandbox is required (`[sandbox] mode = \"required\"`) but this kernel cannot enforce it: {support} (Linux {kernel})"
            ),
            hint: Some(
                "run on Linux ≥ 5.13 with Landlock enabled (`lsm=...,landlock`), or set `[sandbox] mode = \"best_effort\"` (runs unsandboxed with a warning) or `\"off\"`".into(),
            ),
        }),
        SandboxDecision::Unavailable => Ok(Some(format!(
            "the agent sandbox is unavailable ({support}, Linux {kernel}); agents and gates run unsandboxed (`[sandbox] mode = \"best_effort\"`)"
        ))),
        SandboxDecision::Off => Ok(Some(
            "the agent sandbox is off (`[sandbox] mode = \"off\"`): agents and gates can write anything this user can".into(),
        )),
        SandboxDecision::Enforce { .. } => Ok(None),
    }
}

pub fn stage_in_use(config: &Config, stage: Stage) -> bool {
    match stage {
        Stage::Interview => false,
        Stage::Execute => true,
        Stage::Evaluate => config.run.evaluate,
        Stage::Reflect => config.run.reflect_attempts > 0,
    }
}

/// The program a backend runs: `binary`, the harness's usual name, or `argv[0]` for `command`.
pub fn backend_program(config: &Config, kind: BackendKind) -> Option<String> {
    let settings = config.backend(kind);
    match kind {
        BackendKind::Command => settings.argv.and_then(|a| a.into_iter().next()),
        _ => settings
            .binary
            .or_else(|| kind.default_binary().map(str::to_owned)),
    }
}

/// Check everything a run needs before it takes any work.
pub fn preflight(config: &Config, env: &Env) -> Preflight {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    // Programs: one lookup and one version probe per distinct backend.
    let table = config.runtime_profile.table();
    let mut programs: BTreeMap<BackendKind, (String, Option<PathBuf>)> = BTreeMap::new();
    for (_, kind) in &table {
        programs.entry(*kind).or_insert_with(|| {
            let program = backend_program(config, *kind).unwrap_or_default();
            let path = find_program(&program, env, &config.base_dir);
            (program, path)
        });
    }
    // Gemini's `--help` is read alongside the version probes (each is a slow Node start-up).
    let gemini_program = programs
        .get(&BackendKind::Gemini)
        .and_then(|(_, path)| path.clone())
        .filter(|_| {
            table
                .iter()
                .any(|(stage, kind)| *kind == BackendKind::Gemini && stage_in_use(config, *stage))
        });
    let (versions, gemini_trust): (BTreeMap<BackendKind, Option<String>>, Option<Problem>) =
        std::thread::scope(|scope| {
            let help =
                gemini_program.map(|path| scope.spawn(move || gemini_trust_check(&path, env)));
            let handles: Vec<_> = programs
                .iter()
                .filter_map(|(kind, (_, path))| {
                    let path = path.clone()?;
                    Some((*kind, scope.spawn(move || program_version(&path, env))))
                })
                .collect();
            let versions = handles
                .into_iter()
                .map(|(k, h)| (k, h.join().ok().flatten()))
                .collect();
            (versions, help.and_then(|h| h.join().ok().flatten()))
        });
    let stages: Vec<StageCheck> = table
        .iter()
        .map(|(stage, kind)| {
            let (binary, path) = programs.get(kind).cloned().unwrap_or_default();
            StageCheck {
                stage: *stage,
                backend: *kind,
                from: config.runtime_profile.resolution_source(*stage),
                binary,
                found: path.is_some(),
                path,
                version: versions.get(kind).cloned().flatten(),
                required: stage_in_use(config, *stage),
            }
        })
        .collect();

    for (kind, (program, path)) in &programs {
        if path.is_some() {
            continue;
        }
        let stage_list = |required: bool| {
            let names: Vec<String> = stages
                .iter()
                .filter(|c| c.backend == *kind && c.required == required)
                .map(|c| format!("`{}`", c.stage))
                .collect();
            let s = if names.len() == 1 { "" } else { "s" };
            (names.join(", "), s)
        };
        let what = if program.is_empty() {
            format!("the `{kind}` backend has no program to run")
        } else if program.contains('/') {
            format!(
                "`{program}` (the `{kind}` backend) is not an executable file (relative to `{}`)",
                config.base_dir.display()
            )
        } else {
            format!("`{program}` (the `{kind}` backend) was not found on `PATH`")
        };
        let (needed, s) = stage_list(true);
        if !needed.is_empty() {
            problems.push(Problem {
                kind: ProblemKind::BackendMissing,
                message: format!(
                    "{what}; stage{s} {needed} need{} it",
                    if s.is_empty() { "s" } else { "" }
                ),
                hint: Some(install_hint(*kind)),
            });
        } else {
            let (unused, s) = stage_list(false);
            warnings.push(format!(
                "{what}; stage{s} {unused} resolve{} to it but run{} no agent in this configuration",
                if s.is_empty() { "s" } else { "" },
                if s.is_empty() { "s" } else { "" }
            ));
        }
    }

    forge_checks(config, env, &mut problems);
    let state_problem = match config.state.backend {
        // The github backend keeps this machine's journal in the SQLite file too.
        issueloop_config::StateBackend::Sqlite | issueloop_config::StateBackend::Github => {
            state_store_check(&config.state.path)
        }
        issueloop_config::StateBackend::Postgres => {
            issueloop_config::database_url(config.state.url.as_ref(), env)
                .err()
                .map(|why| Problem {
                    kind: ProblemKind::StateStore,
                    message: why,
                    hint: None,
                })
        }
    };
    problems.extend(state_problem);

    // Backend profile and pricing, for the backends that run.
    let used: Vec<BackendKind> = {
        let mut v: Vec<BackendKind> = stages
            .iter()
            .filter(|c| c.required)
            .map(|c| c.backend)
            .collect();
        v.dedup();
        v.sort();
        v.dedup();
        v
    };
    let profile = config
        .runtime_profile
        .backend_profile
        .as_deref()
        .filter(|p| !p.trim().is_empty());
    for kind in &used {
        if let Some(p) = profile
            && profile_mapping(*kind, p) == ProfileMapping::Unmapped
        {
            warnings.push(unmapped_profile_warning(*kind, p));
        }
    }
    if used.contains(&BackendKind::Codex) {
        if let Some(p) = profile {
            codex_profile_check(env, &codex_profile_name(Some(p)), &mut problems);
        }
        match config.backend(BackendKind::Codex).model {
            None => warnings.push(
                "Codex reports tokens but no dollars and `[backends.codex] model` is not set, so its runs cannot be priced and each counts as its whole budget".into(),
            ),
            Some(m) if config.models.lookup(&m).is_none() => warnings.push(format!(
                "`[backends.codex] model = \"{m}\"` has no price in `policies/models.toml`; each Codex run counts as its whole budget"
            )),
            Some(_) => {}
        }
    }
    problems.extend(gemini_trust);
    if used.contains(&BackendKind::Gemini)
        && let Some(m) = config.backend(BackendKind::Gemini).model
        && config.models.lookup(&m).is_none()
    {
        warnings.push(format!(
            "`[backends.gemini] model = \"{m}\"` has no price in `policies/models.toml`; each Gemini run counts as its whole budget"
        ));
    }
    match sandbox_check(
        config.sandbox.mode,
        issueloop_process::support(),
        &issueloop_process::kernel_release(),
    ) {
        Ok(Some(w)) => warnings.push(w),
        Ok(None) => {}
        Err(p) => problems.push(p),
    }
    Preflight {
        stages,
        problems,
        warnings,
    }
}

fn install_hint(kind: BackendKind) -> String {
    let install = match kind {
        BackendKind::ClaudeCode => {
            "install Claude Code (`npm install -g @anthropic-ai/claude-code`)"
        }
        BackendKind::Codex => "install the Codex CLI (`npm install -g @openai/codex`)",
        BackendKind::Pi => "install pi (`npm install -g @mariozechner/pi-coding-agent`)",
        BackendKind::OpenCode => "install OpenCode (`npm install -g opencode-ai`)",
        BackendKind::Gemini => "install the Gemini CLI (`npm install -g @google/gemini-cli`)",
        BackendKind::Command => "fix `[backends.command] argv`",
    };
    match kind {
        BackendKind::Command => install.to_owned(),
        _ => format!(
            "{install}, or set `[backends.{kind}] binary` to its path, or pick another backend in `[runtime_profile]`"
        ),
    }
}

fn forge_checks(config: &Config, env: &Env, problems: &mut Vec<Problem>) {
    if config.forge.kind != ForgeKind::Github {
        return;
    }
    match &config.forge.app {
        Some(app) => {
            if let Err(e) = std::fs::File::open(&app.private_key_path) {
                problems.push(Problem {
                    kind: ProblemKind::GithubAppKey,
                    message: format!(
                        "the GitHub App private key `{}` cannot be read: {e}",
                        app.private_key_path.display()
                    ),
                    hint: Some("check `[forge.app] private_key_path`".into()),
                });
            }
        }
        None => {
            if env.github_token().is_none() {
                problems.push(Problem {
                    kind: ProblemKind::GithubToken,
                    message: "no GitHub token: `GITHUB_TOKEN` and `GH_TOKEN` are unset".into(),
                    hint: Some(
                        "export `GITHUB_TOKEN` (in Actions: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`), or configure `[forge.app]`"
                            .into(),
                    ),
                });
            }
        }
    }
}

/// The state store's directory must be writable (or creatable).
fn state_store_check(store: &Path) -> Option<Problem> {
    let dir = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The nearest directory that exists: the store creates the rest.
    let mut existing = dir;
    while !existing.exists() {
        existing = existing.parent().filter(|d| !d.as_os_str().is_empty())?;
    }
    let problem = |why: String| Problem {
        kind: ProblemKind::StateStore,
        message: format!(
            "the state store `{}` cannot be written: {why}",
            store.display()
        ),
        hint: Some("make its directory writable, or set `[state] path`".into()),
    };
    if !existing.is_dir() {
        return Some(problem(format!(
            "`{}` is not a directory",
            existing.display()
        )));
    }
    match tempfile::Builder::new()
        .prefix(".issueloop-write-check-")
        .tempfile_in(existing)
    {
        Ok(_) => None,
        Err(e) => Some(problem(format!("`{}`: {e}", existing.display()))),
    }
}

fn codex_profile_check(env: &Env, name: &str, problems: &mut Vec<Problem>) {
    let Some(path) = default_codex_config(env) else {
        return;
    };
    let hint = Some(format!(
        "run `issueloop setup --runtime codex` to add `[profiles.{name}]`"
    ));
    match has_codex_profile(&path, name) {
        Ok(true) => {}
        Ok(false) => problems.push(Problem {
            kind: ProblemKind::CodexProfile,
            message: format!(
                "Codex runs with `--profile {name}`, but `{}` has no `[profiles.{name}]`",
                path.display()
            ),
            hint,
        }),
        Err(e) => problems.push(Problem {
            kind: ProblemKind::CodexProfile,
            message: e.to_string(),
            hint,
        }),
    }
}

/// The flag that lets Gemini run headless in a folder it does not trust yet (0.61 refuses
/// otherwise, and overrides the approval mode).
pub const GEMINI_SKIP_TRUST: &str = "--skip-trust";
/// Bytes of `gemini --help` read.
const HELP_LIMIT: u64 = 64 << 10;

/// A problem when the installed Gemini CLI's `--help` does not list [`GEMINI_SKIP_TRUST`]
/// (issueloop passes it on every run). A help text that cannot be read is not judged.
fn gemini_trust_check(program: &Path, env: &Env) -> Option<Problem> {
    let help = probe(program, "--help", env, VERSION_TIMEOUT, HELP_LIMIT)?;
    gemini_trust_problem(program, &help)
}

/// Pure: the problem a Gemini `--help` text means, if any.
fn gemini_trust_problem(program: &Path, help: &str) -> Option<Problem> {
    if help.trim().is_empty() || lists_flag(help, GEMINI_SKIP_TRUST) {
        return None;
    }
    Some(Problem {
        kind: ProblemKind::GeminiTrust,
        message: format!(
            "`{}` (the `gemini` backend) does not list `{GEMINI_SKIP_TRUST}` in its `--help`; issueloop runs Gemini with it, so that a headless run trusts the run's worktree",
            program.display()
        ),
        hint: Some(
            "install a Gemini CLI that has it (`npm install -g @google/gemini-cli@0.61.0` or later)".into(),
        ),
    })
}

/// Whether `help` lists `flag` as an option (not as part of a longer flag).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let after = help[i + flag.len()..].chars().next();
        !matches!(after, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The first line `program --version` prints, within [`VERSION_TIMEOUT`], run with the same
/// scrubbed environment as an agent (no harness keys needed).
pub fn program_version(program: &Path, env: &Env) -> Option<String> {
    program_version_within(program, env, VERSION_TIMEOUT)
}

fn program_version_within(program: &Path, env: &Env, timeout: Duration) -> Option<String> {
    let text = probe(program, "--version", env, timeout, 4096)?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| crate::normalize::bounded(l, 200))
}

/// What `program arg` prints (stdout and stderr as they come, up to `2 × limit` bytes, head and
/// tail) when it exits within `timeout`, run with the same scrubbed environment as an agent.
fn probe(program: &Path, arg: &str, env: &Env, timeout: Duration, limit: u64) -> Option<String> {
    let vars = agent_env(&[], env).vars;
    let finished = issueloop_process::Launch::new(program)
        .arg(arg)
        .env(vars)
        .timeout(timeout)
        .kill_grace(Duration::ZERO)
        .output_limit(usize::try_from(limit.saturating_mul(2)).unwrap_or(usize::MAX))
        .run_blocking()
        .ok()?;
    if finished.timed_out {
        return None;
    }
    Some(finished.output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn config(dir: &Path, extra: &str) -> Config {
        let text = format!(
            "repos = [\"a/b\"]\n[forge]\nkind = \"local\"\n[state]\npath = \"{}/state/db.sqlite\"\n{extra}",
            dir.display()
        );
        issueloop_config::load_str(&text, &dir.join("issueloop.toml")).unwrap()
    }

    #[test]
    fn sandbox_decision_table() {
        use SandboxDecision::*;
        let on = Support::Available { abi: 7 };
        let none = Support::NotImplemented;
        let cases = [
            (SandboxMode::Required, on, Enforce { required: true }),
            (SandboxMode::BestEffort, on, Enforce { required: false }),
            (SandboxMode::Off, on, Off),
            (SandboxMode::Required, none, Refuse),
            (SandboxMode::BestEffort, none, Unavailable),
            (SandboxMode::Off, none, Off),
        ];
        for (mode, support, want) in cases {
            assert_eq!(
                sandbox_decision(mode, support),
                want,
                "{mode:?} {support:?}"
            );
        }
        let refused =
            sandbox_check(SandboxMode::Required, Support::NotEnabled, "5.10.0").unwrap_err();
        assert!(
            refused.message.contains("Linux 5.10.0"),
            "{}",
            refused.message
        );
        assert!(
            refused.message.contains("[sandbox] mode"),
            "{}",
            refused.message
        );
        assert!(
            sandbox_check(SandboxMode::Off, none, "x")
                .unwrap()
                .unwrap()
                .contains("off")
        );
    }

    #[test]
    fn versions_are_probed_and_missing_required_backends_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        script(&bin, "claude", "echo '2.1.7 (Claude Code)'");
        let env = Env::from_pairs([("PATH", bin.display().to_string())]);
        let c = config(
            dir.path(),
            "[runtime_profile.stages]\nexecute = \"codex\"\n[backends.codex]\nmodel = \"gpt-5\"\n",
        );
        let p = preflight(&c, &env);
        let exec = p.stages.iter().find(|s| s.stage == Stage::Execute).unwrap();
        assert!(!exec.found);
        assert!(exec.required);
        let eval = p
            .stages
            .iter()
            .find(|s| s.stage == Stage::Evaluate)
            .unwrap();
        assert_eq!(eval.version.as_deref(), Some("2.1.7 (Claude Code)"));
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert_eq!(p.problems[0].kind, ProblemKind::BackendMissing);
        assert!(p.problems[0].message.contains("`codex`"));
        let refusal = p.refusal().unwrap();
        assert!(
            refusal.contains("issueloop cannot start: 1 problem"),
            "{refusal}"
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["stages"]["execute"]["found"], false);
        assert_eq!(json["stages"]["interview"]["backend"], "claude_code");
        assert_eq!(json["problems"][0]["kind"], "backend_missing");
    }

    #[test]
    fn an_unused_stage_with_a_missing_backend_only_warns() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        script(&bin, "codex", "echo codex-cli 0.66.0");
        let env = Env::from_pairs([("PATH", bin.display().to_string())]);
        let c = config(
            dir.path(),
            "[runtime_profile]\ndefault = \"codex\"\n[runtime_profile.stages]\ninterview = \"pi\"\n[backends.codex]\nmodel = \"gpt-5\"\n",
        );
        let p = preflight(&c, &env);
        assert!(p.ok(), "{:?}", p.problems);
        assert!(
            p.warnings.iter().any(|w| w.contains("`pi`")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn token_app_key_state_store_and_codex_profile() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        script(&bin, "codex", "echo codex-cli 0.66.0");
        script(&bin, "claude", "echo 2.1.7");
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let text = format!(
            "repos = [\"a/b\"]\n[state]\npath = \"{}/sub/db.sqlite\"\n[runtime_profile]\nbackend_profile = \"worker\"\n[runtime_profile.stages]\nexecute = \"codex\"\n",
            ro.display()
        );
        let c = issueloop_config::load_str(&text, &dir.path().join("issueloop.toml")).unwrap();
        let home = dir.path().join("home");
        let env = Env::from_pairs([
            ("PATH", bin.display().to_string()),
            ("HOME", home.display().to_string()),
        ]);
        let p = preflight(&c, &env);
        let kinds: Vec<ProblemKind> = p.problems.iter().map(|p| p.kind).collect();
        let writable_anyway = tempfile::tempfile_in(&ro).is_ok(); // running as root
        let mut expected = vec![ProblemKind::GithubToken];
        if !writable_anyway {
            expected.push(ProblemKind::StateStore);
        }
        expected.push(ProblemKind::CodexProfile);
        assert_eq!(kinds, expected, "{:?}", p.problems);
        assert!(
            p.warnings.iter().any(|w| w.contains("claude_code")),
            "claude has no profile: {:?}",
            p.warnings
        );

        crate::codex_setup::install_codex_profile(
            &home.join(".codex/config.toml"),
            "issueloop-worker",
        )
        .unwrap();
        let env = Env::from_pairs([
            ("PATH", bin.display().to_string()),
            ("HOME", home.display().to_string()),
            (
                "GITHUB_TOKEN",
                "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
            ),
        ]);
        let p = preflight(&c, &env);
        assert!(
            p.problems.iter().all(|p| p.kind == ProblemKind::StateStore),
            "{:?}",
            p.problems
        );
        assert!(!format!("{p:?}").contains("ghp_"));
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn gemini_help_must_list_skip_trust() {
        let program = Path::new("/opt/gemini");
        let cases = [
            (
                "  --skip-trust   Trust the current workspace for this session.",
                false,
            ),
            ("  -y, --yolo\n  --skip-trust\n", false),
            ("  --skip-trusted-folders   something else", true),
            ("  --approval-mode  Set the approval mode", true),
            // Nothing to judge: no problem rather than a guess.
            ("", false),
        ];
        for (help, problem) in cases {
            let p = gemini_trust_problem(program, help);
            assert_eq!(p.is_some(), problem, "{help:?}");
            if let Some(p) = p {
                assert_eq!(p.kind, ProblemKind::GeminiTrust);
                assert!(p.message.contains("`--skip-trust`"), "{}", p.message);
                assert!(p.message.contains("`/opt/gemini`"), "{}", p.message);
            }
        }
    }

    #[test]
    fn an_installed_gemini_without_skip_trust_blocks_start() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let env = Env::from_pairs([("PATH", bin.display().to_string())]);
        let c = config(dir.path(), "[runtime_profile]\ndefault = \"gemini\"\n");
        script(
            &bin,
            "gemini",
            "case \"$1\" in --version) echo 0.20.0;; *) echo '  --approval-mode  Set the approval mode';; esac",
        );
        let p = preflight(&c, &env);
        let kinds: Vec<ProblemKind> = p.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [ProblemKind::GeminiTrust], "{:?}", p.problems);
        script(
            &bin,
            "gemini",
            "case \"$1\" in --version) echo 0.61.0;; *) echo '      --skip-trust   Trust the current workspace';; esac",
        );
        let p = preflight(&c, &env);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn a_hung_version_probe_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "slow", "exec sleep 30");
        let env = Env::from_pairs([("PATH", "/usr/bin:/bin")]);
        let v = program_version_within(&dir.path().join("slow"), &env, Duration::from_millis(200));
        assert_eq!(v, None);
    }
}
