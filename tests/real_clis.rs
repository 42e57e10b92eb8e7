//! The real agent CLIs — Claude Code, Codex, Pi, OpenCode and Gemini, installed from npm at
//! pinned versions by `.ci/install-agent-clis` — drive `issueloop run --once` through the binary
//! against a scripted model server (`tests/support/model_server.py`) on the local forge.
//!
//! For each CLI: a run to a draft PR holding the file the scripted tool call wrote, with the
//! ledger charged what the CLI reported (or its tokens priced from `policies/models.toml`); a run
//! without credentials whose reason carries the CLI's own explanation (in the report, the
//! journal, the issue comment and the job summary); a run killed at its wall clock while the
//! model is slow; and, for the CLIs that report cost as they go (Claude Code, Pi, OpenCode), a
//! run stopped when its cost passes the run budget; and a run pointed at a closed local port (no
//! network), whose reason carries what the CLI said about it, whether it gives up by itself or
//! retries until the wall clock stops it.
//!
//! How each CLI is pointed at the server (see docs/runtimes.md):
//! - Claude Code: `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY` (Anthropic Messages, SSE).
//! - Codex: a custom model provider in a throwaway `CODEX_HOME/config.toml` (`base_url`,
//!   `wire_api = "responses"`, `env_key`), OpenAI Responses over SSE.
//! - Pi: a provider in `$PI_CODING_AGENT_DIR/models.json` (`api = "openai-completions"`).
//! - OpenCode: a provider in the file `OPENCODE_CONFIG` names (`@ai-sdk/openai-compatible`).
//! - Gemini: `GOOGLE_GEMINI_BASE_URL` with `GEMINI_API_KEY`, and `security.auth.selectedType =
//!   "gemini-api-key"` in `~/.gemini/settings.json` (the base URL alone selects an auth type
//!   0.61 refuses headless).
//!
//! Each test skips with a printed reason when the CLIs are not installed, and fails under
//! `CI=true`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a test reads its own test settings from the environment"
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::model_server::{ModelServer, agent_cli};
use support::{Knobs, MAINTAINER, World, run_of};

/// What the scripted tool call writes.
const FEATURE_PATH: &str = "app/feature.py";
const FEATURE: &str = "def feature():\n    return 42\n";
/// The credential the tests hand the CLIs (the server checks it where a test asks).
const KEY: &str = "sk-scripted-0123456789abcdef";
/// The variable a custom provider reads its key from (Codex `env_key`, OpenCode `{env:…}`).
const KEY_VAR: &str = "SCRIPTED_MODEL_KEY";
/// The model whose prices Pi and OpenCode are configured with, so that what they report can be
/// checked against `policies/models.toml`.
const PRICED_AS: &str = "claude-sonnet-4-5";

/// Every variable a harness reads its credentials or settings from: none may leak in from the
/// environment the tests run in.
const HARNESS_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_API_KEY",
    "CODEX_HOME",
    "AZURE_OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_CLI_TRUST_WORKSPACE",
    "GROQ_API_KEY",
    "XAI_API_KEY",
    "MISTRAL_API_KEY",
    "CEREBRAS_API_KEY",
    "PI_CODING_AGENT_DIR",
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "SCRIPTED_MODEL_KEY",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cli {
    Claude,
    Codex,
    Pi,
    OpenCode,
    Gemini,
}

