//! The report of one tick: what happened to each issue and to the day's ledger, rendered as a
//! job summary (Markdown), as JSON for `--json`, and as GitHub Actions annotations.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use issueloop_config::{Env, Usd};
use serde::{Deserialize, Serialize};

/// Everything one tick did, in the order it did it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickReport {
    pub started_at: jiff::Timestamp,
    #[serde(rename = "duration_ms", with = "duration_ms")]
    pub duration: Duration,
    /// Nothing was written: no labels, refs, PRs, comments or ledger entries.
    pub dry_run: bool,
    pub runs: Vec<RunSummary>,
    pub ledger: LedgerSummary,
    /// What a dry run skipped, one "would …" line per write.
    pub would: Vec<String>,
    /// Failures of the tick itself (not of one issue's run): listing candidates, opening the ledger.
    pub errors: Vec<String>,
}

/// How one issue's run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `owner/name`.
    pub repo: String,
    pub issue: u64,
    pub title: String,
    pub status: RunStatus,
    /// Stable snake_case id of why the run failed or was skipped (`daily_cap_reached`,
    /// `policy_violation`, `gates_failed`, …); `docs/operations.md` lists them all.
    pub reason: Option<String>,
    /// One line of evidence for a person: the violated path, the failing gate, the error.
    pub detail: Option<String>,
    pub budget_usd: Usd,
    pub cost_usd: Usd,
    /// URL of the pull request opened or updated.
    pub pr: Option<String>,
    /// How the budget was derived ("budget-xl $10.00 clamped to $4.20 left of $10.00 today").
    pub budget_explanation: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    PrOpened,
    Failed,
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 3] = [RunStatus::PrOpened, RunStatus::Failed, RunStatus::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::PrOpened => "pr_opened",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }

    fn label(self) -> &'static str {
        match self {
            RunStatus::PrOpened => "PR opened",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }
}

/// The day's ledger after the tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerSummary {
    /// The UTC day the figures are for.
    pub day: jiff::civil::Date,
    pub cap_usd: Usd,
    pub spent_usd: Usd,
    /// Held by runs that have not settled yet (running elsewhere, or interrupted).
    pub reserved_usd: Usd,
    pub remaining_usd: Usd,
}

impl TickReport {
    /// The report as every output shows it: outside text (titles, details, errors) stripped of
    /// control and bidi characters, so a hostile title cannot drive a terminal, and every
    /// secret masked.
    pub fn for_output(&self) -> TickReport {
        use issueloop_config::{clean_line, clean_multiline, redact};
        let line = |s: &str| redact(&clean_line(s));
        let opt = |s: &Option<String>| s.as_deref().map(line);
        TickReport {
            runs: self
                .runs
                .iter()
                .map(|r| RunSummary {
                    repo: line(&r.repo),
                    title: line(&r.title),
                    reason: opt(&r.reason),
                    detail: opt(&r.detail),
                    pr: opt(&r.pr),
                    budget_explanation: opt(&r.budget_explanation),
                    ..r.clone()
                })
                .collect(),
            would: self.would.iter().map(|w| line(w)).collect(),
            errors: self
                .errors
                .iter()
                .map(|e| redact(&clean_multiline(e)))
                .collect(),
            ..self.clone()
        }
    }

    /// How many runs ended with `status`.
    pub fn count(&self, status: RunStatus) -> usize {
        self.runs.iter().filter(|r| r.status == status).count()
    }
}

/// What the pipeline judged of a tick, for the summary and the annotations to say. The judging
/// is the pipeline's (`pipeline::judge_tick`, over its `Reason` table); this module only words
/// it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickJudgement {
    /// `owner/name#N: reason_id` of each run that failed for an infrastructure reason (the tick
    /// exits 1), said first in the summary.
    pub infrastructure: Vec<String>,
    /// Ids of the skip reasons that mean the limits stopped work today: worth a warning in
    /// Actions. Other skips (`claimed`, `has_open_pr`, …) are routine and stay out of the
    /// annotations.
    pub warning_skips: Vec<String>,
}

