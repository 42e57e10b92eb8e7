//! The semantic pass: turns the raw configuration into a [`Config`], filling defaults and
//! reporting every problem at once, each with its key, line and a hint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ConfigError, ConfigWarning};
use crate::hint::{ErrorChain as _, Hint as _};
use crate::load::{read_text, resolve_path, resolve_program};
use crate::model::*;
use crate::money::Usd;
use crate::path::{AbsPath, KeyPath, line_col};
use crate::policy::{
    BUILTIN_POLICY_SOURCE, Loosening, PolicyConfig, RepoPolicy, builtin_models, builtin_policy,
    parse_policy_file,
};
use crate::raw::*;
use crate::redact::{looks_like_secret, redact_quoted};
use crate::runtime::{BackendKind, RuntimeProfile, Stage};
use crate::suggest::did_you_mean;

/// Where the configuration text came from, to locate keys for messages.
pub(crate) struct Locator<'a> {
    /// The file as named by the caller, for messages.
    pub file: PathBuf,
    /// The same file, absolute (`None` for the built-in defaults).
    pub abs_file: Option<AbsPath>,
    /// What relative paths in the file resolve against: the file's directory.
    pub base_dir: AbsPath,
    pub text: &'a str,
    pub doc: &'a toml_edit::Document<String>,
}

/// Collects errors and warnings while the pass runs.
struct Checker<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Checker<'_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = path
            .span_in(self.loc.doc)
            .map(|s| line_col(self.loc.text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        self.errors.push(ConfigError {
            file: self.loc.file.clone(),
            key: if path.is_empty() {
                String::new()
            } else {
                path.to_string()
            },
            line,
            column,
            // A value a person wrote is quoted in many messages: never when it is a secret.
            message: redact_quoted(&message.into()),
            hint: hint.as_deref().map(redact_quoted),
        });
    }

    fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            key: path.to_string(),
            message: redact_quoted(&message.into()),
        });
    }

    /// A positive amount of dollars, parsed into [`Usd`] here, at the edge (to the nearest
    /// micro-dollar; an amount that rounds to nothing is refused like zero).
    fn money(&mut self, path: &KeyPath, value: Option<f64>, default: Usd) -> Usd {
        match value {
            None => default,
            Some(v) if v.is_finite() && v > 0.0 && Usd::from_dollars(v).is_positive() => {
                Usd::from_dollars(v)
            }
            Some(v) => {
                self.error(
                    path,
                    format!("amount must be a positive, finite number of US dollars, not `{v}`"),
                    Some("write it like `5.00`".into()),
                );
                default
            }
        }
    }

    fn duration(&mut self, path: &KeyPath, value: Option<&str>, default: Duration) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.error(path, "duration must be longer than zero", None);
                default
            }
            Some(Err(e)) => {
                self.error(
                    path,
                    e,
                    Some("durations look like `45m`, `1h30m` or `90s`".into()),
                );
                default
            }
        }
    }

    fn positive(&mut self, path: &KeyPath, value: Option<u32>, default: u32) -> u32 {
        match value {
            None => default,
            Some(0) => {
                self.error(path, "must be at least 1", None);
                default
            }
            Some(v) => v,
        }
    }

    fn backend(&mut self, path: &KeyPath, name: &str) -> Option<BackendKind> {
        let parsed = BackendKind::parse(name);
        if parsed.is_none() {
            let hint = match did_you_mean(name, BackendKind::all_spellings()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("valid backends: {}", backend_list()),
            };
            self.error(path, format!("unknown backend `{name}`"), Some(hint));
        }
        parsed
    }

    fn repo_key(&mut self, path: &KeyPath, key: &str, repos: &[RepoName]) -> Option<RepoName> {
        match RepoName::from_str(key) {
            Err(e) => {
                self.error(path, e, Some("write it as `owner/name`".into()));
                None
            }
            Ok(r) if !repos.is_empty() && !repos.contains(&r) => {
                let names: Vec<String> = repos.iter().map(RepoName::full).collect();
                let hint = did_you_mean(key, names.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("add `{key}` to `repos`, or remove this table")));
                self.error(
                    path,
                    format!("`{key}` is not one of the configured `repos`"),
                    hint,
                );
                Some(r)
            }
            Ok(r) => Some(r),
        }
    }

    fn globs(&mut self, path: &KeyPath, globs: &[String]) {
        for (i, g) in globs.iter().enumerate() {
            if let Err(e) = globset::Glob::new(g) {
                self.error(
                    &path.index(i),
                    format!("glob `{g}` does not compile: {}", e.kind()),
                    Some("globs look like `src/**` or `*.md`; escape `[`, `{` and `}` with `[[]`-style classes".into()),
                );
            }
        }
    }
}