impl Cli {
    fn bin(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Pi => "pi",
            Cli::OpenCode => "opencode",
            Cli::Gemini => "gemini",
        }
    }

    fn backend(self) -> &'static str {
        match self {
            Cli::Claude => "claude_code",
            Cli::Codex => "codex",
            Cli::Pi => "pi",
            Cli::OpenCode => "opencode",
            Cli::Gemini => "gemini",
        }
    }

    /// The model issueloop passes with `--model`.
    fn model(self) -> &'static str {
        match self {
            Cli::Claude => "claude-sonnet-4-5",
            // Codex has no metadata for it from a custom provider, so it offers the model its
            // shell tool (no `apply_patch`); issueloop prices its tokens as `gpt-5`.
            Cli::Codex => "gpt-5",
            Cli::Pi | Cli::OpenCode => "scripted/scripted-coder",
            Cli::Gemini => "gemini-2.5-flash",
        }
    }

    /// The `policies/models.toml` entry the run's cost is checked against.
    fn priced_as(self) -> &'static str {
        match self {
            Cli::Claude | Cli::Pi | Cli::OpenCode => PRICED_AS,
            Cli::Codex => "gpt-5",
            Cli::Gemini => "gemini-2.5-flash",
        }
    }

    /// Variables issueloop must pass to the agent beyond the backend's declared ones.
    fn extra_env(self) -> &'static [&'static str] {
        match self {
            Cli::Claude | Cli::Pi => &[],
            Cli::Codex => &[KEY_VAR],
            Cli::OpenCode => &[
                KEY_VAR,
                "XDG_CONFIG_HOME",
                "XDG_DATA_HOME",
                "XDG_CACHE_HOME",
                "XDG_STATE_HOME",
            ],
            Cli::Gemini => &["GOOGLE_GEMINI_BASE_URL"],
        }
    }
}

/// A world whose configuration runs `cli`, a throwaway HOME for it, and the model server.
struct Scene {
    cli: Cli,
    w: World,
    home: PathBuf,
    server: ModelServer,
    env: Vec<(String, String)>,
    issue: u64,
}

/// The script of a normal session: one write tool call, then a final message.
fn script(usage: (u64, u64)) -> Value {
    json!({
        "files": [{"path": FEATURE_PATH, "content": FEATURE}],
        "final": "Added app/feature.py with feature() returning 42.",
        "usage": {"input_tokens": usage.0, "output_tokens": usage.1},
        "require_key": KEY,
    })
}

/// Set up `cli` against a server running `script`, with credentials or without.
fn scene(cli: Cli, knobs: Knobs, script: Value, credentials: bool) -> Option<Scene> {
    scene_at(cli, knobs, script, credentials, None)
}

