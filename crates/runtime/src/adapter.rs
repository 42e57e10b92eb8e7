//! Per-backend invocations: the argv, stdin, output format and environment a harness needs for
//! a non-interactive run, with the run's limits and the backend profile mapped to the harness's
//! own flags where it has them. Pure: nothing here touches the system.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use issueloop_config::{BackendKind, BackendSettings, Config, ModelTable, RunBudget, Stage, Usd};

use crate::error::RuntimeError;
use crate::format::Format;
use crate::pricing::Pricing;

/// The environment variable naming the brief file of a `command` backend.
pub const BRIEF_FILE_VAR: &str = "ISSUELOOP_BRIEF_FILE";

/// One run's limits, as the supervisor and the harness flags see them.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLimits {
    pub cost_usd: Usd,
    pub wall_clock: Duration,
    pub max_turns: u32,
}

impl From<&RunBudget> for RunLimits {
    fn from(b: &RunBudget) -> Self {
        RunLimits {
            cost_usd: b.cost_usd,
            wall_clock: b.wall_clock,
            max_turns: b.max_turns,
        }
    }
}

/// What the agent is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Brief {
    pub text: String,
    /// Where the pipeline already wrote it (outside the worktree), if it did.
    pub path: Option<PathBuf>,
}

/// Where a `command` backend finds its brief file.
#[derive(Clone, Debug, PartialEq)]
pub enum BriefFile {
    /// The file the pipeline wrote.
    Given(PathBuf),
    /// A temporary file the supervisor writes outside the worktree and removes afterwards.
    Temporary,
}

/// Everything needed to start one agent run.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub backend: BackendKind,
    /// The program as configured (a name looked up on `PATH`, or a path).
    pub program: String,
    pub args: Vec<String>,
    /// Written to the agent's stdin, then stdin is closed.
    pub stdin: String,
    /// `command` backends also get the brief in a file named by `ISSUELOOP_BRIEF_FILE`.
    pub brief_file: Option<BriefFile>,
    pub format: Format,
    /// Variables passed through from the environment snapshot (credentials never are).
    pub env_vars: Vec<String>,
    /// The model table and the configured model, for harnesses that report tokens only.
    pub pricing: Pricing,
    /// The backend-native profile applied (Codex: `issueloop-<name>`), if any.
    pub profile: Option<String>,
    /// Things a person should know (an unmapped `backend_profile`, …).
    pub warnings: Vec<String>,
}

impl Invocation {
    /// The whole argv, program first.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// What the journal records for the stage (`stage_started.runtime_id`): the resolved
    /// backend's canonical name, as `doctor` shows it.
    pub fn runtime_id(&self) -> &'static str {
        self.backend.as_str()
    }

    /// Use this price table (the configuration's) instead of the built-in one.
    pub fn with_models(mut self, models: ModelTable) -> Self {
        self.pricing.models = models;
        self
    }
}

impl fmt::Display for Invocation {
    /// The argv shell-quoted, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_words(&self.argv()))
    }
}

pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            shlex::try_quote(a)
                .map(|q| q.into_owned())
                .unwrap_or_else(|_| format!("{a:?}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Variables each harness needs (provider keys, its own config locations). `command` declares
/// none: list what it needs in `[backends.command] env`.
pub fn declared_env(kind: BackendKind) -> &'static [&'static str] {
    match kind {
        BackendKind::ClaudeCode => &[
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_MODEL",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "CLAUDE_CONFIG_DIR",
            "CLAUDE_CODE_USE_BEDROCK",
            "CLAUDE_CODE_USE_VERTEX",
            "ANTHROPIC_VERTEX_PROJECT_ID",
            "CLOUD_ML_REGION",
            "AWS_REGION",
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ],
        BackendKind::Codex => &[
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "CODEX_API_KEY",
            "CODEX_HOME",
            "AZURE_OPENAI_API_KEY",
        ],
        BackendKind::Pi => &[
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENROUTER_API_KEY",
            "GEMINI_API_KEY",
            "GROQ_API_KEY",
            "XAI_API_KEY",
            "MISTRAL_API_KEY",
            "CEREBRAS_API_KEY",
            "PI_CODING_AGENT_DIR",
        ],
        BackendKind::OpenCode => &[
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENROUTER_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_GENERATIVE_AI_API_KEY",
            "GROQ_API_KEY",
            "XAI_API_KEY",
            "OPENCODE_CONFIG",
            "OPENCODE_CONFIG_DIR",
        ],
        BackendKind::Gemini => &[
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_GENAI_USE_VERTEXAI",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ],
        BackendKind::Command => &[],
    }
}

/// How a backend applies `runtime_profile.backend_profile`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileMapping {
    /// These arguments select the profile (and the name it has in the harness).
    Args { name: String, args: Vec<String> },
    /// The harness has no profile mechanism; the run goes without.
    Unmapped,
}

/// Codex reads `--profile issueloop-<name>` from its `config.toml` (`issueloop setup --runtime
/// codex` adds it); OpenCode selects a named agent with `--agent issueloop-<name>`. The others
/// have no profile flag.
pub fn profile_mapping(kind: BackendKind, profile: &str) -> ProfileMapping {
    let name = format!("issueloop-{profile}");
    match kind {
        BackendKind::Codex => ProfileMapping::Args {
            args: vec!["--profile".into(), name.clone()],
            name,
        },
        BackendKind::OpenCode => ProfileMapping::Args {
            args: vec!["--agent".into(), name.clone()],
            name,
        },
        _ => ProfileMapping::Unmapped,
    }
}

/// The text that tells an unmapped profile is ignored.
pub fn unmapped_profile_warning(kind: BackendKind, profile: &str) -> String {
    format!(
        "`runtime_profile.backend_profile = \"{profile}\"` has no equivalent for the `{kind}` backend; it runs without a profile"
    )
}

/// (backend, profile) pairs already warned about in this process.
static WARNED_PROFILES: Mutex<BTreeSet<(BackendKind, String)>> = Mutex::new(BTreeSet::new());

fn warn_once(kind: BackendKind, profile: &str, message: &str) {
    let first = match WARNED_PROFILES.lock() {
        Ok(mut set) => set.insert((kind, profile.to_owned())),
        // A panic elsewhere while holding the lock only costs a repeated warning.
        Err(poisoned) => poisoned.into_inner().insert((kind, profile.to_owned())),
    };
    if first {
        tracing::warn!("{message}");
    }
}

/// Lead-in text for harnesses that take the prompt as an argument and append (or prepend) stdin.
const GEMINI_PROMPT: &str = "Carry out the task described above, working in the current directory.";
const OPENCODE_PROMPT: &str =
    "Carry out the task described below, working in the current directory.";

/// The invocation of `kind` for one run.
pub fn invocation(
    kind: BackendKind,
    settings: &BackendSettings,
    profile: Option<&str>,
    limits: &RunLimits,
    brief: &Brief,
) -> Result<Invocation, RuntimeError> {
    let model = settings.model.clone().filter(|m| !m.trim().is_empty());
    let mut warnings = Vec::new();
    let mut profile_args = Vec::new();
    let mut applied_profile = None;
    if let Some(p) = profile.filter(|p| !p.trim().is_empty()) {
        match profile_mapping(kind, p) {
            ProfileMapping::Args { name, args } => {
                profile_args = args;
                applied_profile = Some(name);
            }
            ProfileMapping::Unmapped => {
                let w = unmapped_profile_warning(kind, p);
                warn_once(kind, p, &w);
                warnings.push(w);
            }
        }
    }
    let program = match kind {
        BackendKind::Command => settings
            .argv
            .as_ref()
            .and_then(|a| a.first())
            .filter(|p| !p.trim().is_empty())
            .cloned()
            .ok_or(RuntimeError::MissingArgv)?,
        _ => match &settings.binary {
            Some(b) if b.trim().is_empty() => {
                return Err(RuntimeError::EmptyBinary { backend: kind });
            }
            Some(b) => b.clone(),
            #[expect(
                clippy::expect_used,
                reason = "`Command` is matched above; every other backend has a default binary"
            )]
            None => kind
                .default_binary()
                .expect("every harness backend has a default binary")
                .to_owned(),
        },
    };
    let mut args: Vec<String> = Vec::new();
    let mut format = Format::of_backend(kind).unwrap_or(Format::Text);
    let mut brief_file = None;
    match kind {
        BackendKind::ClaudeCode => {
            // `stream-json` with `-p` needs `--verbose`; the prompt comes from stdin.
            args.extend(["-p", "--output-format", "stream-json", "--verbose"].map(String::from));
            args.extend(["--permission-mode".into(), "acceptEdits".into()]);
            if let Some(m) = &model {
                args.extend(["--model".into(), m.clone()]);
            }
            if limits.max_turns > 0 {
                args.extend(["--max-turns".into(), limits.max_turns.to_string()]);
            }
            if limits.cost_usd.is_positive() {
                args.extend(["--max-budget-usd".into(), dollars(limits.cost_usd)]);
            }
        }
        BackendKind::Codex => {
            args.extend(["exec", "--json"].map(String::from));
            if let Some(m) = &model {
                args.extend(["--model".into(), m.clone()]);
            }
            if profile_args.is_empty() {
                // A profile sets its own sandbox; without one, let the agent edit the worktree.
                args.extend(["--sandbox".into(), "workspace-write".into()]);
            }
            args.append(&mut profile_args);
        }
        BackendKind::Pi => {
            // `--print` with `--mode json`: without it some versions stay interactive.
            args.extend(["--print", "--mode", "json"].map(String::from));
            if let Some(m) = &model {
                args.extend(["--model".into(), m.clone()]);
            }
        }
        BackendKind::OpenCode => {
            args.extend(["run", "--format", "json"].map(String::from));
            // Its warnings and errors on stderr: the only place it says it cannot reach its
            // model (it retries, and its JSON stream stays silent), so a reason can quote it.
            args.extend(["--print-logs", "--log-level", "WARN"].map(String::from));
            if let Some(m) = &model {
                args.extend(["--model".into(), m.clone()]);
            }
            args.append(&mut profile_args);
        }
        BackendKind::Gemini => {
            args.extend(["--output-format", "stream-json"].map(String::from));
            args.extend(["--approval-mode".into(), "auto_edit".into()]);
            // Headless, Gemini refuses a folder it does not trust (and would override the
            // approval mode); a run's worktree is always new to it. `doctor` checks the flag.
            args.push(crate::preflight::GEMINI_SKIP_TRUST.into());
            if let Some(m) = &model {
                args.extend(["--model".into(), m.clone()]);
            }
        }
        BackendKind::Command => {
            let argv = settings.argv.as_deref().unwrap_or_default();
            args.extend(argv.iter().skip(1).cloned());
            format = match settings.format.as_deref() {
                None => Format::Text,
                Some(f) => Format::parse(f).ok_or_else(|| RuntimeError::UnknownFormat {
                    format: f.to_owned(),
                })?,
            };
            brief_file = Some(match &brief.path {
                Some(p) => BriefFile::Given(p.clone()),
                None => BriefFile::Temporary,
            });
        }
    }
    args.extend(settings.args.iter().cloned());
    // Positional prompts go last, after any extra arguments.
    match kind {
        BackendKind::Codex => args.push("-".into()),
        BackendKind::OpenCode => args.push(OPENCODE_PROMPT.into()),
        BackendKind::Gemini => args.extend(["--prompt".into(), GEMINI_PROMPT.into()]),
        _ => {}
    }
    let mut env_vars: Vec<String> = declared_env(kind).iter().map(|v| (*v).to_owned()).collect();
    for v in &settings.env {
        if !env_vars.contains(v) {
            env_vars.push(v.clone());
        }
    }
    Ok(Invocation {
        backend: kind,
        program,
        args,
        stdin: brief.text.clone(),
        brief_file,
        format,
        env_vars,
        pricing: Pricing::new(issueloop_config::builtin_models(), model),
        profile: applied_profile,
        warnings,
    })
}