fn backend_list() -> String {
    BackendKind::ALL
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The configuration used when no file is given.
pub(crate) fn builtin(base_dir: AbsPath) -> Config {
    let doc = toml_edit::Document::parse(String::new()).unwrap_or_else(|_| unreachable_doc());
    let loc = Locator {
        file: PathBuf::from("(built-in defaults)"),
        abs_file: None,
        base_dir: base_dir.clone(),
        text: "",
        doc: &doc,
    };
    let mut checker = Checker {
        loc: &loc,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    build(RawConfig::default(), &mut checker, &base_dir, false)
}

fn unreachable_doc() -> toml_edit::Document<String> {
    // Parsing the empty string cannot fail; this keeps the signature free of panics.
    toml_edit::Document::parse(" ".to_owned()).unwrap_or_else(|_| unreachable_doc())
}

pub(crate) fn validate(
    raw: RawConfig,
    loc: &Locator<'_>,
    parse_errors: &[ConfigError],
) -> Result<Config, Vec<ConfigError>> {
    let mut checker = Checker {
        loc,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    check_no_secrets(&mut checker);
    let base_dir = loc.base_dir.clone();
    let repos_errored = parse_errors.iter().any(|e| e.key.starts_with("repos"));
    let config = build(raw, &mut checker, &base_dir, !repos_errored);
    if checker.errors.is_empty() {
        Ok(config)
    } else {
        Err(checker.errors)
    }
}

/// Errors in file order (those without a line last), so a person can fix them top to bottom.
pub(crate) fn sort_errors(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| (e.file.clone(), e.line.is_none(), e.line, e.column));
}

fn build(raw: RawConfig, c: &mut Checker<'_>, base_dir: &AbsPath, require_repos: bool) -> Config {
    let root = KeyPath::root();
    let forge = forge(raw.forge.unwrap_or_default(), c, base_dir);
    let repos = repos(raw.repos, c, require_repos);
    let labels = labels(raw.labels.unwrap_or_default(), c);
    let budget = budget(raw.budget.unwrap_or_default(), c, &labels);
    let runtime_profile = runtime_profile(raw.runtime_profile.unwrap_or_default(), c);
    let backends = backends(
        raw.backends.unwrap_or_default(),
        c,
        &runtime_profile,
        base_dir,
    );
    let run = {
        let r = raw.run.unwrap_or_default();
        RunSettings {
            reflect_attempts: r.reflect_attempts.unwrap_or(2),
            evaluate: r.evaluate.unwrap_or(false),
        }
    };
    let gates = gates(raw.gates.unwrap_or_default(), c, &repos);
    let policy = policy(raw.policy.unwrap_or_default(), c, base_dir, &repos);
    let git = git(raw.git.unwrap_or_default(), c, base_dir);
    let publish = {
        let p = raw.publish.unwrap_or_default();
        let path = root.key("publish").key("draft_fallback");
        let draft_fallback = match p.draft_fallback.as_deref() {
            None | Some("label") => DraftFallback::Label,
            Some("fail") => DraftFallback::Fail,
            Some(other) => {
                let hint = did_you_mean(other, ["label", "fail"])
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "use `label` or `fail`".into());
                c.error(
                    &path,
                    format!("unknown draft fallback `{other}`"),
                    Some(hint),
                );
                DraftFallback::Label
            }
        };
        PublishConfig { draft_fallback }
    };
    let service = service(raw.service.unwrap_or_default(), c);
    let state = state(raw.state.unwrap_or_default(), c, base_dir);
    let (sandbox, problems) = crate::sandbox::sandbox(raw.sandbox.unwrap_or_default(), base_dir);
    for (path, message, hint) in problems {
        c.error(&path, message, hint);
    }
    let file = c.loc.abs_file.clone();
    Config {
        file,
        base_dir: base_dir.to_owned(),
        forge,
        repos,
        labels,
        budget,
        runtime_profile,
        backends,
        run,
        gates,
        policy,
        git,
        publish,
        service,
        state,
        sandbox,
        models: builtin_models(),
        warnings: std::mem::take(&mut c.warnings),
    }
}

/// Refuse anything that looks like a secret (a GitHub, Anthropic, OpenAI, AWS or Slack token, a
/// private key) anywhere in the file. The value is never repeated in the message.
fn check_no_secrets(c: &mut Checker<'_>) {
    fn walk(item: &toml_edit::Item, path: KeyPath, found: &mut Vec<KeyPath>) {
        match item {
            toml_edit::Item::Table(t) => {
                for (k, v) in t.iter() {
                    walk(v, path.key(k), found);
                }
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    for (k, v) in t.iter() {
                        walk(v, path.index(i).key(k), found);
                    }
                }
            }
            toml_edit::Item::Value(v) => walk_value(v, path, found),
            toml_edit::Item::None => {}
        }
    }
    fn walk_value(v: &toml_edit::Value, path: KeyPath, found: &mut Vec<KeyPath>) {
        match v {
            toml_edit::Value::String(s) if looks_like_secret(s.value()) => found.push(path),
            toml_edit::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk_value(v, path.index(i), found);
                }
            }
            toml_edit::Value::InlineTable(t) => {
                for (k, v) in t.iter() {
                    walk_value(v, path.key(k), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(c.loc.doc.as_item(), KeyPath::root(), &mut found);
    for path in found {
        c.error(
            &path,
            "a secret-looking value (a token or a private key); secrets never belong in the configuration file",
            Some("remove it (and revoke it if the file was shared), then set `GITHUB_TOKEN` in the environment (or the variable the agent's program reads)".into()),
        );
    }
}

/// True when `s` contains something shaped like a GitHub token (classic, fine-grained, App,
/// OAuth, refresh). App installation tokens can be ~520 characters: no upper bound.
pub fn looks_like_github_token(s: &str) -> bool {
    const PREFIXES: [&str; 6] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];
    PREFIXES.iter().any(|p| {
        s.match_indices(p).any(|(i, _)| {
            let rest = &s[i + p.len()..];
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .count()
                >= 20
        })
    })
}

fn forge(raw: RawForge, c: &mut Checker<'_>, base_dir: &AbsPath) -> ForgeConfig {
    let root = KeyPath::root().key("forge");
    let kind = match raw.kind.as_deref() {
        None | Some("github") => ForgeKind::Github,
        Some("local") => ForgeKind::Local,
        Some(other) => {
            let hint = did_you_mean(other, ["github", "local"])
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "use `github` or `local`".into());
            c.error(
                &root.key("kind"),
                format!("unknown forge kind `{other}`"),
                Some(hint),
            );
            ForgeKind::Github
        }
    };
    let api_url = match raw.api_url {
        None => "https://api.github.com".to_owned(),
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            u.trim_end_matches('/').to_owned()
        }
        Some(u) => {
            c.error(
                &root.key("api_url"),
                format!("`{u}` is not an http(s) URL"),
                Some("for GitHub Enterprise Server use `https://HOST/api/v3`".into()),
            );
            "https://api.github.com".to_owned()
        }
    };
    let app = raw.app.and_then(|a| {
        let path = root.key("app");
        let mut ok = true;
        if a.app_id.is_none() {
            c.error(
                &path,
                "missing `app_id`",
                Some("the numeric id on the App's settings page".into()),
            );
            ok = false;
        }
        if a.private_key_path.is_none() {
            c.error(
                &path,
                "missing `private_key_path`",
                Some("the path of the App's `.pem` private key (never the key itself)".into()),
            );
            ok = false;
        }
        ok.then(|| AppConfig {
            app_id: a.app_id.unwrap_or_default(),
            private_key_path: resolve_path(
                base_dir,
                a.private_key_path.as_deref().unwrap_or_default(),
            ),
            installation_id: a.installation_id,
        })
    });
    ForgeConfig {
        kind,
        api_url,
        local_path: resolve_path(
            base_dir,
            raw.local_path.as_deref().unwrap_or(".issueloop/forge"),
        ),
        app,
        max_writes_per_minute: c.positive(
            &root.key("max_writes_per_minute"),
            raw.max_writes_per_minute,
            20,
        ),
        request_timeout: c.duration(
            &root.key("request_timeout"),
            raw.request_timeout.as_deref(),
            Duration::from_secs(30),
        ),
    }
}