/// [`scene`] with the CLI pointed at `endpoint` instead of the server (which still runs, and
/// logs any request that reaches it).
fn scene_at(
    cli: Cli,
    knobs: Knobs,
    script: Value,
    credentials: bool,
    endpoint: Option<String>,
) -> Option<Scene> {
    let program = agent_cli(cli.bin())?;
    let mut w = World::new(Knobs {
        reflect_attempts: 0,
        ..knobs
    });
    let home = w.root().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let server = ModelServer::start(&w.root().join("model"), script);
    // Pi without credentials runs its default model: a fresh install with no key.
    let model = (credentials || cli != Cli::Pi).then(|| cli.model());
    select_backend(&w.config, cli, &program, model);
    let url = endpoint.unwrap_or_else(|| server.url());
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), home.display().to_string()),
        (
            "XDG_CONFIG_HOME".into(),
            home.join(".config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME".into(),
            home.join(".local/share").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            home.join(".cache").display().to_string(),
        ),
        (
            "XDG_STATE_HOME".into(),
            home.join(".local/state").display().to_string(),
        ),
    ];
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    match cli {
        Cli::Claude => {
            set("ANTHROPIC_BASE_URL", url.clone());
            if credentials {
                set("ANTHROPIC_API_KEY", KEY.into());
            }
        }
        Cli::Codex => {
            let codex_home = home.join("codex");
            std::fs::create_dir_all(&codex_home).unwrap();
            std::fs::write(
                codex_home.join("config.toml"),
                format!(
                    "model_provider = \"scripted\"\n\n[model_providers.scripted]\nname = \"Scripted model server\"\nbase_url = \"{url}/v1\"\nwire_api = \"responses\"\nenv_key = \"{KEY_VAR}\"\n"
                ),
            )
            .unwrap();
            set("CODEX_HOME", codex_home.display().to_string());
            if credentials {
                set(KEY_VAR, KEY.into());
            }
        }
        Cli::Pi => {
            let dir = home.join("pi");
            std::fs::create_dir_all(&dir).unwrap();
            set("PI_CODING_AGENT_DIR", dir.display().to_string());
            if credentials {
                // Without credentials pi has no provider at all: the case of a fresh install.
                let (input, output) = price_per_million(PRICED_AS);
                let models = json!({"providers": {"scripted": {
                    "baseUrl": format!("{url}/v1"),
                    "api": "openai-completions",
                    "apiKey": KEY,
                    "compat": {"supportsDeveloperRole": false, "supportsReasoningEffort": false},
                    "models": [{"id": "scripted-coder", "reasoning": false,
                                "cost": {"input": input, "output": output, "cacheRead": 0, "cacheWrite": 0}}],
                }}});
                std::fs::write(dir.join("models.json"), models.to_string()).unwrap();
            }
        }
        Cli::OpenCode => {
            let (input, output) = price_per_million(PRICED_AS);
            let config = json!({
                "$schema": "https://opencode.ai/config.json",
                "autoupdate": false,
                "share": "disabled",
                "provider": {"scripted": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Scripted model server",
                    "options": {"baseURL": format!("{url}/v1"), "apiKey": format!("{{env:{KEY_VAR}}}")},
                    "models": {"scripted-coder": {"name": "Scripted coder",
                                                   "cost": {"input": input, "output": output}}},
                }},
            });
            let file = home.join("opencode.json");
            std::fs::write(&file, config.to_string()).unwrap();
            set("OPENCODE_CONFIG", file.display().to_string());
            if credentials {
                set(KEY_VAR, KEY.into());
            }
        }
        Cli::Gemini => {
            if credentials {
                let dir = home.join(".gemini");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(
                    dir.join("settings.json"),
                    r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
                )
                .unwrap();
                set("GEMINI_API_KEY", KEY.into());
                set("GOOGLE_GEMINI_BASE_URL", url.clone());
            }
        }
    }
    let issue = w.add_issue(
        "Add feature",
        "Add `app/feature.py` with `feature()` returning 42.\n\n## Acceptance\n- [ ] feature() returns 42",
        MAINTAINER,
    );
    Some(Scene {
        cli,
        w,
        home,
        server,
        env,
        issue,
    })
}

/// Input and output prices per million tokens of a `policies/models.toml` entry.
fn price_per_million(model: &str) -> (f64, f64) {
    let table = issueloop::config::builtin_models();
    let p = table
        .lookup(model)
        .unwrap_or_else(|| panic!("`{model}` has no price in policies/models.toml"));
    (p.input.dollars(), p.output.dollars())
}

/// Replace the world's `command` backend with `cli` at `program`.
fn select_backend(config: &Path, cli: Cli, program: &Path, model: Option<&str>) {
    let text = std::fs::read_to_string(config).unwrap();
    let start = text
        .find("[runtime_profile]")
        .expect("the world's configuration has a [runtime_profile]");
    let end = text[start..]
        .find("\n[run]")
        .map(|i| start + i + 1)
        .expect("the world's configuration has a [run] table after the backend");
    let env: Vec<String> = cli.extra_env().iter().map(|v| format!("{v:?}")).collect();
    let block = format!(
        "[runtime_profile]\ndefault = \"{backend}\"\n\n[backends.{backend}]\nbinary = {program:?}\n{model}env = [{env}]\n\n",
        backend = cli.backend(),
        program = program.display().to_string(),
        model = model
            .map(|m| format!("model = \"{m}\"\n"))
            .unwrap_or_default(),
        env = env.join(", "),
    );
    let text = format!("{}{block}{}", &text[..start], &text[end..]);
    std::fs::write(config, text).unwrap();
}

/// What one `issueloop run --once` did.
struct Tick {
    code: Option<i32>,
    report: Value,
    stderr: String,
    elapsed: Duration,
    summary: String,
}