/// The invocation for `stage`: the backend the runtime profile resolves, its settings, the
/// backend profile and the configuration's model table.
pub fn invocation_for_stage(
    config: &Config,
    stage: Stage,
    limits: &RunLimits,
    brief: &Brief,
) -> Result<Invocation, RuntimeError> {
    let kind = config.runtime_profile.resolve(stage);
    let settings = config.backend(kind);
    let inv = invocation(
        kind,
        &settings,
        config.runtime_profile.backend_profile.as_deref(),
        limits,
        brief,
    )?;
    Ok(inv.with_models(config.models.clone()))
}

/// A dollar amount for a command line: at most four decimals, rounded down so the harness's own
/// cap is never above the run budget.
fn dollars(usd: Usd) -> String {
    // Beyond a million dollars the harness's cap is moot; issueloop enforces the real budget.
    let micros = usd.micros().clamp(0, 1_000_000 * 1_000_000);
    // Ten-thousandths of a dollar, rounded down.
    let tenths_of_cents = micros / 100;
    let s = format!(
        "{}.{:04}",
        tenths_of_cents / 10_000,
        tenths_of_cents % 10_000
    );
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RunLimits {
        RunLimits {
            cost_usd: Usd::from_dollars(2.5),
            wall_clock: Duration::from_secs(600),
            max_turns: 20,
        }
    }

    fn brief() -> Brief {
        Brief {
            text: "Fix the bug".into(),
            path: None,
        }
    }

    fn settings(model: Option<&str>) -> BackendSettings {
        BackendSettings {
            model: model.map(String::from),
            ..BackendSettings::default()
        }
    }

    #[test]
    fn claude_maps_turns_budget_and_model() {
        let inv = invocation(
            BackendKind::ClaudeCode,
            &settings(Some("claude-sonnet-4-5")),
            None,
            &limits(),
            &brief(),
        )
        .unwrap();
        assert_eq!(
            inv.to_string(),
            "claude -p --output-format stream-json --verbose --permission-mode acceptEdits --model claude-sonnet-4-5 --max-turns 20 --max-budget-usd 2.5"
        );
        assert_eq!(inv.stdin, "Fix the bug");
        assert_eq!(inv.format, Format::ClaudeCode);
        assert!(inv.env_vars.contains(&"ANTHROPIC_API_KEY".to_string()));
    }

    #[test]
    fn codex_profile_replaces_the_sandbox_flag_and_reads_stdin() {
        let inv = invocation(
            BackendKind::Codex,
            &settings(Some("gpt-5.1-codex")),
            Some("worker"),
            &limits(),
            &brief(),
        )
        .unwrap();
        assert_eq!(
            inv.to_string(),
            "codex exec --json --model gpt-5.1-codex --profile issueloop-worker -"
        );
        assert_eq!(inv.profile.as_deref(), Some("issueloop-worker"));
        assert_eq!(inv.pricing.model.as_deref(), Some("gpt-5.1-codex"));
        let inv = invocation(
            BackendKind::Codex,
            &settings(None),
            None,
            &limits(),
            &brief(),
        )
        .unwrap();
        assert_eq!(
            inv.to_string(),
            "codex exec --json --sandbox workspace-write -"
        );
    }

    #[test]
    fn other_harnesses_have_their_non_interactive_flags() {
        let run = |kind| {
            invocation(kind, &settings(Some("m")), None, &limits(), &brief())
                .unwrap()
                .to_string()
        };
        assert_eq!(run(BackendKind::Pi), "pi --print --mode json --model m");
        assert_eq!(
            run(BackendKind::OpenCode),
            "opencode run --format json --print-logs --log-level WARN --model m 'Carry out the task described below, working in the current directory.'"
        );
        assert_eq!(
            run(BackendKind::Gemini),
            "gemini --output-format stream-json --approval-mode auto_edit --skip-trust --model m --prompt 'Carry out the task described above, working in the current directory.'"
        );
    }

    #[test]
    fn an_unmapped_profile_warns_and_runs_without() {
        let inv = invocation(
            BackendKind::Pi,
            &settings(None),
            Some("worker"),
            &limits(),
            &brief(),
        )
        .unwrap();
        assert_eq!(inv.to_string(), "pi --print --mode json");
        assert_eq!(inv.profile, None);
        assert_eq!(inv.warnings.len(), 1);
        assert!(inv.warnings[0].contains("`pi`"));
        let inv = invocation(
            BackendKind::OpenCode,
            &settings(None),
            Some("worker"),
            &limits(),
            &brief(),
        )
        .unwrap();
        assert!(inv.args.contains(&"issueloop-worker".to_string()));
    }

    #[test]
    fn command_takes_argv_format_env_and_a_brief_file() {
        let s = BackendSettings {
            argv: Some(vec!["python3".into(), "agent.py".into()]),
            format: Some("pi".into()),
            args: vec!["--fast".into()],
            env: vec!["MY_KEY".into(), "GITHUB_TOKEN".into()],
            ..BackendSettings::default()
        };
        let inv = invocation(BackendKind::Command, &s, None, &limits(), &brief()).unwrap();
        assert_eq!(inv.to_string(), "python3 agent.py --fast");
        assert_eq!(inv.format, Format::Pi);
        assert_eq!(inv.brief_file, Some(BriefFile::Temporary));
        // Declared here, and still withheld at run time (see `agent_env`).
        assert_eq!(inv.env_vars, ["MY_KEY", "GITHUB_TOKEN"]);
        let given = Brief {
            path: Some("/tmp/brief.md".into()),
            ..brief()
        };
        let inv = invocation(BackendKind::Command, &s, None, &limits(), &given).unwrap();
        assert_eq!(
            inv.brief_file,
            Some(BriefFile::Given("/tmp/brief.md".into()))
        );
        let plain = BackendSettings {
            argv: Some(vec!["./agent.sh".into()]),
            ..BackendSettings::default()
        };
        let inv = invocation(BackendKind::Command, &plain, None, &limits(), &brief()).unwrap();
        assert_eq!(inv.format, Format::Text);
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let none = BackendSettings::default();
        assert!(matches!(
            invocation(BackendKind::Command, &none, None, &limits(), &brief()),
            Err(RuntimeError::MissingArgv)
        ));
        let empty = BackendSettings {
            binary: Some(" ".into()),
            ..BackendSettings::default()
        };
        assert!(matches!(
            invocation(BackendKind::Codex, &empty, None, &limits(), &brief()),
            Err(RuntimeError::EmptyBinary { .. })
        ));
        let bad = BackendSettings {
            argv: Some(vec!["x".into()]),
            format: Some("xml".into()),
            ..BackendSettings::default()
        };
        let err = invocation(BackendKind::Command, &bad, None, &limits(), &brief()).unwrap_err();
        assert!(err.to_string().contains("`xml`"), "{err}");
    }

    #[test]
    fn budgets_never_round_up() {
        assert_eq!(dollars(Usd::from_dollars(5.0)), "5");
        assert_eq!(dollars(Usd::from_dollars(0.5)), "0.5");
        assert_eq!(dollars(Usd::from_dollars(1.23456)), "1.2345");
        assert_eq!(dollars(Usd::from_dollars(0.00009)), "0");
        assert_eq!(dollars(Usd::MAX), "1000000");
    }

    #[test]
    fn stage_resolution_uses_the_profile_and_the_config_models() {
        let config = issueloop_config::load_str(
            "repos = [\"a/b\"]\n[runtime_profile]\ndefault = \"claude\"\nbackend_profile = \"worker\"\n[runtime_profile.stages]\nexecute = \"codex\"\n",
            std::path::Path::new("/tmp/issueloop.toml"),
        )
        .unwrap();
        let inv = invocation_for_stage(&config, Stage::Execute, &limits(), &brief()).unwrap();
        assert_eq!(inv.backend, BackendKind::Codex);
        assert_eq!(inv.runtime_id(), "codex");
        assert_eq!(inv.profile.as_deref(), Some("issueloop-worker"));
        let inv = invocation_for_stage(&config, Stage::Evaluate, &limits(), &brief()).unwrap();
        assert_eq!(inv.backend, BackendKind::ClaudeCode);
        assert_eq!(
            inv.warnings.len(),
            1,
            "claude has no profile: {:?}",
            inv.warnings
        );
    }
}