fn repos(raw: Option<Vec<String>>, c: &mut Checker<'_>, require: bool) -> Vec<RepoName> {
    let path = KeyPath::root().key("repos");
    let Some(raw) = raw else {
        if require {
            c.error(
                &KeyPath::root(),
                "no repositories configured",
                Some("add `repos = [\"owner/name\"]` at the top of the file".into()),
            );
        }
        return Vec::new();
    };
    if raw.is_empty() && require {
        c.error(
            &path,
            "`repos` is empty",
            Some("list at least one `owner/name`".into()),
        );
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        match RepoName::from_str(r) {
            Ok(name) => {
                if !seen.insert(name.full().to_ascii_lowercase()) {
                    c.error(
                        &path.index(i),
                        format!("repository `{r}` is listed twice"),
                        Some("GitHub names are case-insensitive; keep one entry".into()),
                    );
                } else {
                    out.push(name);
                }
            }
            Err(e) => c.error(
                &path.index(i),
                e,
                Some("write it as `owner/name`, e.g. `acme/api`".into()),
            ),
        }
    }
    out
}

fn labels(raw: RawLabels, c: &mut Checker<'_>) -> Labels {
    let root = KeyPath::root().key("labels");
    let prefix = raw.prefix.unwrap_or_else(|| "loop:".into());
    if prefix.trim().is_empty() {
        c.error(
            &root.key("prefix"),
            "the label prefix must not be empty",
            None,
        );
    }
    let named = |key: &str, value: Option<String>, default: &str, c: &mut Checker<'_>| {
        let v = value.unwrap_or_else(|| format!("{prefix}{default}"));
        if !v.starts_with(&prefix) {
            c.error(
                &root.key(key),
                format!("label `{v}` does not start with the label prefix `{prefix}`"),
                Some(format!(
                    "rename it to `{prefix}{}`, or change `labels.prefix`",
                    v.trim_start_matches(':')
                )),
            );
        }
        v
    };
    let labels = Labels {
        approved: named("approved", raw.approved, "approved", c),
        in_progress: named("in_progress", raw.in_progress, "in-progress", c),
        pr_opened: named("pr_opened", raw.pr_opened, "pr-opened", c),
        failed: named("failed", raw.failed, "failed", c),
        blocked: named("blocked", raw.blocked, "blocked", c),
        draft: named("draft", raw.draft, "draft", c),
        priority: raw.priority.unwrap_or_default(),
        prefix: prefix.clone(),
    };
    for (i, p) in labels.priority.iter().enumerate() {
        if !p.starts_with(&prefix) {
            c.error(
                &root.key("priority").index(i),
                format!("priority label `{p}` does not start with the label prefix `{prefix}`"),
                None,
            );
        }
    }
    let state = [
        ("approved", &labels.approved),
        ("in_progress", &labels.in_progress),
        ("pr_opened", &labels.pr_opened),
        ("failed", &labels.failed),
        ("blocked", &labels.blocked),
        ("draft", &labels.draft),
    ];
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in state {
        if let Some(other) = seen.insert(value.as_str(), key) {
            c.error(
                &root.key(key),
                format!("label `{value}` is also used for `labels.{other}`"),
                Some("each state needs its own label".into()),
            );
        }
    }
    labels
}

