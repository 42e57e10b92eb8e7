//! Timings of triage's pure functions and the PR body on large inputs: selection over 1,000
//! candidates, acceptance criteria of GitHub-sized bodies, a worst-case PR body, and redaction.
//! (Here rather than in `triage`: the PR body is `publish`'s, and `publish` depends on `triage`.)
//!
//! Run with `cargo run --release -p issueloop-publish --example bench_triage`.

#![expect(
    clippy::expect_used,
    reason = "a benchmark's set-up: a failed step stops it loudly"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use issueloop_config::Usd;
use issueloop_publish::{
    BudgetSummary, DiffStat, FileStat, GateRow, PolicyVerdict, PrBodyInput, pr_body,
};
use issueloop_triage::{
    CandidateFacts, Issue, LabelEvent, Permission, acceptance_criteria, redact, select,
};

/// Mean time of `f` over enough iterations to fill about half a second.
fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < Duration::from_millis(500) {
        black_box(f());
        runs += 1;
    }
    start.elapsed() / runs
}

fn candidates(count: u64) -> Vec<CandidateFacts> {
    let base: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().expect("a valid timestamp");
    let permissions: BTreeMap<String, Permission> = [
        ("maint".to_owned(), Permission::Maintain),
        ("reader".to_owned(), Permission::Read),
    ]
    .into();
    (0..count)
        .map(|n| {
            let at = base + jiff::SignedDuration::from_secs(i64::try_from(n).unwrap_or(0) * 60);
            let mut labels = vec!["loop:approved".to_owned(), "bug".to_owned()];
            if n % 7 == 0 {
                labels.push("loop:p1".to_owned());
            }
            let label_events = labels
                .iter()
                .map(|label| LabelEvent {
                    label: label.clone(),
                    actor: if n % 10 == 0 { "reader" } else { "maint" }.to_owned(),
                    at,
                    added: true,
                })
                .collect();
            CandidateFacts {
                issue: Issue {
                    repo: "acme/api".parse().expect("a valid repository"),
                    number: count - n,
                    title: format!("Issue {n}"),
                    body: String::new(),
                    labels,
                    author: "reader".to_owned(),
                    created_at: at,
                    updated_at: at,
                },
                label_events,
                body_edits: Vec::new(),
                permissions: permissions.clone(),
                open_pr: None,
                claim: None,
            }
        })
        .collect()
}

fn main() {
    let config =
        issueloop_config::load_str("repos = [\"acme/api\"]\n", Path::new("issueloop.toml"))
            .expect("the benchmark configuration is valid");
    let now: jiff::Timestamp = "2025-02-01T00:00:00Z".parse().expect("a valid timestamp");

    let pool = candidates(1_000);
    let t = time(|| select(&pool, &config.labels, now, |_| Duration::from_secs(3600), 2));
    println!("select, 1,000 candidates, 2 free slots: {t:?}");

    let item = "- [ ] the command prints one JSON object per run and exits 0\n";
    let section = format!(
        "Intro.\n\n## Acceptance criteria\n{}",
        item.repeat(65_536 / item.len())
    );
    let t = time(|| acceptance_criteria("title", &section));
    println!(
        "acceptance_criteria, {} KiB section body: {t:?}",
        section.len() / 1024
    );
    let prose = "Plain prose without any checklist or heading. ".repeat(256 * 1024 / 46);
    let t = time(|| acceptance_criteria("title", &prose));
    println!(
        "acceptance_criteria, {} KiB body, title fallback: {t:?}",
        prose.len() / 1024
    );

    let output = "E   assert frobnicate(x) == 42 (\u{1b}[31mfailed\u{1b}[0m)\n".repeat(20_000);
    let input = PrBodyInput {
        issue_number: 42,
        issue_title: "A title".into(),
        summary: "Summary line with `code` and @someone.\n".repeat(5_000),
        acceptance: acceptance_criteria("title", &section),
        gates: (0..100)
            .map(|i| GateRow {
                repo: None,
                name: format!("gate {i}"),
                status: "failed".into(),
                duration: Duration::from_secs(1),
                exit_code: Some(1),
                excerpt: Some(output.clone()),
            })
            .collect(),
        policy: PolicyVerdict {
            ok: true,
            violations: Vec::new(),
        },
        budget: BudgetSummary {
            budget_usd: Usd::from_dollars(5.0),
            cost_usd: Usd::from_dollars(1.0),
            cost_source: "reported".into(),
            explanation: None,
        },
        stages: Vec::new(),
        diff: DiffStat {
            files: 5_000,
            insertions: 5_000,
            deletions: 5_000,
            per_file: (0..5_000)
                .map(|i| FileStat {
                    repo: None,
                    path: format!("src/{i}.rs"),
                    insertions: 1,
                    deletions: 1,
                })
                .collect(),
        },
        run_id: "r-1".into(),
    };
    let body = pr_body(&input);
    let t = time(|| pr_body(&input));
    println!(
        "pr_body, 100 gates with 1 MiB output each, 5,000 files: {t:?} ({} characters out)",
        body.chars().count()
    );

    let text = format!(
        "{}ghs_{}\n",
        "log line without secrets\n".repeat(40_000),
        "a".repeat(40)
    );
    let t = time(|| redact(&text));
    println!("redact, {} KiB: {t:?}", text.len() / 1024);
}