/// Where each harness keeps its own state (session logs, settings it rewrites, caches), which
/// a sandboxed agent must be able to write: folders (no extension; created before the run when
/// missing) and single files (with an extension; granted only when they exist).
/// A `command` backend declares none; `[sandbox] extra_writable` adds more.
pub fn harness_state_paths(backend: BackendKind, env: &issueloop_config::Env) -> Vec<PathBuf> {
    let home = env
        .get("HOME")
        .filter(|h| h.starts_with('/'))
        .map(PathBuf::from);
    let xdg = |var: &str, fallback: &str| -> Option<PathBuf> {
        env.get(var)
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(fallback)))
    };
    let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
    let paths: Vec<Option<PathBuf>> = match backend {
        BackendKind::ClaudeCode => vec![
            env.get("CLAUDE_CONFIG_DIR")
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from)
                .or_else(|| in_home(".claude")),
            in_home(".claude.json"),
            in_home(".claude.json.backup"),
        ],
        BackendKind::Codex => vec![
            env.get("CODEX_HOME")
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from)
                .or_else(|| in_home(".codex")),
        ],
        BackendKind::Pi => vec![
            env.get("PI_CODING_AGENT_DIR")
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from),
            in_home(".pi"),
        ],
        BackendKind::OpenCode => vec![
            xdg("XDG_DATA_HOME", ".local/share").map(|p| p.join("opencode")),
            xdg("XDG_STATE_HOME", ".local/state").map(|p| p.join("opencode")),
            xdg("XDG_CONFIG_HOME", ".config").map(|p| p.join("opencode")),
            // Its cache too (provider packages, the models list): without it OpenCode may stop
            // at start with `EACCES: permission denied, mkdir '~/.cache'`.
            xdg("XDG_CACHE_HOME", ".cache").map(|p| p.join("opencode")),
        ],
        BackendKind::Gemini => vec![in_home(".gemini")],
        BackendKind::Command => vec![],
    };
    paths.into_iter().flatten().collect()
}

#[cfg(test)]
mod state_path_tests {
    use super::*;

    #[test]
    fn each_harness_declares_its_state() {
        let env = issueloop_config::Env::from_pairs([("HOME", "/h"), ("CODEX_HOME", "/c")]);
        let p = |b| harness_state_paths(b, &env);
        assert_eq!(
            p(BackendKind::ClaudeCode),
            [
                PathBuf::from("/h/.claude"),
                "/h/.claude.json".into(),
                "/h/.claude.json.backup".into()
            ]
        );
        assert_eq!(p(BackendKind::Codex), [PathBuf::from("/c")]);
        assert_eq!(
            p(BackendKind::OpenCode),
            [
                PathBuf::from("/h/.local/share/opencode"),
                "/h/.local/state/opencode".into(),
                "/h/.config/opencode".into(),
                "/h/.cache/opencode".into()
            ]
        );
        assert!(p(BackendKind::Command).is_empty());
        let no_home = issueloop_config::Env::from_pairs([("HOME", "relative")]);
        assert!(harness_state_paths(BackendKind::Pi, &no_home).is_empty());
    }
}
