//! A small, strict GitHub Actions runner for tests: runs one job of a workflow file step by step
//! as a hosted runner does (`bash --noprofile --norc -eo pipefail`, the runner's variables and
//! files, `${{ }}` expressions, `if:` conditions, post steps), with each `uses:` step replaced by
//! its documented effect. Whatever it does not understand fails the test rather than being
//! skipped, so a change to the workflow cannot pass by going unexecuted.

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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// What the hosted runner image calls itself (`runner.os`, `runner.arch`).
pub const RUNNER_OS: &str = "Linux";
pub const RUNNER_ARCH: &str = "X64";

/// Where `actions/checkout` persists the token unless `persist-credentials: false`.
pub const CHECKOUT_AUTH_KEY: &str = "http.https://github.com/.extraheader";

/// How long one step may run here (the workflow's own limits are hours).
const STEP_TIMEOUT: Duration = Duration::from_secs(240);

/// Reads a workflow file into JSON values (YAML 1.2: `on:` stays a string key).
pub fn load_workflow(path: &Path) -> Json {
    use saphyr::LoadableYamlNode;
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    let docs = saphyr::YamlOwned::load_from_str(&text)
        .unwrap_or_else(|e| panic!("`{}` is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "`{}`: one YAML document", path.display());
    yaml_to_json(&docs[0])
}

fn yaml_to_json(y: &saphyr::YamlOwned) -> Json {
    use saphyr::{ScalarOwned, YamlOwned};
    match y {
        YamlOwned::Value(ScalarOwned::Null) => Json::Null,
        YamlOwned::Value(ScalarOwned::Boolean(b)) => Json::Bool(*b),
        YamlOwned::Value(ScalarOwned::Integer(i)) => Json::from(*i),
        YamlOwned::Value(ScalarOwned::FloatingPoint(f)) => Json::from(f.into_inner()),
        YamlOwned::Value(ScalarOwned::String(s)) => Json::String(s.clone()),
        YamlOwned::Representation(s, _, _) => Json::String(s.clone()),
        YamlOwned::Sequence(items) => Json::Array(items.iter().map(yaml_to_json).collect()),
        YamlOwned::Mapping(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match yaml_to_json(k) {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        YamlOwned::Tagged(_, inner) => yaml_to_json(inner),
        YamlOwned::Alias(_) | YamlOwned::BadValue => panic!("unsupported YAML node: {y:?}"),
    }
}

/// The event that started the workflow run.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: &'static str,
    /// `workflow_dispatch` inputs as the form sends them (strings; booleans as `true`/`false`).
    pub inputs: BTreeMap<String, String>,
}

impl Event {
    pub fn schedule() -> Event {
        Event {
            name: "schedule",
            inputs: BTreeMap::new(),
        }
    }

    pub fn dispatch(inputs: &[(&str, &str)]) -> Event {
        Event {
            name: "workflow_dispatch",
            inputs: inputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// What stands in for a `run:` step the test must not run as written (it would download or
/// compile from the network).
#[derive(Clone, Debug)]
pub enum Replacement {
    /// Put this executable on the runner's `PATH` under `name`, where a global `npm install`
    /// would put it.
    InstallTool { name: String, source: PathBuf },
    /// Reaching this step fails the test with the reason.
    Forbidden(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Clone, Debug)]
pub struct StepRecord {
    pub name: String,
    pub status: StepStatus,
    /// The shell's exit code for `run:` steps.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One finished job.
#[derive(Debug)]
pub struct JobRun {
    pub run_id: u64,
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub steps: Vec<StepRecord>,
    /// The job summary: every step's `$GITHUB_STEP_SUMMARY`, in order.
    pub summary: String,
}

impl JobRun {
    /// The job's conclusion: no step failed.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.status != StepStatus::Failed)
    }

    /// The step whose name starts with `prefix`.
    #[track_caller]
    pub fn step(&self, prefix: &str) -> &StepRecord {
        let found: Vec<&StepRecord> = self
            .steps
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one step named `{prefix}…`:\n{}",
            self.log()
        );
        found[0]
    }

    /// Each step's name and status, in order.
    pub fn statuses(&self) -> Vec<(String, StepStatus)> {
        self.steps
            .iter()
            .map(|s| (s.name.clone(), s.status))
            .collect()
    }

    /// Workflow commands that become annotations (`::error`, `::warning`, `::notice`) printed on
    /// a step's stdout.
    pub fn annotations(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| s.stdout.lines())
            .filter(|l| {
                ["::error", "::warning", "::notice"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_owned)
            .collect()
    }

    /// Everything the job printed, for failure messages.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(&format!(
                "--- {} [{:?}, exit {:?}]\n{}{}",
                s.name, s.status, s.exit_code, s.stdout, s.stderr
            ));
        }
        out.push_str(&format!("--- job summary\n{}", self.summary));
        out
    }
}

/// The runner: caches that outlive a job (as the Actions cache does), secrets, variables, and
/// what stands in for steps that would reach the network.
pub struct Runner {
    root: tempfile::TempDir,
    /// `actions/cache` storage: one folder per key.
    cache_dir: PathBuf,
    /// Keys in the order they were saved (the newest last).
    cache_keys: Vec<String>,
    /// What `actions/checkout` clones.
    remote: PathBuf,
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    replacements: Vec<(String, Replacement)>,
    next_run_id: u64,
    /// `github.repository`.
    repository: String,
}

impl Runner {
    pub fn new(remote: &Path, repository: &str) -> Runner {
        let root = tempfile::tempdir().unwrap();
        let cache_dir = root.path().join("actions-cache");
        fs::create_dir_all(&cache_dir).unwrap();
        Runner {
            root,
            cache_dir,
            cache_keys: Vec::new(),
            remote: remote.to_owned(),
            secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            replacements: Vec::new(),
            next_run_id: 7_001,
            repository: repository.to_owned(),
        }
    }

    /// Replace the `run:` step whose name starts with `name_prefix`. A replacement that matches
    /// no step fails the job: the workflow changed under the test.
    pub fn replace(&mut self, name_prefix: &str, with: Replacement) {
        self.replacements.push((name_prefix.to_owned(), with));
    }

    /// A cache entry as an earlier run would have saved it: `files` (path relative to the
    /// cached folder's parent, source) for the first `path:` line of the saving step.
    pub fn seed_cache(&mut self, key: &str, files: &[(&str, &Path)]) {
        let dir = self.cache_dir.join(key).join("0");
        for (rel, source) in files {
            let to = dir.join(rel);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(source, &to).unwrap();
        }
        self.cache_keys.push(key.to_owned());
    }

    /// Cache keys saved so far, oldest first.
    pub fn cache_keys(&self) -> &[String] {
        &self.cache_keys
    }

    /// Files stored under a cache key, relative to the key's folder.
    pub fn cache_files(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        list_files(
            &self.cache_dir.join(key),
            &self.cache_dir.join(key),
            &mut out,
        );
        out.sort();
        out
    }

    /// Runs job `job_id` of `workflow` on a fresh machine (new home, workspace and temp).
    pub fn run_job(&mut self, workflow: &Path, job_id: &str, event: &Event) -> JobRun {
        let wf = load_workflow(workflow);
        let job = wf["jobs"][job_id].clone();
        assert!(
            job.is_object(),
            "no job `{job_id}` in `{}`",
            workflow.display()
        );
        check_keys(
            &job,
            &[
                "name",
                "runs-on",
                "timeout-minutes",
                "steps",
                "env",
                "permissions",
            ],
            "job",
        );
        assert_eq!(
            job["runs-on"], "ubuntu-latest",
            "the emulated runner is Linux"
        );
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let machine = self.root.path().join(format!("run-{run_id}"));
        let home = machine.join("home");
        let workspace = machine.join("work").join("repo");
        let temp = machine.join("temp");
        let tools = machine.join("tools");
        for d in [&home, &workspace, &temp, &tools] {
            fs::create_dir_all(d).unwrap();
        }
        let inputs = dispatch_inputs(&wf, event);
        let step_ids: BTreeSet<String> = job["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();

        let mut job_state = JobState {
            runner: self,
            event: event.clone(),
            inputs,
            run_id,
            home: home.clone(),
            workspace: workspace.clone(),
            temp: temp.clone(),
            tools: tools.clone(),
            base_path: base_path(&tools),
            env: BTreeMap::new(),
            added_path: Vec::new(),
            step_ids,
            outputs: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            failed: false,
            records: Vec::new(),
            summary: String::new(),
            post: Vec::new(),
            used_replacements: BTreeSet::new(),
        };
        for (scope, value) in [("workflow", &wf["env"]), ("job", &job["env"])] {
            if let Some(map) = value.as_object() {
                for (k, v) in map {
                    let v = job_state.interpolate(&scalar_text(v), scope);
                    job_state.env.insert(k.clone(), v);
                }
            }
        }
        let steps = job["steps"].as_array().cloned().unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            job_state.step(i, step);
        }
        let post = std::mem::take(&mut job_state.post);
        for p in post.into_iter().rev() {
            job_state.post_step(p);
        }
        for (prefix, _) in &job_state.runner.replacements {
            assert!(
                job_state.used_replacements.contains(prefix),
                "no step is named `{prefix}…`, which this test replaces:\n{}",
                job_state
                    .records
                    .iter()
                    .map(|r| format!("{} [{:?}]", r.name, r.status))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        JobRun {
            run_id,
            workspace,
            home,
            steps: job_state.records,
            summary: job_state.summary,
        }
    }
}

/// The inputs context: declared `workflow_dispatch` inputs with their defaults and types.
fn dispatch_inputs(wf: &Json, event: &Event) -> BTreeMap<String, V> {
    let mut out = BTreeMap::new();
    if event.name != "workflow_dispatch" {
        assert!(event.inputs.is_empty(), "only workflow_dispatch has inputs");
        return out;
    }
    let declared = wf["on"]["workflow_dispatch"]["inputs"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for name in event.inputs.keys() {
        assert!(
            declared.contains_key(name),
            "input `{name}` is not declared"
        );
    }
    for (name, def) in declared {
        let given = event.inputs.get(&name).cloned();
        let value = match def["type"].as_str().unwrap_or("string") {
            "boolean" => {
                let text = given.unwrap_or_else(|| scalar_text(&def["default"]));
                match text.as_str() {
                    "true" => V::Bool(true),
                    "false" | "" => V::Bool(false),
                    other => panic!("boolean input `{name}` given `{other}`"),
                }
            }
            "string" => V::Str(given.unwrap_or_else(|| scalar_text(&def["default"]))),
            other => panic!("input type `{other}` is not emulated"),
        };
        out.insert(name, value);
    }
    out
}

/// The test's `PATH` without any folder holding `issueloop` or `claude`: on the runner, the
/// workflow itself must put them there. `tools` comes first (a global npm install's folder).
fn base_path(tools: &Path) -> String {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![tools.to_owned()];
    for d in std::env::split_paths(&inherited) {
        if ["issueloop", "claude"].iter().any(|p| d.join(p).exists()) {
            continue;
        }
        dirs.push(d);
    }
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

fn check_keys(value: &Json, allowed: &[&str], what: &str) {
    if let Some(map) = value.as_object() {
        for k in map.keys() {
            assert!(
                allowed.contains(&k.as_str()),
                "{what} key `{k}` is not emulated (known: {allowed:?})"
            );
        }
    }
}

fn scalar_text(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct PostStep {
    name: String,
    /// `actions/cache`'s post step saves under `key` when the restore missed it.
    key: String,
    paths: String,
}

struct JobState<'r> {
    runner: &'r mut Runner,
    event: Event,
    inputs: BTreeMap<String, V>,
    run_id: u64,
    home: PathBuf,
    workspace: PathBuf,
    temp: PathBuf,
    tools: PathBuf,
    base_path: String,
    /// Workflow, job and `$GITHUB_ENV` variables.
    env: BTreeMap<String, String>,
    /// `$GITHUB_PATH` entries, the latest first.
    added_path: Vec<String>,
    step_ids: BTreeSet<String>,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    outcomes: BTreeMap<String, &'static str>,
    failed: bool,
    records: Vec<StepRecord>,
    summary: String,
    post: Vec<PostStep>,
    used_replacements: BTreeSet<String>,
}

impl JobState<'_> {
    fn step(&mut self, index: usize, step: &Json) {
        check_keys(
            step,
            &["name", "id", "if", "uses", "with", "run", "env"],
            "step",
        );
        let uses = step["uses"].as_str();
        let run = step["run"].as_str();
        let name = step["name"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| uses.map(|u| format!("Run {u}")))
            .or_else(|| run.map(|r| format!("Run {}", r.lines().next().unwrap_or(""))))
            .unwrap_or_else(|| panic!("step {index} has neither `uses` nor `run`"));
        let id = step["id"].as_str().map(str::to_owned);
        for (prefix, _) in &self.runner.replacements {
            if name.starts_with(prefix.as_str()) {
                self.used_replacements.insert(prefix.clone());
            }
        }
        let condition = step["if"].as_str().map(str::to_owned).unwrap_or_default();
        if !self.condition(&condition, &name) {
            self.finish(id, name, StepStatus::Skipped, None, "", "");
            return;
        }
        let mut env = self.env.clone();
        if let Some(map) = step["env"].as_object() {
            for (k, v) in map {
                let value = self.interpolate(&scalar_text(v), &name);
                env.insert(k.clone(), value);
            }
        }
        let with: BTreeMap<String, String> = step["with"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), self.interpolate(&scalar_text(v), &name)))
            .collect();
        match (uses, run) {
            (Some(action), None) => self.action(id, name, action, &with),
            (None, Some(script)) => {
                let replacement = self
                    .runner
                    .replacements
                    .iter()
                    .find(|(prefix, _)| name.starts_with(prefix.as_str()))
                    .cloned();
                match replacement {
                    Some((_, r)) => {
                        self.replaced(id, name, r);
                    }
                    None => {
                        let script = self.interpolate(script, &name);
                        self.run_script(index, id, name, &script, &env);
                    }
                }
            }
            _ => panic!("step `{name}` needs exactly one of `uses` and `run`"),
        }
    }

    /// Evaluates an `if:`; without a status function it means `success() && (…)`.
    fn condition(&self, text: &str, step: &str) -> bool {
        let trimmed = text.trim();
        let expr = trimmed
            .strip_prefix("${{")
            .and_then(|t| t.strip_suffix("}}"))
            .unwrap_or(trimmed)
            .trim();
        if expr.is_empty() {
            return !self.failed;
        }
        let has_status = ["always(", "success(", "failure(", "cancelled("]
            .iter()
            .any(|f| expr.contains(f));
        let full = if has_status {
            expr.to_owned()
        } else {
            format!("success() && ({expr})")
        };
        match eval(&full, &|path| self.lookup(path), self.failed) {
            Ok(v) => v.truthy(),
            Err(e) => panic!("step `{step}`: `if: {text}`: {e}"),
        }
    }

    /// Substitutes every `${{ … }}` in `text`.
    fn interpolate(&self, text: &str, whose: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("{whose}: unterminated `${{{{` in `{text}`"));
            let value = eval(&after[..end], &|path| self.lookup(path), self.failed)
                .unwrap_or_else(|e| panic!("{whose}: `{text}`: {e}"));
            out.push_str(&value.text());
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, path: &[&str]) -> Result<V, String> {
        let opt = |m: Option<&String>| m.map(|s| V::Str(s.clone())).unwrap_or(V::Null);
        match path {
            ["inputs", name] => Ok(self.inputs.get(*name).cloned().unwrap_or(V::Null)),
            ["secrets", name] => Ok(opt(self.runner.secrets.get(*name))),
            ["vars", name] => Ok(opt(self.runner.vars.get(*name))),
            ["env", name] => Ok(opt(self.env.get(*name))),
            ["runner", "os"] => Ok(V::Str(RUNNER_OS.into())),
            ["runner", "arch"] => Ok(V::Str(RUNNER_ARCH.into())),
            ["runner", "temp"] => Ok(V::Str(self.temp.display().to_string())),
            ["github", "run_id"] => Ok(V::Str(self.run_id.to_string())),
            ["github", "run_attempt"] => Ok(V::Str("1".into())),
            ["github", "event_name"] => Ok(V::Str(self.event.name.into())),
            ["github", "workspace"] => Ok(V::Str(self.workspace.display().to_string())),
            ["github", "repository"] => Ok(V::Str(self.runner.repository.clone())),
            ["steps", id, rest @ ..] => {
                if !self.step_ids.contains(*id) {
                    return Err(format!("no step has `id: {id}`"));
                }
                match rest {
                    ["outputs", name] => Ok(opt(self.outputs.get(*id).and_then(|o| o.get(*name)))),
                    ["outcome" | "conclusion"] => Ok(self
                        .outcomes
                        .get(*id)
                        .map(|s| V::Str((*s).into()))
                        .unwrap_or(V::Null)),
                    _ => Err(format!("`steps.{id}.{}` is not emulated", rest.join("."))),
                }
            }
            _ => Err(format!("the context `{}` is not emulated", path.join("."))),
        }
    }

    /// The variables every step gets from the runner.
    fn runner_env(&self, files: &StepFiles) -> BTreeMap<String, String> {
        let mut path = self.added_path.clone();
        path.push(self.base_path.clone());
        let pairs = [
            ("PATH", path.join(":")),
            ("HOME", self.home.display().to_string()),
            ("LANG", "C.UTF-8".into()),
            ("CI", "true".into()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_WORKSPACE", self.workspace.display().to_string()),
            ("GITHUB_EVENT_NAME", self.event.name.into()),
            ("GITHUB_REPOSITORY", self.runner.repository.clone()),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_RUN_ID", self.run_id.to_string()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_OUTPUT", files.output.display().to_string()),
            ("GITHUB_ENV", files.env.display().to_string()),
            ("GITHUB_PATH", files.path.display().to_string()),
            ("GITHUB_STEP_SUMMARY", files.summary.display().to_string()),
            ("RUNNER_OS", RUNNER_OS.into()),
            ("RUNNER_ARCH", RUNNER_ARCH.into()),
            ("RUNNER_TEMP", self.temp.display().to_string()),
            // This machine's system git configuration is not a runner's.
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn run_script(
        &mut self,
        index: usize,
        id: Option<String>,
        name: String,
        script: &str,
        step_env: &BTreeMap<String, String>,
    ) {
        let files = StepFiles::new(&self.temp, index);
        let script_file = self.temp.join(format!("step-{index}.sh"));
        fs::write(&script_file, script).unwrap();
        let stdout_file = self.temp.join(format!("step-{index}.out"));
        let stderr_file = self.temp.join(format!("step-{index}.err"));
        let mut env = self.runner_env(&files);
        for (k, v) in step_env {
            env.insert(k.clone(), v.clone());
        }
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .current_dir(&self.workspace)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_file).unwrap())
            .stderr(fs::File::create(&stderr_file).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("bash runs");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > STEP_TIMEOUT {
                // The whole process group: the step's children too.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                panic!(
                    "step `{name}` ran past {STEP_TIMEOUT:?}:\n{}",
                    fs::read_to_string(&stdout_file).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = fs::read_to_string(&stdout_file).unwrap_or_default();
        let stderr = fs::read_to_string(&stderr_file).unwrap_or_default();
        self.absorb(&id, &files);
        let status_kind = if status.success() {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        self.finish(id, name, status_kind, status.code(), &stdout, &stderr);
    }

    /// Reads what the step wrote to its `$GITHUB_*` files.
    fn absorb(&mut self, id: &Option<String>, files: &StepFiles) {
        let outputs = parse_env_file(&files.output);
        if let Some(id) = id {
            self.outputs.entry(id.clone()).or_default().extend(outputs);
        }
        self.env.extend(parse_env_file(&files.env));
        for line in fs::read_to_string(&files.path).unwrap_or_default().lines() {
            if !line.trim().is_empty() {
                self.added_path.insert(0, line.trim().to_owned());
            }
        }
        self.summary
            .push_str(&fs::read_to_string(&files.summary).unwrap_or_default());
    }

    fn finish(
        &mut self,
        id: Option<String>,
        name: String,
        status: StepStatus,
        exit_code: Option<i32>,
        stdout: &str,
        stderr: &str,
    ) {
        if status == StepStatus::Failed {
            self.failed = true;
        }
        if let Some(id) = id {
            let outcome = match status {
                StepStatus::Succeeded => "success",
                StepStatus::Failed => "failure",
                StepStatus::Skipped => "skipped",
            };
            self.outcomes.insert(id, outcome);
        }
        self.records.push(StepRecord {
            name,
            status,
            exit_code,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        });
    }

    fn replaced(&mut self, id: Option<String>, name: String, r: Replacement) {
        match r {
            Replacement::InstallTool { name: tool, source } => {
                let to = self.tools.join(&tool);
                fs::copy(&source, &to).unwrap();
                self.finish(
                    id,
                    name,
                    StepStatus::Succeeded,
                    Some(0),
                    &format!("(emulated) installed `{tool}`\n"),
                    "",
                );
            }
            Replacement::Forbidden(why) => panic!("step `{name}` ran: {why}"),
        }
    }

    /// A `uses:` step, replaced by its documented effect.
    fn action(
        &mut self,
        id: Option<String>,
        name: String,
        action: &str,
        with: &BTreeMap<String, String>,
    ) {
        let (repo, reference) = action
            .split_once('@')
            .unwrap_or_else(|| panic!("`uses: {action}` has no ref"));
        assert!(!reference.is_empty(), "`uses: {action}` has an empty ref");
        let allow = |keys: &[&str]| {
            for k in with.keys() {
                assert!(
                    keys.contains(&k.as_str()),
                    "`{repo}` input `{k}` is not emulated"
                );
            }
        };
        let mut out = BTreeMap::new();
        let mut log = String::new();
        match repo {
            "actions/checkout" => {
                allow(&["persist-credentials"]);
                let status = Command::new("git")
                    .args(["clone", "--quiet"])
                    .arg(&self.runner.remote)
                    .arg(&self.workspace)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .status()
                    .unwrap();
                assert!(status.success(), "git clone failed");
                log.push_str("(emulated) cloned the repository\n");
                // By default checkout leaves the job's token in the clone's git configuration
                // for later `git` commands (the real action base64-encodes it).
                if with.get("persist-credentials").map(String::as_str) != Some("false") {
                    let token = self.runner.secrets.get("GITHUB_TOKEN").cloned();
                    let header = format!(
                        "AUTHORIZATION: basic x-access-token:{}",
                        token.unwrap_or_default()
                    );
                    let status = Command::new("git")
                        .args(["config", "--local", CHECKOUT_AUTH_KEY, &header])
                        .current_dir(&self.workspace)
                        .env("GIT_CONFIG_NOSYSTEM", "1")
                        .status()
                        .unwrap();
                    assert!(status.success(), "git config failed");
                    log.push_str("(emulated) persisted the token in `.git/config`\n");
                }
            }
            "actions/cache" | "actions/cache/restore" => {
                allow(&["path", "key", "restore-keys"]);
                let key = &with["key"];
                let paths = &with["path"];
                let restore_keys: Vec<&str> = with
                    .get("restore-keys")
                    .map(|s| s.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
                    .unwrap_or_default();
                let hit = self.restore(key, &restore_keys, paths);
                let exact = hit.as_deref() == Some(key.as_str());
                log.push_str(&format!("(emulated) cache {key}: restored {hit:?}\n"));
                out.insert("cache-hit".to_owned(), exact.to_string());
                if let Some(matched) = &hit {
                    out.insert("cache-matched-key".to_owned(), matched.clone());
                }
                out.insert("cache-primary-key".to_owned(), key.clone());
                if repo == "actions/cache" && !exact {
                    self.post.push(PostStep {
                        name: format!("Post {name}"),
                        key: key.clone(),
                        paths: paths.clone(),
                    });
                }
            }
            "actions/cache/save" => {
                allow(&["path", "key"]);
                log.push_str(&self.save(&with["key"], &with["path"]));
            }
            "astral-sh/setup-uv" => {
                allow(&[]);
                let uv = find_on_path("uv").unwrap_or_else(|| {
                    panic!("setup-uv: `uv` is not on the test's PATH (`.ci/run` installs it)")
                });
                let bin = self.temp.join("setup-uv").join("bin");
                fs::create_dir_all(&bin).unwrap();
                std::os::unix::fs::symlink(&uv, bin.join("uv")).unwrap();
                self.added_path.insert(0, bin.display().to_string());
                log.push_str(&format!("(emulated) uv from `{}`\n", uv.display()));
            }
            other => panic!(
                "step `{name}`: `uses: {other}` is not emulated (this runner knows checkout, \
                 cache, cache/restore, cache/save and setup-uv)"
            ),
        }
        if let Some(id) = &id {
            self.outputs.insert(id.clone(), out);
        }
        self.finish(id, name, StepStatus::Succeeded, None, &log, "");
    }

    fn post_step(&mut self, p: PostStep) {
        // `actions/cache` saves in its post step only when the job succeeded (`post-if:
        // success()`).
        if self.failed {
            self.finish(None, p.name, StepStatus::Skipped, None, "", "");
            return;
        }
        let log = self.save(&p.key, &p.paths);
        self.finish(None, p.name, StepStatus::Succeeded, None, &log, "");
    }

    /// `path:` lines as (folder, file-name pattern) pairs.
    fn cache_paths(&self, paths: &str) -> Vec<(PathBuf, String)> {
        paths
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                assert!(
                    !line.contains("**")
                        && !line.contains('?')
                        && !line.contains('[')
                        && !line.starts_with('!'),
                    "cache path `{line}`: only `*` in the last component is emulated"
                );
                let full = match line.strip_prefix("~/") {
                    Some(rest) => self.home.join(rest),
                    None => self.workspace.join(line),
                };
                let parent = full.parent().unwrap().to_owned();
                assert!(
                    !parent.display().to_string().contains('*'),
                    "cache path `{line}`: `*` only in the last component"
                );
                let pattern = full.file_name().unwrap().to_string_lossy().into_owned();
                (parent, pattern)
            })
            .collect()
    }

    fn restore(&mut self, key: &str, restore_keys: &[&str], paths: &str) -> Option<String> {
        let keys = &self.runner.cache_keys;
        let found = if keys.iter().any(|k| k == key) {
            Some(key.to_owned())
        } else {
            restore_keys
                .iter()
                .find_map(|prefix| keys.iter().rev().find(|k| k.starts_with(prefix)).cloned())
        }?;
        for (i, (parent, _)) in self.cache_paths(paths).into_iter().enumerate() {
            let stored = self.runner.cache_dir.join(&found).join(i.to_string());
            if stored.exists() {
                copy_tree(&stored, &parent);
            }
        }
        Some(found)
    }

    fn save(&mut self, key: &str, paths: &str) -> String {
        if self.runner.cache_keys.iter().any(|k| k == key) {
            return format!("(emulated) cache {key} exists already; not saved\n");
        }
        let dir = self.runner.cache_dir.join(key);
        let mut saved = 0;
        for (i, (parent, pattern)) in self.cache_paths(paths).into_iter().enumerate() {
            let Ok(entries) = fs::read_dir(&parent) else {
                continue;
            };
            for e in entries.flatten() {
                let file_name = e.file_name().to_string_lossy().into_owned();
                if wildcard(&pattern, &file_name) {
                    let to = dir.join(i.to_string()).join(&file_name);
                    if e.path().is_dir() {
                        copy_tree(&e.path(), &to);
                    } else {
                        fs::create_dir_all(to.parent().unwrap()).unwrap();
                        fs::copy(e.path(), &to).unwrap();
                    }
                    saved += 1;
                }
            }
        }
        if saved == 0 {
            return format!("(emulated) nothing at `{paths}`; cache {key} not saved\n");
        }
        self.runner.cache_keys.push(key.to_owned());
        format!("(emulated) cache {key} saved ({saved} entries)\n")
    }
}

struct StepFiles {
    output: PathBuf,
    env: PathBuf,
    path: PathBuf,
    summary: PathBuf,
}

impl StepFiles {
    fn new(temp: &Path, index: usize) -> StepFiles {
        let dir = temp.join("_runner_file_commands");
        fs::create_dir_all(&dir).unwrap();
        let f = |kind: &str| {
            let p = dir.join(format!("{kind}_{index}"));
            fs::write(&p, "").unwrap();
            p
        };
        StepFiles {
            output: f("set_output"),
            env: f("set_env"),
            path: f("add_path"),
            summary: f("step_summary"),
        }
    }
}

/// `NAME=value` lines and `NAME<<DELIMITER` … `DELIMITER` blocks.
fn parse_env_file(path: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        } else {
            panic!("`{}`: malformed line `{line}`", path.display());
        }
    }
    out
}

fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len()
                && name.starts_with(head)
                && wildcard_rest(tail, &name[head.len()..])
        }
    }
}