fn budget(raw: RawBudget, c: &mut Checker<'_>, labels: &Labels) -> BudgetConfig {
    let root = KeyPath::root().key("budget");
    let daily_cap_usd = c.money(
        &root.key("daily_cap_usd"),
        raw.daily_cap_usd,
        Usd::from_whole_dollars(10),
    );
    let max_runs_per_day = c.positive(&root.key("max_runs_per_day"), raw.max_runs_per_day, 2);
    let quarter = Usd::from_micros(250_000);
    let min_useful_usd = match raw.min_useful_usd {
        None => quarter,
        Some(v) if v.is_finite() && v >= 0.0 => Usd::from_dollars(v),
        Some(v) => {
            c.error(
                &root.key("min_useful_usd"),
                format!("amount must be a finite number ≥ 0, not `{v}`"),
                None,
            );
            quarter
        }
    };
    let reservation_grace = c.duration(
        &root.key("reservation_grace"),
        raw.reservation_grace.as_deref(),
        Duration::from_secs(15 * 60),
    );
    let d = raw.default.unwrap_or_default();
    let dp = root.key("default");
    let default = RunBudget {
        cost_usd: c.money(&dp.key("cost_usd"), d.cost_usd, Usd::from_whole_dollars(5)),
        wall_clock: c.duration(
            &dp.key("wall_clock"),
            d.wall_clock.as_deref(),
            Duration::from_secs(45 * 60),
        ),
        max_turns: c.positive(&dp.key("max_turns"), d.max_turns, 20),
    };
    if default.cost_usd > daily_cap_usd {
        c.warn(
            &dp.key("cost_usd"),
            format!(
                "the default run budget ${:.2} is above the daily cap ${:.2}; runs will be clamped to the cap",
                default.cost_usd.dollars(),
                daily_cap_usd.dollars()
            ),
        );
    }
    let mut label_budgets = BTreeMap::new();
    label_budgets.insert(
        format!("{}budget-large", labels.prefix),
        LabelBudget {
            cost_usd: Some(Usd::from_micros(7_500_000)),
            wall_clock: Some(Duration::from_secs(90 * 60)),
            max_turns: Some(40),
        },
    );
    label_budgets.insert(
        format!("{}budget-xl", labels.prefix),
        LabelBudget {
            cost_usd: Some(Usd::from_whole_dollars(10)),
            wall_clock: Some(Duration::from_secs(120 * 60)),
            max_turns: Some(60),
        },
    );
    for (label, b) in raw.labels.unwrap_or_default() {
        let lp = root.key("labels").key(label.clone());
        if !label.starts_with(&labels.prefix) {
            c.error(
                &lp,
                format!(
                    "budget label `{label}` does not start with the label prefix `{}`",
                    labels.prefix
                ),
                Some(format!(
                    "name it `{}{}`: only labels with the prefix are trusted and read",
                    labels.prefix,
                    label.rsplit(':').next().unwrap_or(&label)
                )),
            );
        }
        let lb = LabelBudget {
            cost_usd: b
                .cost_usd
                .map(|v| c.money(&lp.key("cost_usd"), Some(v), default.cost_usd)),
            wall_clock: b
                .wall_clock
                .as_deref()
                .map(|v| c.duration(&lp.key("wall_clock"), Some(v), default.wall_clock)),
            max_turns: b
                .max_turns
                .map(|v| c.positive(&lp.key("max_turns"), Some(v), default.max_turns)),
        };
        if lb.cost_usd.is_none() && lb.wall_clock.is_none() && lb.max_turns.is_none() {
            c.warn(
                &lp,
                "this budget label raises nothing; give it `cost_usd`, `wall_clock` or `max_turns`",
            );
        }
        label_budgets.insert(label, lb);
    }
    BudgetConfig {
        daily_cap_usd,
        max_runs_per_day,
        min_useful_usd,
        reservation_grace,
        default,
        labels: label_budgets,
    }
}