/// The job summary: a table of issues (status, reason, cost against budget, PR) and the day's
/// ledger, short enough to read in one screen; first, when the job is red because a run failed
/// for an infrastructure reason, which ones (`judged.infrastructure`).
pub fn job_summary_markdown(report: &TickReport, judged: &TickJudgement) -> String {
    let infrastructure = &judged.infrastructure;
    let report = &report.for_output();
    let mut md = String::new();
    let dry = if report.dry_run { " (dry run)" } else { "" };
    let _ = writeln!(
        md,
        "## issueloop tick{dry}\n\nStarted {} · took {} · {} PR opened, {} failed, {} skipped\n",
        report.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        format_elapsed(report.duration),
        report.count(RunStatus::PrOpened),
        report.count(RunStatus::Failed),
        report.count(RunStatus::Skipped),
    );

    if report.runs.is_empty() {
        md.push_str("No issue was ready to work on.\n\n");
    } else {
        md.push_str("| Issue | Status | Reason | Cost / budget | PR |\n");
        md.push_str("|---|---|---|---|---|\n");
        for run in &report.runs {
            let _ = writeln!(
                md,
                "| {}#{} {} | {} | {} | {} | {} |",
                table_cell(&run.repo),
                run.issue,
                table_cell(&shorten(&run.title, 60)),
                run.status.label(),
                run.reason
                    .as_deref()
                    .map_or_else(|| "—".to_owned(), |r| format!("`{}`", table_cell(r))),
                cost_cell(run),
                run.pr.as_deref().map_or_else(|| "—".to_owned(), pr_link),
            );
        }
        md.push('\n');
    }

    let l = &report.ledger;
    let _ = writeln!(
        md,
        "**Ledger for {} (UTC):** {} spent, {} reserved, {} left of the {} daily cap.\n",
        l.day,
        usd(l.spent_usd),
        usd(l.reserved_usd),
        usd(l.remaining_usd),
        usd(l.cap_usd),
    );

    let notes: Vec<String> = report.runs.iter().filter_map(run_note).collect();
    if !notes.is_empty() {
        md.push_str("<details><summary>Details</summary>\n\n");
        for note in notes {
            let _ = writeln!(md, "- {note}");
        }
        md.push_str("\n</details>\n\n");
    }

    if report.dry_run {
        md.push_str("### Dry run: nothing was written\n\n");
        if report.would.is_empty() {
            md.push_str("There was nothing to write.\n\n");
        }
        for line in &report.would {
            let _ = writeln!(md, "- {}", inline_text(line));
        }
        if !report.would.is_empty() {
            md.push('\n');
        }
    }

    // Why the job is red when runs failed for an infrastructure reason (exit 1).
    if !infrastructure.is_empty() {
        let _ = writeln!(
            md,
            "**Infrastructure failure** (the tick exits 1): {}\n",
            infrastructure
                .iter()
                .map(|r| format!("`{}`", inline_text(r)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    if !report.errors.is_empty() {
        md.push_str("### Errors\n\n");
        for e in &report.errors {
            let _ = writeln!(md, "- {}", inline_text(e));
        }
        md.push('\n');
    }
    md
}

/// The `--json` form: `{"runs": [{"repo", "issue", "status", "reason", "budget_usd",
/// "cost_usd", "pr", …}], "ledger": {"day", "cap_usd", "spent_usd", "remaining_usd", …}, …}`.
pub fn to_json(report: &TickReport) -> serde_json::Value {
    // Every field is a string, number, bool, list or struct with string keys; serde_json only
    // fails on non-string map keys, which this type does not have.
    serde_json::to_value(report.for_output()).unwrap_or_else(
        |e| serde_json::json!({ "errors": [format!("cannot render the report as JSON: {e}")] }),
    )
}

/// GitHub Actions workflow commands for what needs a person's eye: `::error` for each failed run
/// and each tick error, `::warning` for runs the limits skipped.
/// Which skips warn is `judged.warning_skips`.
pub fn annotations(report: &TickReport, judged: &TickJudgement) -> Vec<String> {
    let report = &report.for_output();
    let mut out = Vec::new();
    for run in &report.runs {
        let reason = run.reason.as_deref().unwrap_or("unknown");
        let level = match run.status {
            RunStatus::Failed => "error",
            RunStatus::Skipped if judged.warning_skips.iter().any(|s| s == reason) => "warning",
            RunStatus::Skipped | RunStatus::PrOpened => continue,
        };
        let verb = if run.status == RunStatus::Failed {
            "failed"
        } else {
            "skipped"
        };
        let title = format!("issueloop: {}#{} {verb} ({reason})", run.repo, run.issue);
        let mut message = run.title.clone();
        if let Some(detail) = &run.detail {
            let _ = write!(message, ": {detail}");
        }
        if let Some(explanation) = &run.budget_explanation
            && run.status == RunStatus::Skipped
        {
            let _ = write!(message, " ({explanation})");
        }
        out.push(workflow_command(level, &[("title", &title)], &message));
    }
    for e in &report.errors {
        out.push(workflow_command("error", &[("title", "issueloop tick")], e));
    }
    out
}

/// One workflow command line, escaped the way the Actions runner unescapes it.
pub fn workflow_command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        let _ = write!(line, "{key}={}", escape_property(value));
    }
    let _ = write!(line, "::{}", escape_data(message));
    line
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// What [`emit`] did with a report, and what is left for the caller to print.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    /// The job summary file the Markdown was appended to (`$GITHUB_STEP_SUMMARY`).
    pub summary_file: Option<PathBuf>,
    /// The Markdown, when there is no summary file to put it in: print it.
    pub markdown: Option<String>,
    /// Workflow commands to print (only inside GitHub Actions). The runner reads them from
    /// stdout and stderr alike; print them on stderr when stdout carries `--json`.
    pub annotations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot append the job summary to `{path}` (from `GITHUB_STEP_SUMMARY`): {source}; \
         check that the variable names a writable file, or unset it to print the summary instead"
    )]
    SummaryFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Append the job summary to `$GITHUB_STEP_SUMMARY` when it is set, otherwise hand the Markdown
/// back for printing; inside GitHub Actions, also hand back the annotations.
pub fn emit(
    report: &TickReport,
    judged: &TickJudgement,
    env: &Env,
) -> Result<Emitted, ReportError> {
    let markdown = job_summary_markdown(report, judged);
    let annotations = if env.in_github_actions() {
        annotations(report, judged)
    } else {
        Vec::new()
    };
    let Some(path) = env.get("GITHUB_STEP_SUMMARY").map(PathBuf::from) else {
        return Ok(Emitted {
            summary_file: None,
            markdown: Some(markdown),
            annotations,
        });
    };
    let append = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(markdown.as_bytes())?;
        file.flush()
    };
    append().map_err(|source| ReportError::SummaryFile {
        path: path.clone(),
        source,
    })?;
    Ok(Emitted {
        summary_file: Some(path),
        markdown: None,
        annotations,
    })
}