fn wildcard_rest(pattern: &str, name: &str) -> bool {
    // `*` has matched nothing so far: try every split.
    (0..=name.len())
        .filter(|i| name.is_char_boundary(*i))
        .any(|i| wildcard(pattern, &name[i..]))
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn list_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            list_files(&e.path(), base, out);
        } else {
            out.push(e.path().strip_prefix(base).unwrap().display().to_string());
        }
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A value of the expression language.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Bool(b) => *b,
            V::Num(n) => *n != 0.0 && !n.is_nan(),
            V::Str(s) => !s.is_empty(),
        }
    }

    /// How `${{ }}` renders the value into text.
    fn text(&self) -> String {
        match self {
            V::Null => String::new(),
            V::Bool(b) => b.to_string(),
            V::Num(n) => n.to_string(),
            V::Str(s) => s.clone(),
        }
    }

    fn number(&self) -> f64 {
        match self {
            V::Null => 0.0,
            V::Bool(b) => f64::from(u8::from(*b)),
            V::Num(n) => *n,
            V::Str(s) if s.trim().is_empty() => 0.0,
            V::Str(s) => s.trim().parse().unwrap_or(f64::NAN),
        }
    }

    /// `==` as Actions defines it: same types compare directly (strings ignoring case), mixed
    /// types as numbers.
    fn loose_eq(&self, other: &V) -> bool {
        match (self, other) {
            (V::Null, V::Null) => true,
            (V::Str(a), V::Str(b)) => a.eq_ignore_ascii_case(b),
            (V::Bool(a), V::Bool(b)) => a == b,
            _ => self.number() == other.number(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Lit(V),
    Path(Vec<String>),
    Call(String),
    Op(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string in `{src}`")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            toks.push(Tok::Lit(V::Str(s)));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            toks.push(Tok::Lit(V::Num(
                text.parse().map_err(|_| format!("bad number `{text}`"))?,
            )));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'(') {
                if chars.get(i + 1) != Some(&')') {
                    return Err(format!("`{word}(…)` with arguments is not emulated"));
                }
                i += 2;
                toks.push(Tok::Call(word));
                continue;
            }
            toks.push(match word.as_str() {
                "true" => Tok::Lit(V::Bool(true)),
                "false" => Tok::Lit(V::Bool(false)),
                "null" => Tok::Lit(V::Null),
                _ => Tok::Path(word.split('.').map(str::to_owned).collect()),
            });
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "||" => "||",
                "&&" => "&&",
                "==" => "==",
                "!=" => "!=",
                _ => match c {
                    '!' => "!",
                    '(' => "(",
                    ')' => ")",
                    _ => return Err(format!("`{c}` in `{src}` is not emulated")),
                },
            };
            i += op.len();
            toks.push(Tok::Op(op));
        }
    }
    Ok(toks)
}