fn runtime_profile(raw: RawRuntimeProfile, c: &mut Checker<'_>) -> RuntimeProfile {
    let root = KeyPath::root().key("runtime_profile");
    let default = raw
        .default
        .as_deref()
        .and_then(|d| c.backend(&root.key("default"), d));
    let mut stages = BTreeMap::new();
    for (key, backend) in raw.stages.unwrap_or_default() {
        let path = root.key("stages").key(key.clone());
        let Some(stage) = Stage::parse(&key) else {
            let names = Stage::ALL.map(Stage::as_str);
            let hint = match did_you_mean(&key, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("stages are {}", names.map(|n| format!("`{n}`")).join(", ")),
            };
            c.error(&path, format!("unknown stage `{key}`"), Some(hint));
            continue;
        };
        if let Some(b) = c.backend(&path, &backend) {
            stages.insert(stage, b);
        }
    }
    let backend_profile = match raw.backend_profile {
        Some(p) if p.trim().is_empty() => {
            c.error(
                &root.key("backend_profile"),
                "`backend_profile` is empty",
                Some("remove the key or name a profile".into()),
            );
            None
        }
        other => other,
    };
    RuntimeProfile {
        default,
        backend_profile,
        stages,
    }
}

/// Output formats the `command` backend may declare.
pub const COMMAND_FORMATS: [&str; 6] = ["claude_code", "codex", "pi", "opencode", "gemini", "text"];

fn backends(
    raw: BTreeMap<String, RawBackend>,
    c: &mut Checker<'_>,
    profile: &RuntimeProfile,
    base_dir: &AbsPath,
) -> BTreeMap<BackendKind, BackendSettings> {
    let root = KeyPath::root().key("backends");
    let mut out: BTreeMap<BackendKind, BackendSettings> = BTreeMap::new();
    let mut spelled: BTreeMap<BackendKind, String> = BTreeMap::new();
    for (name, b) in raw {
        let path = root.key(name.clone());
        let Some(kind) = c.backend(&path, &name) else {
            continue;
        };
        if let Some(first) = spelled.insert(kind, name.clone()) {
            c.error(
                &path,
                format!("`{name}` and `{first}` both configure the `{kind}` backend"),
                Some("keep one table".into()),
            );
            continue;
        }
        let format = b.format.as_deref().and_then(|f| {
            if f == "text" {
                return Some("text".to_owned());
            }
            match BackendKind::parse(f).filter(|k| *k != BackendKind::Command) {
                Some(k) => Some(k.as_str().to_owned()),
                None => {
                    let hint = did_you_mean(f, COMMAND_FORMATS)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "formats: {}",
                                COMMAND_FORMATS.map(|f| format!("`{f}`")).join(", ")
                            )
                        });
                    c.error(
                        &path.key("format"),
                        format!("unknown output format `{f}`"),
                        Some(hint),
                    );
                    None
                }
            }
        });
        if kind != BackendKind::Command {
            if b.argv.is_some() {
                c.error(
                    &path.key("argv"),
                    format!("`argv` is for the `command` backend; `{kind}` builds its own argv"),
                    Some("use `binary` to name the program and `args` to add arguments".into()),
                );
            }
            if b.format.is_some() {
                c.error(
                    &path.key("format"),
                    format!("`format` is for the `command` backend; `{kind}` has its own"),
                    None,
                );
            }
        }
        if let Some(argv) = &b.argv
            && argv.first().is_none_or(|p| p.trim().is_empty())
        {
            c.error(
                &path.key("argv"),
                "`argv` is empty",
                Some("name the program first, e.g. `argv = [\"python3\", \"agent.py\"]`".into()),
            );
        }
        let env = b.env.unwrap_or_default();
        for (i, var) in env.iter().enumerate() {
            if crate::env::CREDENTIAL_VARS.contains(&var.as_str()) {
                c.error(
                    &path.key("env").index(i),
                    format!("`{var}` carries forge credentials and is never passed to an agent"),
                    Some("remove it; issueloop talks to the forge itself".into()),
                );
            } else if var.is_empty()
                || !var
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                c.error(
                    &path.key("env").index(i),
                    format!("`{var}` is not an environment variable name"),
                    None,
                );
            }
        }
        out.insert(
            kind,
            BackendSettings {
                binary: b.binary.map(|p| resolve_program(base_dir, &p)),
                argv: b.argv.map(|mut argv| {
                    if let Some(program) = argv.first_mut() {
                        *program = resolve_program(base_dir, program);
                    }
                    argv
                }),
                format,
                model: b.model,
                args: b.args.unwrap_or_default(),
                env,
            },
        );
    }
    let uses_command: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| profile.resolve(*s) == BackendKind::Command)
        .collect();
    if !uses_command.is_empty()
        && out
            .get(&BackendKind::Command)
            .and_then(|b| b.argv.as_ref())
            .is_none()
    {
        let stages = uses_command
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        c.error(
            &KeyPath::root().key("runtime_profile"),
            format!("stage {stages} uses the `command` backend, but `[backends.command]` has no `argv`"),
            Some("add `[backends.command]` with `argv = [\"program\", \"arg\"]` and `format = \"text\"`".into()),
        );
    }
    out
}