impl Scene {
    fn run_once(&self) -> Tick {
        let mut cmd = self.w.std_command();
        for v in HARNESS_VARS {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let summary = self.home.join("summary.md");
        cmd.env("GITHUB_STEP_SUMMARY", &summary)
            .args(["--json", "run", "--once"]);
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(Duration::from_secs(240));
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\nstdout: {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        eprintln!(
            "{:?}: `issueloop run --once` took {:.1} s",
            self.cli,
            elapsed.as_secs_f64()
        );
        if std::env::var_os("REAL_CLIS_DEBUG").is_some() {
            eprintln!("{stderr}");
        }
        Tick {
            code: out.status.code(),
            report,
            stderr,
            elapsed,
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }

    /// The text of `path` on the remote branch `branch`.
    fn file_on_branch(&self, branch: &str, path: &str) -> Option<String> {
        support::git::git_ok(
            &self.w.remote,
            &["show", &format!("refs/heads/{branch}:{path}")],
        )
    }

    /// The cost the model server's usage comes to at the `priced_as` model's prices.
    fn expected_cost(&self) -> f64 {
        let (input, output) = price_per_million(self.cli.priced_as());
        let script: Value = serde_json::from_str(
            &std::fs::read_to_string(self.w.root().join("model/model-script.json")).unwrap(),
        )
        .unwrap();
        // OpenCode also asks the model for a session title (a request without tools) and
        // leaves it out of the costs it reports: issueloop can only charge what it is told.
        let turns = self
            .server
            .model_turns()
            .iter()
            .filter(|t| self.cli != Cli::OpenCode || t["tools"].as_u64().unwrap_or(0) > 0)
            .count() as f64;
        let tokens_in = script["usage"]["input_tokens"].as_f64().unwrap();
        let tokens_out = script["usage"]["output_tokens"].as_f64().unwrap();
        turns * (tokens_in * input + tokens_out * output) / 1_000_000.0
    }

    /// Every journal payload of every run, as text.
    fn journal_text(&self) -> String {
        use issueloop::ledger::Journal;
        let ledger = self.w.ledger();
        let mut out = String::new();
        for r in ledger.runs(100).unwrap() {
            for e in ledger.events(&r.run_id).unwrap() {
                out.push_str(&e.kind);
                out.push(' ');
                out.push_str(&e.payload.to_string());
                out.push('\n');
            }
        }
        out
    }
}

fn charged(w: &World) -> f64 {
    let entries = w.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0]
        .cost
        .unwrap_or_else(|| panic!("the ledger entry is not settled: {entries:?}"))
        .dollars()
}

// ---------------------------------------------------------------------------------------------

/// A run to a draft PR holding the scripted file, the ledger charged what the CLI reported.
fn opens_a_draft_pr(cli: Cli) {
    let Some(s) = scene(cli, Knobs::default(), script((1000, 100)), true) else {
        return;
    };
    let tick = s.run_once();
    let run = run_of(&tick.report, s.issue);
    assert_eq!(
        run["status"],
        "pr_opened",
        "{cli:?}: {:#}\n{}\nrequests: {:?}",
        tick.report,
        tick.stderr,
        s.server
            .requests()
            .iter()
            .map(|r| r["answer"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(tick.code, Some(0), "{}", tick.stderr);
    let pulls = s.w.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert!(pulls[0].contains("draft = true"), "{}", pulls[0]);
    let branch = "loop/1-add-feature";
    assert_eq!(s.w.remote_branches(), [branch]);
    assert_eq!(
        s.file_on_branch(branch, FEATURE_PATH).as_deref(),
        Some(FEATURE),
        "{cli:?}: the file the scripted tool call wrote is on the branch"
    );

    // The CLI went through the server: a tool call with its own write tool, then a final text.
    let turns = s.server.model_turns();
    let answers: Vec<&str> = turns.iter().filter_map(|t| t["answer"].as_str()).collect();
    assert!(
        answers.iter().any(|a| a.starts_with("tool ")) && answers.contains(&"text"),
        "{cli:?}: {answers:?}"
    );

    // What the ledger charged is what the CLI reported (Claude Code, Pi, OpenCode), or its
    // tokens priced from policies/models.toml (Codex, Gemini); either way the server's usage
    // at the model's prices.
    let expected = s.expected_cost();
    assert!(expected > 0.0);
    // Money is whole micro-dollars, and a reported cost is rounded up where it is parsed (the
    // safe side): at most one micro-dollar more per model turn, never less.
    let rounding = turns.len() as f64 * 1e-6 + 1e-9;
    let charged = charged(&s.w);
    assert!(
        charged - expected > -1e-9 && charged - expected <= rounding,
        "{cli:?}: ledger charged {charged}, the server's usage comes to {expected}"
    );
    let reported = run["cost_usd"].as_f64().unwrap();
    assert!(
        reported - expected > -1e-9 && reported - expected <= rounding,
        "{cli:?}: {reported}"
    );
    eprintln!(
        "{cli:?}: draft PR in {:.1} s, {} model turns, ${charged:.6}",
        tick.elapsed.as_secs_f64(),
        turns.len()
    );
}

/// Without credentials the run fails, and its reason carries the CLI's own explanation: in the
/// report, the journal, the issue comment and the job summary.
fn explains_missing_credentials(cli: Cli, explanation: &str) {
    let Some(s) = scene(cli, Knobs::default(), script((1000, 100)), false) else {
        return;
    };
    let tick = s.run_once();
    let run = run_of(&tick.report, s.issue);
    assert_eq!(
        run["reason"], "agent_failed",
        "{cli:?}: {:#}\n{}",
        tick.report, tick.stderr
    );
    let detail = run["detail"].as_str().unwrap_or_default();
    eprintln!("{cli:?} without credentials: {detail}");
    assert!(
        detail.contains(explanation),
        "{cli:?}: the reason lacks `{explanation}`: {detail}"
    );
    assert!(!detail.contains(KEY));
    assert!(s.w.pulls().is_empty());
    assert!(
        s.w.issue_text(s.issue).contains(explanation),
        "{cli:?}: the issue comment lacks it:\n{}",
        s.w.issue_text(s.issue)
    );
    assert!(
        s.w.labels(s.issue).contains(&"loop:failed".to_owned()),
        "{:?}",
        s.w.labels(s.issue)
    );
    let journal = s.journal_text();
    assert!(
        journal.contains(explanation),
        "{cli:?}: the journal lacks it:\n{journal}"
    );
    assert!(
        tick.summary.contains(explanation),
        "{cli:?}: the summary lacks it:\n{}",
        tick.summary
    );
}

/// A model that answers too slowly: the run is stopped at its wall clock.
fn is_killed_at_the_wall_clock(cli: Cli) {
    let mut slow = script((1000, 100));
    slow["delay_s"] = json!(600);
    // Long enough for the CLI to start and send its first request (OpenCode and Gemini take
    // 5-15 s to start on a busy 2-core runner), short enough to keep the test quick.
    let wall_clock = match cli {
        Cli::OpenCode | Cli::Gemini => "25s",
        Cli::Claude | Cli::Codex | Cli::Pi => "10s",
    };
    let knobs = Knobs {
        wall_clock,
        ..Knobs::default()
    };
    let Some(s) = scene(cli, knobs, slow, true) else {
        return;
    };
    let tick = s.run_once();
    let run = run_of(&tick.report, s.issue);
    assert_eq!(
        run["reason"], "timed_out",
        "{cli:?}: {:#}\n{}",
        tick.report, tick.stderr
    );
    assert!(s.w.pulls().is_empty());
    // The quick starters are stopped while they wait for the model. OpenCode and Gemini may
    // still be starting when the clock runs out on a loaded machine (10-30 s seen on 2 cores):
    // they are stopped all the same, which is what this checks.
    let reached = !s.server.requests().is_empty();
    match cli {
        Cli::Claude | Cli::Codex | Cli::Pi => {
            assert!(reached, "{cli:?}: the CLI never reached the model server")
        }
        Cli::OpenCode | Cli::Gemini => {
            eprintln!("{cli:?}: reached the model server before the kill: {reached}")
        }
    }
    // The wall clock, 5 s of grace after TERM, and the tick's own work (slow on a loaded
    // machine), far from the model's 600 s.
    assert!(
        tick.elapsed < Duration::from_secs(150),
        "{cli:?}: {:?}",
        tick.elapsed
    );
}

/// A session that costs more than the run budget in its first response: the run is stopped.
fn is_stopped_at_the_run_budget(cli: Cli) {
    // 400k input tokens at $3/M and 10k output at $15/M: $1.35 per response, budget $1.
    let Some(s) = scene(cli, Knobs::default(), script((400_000, 10_000)), true) else {
        return;
    };
    let tick = s.run_once();
    let run = run_of(&tick.report, s.issue);
    assert_eq!(
        run["reason"], "budget_exhausted",
        "{cli:?}: {:#}\n{}",
        tick.report, tick.stderr
    );
    assert!(s.w.pulls().is_empty());
    assert!(s.w.remote_branches().is_empty());
    let charged = charged(&s.w);
    assert!(
        charged >= 1.35 - 1e-6,
        "{cli:?}: the spend the CLI reported is charged: {charged}"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn claude_code_opens_a_draft_pr() {
    opens_a_draft_pr(Cli::Claude);
}

#[test]
fn codex_opens_a_draft_pr() {
    opens_a_draft_pr(Cli::Codex);
}

#[test]
fn pi_opens_a_draft_pr() {
    opens_a_draft_pr(Cli::Pi);
}

#[test]
fn opencode_opens_a_draft_pr() {
    opens_a_draft_pr(Cli::OpenCode);
}

#[test]
fn gemini_opens_a_draft_pr() {
    opens_a_draft_pr(Cli::Gemini);
}

#[test]
fn claude_code_without_a_key_says_so() {
    explains_missing_credentials(Cli::Claude, "Not logged in");
}

#[test]
fn codex_without_a_key_says_so() {
    explains_missing_credentials(
        Cli::Codex,
        "Missing environment variable: `SCRIPTED_MODEL_KEY`",
    );
}

#[test]
fn pi_without_a_key_says_so() {
    // Pi prints this on stderr only; its stream just stops.
    explains_missing_credentials(Cli::Pi, "No API key found for the selected model");
}

#[test]
fn opencode_without_a_key_says_so() {
    // OpenCode sends the request without a key; the provider's refusal is what it reports.
    explains_missing_credentials(Cli::OpenCode, "Incorrect API key provided");
}

#[test]
fn gemini_without_a_key_says_so() {
    // On stderr only, like pi.
    explains_missing_credentials(Cli::Gemini, "Please set an Auth method");
}

#[test]
fn claude_code_is_killed_at_the_wall_clock() {
    is_killed_at_the_wall_clock(Cli::Claude);
}

#[test]
fn codex_is_killed_at_the_wall_clock() {
    is_killed_at_the_wall_clock(Cli::Codex);
}

#[test]
fn pi_is_killed_at_the_wall_clock() {
    is_killed_at_the_wall_clock(Cli::Pi);
}

#[test]
fn opencode_is_killed_at_the_wall_clock() {
    is_killed_at_the_wall_clock(Cli::OpenCode);
}

#[test]
fn gemini_is_killed_at_the_wall_clock() {
    is_killed_at_the_wall_clock(Cli::Gemini);
}

#[test]
fn claude_code_is_stopped_at_the_run_budget() {
    is_stopped_at_the_run_budget(Cli::Claude);
}

#[test]
fn pi_is_stopped_at_the_run_budget() {
    is_stopped_at_the_run_budget(Cli::Pi);
}

#[test]
fn opencode_is_stopped_at_the_run_budget() {
    is_stopped_at_the_run_budget(Cli::OpenCode);
}

/// An endpoint nobody listens on: a local port bound, read and released.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The CLI pointed at a closed port: no PR, no more spent than the run budget, and a reason (in
/// the report, the journal, the issue comment and the job summary) that carries the CLI's own
/// words about it. `wall_clock` is short for the CLIs that retry until stopped; `reason` is how
/// the run ends (`timed_out` for those, `agent_failed` for one that gives up).
fn explains_no_network(cli: Cli, wall_clock: &'static str, reason: &str, explanation: &str) {
    let knobs = Knobs {
        wall_clock,
        ..Knobs::default()
    };
    let budget = knobs.run_cost;
    let Some(s) = scene_at(
        cli,
        knobs,
        script((1000, 100)),
        true,
        Some(closed_endpoint()),
    ) else {
        return;
    };
    let tick = s.run_once();
    let run = run_of(&tick.report, s.issue);
    assert_eq!(
        run["reason"], reason,
        "{cli:?}: {:#}\n{}",
        tick.report, tick.stderr
    );
    let detail = run["detail"].as_str().unwrap_or_default();
    eprintln!(
        "{cli:?} without network ({:.1} s): {detail}",
        tick.elapsed.as_secs_f64()
    );
    assert!(
        detail.contains(explanation),
        "{cli:?}: the reason lacks `{explanation}`: {detail}"
    );
    assert!(!detail.contains(KEY));
    assert!(s.w.pulls().is_empty());
    assert!(s.w.remote_branches().is_empty());
    assert!(
        s.server.requests().is_empty(),
        "{cli:?}: a request reached the model server"
    );
    let charged = charged(&s.w);
    assert!(
        charged <= budget + 1e-9,
        "{cli:?}: charged {charged}, more than the run budget {budget}"
    );
    assert!(
        s.w.issue_text(s.issue).contains(explanation),
        "{cli:?}: the issue comment lacks it:\n{}",
        s.w.issue_text(s.issue)
    );
    let journal = s.journal_text();
    assert!(
        journal.contains(explanation),
        "{cli:?}: the journal lacks it:\n{journal}"
    );
    assert!(
        tick.summary.contains(explanation),
        "{cli:?}: the summary lacks it:\n{}",
        tick.summary
    );
}

/// Each CLI pointed at a closed port, all at once in threads of one test: most of the time is
/// spent waiting for wall clocks, so running them side by side keeps the suite's added time to
/// the slowest case (Gemini's 40 s) rather than their sum. A failure names every CLI that failed.
#[test]
fn each_cli_without_network_says_so() {
    let cases: [(Cli, &'static str, &'static str, &'static str); 5] = [
        // Claude Code retries 10 times with growing delays (minutes in all); its only words are
        // the `api_retry` events of its stream, error class `unknown`, no HTTP status.
        (Cli::Claude, "10s", "timed_out", "`api_retry` attempt"),
        // Codex reconnects forever; its stream says why.
        (
            Cli::Codex,
            "10s",
            "timed_out",
            "Reconnecting... waiting for network",
        ),
        // Pi retries a few times within seconds, then ends its stream with the error.
        (Cli::Pi, "60s", "agent_failed", "Connection error."),
        // OpenCode retries with growing delays; its JSON stream stays silent, and only its log
        // (on stderr with `--print-logs`) says why: "Cannot connect to API: Unable to connect.
        // Is the computer able to access the url?" (and the same words when it cannot fetch
        // its models list offline). As long as Gemini's: it may take 30 s to start when busy.
        (
            Cli::OpenCode,
            "40s",
            "timed_out",
            "Unable to connect. Is the computer able to access the url?",
        ),
        // Gemini retries for minutes, printing each failed attempt (and a stack) on stderr.
        (Cli::Gemini, "40s", "timed_out", "fetch failed"),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(cli, wall_clock, reason, words)| {
                (
                    cli,
                    scope.spawn(move || explains_no_network(cli, wall_clock, reason, words)),
                )
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(cli, h)| {
                h.join().err().map(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    format!("{cli:?}: {message}")
                })
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