type Lookup<'a> = dyn Fn(&[&str]) -> Result<V, String> + 'a;

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    lookup: &'a Lookup<'a>,
    failed: bool,
}

/// Evaluates an expression of the forms the workflows use: literals, context paths,
/// `||` `&&` `==` `!=` `!`, parentheses and the status functions.
pub fn eval(src: &str, lookup: &Lookup<'_>, failed: bool) -> Result<V, String> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
        lookup,
        failed,
    };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected `{:?}` in `{src}`", p.toks[p.pos]));
    }
    Ok(v)
}

impl Parser<'_> {
    fn eat(&mut self, op: &str) -> bool {
        if self.toks.get(self.pos)
            == Some(&Tok::Op(match op {
                "||" => "||",
                "&&" => "&&",
                "==" => "==",
                "!=" => "!=",
                "!" => "!",
                "(" => "(",
                _ => ")",
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<V, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = if left.truthy() { left } else { right };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<V, String> {
        let mut left = self.equality()?;
        while self.eat("&&") {
            let right = self.equality()?;
            left = if left.truthy() { right } else { left };
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<V, String> {
        let left = self.unary()?;
        if self.eat("==") {
            let right = self.unary()?;
            return Ok(V::Bool(left.loose_eq(&right)));
        }
        if self.eat("!=") {
            let right = self.unary()?;
            return Ok(V::Bool(!left.loose_eq(&right)));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<V, String> {
        if self.eat("!") {
            return Ok(V::Bool(!self.unary()?.truthy()));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<V, String> {
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err("missing `)`".into());
            }
            return Ok(v);
        }
        let tok = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or("unexpected end of expression")?;
        self.pos += 1;
        match tok {
            Tok::Lit(v) => Ok(v),
            Tok::Path(parts) => {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                (self.lookup)(&parts)
            }
            Tok::Call(f) => match f.as_str() {
                "always" => Ok(V::Bool(true)),
                "success" => Ok(V::Bool(!self.failed)),
                "failure" => Ok(V::Bool(self.failed)),
                "cancelled" => Ok(V::Bool(false)),
                other => Err(format!("`{other}()` is not emulated")),
            },
            Tok::Op(op) => Err(format!("unexpected `{op}`")),
        }
    }
}

/// The shipped workflow template.
pub fn shipped_workflow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/issueloop.yml")
}

/// The agent's key as the test's repository secret: not a real key.
pub const ANTHROPIC_KEY: &str = "sk-ant-test-not-a-real-key";

/// A repository on a fake GitHub as a user sets it up from the README: the project, an
/// `issueloop.toml` at its root and the workflow copied into `.github/workflows/`; and a runner
/// with the repository's secrets, where the issueloop binary of this build is in the Actions
/// cache under the key the workflow computes (as after the first run of a release), and Claude
/// Code's install puts a stand-in `claude` on `PATH`.
pub struct ActionsWorld {
    // Dropped before the runtime that serves it.
    pub fake: issueloop_fake_github::FakeGithub,
    pub runner: Runner,
    pub remote: PathBuf,
    pub dir: tempfile::TempDir,
    /// The `issueloop.toml` committed at the repository's root.
    pub config: String,
    _runtime: tokio::runtime::Runtime,
}

impl ActionsWorld {
    pub fn new() -> ActionsWorld {
        use issueloop_fake_github::{FakeGithub, RepoSpec, TOKEN};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(FakeGithub::start());
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("app.git");
        super::seed_remote(&remote);
        let config = format!(
            r#"# issueloop for this repository; at the root, where `issueloop` looks by default.
repos = ["{repo}"]

[forge]
# The fake GitHub in place of api.github.com.
api_url = "{api}"
request_timeout = "10s"

[budget]
daily_cap_usd = 10.0
min_useful_usd = 0.10

[budget.default]
cost_usd = 1.0
wall_clock = "2m"

[service]
# Both test issues in one tick (the default is one run per tick).
max_concurrent_runs = 2

[gates.repos."{repo}"]
commands = [["python3", "-m", "unittest", "discover", "-s", "tests", "-t", "."]]

# As the workflow template asks: the ledger on the repository's `issueloop/state` branch.
[state]
backend = "github"
"#,
            repo = super::REPO,
            api = fake.api_url(),
        );
        let workflow = fs::read_to_string(shipped_workflow()).unwrap();
        commit_files(
            &remote,
            &dir.path().join("setup"),
            &[
                ("issueloop.toml", config.as_str()),
                (".github/workflows/issueloop.yml", workflow.as_str()),
            ],
        );
        fake.add_repo(RepoSpec::new(super::REPO).git_dir(&remote));
        fake.set_permission(super::REPO, super::MAINTAINER, "maintain");
        fake.set_permission(super::REPO, "bob", "read");

        let mut runner = Runner::new(&remote, super::REPO);
        runner.secrets.insert("GITHUB_TOKEN".into(), TOKEN.into());
        runner
            .secrets
            .insert("ANTHROPIC_API_KEY".into(), ANTHROPIC_KEY.into());
        runner.replace(
            "Build issueloop",
            Replacement::Forbidden(
                "the binary should have come from the cache (a miss compiles issueloop from \
                 the network); check the cache key"
                    .into(),
            ),
        );
        let standin = dir.path().join("claude-standin");
        fs::write(&standin, claude_standin()).unwrap();
        fs::set_permissions(
            &standin,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        runner.replace(
            "Install Claude Code",
            Replacement::InstallTool {
                name: "claude".into(),
                source: standin,
            },
        );
        let wf = load_workflow(&shipped_workflow());
        let version = wf["env"]["ISSUELOOP_VERSION"]
            .as_str()
            .expect("the workflow sets ISSUELOOP_VERSION");
        runner.seed_cache(
            &format!("issueloop-bin-{RUNNER_OS}-{RUNNER_ARCH}-{version}"),
            &[("bin/issueloop", Path::new(env!("CARGO_BIN_EXE_issueloop")))],
        );
        ActionsWorld {
            fake,
            runner,
            remote,
            dir,
            config,
            _runtime: runtime,
        }
    }

    /// An issue opened by bob two hours ago and labelled `loop:approved` by the maintainer an
    /// hour ago; returns its number.
    pub fn approved_issue(&self, title: &str, body: &str) -> u64 {
        let ago = |secs| self.fake.now() - jiff::SignedDuration::from_secs(secs);
        let n = self
            .fake
            .add_issue(super::REPO, title, body, "bob", Some(ago(7200)));
        self.fake.label(
            super::REPO,
            n,
            "loop:approved",
            super::MAINTAINER,
            Some(ago(3600)),
        );
        n
    }

    /// Runs the workflow's `tick` job.
    pub fn tick(&mut self, event: &Event) -> JobRun {
        self.runner.run_job(&shipped_workflow(), "tick", event)
    }

    /// Requests to the fake GitHub that are not reads.
    pub fn writes(&self) -> Vec<String> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// `issueloop --json ledger show` on another machine: a new folder holding only the
    /// repository's `issueloop.toml`, run there the way a person runs it (no `--config`), with the
    /// token. With the `github` backend that folder knows the day only from the state branch.
    pub fn ledger_show_elsewhere(&self, name: &str) -> serde_json::Value {
        let folder = self.dir.path().join(name);
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("issueloop.toml"), &self.config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_issueloop"))
            .current_dir(&folder)
            .env_remove("ISSUELOOP_CONFIG")
            .env_remove("GITHUB_ACTIONS")
            .env("GITHUB_TOKEN", issueloop_fake_github::TOKEN)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["--json", "ledger", "show"])
            .output()
            .unwrap();
        let printed = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{printed}");
        assert!(!printed.contains(issueloop_fake_github::TOKEN), "{printed}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {printed}"))
    }

    /// Branches of the remote other than `main`.
    pub fn remote_branches(&self) -> Vec<String> {
        super::git::branches_except_main(&self.remote)
    }
}

/// Claude Code as far as issueloop uses it: `--version`, and `-p --output-format stream-json …`
/// with the brief on stdin, answered by the scripted agent (`agent.py`, which speaks Claude
/// Code's stream-json). Each call is recorded in `~/.claude/claude-standin.log` (Claude Code's own
/// state folder, the one place of `$HOME` a sandboxed agent may write) with whether the agent's
/// key and a GitHub token reached it.
fn claude_standin() -> String {
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/agent.py");
    format!(
        r#"#!/usr/bin/env bash
if [ "${{1:-}}" = "--version" ]; then
  echo "2.1.7 (Claude Code)"
  exit 0
fi
mkdir -p "$HOME/.claude"
{{
  printf 'argv:'
  printf ' %s' "$@"
  printf '\nANTHROPIC_API_KEY=%s GITHUB_TOKEN=%s\n' "${{ANTHROPIC_API_KEY:+set}}" "${{GITHUB_TOKEN:+set}}"
}} >>"$HOME/.claude/claude-standin.log"
exec python3 '{agent}'
"#,
        agent = agent.display()
    )
}

/// Adds one commit with `files` on top of the bare repository's `main`.
fn commit_files(remote: &Path, work: &Path, files: &[(&str, &str)]) {
    let git = |args: &[&str], cwd: &Path| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=acme",
                "-c",
                "user.email=acme@example.invalid",
            ])
            .args(args)
            .current_dir(cwd)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        &[
            "clone",
            "--quiet",
            remote.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
        remote.parent().unwrap(),
    );
    for (name, text) in files {
        let p = work.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    git(&["add", "--all"], work);
    git(&["commit", "--quiet", "-m", "issueloop set-up"], work);
    git(&["push", "--quiet", "origin", "main"], work);
    fs::remove_dir_all(work).unwrap();
}