fn gates(raw: RawGates, c: &mut Checker<'_>, repos: &[RepoName]) -> GatesConfig {
    let root = KeyPath::root().key("gates");
    let timeout = c.duration(
        &root.key("timeout"),
        raw.timeout.as_deref(),
        Duration::from_secs(10 * 60),
    );
    let output_limit_bytes = match raw.output_limit_bytes {
        None => 64 * 1024,
        Some(n) if n >= 1024 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(n) => {
            c.error(
                &root.key("output_limit_bytes"),
                format!("`{n}` bytes is too small to show anything useful"),
                Some("use at least 1024".into()),
            );
            64 * 1024
        }
    };
    let mut by_repo = BTreeMap::new();
    for (key, g) in raw.repos.unwrap_or_default() {
        let path = root.key("repos").key(key.clone());
        let Some(repo) = c.repo_key(&path, &key, repos) else {
            continue;
        };
        let commands = g.commands.unwrap_or_default();
        for (i, argv) in commands.iter().enumerate() {
            let p = path.key("commands").index(i);
            match argv.as_slice() {
                [] => c.error(&p, "a gate needs at least a program", None),
                [only] if only.trim().contains(char::is_whitespace) => c.error(
                    &p,
                    format!("gate `{only}` is one string; gates are argv arrays and never run through a shell"),
                    Some(format!(
                        "split it: `[{}]`",
                        only.split_whitespace().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
                    )),
                ),
                _ => {}
            }
        }
        by_repo.insert(repo, commands);
    }
    GatesConfig {
        timeout,
        output_limit_bytes,
        repos: by_repo,
    }
}

fn policy(
    raw: RawPolicy,
    c: &mut Checker<'_>,
    base_dir: &AbsPath,
    repos: &[RepoName],
) -> PolicyConfig {
    let root = KeyPath::root().key("policy");
    let mut policy = builtin_policy();
    let builtin_limits = policy.limits;
    for (i, f) in raw.files.unwrap_or_default().iter().enumerate() {
        let path = root.key("files").index(i);
        if f == BUILTIN_POLICY_SOURCE || f == "builtin:default" {
            continue;
        }
        let file = resolve_path(base_dir, f);
        let text = match read_text(
            &file,
            "check the path; it is relative to the configuration file",
        ) {
            Ok(t) => t,
            Err(e) => {
                let hint = e.hint().map(std::borrow::Cow::into_owned);
                c.error(&path, format!("policy file: {}", e.chain()), hint);
                continue;
            }
        };
        match parse_policy_file(&text, &file, f) {
            Ok(pf) => {
                policy.sources.push(file.to_string_lossy().into_owned());
                policy.allowlist.extend(pf.allowlist);
                c.globs(&path, &pf.denied);
                policy.denied_paths.extend(pf.denied);
                policy.secret_patterns.extend(pf.secrets);
                if let Some(n) = pf.max_changed_files {
                    policy.limits.max_changed_files = n;
                }
                if let Some(n) = pf.max_file_bytes {
                    policy.limits.max_file_bytes = n;
                }
            }
            Err(errors) => c.errors.extend(errors),
        }
    }
    for (i, s) in policy.secret_patterns.iter().enumerate() {
        if let Err(e) = regex::Regex::new(&s.regex) {
            c.error(
                &root.key("files"),
                format!("secret pattern {i} `{}` does not compile: {e}", s.name),
                None,
            );
        }
    }
    if let Some(a) = raw.allowed_paths {
        c.globs(&root.key("allowed_paths"), &a);
        policy.allowed_paths = a;
    }
    if let Some(d) = raw.denied_paths {
        c.globs(&root.key("denied_paths"), &d);
        policy.denied_paths.extend(d);
    }
    if let Some(n) = raw.max_changed_files {
        policy.limits.max_changed_files = c.positive(&root.key("max_changed_files"), Some(n), 20);
    }
    if let Some(n) = raw.max_file_bytes {
        policy.limits.max_file_bytes = n;
    }
    let loosen_limits =
        |key: KeyPath, files: Option<u32>, bytes: Option<u64>, out: &mut Vec<Loosening>| {
            if let Some(n) = files.filter(|n| *n > builtin_limits.max_changed_files) {
                out.push(Loosening {
                    key: key.key("max_changed_files").to_string(),
                    description: format!(
                        "allows {n} changed files (default {})",
                        builtin_limits.max_changed_files
                    ),
                });
            }
            if let Some(n) = bytes.filter(|n| *n > builtin_limits.max_file_bytes) {
                out.push(Loosening {
                    key: key.key("max_file_bytes").to_string(),
                    description: format!(
                        "allows files of {n} bytes (default {})",
                        builtin_limits.max_file_bytes
                    ),
                });
            }
        };
    let mut loosenings = Vec::new();
    loosen_limits(
        root.clone(),
        Some(policy.limits.max_changed_files),
        Some(policy.limits.max_file_bytes),
        &mut loosenings,
    );
    for (key, r) in raw.repos.unwrap_or_default() {
        let path = root.key("repos").key(key.clone());
        let Some(repo) = c.repo_key(&path, &key, repos) else {
            continue;
        };
        let rp = RepoPolicy {
            allowed_paths: r.allowed_paths,
            denied_paths: r.denied_paths.unwrap_or_default(),
            allow_denied: r.allow_denied.unwrap_or_default(),
            allow_submodules: r.allow_submodules.unwrap_or(false),
            max_changed_files: r.max_changed_files,
            max_file_bytes: r.max_file_bytes,
        };
        if let Some(a) = &rp.allowed_paths {
            c.globs(&path.key("allowed_paths"), a);
        }
        c.globs(&path.key("denied_paths"), &rp.denied_paths);
        c.globs(&path.key("allow_denied"), &rp.allow_denied);
        for (i, a) in rp.allow_denied.iter().enumerate() {
            loosenings.push(Loosening {
                key: path.key("allow_denied").index(i).to_string(),
                description: format!("`{repo}` may change `{a}` although a denied path matches it"),
            });
        }
        if rp.allow_submodules {
            loosenings.push(Loosening {
                key: path.key("allow_submodules").to_string(),
                description: format!("`{repo}` may change submodule pointers"),
            });
        }
        if rp.max_changed_files == Some(0) {
            c.error(&path.key("max_changed_files"), "must be at least 1", None);
        }
        loosen_limits(
            path.clone(),
            rp.max_changed_files,
            rp.max_file_bytes,
            &mut loosenings,
        );
        policy.repos.insert(repo, rp);
    }
    // Gate options that name a program or a package source, allowed by a policy file.
    for rule in &policy.allowlist {
        for option in &rule.options {
            loosenings.push(Loosening {
                key: format!("gates.allow[program = \"{}\"].options", rule.program),
                description: format!(
                    "gates may use `{} {option}` (policy file `{}`)",
                    rule.program, rule.source
                ),
            });
        }
    }
    policy.loosenings = loosenings;
    policy
}