/// The evidence behind a failure or skip; a PR's details are on the PR.
fn run_note(run: &RunSummary) -> Option<String> {
    if run.status == RunStatus::PrOpened {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(detail) = &run.detail {
        parts.push(inline_text(detail));
    }
    if let Some(explanation) = &run.budget_explanation {
        parts.push(format!("budget: {}", inline_text(explanation)));
    }
    if parts.is_empty() {
        return None;
    }
    let reason = run
        .reason
        .as_deref()
        .map(|r| format!(" `{r}`"))
        .unwrap_or_default();
    Some(format!(
        "**{}#{}**{reason}: {}",
        inline_text(&run.repo),
        run.issue,
        parts.join("; ")
    ))
}

fn cost_cell(run: &RunSummary) -> String {
    if run.status == RunStatus::Skipped && run.cost_usd.is_zero() && run.budget_usd.is_zero() {
        return "—".to_owned();
    }
    format!("{} / {}", usd(run.cost_usd), usd(run.budget_usd))
}

/// `[#13](url)` for a GitHub pull request URL, `[PR](url)` for anything else (a local forge
/// record).
fn pr_link(url: &str) -> String {
    let number = url
        .rsplit_once("/pull/")
        .map(|(_, n)| n.trim_end_matches('/'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let text = number.map_or_else(|| "PR".to_owned(), |n| format!("#{n}"));
    format!("[{text}](<{}>)", url.replace(['<', '>', '\n', '\r'], ""))
}

/// Dollars with cents, or more digits for amounts under a cent so they do not read as zero.
pub fn usd(amount: Usd) -> String {
    let dollars = amount.dollars();
    if !amount.is_zero() && amount.micros().unsigned_abs() < 10_000 {
        format!("${dollars:.4}")
    } else {
        format!("${dollars:.2}")
    }
}

fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Text that stays on one line and cannot open HTML in the rendered summary.
fn inline_text(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// [`inline_text`] that also cannot end a table cell.
fn table_cell(s: &str) -> String {
    inline_text(s).replace('|', "\\|")
}

fn shorten(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("test timestamp")
    }

    fn run(issue: u64, title: &str, status: RunStatus) -> RunSummary {
        RunSummary {
            repo: "acme/api".into(),
            issue,
            title: title.into(),
            status,
            reason: None,
            detail: None,
            budget_usd: Usd::from_dollars(0.0),
            cost_usd: Usd::from_dollars(0.0),
            pr: None,
            budget_explanation: None,
        }
    }

    /// The demo's three outcomes: a PR, a policy refusal, a skip on the daily cap.
    /// The pipeline's judgement of a tick without infrastructure failures (its warning skips as
    /// `pipeline::judge_tick` lists them).
    fn judged() -> TickJudgement {
        TickJudgement {
            infrastructure: vec![],
            warning_skips: [
                "daily_cap_reached",
                "daily_runs_reached",
                "below_minimum_budget",
                "untrusted_label",
                "body_edited_after_label",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    fn three_outcomes() -> TickReport {
        TickReport {
            started_at: at("2025-06-01T12:00:00Z"),
            duration: Duration::from_millis(41_250),
            dry_run: false,
            runs: vec![
                RunSummary {
                    budget_usd: Usd::from_dollars(0.50),
                    cost_usd: Usd::from_dollars(0.50),
                    pr: Some("https://github.com/acme/api/pull/17".into()),
                    budget_explanation: Some("default $0.50".into()),
                    ..run(12, "Add a `slugify` function", RunStatus::PrOpened)
                },
                RunSummary {
                    reason: Some("policy_violation".into()),
                    detail: Some("`.github/workflows/ci.yml` matches denied `.github/**`".into()),
                    budget_usd: Usd::from_dollars(0.50),
                    cost_usd: Usd::from_dollars(0.50),
                    budget_explanation: Some("default $0.50".into()),
                    ..run(13, "Test on Python 3.13 in CI", RunStatus::Failed)
                },
                RunSummary {
                    reason: Some("daily_cap_reached".into()),
                    budget_explanation: Some("$0.00 left of $1.00 today".into()),
                    ..run(14, "Add `truncate_words`", RunStatus::Skipped)
                },
            ],
            ledger: LedgerSummary {
                day: jiff::civil::date(2025, 6, 1),
                cap_usd: Usd::from_dollars(1.0),
                spent_usd: Usd::from_dollars(1.0),
                reserved_usd: Usd::from_dollars(0.0),
                remaining_usd: Usd::from_dollars(0.0),
            },
            would: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn summary_of_the_three_demo_outcomes() {
        insta::assert_snapshot!(job_summary_markdown(&three_outcomes(), &judged()));
    }

    #[test]
    fn summary_of_a_dry_run_with_an_error_and_hostile_title() {
        let report = TickReport {
            started_at: at("2025-06-01T23:59:59Z"),
            duration: Duration::from_secs(125),
            dry_run: true,
            runs: vec![RunSummary {
                budget_usd: Usd::from_dollars(5.0),
                budget_explanation: Some(
                    "budget-xl $10.00 clamped to $5.00 left of $10.00 today".into(),
                ),
                ..run(
                    7,
                    "Fix | pipes <script>alert(1)</script>\nand a very long title that keeps going on and on",
                    RunStatus::Skipped,
                )
            }],
            ledger: LedgerSummary {
                day: jiff::civil::date(2025, 6, 1),
                cap_usd: Usd::from_dollars(10.0),
                spent_usd: Usd::from_dollars(5.0),
                reserved_usd: Usd::from_dollars(0.0),
                remaining_usd: Usd::from_dollars(5.0),
            },
            would: vec![
                "would add label `loop:in-progress` to acme/api#7".into(),
                "would reserve $5.00 in the ledger".into(),
            ],
            errors: vec!["listing issues of `acme/web` failed: not found or no access".into()],
        };
        insta::assert_snapshot!(job_summary_markdown(&report, &judged()));
    }

    #[test]
    fn terminal_controls_and_secrets_in_a_title_reach_no_output() {
        let hostile = "before\rafter \u{1b}[31mred\u{1b}[0m \u{1b}]0;pwned\u{7} bell\u{7} \u{202E}txt.exe \
                       ghp_AbCdEfGhIjKlMnOpQrSt0123456789";
        let mut report = three_outcomes();
        report.runs[1].title = hostile.into();
        report.runs[1].detail =
            Some("gate said \u{1b}[2J sk-ant-api03-AbCdEfGhIjKlMnOpQrSt01".into());
        report.errors = vec!["listing failed\u{0}: \u{1b}]52;c;Zm9v\u{7}".into()];
        let md = job_summary_markdown(&report, &judged());
        let json = to_json(&report).to_string();
        let notes = annotations(&report, &judged()).join("\n");
        for out in [&md, &json, &notes] {
            for bad in ['\u{1b}', '\u{7}', '\u{202E}', '\r', '\u{0}'] {
                assert!(!out.contains(bad), "{bad:?} in {out}");
            }
            assert!(
                out.contains("before after red"),
                "the text before `\\r` is kept: {out}"
            );
            assert!(!out.contains("KlMnOpQrSt"), "{out}");
            assert!(!out.contains("pwned"), "the OSC payload is gone: {out}");
        }
    }

    #[test]
    fn summary_says_why_an_infrastructure_failure_fails_the_job() {
        let mut report = three_outcomes();
        assert!(!job_summary_markdown(&report, &judged()).contains("Infrastructure failure"));
        let failed = report
            .runs
            .iter_mut()
            .find(|r| r.status == RunStatus::Failed)
            .expect("a failed run");
        failed.reason = Some("workspace_error".into());
        let verdict = format!("{}#{}: workspace_error", failed.repo, failed.issue);
        let line = format!("**Infrastructure failure** (the tick exits 1): `{verdict}`\n");
        let md = job_summary_markdown(
            &report,
            &TickJudgement {
                infrastructure: vec![verdict],
                ..judged()
            },
        );
        assert!(md.contains(&line), "{md}");
    }

    #[test]
    fn summary_with_no_runs() {
        let mut report = three_outcomes();
        report.runs.clear();
        let md = job_summary_markdown(&report, &judged());
        assert!(md.contains("No issue was ready to work on."), "{md}");
        assert!(!md.contains("| Issue |"), "{md}");
    }

    #[test]
    fn json_has_the_documented_keys() {
        let json = to_json(&three_outcomes());
        insta::assert_json_snapshot!(json);
        for run in json["runs"].as_array().expect("runs is a list") {
            for key in [
                "repo",
                "issue",
                "status",
                "reason",
                "budget_usd",
                "cost_usd",
                "pr",
            ] {
                assert!(run.get(key).is_some(), "run lacks `{key}`: {run}");
            }
        }
        for key in ["day", "cap_usd", "spent_usd", "remaining_usd"] {
            assert!(json["ledger"].get(key).is_some(), "ledger lacks `{key}`");
        }
        assert_eq!(json["runs"][2]["status"], "skipped");
        assert_eq!(json["runs"][2]["pr"], serde_json::Value::Null);
        assert_eq!(json["ledger"]["day"], "2025-06-01");
    }

    #[test]
    fn json_round_trips() {
        let report = three_outcomes();
        let back: TickReport =
            serde_json::from_value(to_json(&report)).expect("the JSON form reads back");
        assert_eq!(back, report);
    }

    #[test]
    fn annotations_for_failures_and_limit_skips_only() {
        let mut report = three_outcomes();
        report.runs.push(RunSummary {
            reason: Some("claimed".into()),
            ..run(15, "Someone else has it", RunStatus::Skipped)
        });
        report
            .errors
            .push("ledger: database is locked\nretry later".into());
        insta::assert_debug_snapshot!(annotations(&report, &judged()));
    }

    #[test]
    fn workflow_commands_escape_per_the_runner_rules() {
        let line = workflow_command(
            "error",
            &[("title", "a:b,c%d"), ("file", "src/x.rs")],
            "50% done\r\nnext: line, with comma",
        );
        assert_eq!(
            line,
            "::error title=a%3Ab%2Cc%25d,file=src/x.rs::50%25 done%0D%0Anext: line, with comma"
        );
    }

    #[test]
    fn money_reads_right() {
        let at = Usd::from_dollars;
        assert_eq!(usd(at(0.0)), "$0.00");
        assert_eq!(usd(at(1.5)), "$1.50");
        assert_eq!(usd(at(0.004)), "$0.0040");
        assert_eq!(usd(at(0.009999)), "$0.0100");
        assert_eq!(usd(at(0.01)), "$0.01");
        assert_eq!(usd(at(-0.004)), "$-0.0040");
    }

    #[test]
    fn pr_links() {
        assert_eq!(
            pr_link("https://github.com/acme/api/pull/17"),
            "[#17](<https://github.com/acme/api/pull/17>)"
        );
        assert_eq!(
            pr_link("file:///tmp/forge/prs/acme-api-12.md"),
            "[PR](<file:///tmp/forge/prs/acme-api-12.md>)"
        );
    }

    #[test]
    fn emit_prints_outside_actions() {
        let emitted =
            emit(&three_outcomes(), &judged(), &Env::default()).expect("nothing to write");
        assert_eq!(emitted.summary_file, None);
        assert!(emitted.markdown.is_some_and(|m| m.contains("| Issue |")));
        assert!(emitted.annotations.is_empty());
    }

    #[test]
    fn emit_appends_to_the_step_summary_in_actions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step\n").expect("seed summary");
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            (
                "GITHUB_STEP_SUMMARY",
                path.to_str().expect("utf-8 temp path"),
            ),
        ]);
        let emitted = emit(&three_outcomes(), &judged(), &env).expect("summary written");
        assert_eq!(emitted.summary_file.as_deref(), Some(path.as_path()));
        assert_eq!(emitted.markdown, None);
        assert_eq!(emitted.annotations.len(), 2);
        let written = std::fs::read_to_string(&path).expect("read summary");
        assert!(
            written.starts_with("earlier step\n## issueloop tick"),
            "{written}"
        );
    }

    #[test]
    fn emit_names_the_unwritable_summary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("missing-dir").join("summary.md");
        let env = Env::from_pairs([("GITHUB_STEP_SUMMARY", path.to_str().expect("utf-8"))]);
        let err = emit(&three_outcomes(), &judged(), &env).expect_err("the folder does not exist");
        let msg = err.to_string();
        assert!(msg.contains("missing-dir/summary.md"), "{msg}");
        assert!(msg.contains("GITHUB_STEP_SUMMARY"), "{msg}");
    }
}