fn git(raw: RawGit, c: &mut Checker<'_>, base_dir: &AbsPath) -> GitConfig {
    let root = KeyPath::root().key("git");
    let branch_prefix = raw.branch_prefix.unwrap_or_else(|| "loop/".into());
    if branch_prefix.is_empty()
        || branch_prefix.contains("..")
        || branch_prefix.starts_with('/')
        || branch_prefix
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || "~^:?*[\\".contains(ch))
    {
        c.error(
            &root.key("branch_prefix"),
            format!("`{branch_prefix}` cannot start a git branch name"),
            Some("use letters, digits, `-`, `_` and `/`, e.g. `loop/`".into()),
        );
    }
    let author_email = raw
        .author_email
        .unwrap_or_else(|| "issueloop[bot]@users.noreply.github.com".into());
    if !author_email.contains('@') {
        c.error(
            &root.key("author_email"),
            format!("`{author_email}` is not an email address"),
            None,
        );
    }
    GitConfig {
        cache_dir: resolve_path(
            base_dir,
            raw.cache_dir.as_deref().unwrap_or(".issueloop/cache"),
        ),
        author_name: raw.author_name.unwrap_or_else(|| "issueloop[bot]".into()),
        author_email,
        branch_prefix,
        protected_branches: raw.protected_branches.unwrap_or_else(|| {
            ["main", "master", "production", "prod"]
                .map(String::from)
                .to_vec()
        }),
    }
}

/// Normalize a cron expression: a standard 5-field expression gets a leading `0` seconds field.
pub fn normalize_cron(expr: &str) -> String {
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        format!("0 {}", expr.trim())
    } else {
        expr.trim().to_owned()
    }
}

fn service(raw: RawService, c: &mut Checker<'_>) -> ServiceConfig {
    let root = KeyPath::root().key("service");
    let cron = normalize_cron(raw.cron.as_deref().unwrap_or("0 */30 * * * *"));
    if let Err(e) = cron::Schedule::from_str(&cron) {
        c.error(
            &root.key("cron"),
            format!(
                "cron expression `{}` does not parse: {}",
                raw.cron.as_deref().unwrap_or_default(),
                e.to_string().lines().last().unwrap_or_default().trim()
            ),
            Some("five fields `min hour day month weekday` (e.g. `\"*/30 * * * *\"`), or six with seconds first".into()),
        );
    }
    let timezone = raw.timezone.unwrap_or_else(|| "UTC".into());
    if jiff::tz::TimeZone::get(&timezone).is_err() {
        c.error(
            &root.key("timezone"),
            format!("unknown time zone `{timezone}`"),
            Some("use an IANA name such as `UTC` or `Europe/Berlin`".into()),
        );
    }
    ServiceConfig {
        cron,
        timezone,
        max_concurrent_runs: c.positive(
            &root.key("max_concurrent_runs"),
            raw.max_concurrent_runs,
            1,
        ),
        shutdown_grace: c.duration(
            &root.key("shutdown_grace"),
            raw.shutdown_grace.as_deref(),
            Duration::from_secs(5 * 60),
        ),
        lease_ttl: lease_ttl(raw.lease_ttl.as_deref(), &root, c),
    }
}

/// `[state]`: the backend, the SQLite path and the PostgreSQL URL. A URL's password is never
/// repeated in a message.
fn state(raw: RawState, c: &mut Checker<'_>, base_dir: &AbsPath) -> StateConfig {
    use crate::state::{DatabaseUrl, StateBackend};
    let root = KeyPath::root().key("state");
    let backend = match raw.backend.as_deref() {
        None => StateBackend::Sqlite,
        Some(name) => match StateBackend::parse(name) {
            Some(b) => b,
            None => {
                let planned = StateBackend::PLANNED.iter().find(|(n, _)| *n == name);
                let (message, hint) = match planned {
                    Some((_, why)) => (why.to_string(), None),
                    None => (
                        format!("unknown state backend `{name}`"),
                        Some(
                            did_you_mean(name, StateBackend::ALL.map(StateBackend::as_str))
                                .map(|s| format!("did you mean `{s}`?"))
                                .unwrap_or_else(|| "use `sqlite`, `postgres` or `github`".into()),
                        ),
                    ),
                };
                c.error(&root.key("backend"), message, hint);
                StateBackend::Sqlite
            }
        },
    };
    let url = raw
        .url
        .as_deref()
        .and_then(|text| match DatabaseUrl::parse(text) {
            Ok(url) => Some(url),
            Err(e) => {
                c.error(
                    &root.key("url"),
                    e,
                    Some(format!(
                        "or leave `url` out and set `{}`",
                        crate::state::DATABASE_URL_VAR
                    )),
                );
                None
            }
        });
    if backend != StateBackend::Postgres && raw.url.is_some() {
        c.warn(
            &root.key("url"),
            format!("used only by `backend = \"postgres\"`; the `{backend}` backend ignores it"),
        );
    }
    // The github backend keeps this machine's journal and named values in the SQLite file.
    if !matches!(backend, StateBackend::Sqlite | StateBackend::Github) && raw.path.is_some() {
        c.warn(
            &root.key("path"),
            format!("used only by `backend = \"sqlite\"`; the `{backend}` backend ignores it"),
        );
    }
    let (branch, repo) = github_state(&raw, backend, c, &root);
    StateConfig {
        backend,
        branch,
        repo,
        path: resolve_path(
            base_dir,
            raw.path.as_deref().unwrap_or(".issueloop/state.sqlite"),
        ),
        url,
    }
}

/// `[state] branch` and `[state] repo` of the `github` backend.
fn github_state(
    raw: &RawState,
    backend: crate::state::StateBackend,
    c: &mut Checker<'_>,
    root: &KeyPath,
) -> (String, Option<RepoName>) {
    if backend != crate::state::StateBackend::Github {
        for (key, set) in [
            ("branch", raw.branch.is_some()),
            ("repo", raw.repo.is_some()),
        ] {
            if set {
                c.warn(
                    &root.key(key),
                    format!(
                        "used only by `backend = \"github\"`; the `{backend}` backend ignores it"
                    ),
                );
            }
        }
    }
    let branch = raw
        .branch
        .clone()
        .unwrap_or_else(|| "issueloop/state".to_owned());
    let valid_branch = !branch.is_empty()
        && !branch.starts_with(['/', '-', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.ends_with(".lock")
        && !branch
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || "~^:?*[\\@{".contains(ch));
    if !valid_branch {
        c.error(
            &root.key("branch"),
            format!("`{branch}` is not a valid branch name"),
            Some("write it like `issueloop/state`".into()),
        );
    }
    let repo = raw
        .repo
        .as_deref()
        .and_then(|r| match RepoName::from_str(r) {
            Ok(name) => Some(name),
            Err(e) => {
                c.error(
                    &root.key("repo"),
                    e,
                    Some("write it as `owner/name`".into()),
                );
                None
            }
        });
    (branch, repo)
}

/// The shortest lease: a heartbeat every third of it must stay at least a second apart.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(3);

fn lease_ttl(value: Option<&str>, root: &KeyPath, c: &mut Checker<'_>) -> Duration {
    let path = root.key("lease_ttl");
    let default = Duration::from_secs(3 * 60);
    let ttl = c.duration(&path, value, default);
    if ttl < MIN_LEASE_TTL {
        c.error(
            &path,
            format!(
                "a lease of {} is too short: it is renewed every third of it, and must last at least {}",
                crate::human::human_duration(ttl),
                crate::human::human_duration(MIN_LEASE_TTL)
            ),
            Some("the default `\"3m\"` suits every forge; use a few seconds only in tests".into()),
        );
        return default;
    }
    ttl
}
