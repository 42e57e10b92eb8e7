//! Every captured harness stream under `tests/fixtures/harness/` replayed through the
//! normalizer with its expected outcome: status, cost to the cent, cost source. A fixture
//! without an expectation (or an expectation without a fixture) fails the table.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use issueloop_config::{Usd, builtin_models};
use issueloop_runtime::{BackendOutcome, CostSource, Format, Normalizer, Pricing, Status};

use CostSource::{Priced, Reported, Unknown};
use Status::{BudgetExhausted, Completed, Failed};

struct Expect {
    /// Path under the fixture folder.
    file: &'static str,
    /// The exit code the harness gives for this stream (see FORMATS.md).
    exit: i32,
    /// The configured model, for harnesses that report tokens only.
    model: Option<&'static str>,
    status: Status,
    cents: i64,
    source: CostSource,
    /// A piece of the error (failures) or of the final message (successes).
    says: &'static str,
}

const fn e(
    file: &'static str,
    exit: i32,
    status: Status,
    cents: i64,
    source: CostSource,
    says: &'static str,
) -> Expect {
    Expect {
        file,
        exit,
        model: None,
        status,
        cents,
        source,
        says,
    }
}

const fn with_model(mut x: Expect, model: &'static str) -> Expect {
    x.model = Some(model);
    x
}

#[rustfmt::skip]
const TABLE: &[Expect] = &[
    // Claude Code: the `result` frame decides; `total_cost_usd` is cumulative per session.
    e("claude/action_sample_turns.json", 0, Completed, 3, Reported, "Successfully removed debug print statement"),
    e("claude/json_verbose_array.json", 0, Completed, 14, Reported, "4"),
    // `subtype: success` with `is_error: true` is an API error, whatever the exit code.
    e("claude/result_api_error_subtype_success.json", 0, Failed, 0, Unknown, "API Error: Stream idle timeout"),
    e("claude/result_error_max_budget_usd.json", 1, BudgetExhausted, 13, Reported, "Reached maximum budget ($0.01)"),
    // Older CLIs exited 0 on `error_max_turns`.
    e("claude/result_error_max_turns.json", 0, Failed, 9, Reported, "Reached maximum number of turns (1)"),
    e("claude/result_success.json", 0, Completed, 25, Reported, "Here are the files in the current directory."),
    e("claude/stream_api_error_is_error_success.jsonl", 0, Failed, 0, Unknown, "not available with the Claude Pro plan"),
    e("claude/stream_error_max_turns.jsonl", 1, Failed, 9, Reported, "Reached maximum number of turns (1)"),
    e("claude/stream_success.jsonl", 0, Completed, 14, Reported, "4"),
    e("claude/stream_tool_use_success.jsonl", 0, Completed, 25, Reported, "Here are the files in the current directory."),
    // Retries, compaction, hooks and rate-limit notices are bookkeeping; only the missing
    // `result` makes this a failure.
    e("claude/system_bookkeeping_frames.jsonl", 0, Failed, 0, Unknown, "without a `result` frame"),
    // Two sessions: the costs add up ($0.012345 + $0.001); the last result decides.
    e("claude/takopi_stream_session_success_then_error_during_execution.jsonl", 0, Failed, 1, Reported, "Permission denied: cannot write to /root/secret.txt"),

    // Codex: tokens only (priced with the configured model); `turn.failed` is authoritative.
    with_model(e("codex/exec_success.jsonl", 0, Completed, 0, Priced, "there’s a `README.md` in the repository root"), "gpt-5"),
    // No model configured: the tokens cannot be priced.
    e("codex/exec_success_ping_v0.66.jsonl", 0, Completed, 0, Unknown, "PING"),
    e("codex/reconnect_401_then_exit101.jsonl", 101, Failed, 0, Unknown, "401 Unauthorized"),
    // A failed second turn spent tokens no event reported: cost unknown.
    with_model(e("codex/takopi_all_item_types.jsonl", 1, Failed, 0, Unknown, "required dependency `npm` is missing"), "gpt-5-mini"),
    with_model(e("codex/takopi_phase_and_unknown_items.jsonl", 0, Completed, 0, Priced, "Implemented the requested changes."), "gpt-5.1-codex"),
    with_model(e("codex/turn_failed.jsonl", 0, Failed, 0, Unknown, "shared rollout token budget exhausted"), "gpt-5"),
    e("codex/turn_failed_model_capacity.jsonl", 1, Failed, 0, Unknown, "Selected model is at capacity"),

    // Gemini: tokens only, priced per model from the statistics.
    e("gemini/json_error_on_stderr.json", 53, Failed, 0, Unknown, "Reached max session turns"),
    // gemini-2.5-pro $0.012927 + gemini-2.5-flash $0.002798
    e("gemini/json_success_docs.json", 0, Completed, 2, Priced, "The capital of France is Paris."),
    e("gemini/json_success_v0.6.1_issue.json", 0, Completed, 1, Priced, "4"),
    e("gemini/stream_result_error_turn_limit.jsonl", 53, Failed, 0, Priced, "Reached max session turns"),
    // A loop-detection warning is not a failure; zero tokens cost nothing whatever the model.
    e("gemini/stream_snapshot_loop_detected.jsonl", 0, Completed, 0, Priced, ""),
    e("gemini/stream_snapshot_tool_success.jsonl", 0, Completed, 0, Priced, "Final answer"),
    // `gemini-2.0-flash-exp` has no price.
    e("gemini/stream_success_docs.jsonl", 0, Completed, 0, Unknown, "Here are the files..."),

    // OpenCode: dollars per step; an error after the last step fails the run.
    e("opencode/run_json_error_unknown_v1.18.jsonl", 1, Failed, 0, Unknown, "UnknownError: Unexpected server error"),
    e("opencode/run_json_success.jsonl", 0, Completed, 0, Reported, "hello"),
    e("opencode/run_json_success_with_done.jsonl", 0, Completed, 0, Reported, "hello"),
    // Old builds exit 0 on session errors.
    e("opencode/takopi_run_json_api_error.jsonl", 0, Failed, 0, Unknown, "Rate limit exceeded"),
    e("opencode/takopi_run_json_no_finish_reason.jsonl", 0, Completed, 0, Reported, "All done."),
    e("opencode/takopi_run_json_success_then_error.jsonl", 0, Failed, 1, Reported, "Upstream timeout while calling provider"),

    // Pi: exit 0 in json mode even on failure; the last assistant message decides.
    e("pi/assistant_stop_reason_error.jsonl", 0, Failed, 0, Reported, "Invalid token payload"),
    e("pi/compaction_retry_then_success.jsonl", 0, Completed, 4, Reported, "Finished the refactor."),
    e("pi/compaction_retry_then_success_legacy.jsonl", 0, Completed, 4, Reported, "Finished the refactor."),
    e("pi/hyrule_test_assistant_stop_reason_error.jsonl", 0, Failed, 1, Reported, "upstream provider failed"),
    e("pi/hyrule_test_compaction_retry_then_success.jsonl", 0, Completed, 2, Reported, "recovered"),
    // $0.01767 + $0.00216
    e("pi/json_success.jsonl", 0, Completed, 2, Reported, "Done: added the entry."),
    e("pi/pion_compaction-loop.jsonl", 0, Failed, 0, Reported, "stopReason: length"),
    e("pi/pion_success.jsonl", 0, Completed, 0, Reported, "ok"),
    e("pi/pion_synthetic-aborted.jsonl", 0, Failed, 0, Reported, "aborted"),
    e("pi/pion_synthetic-error-then-truncated.jsonl", 0, Failed, 0, Reported, "503"),
    e("pi/pion_synthetic-retry-then-succeed.jsonl", 0, Completed, 0, Reported, "ok"),
    e("pi/pion_truncated.jsonl", 0, Failed, 0, Reported, "ended before `agent_settled`"),
    // `agent_error` is not an event pi emits: unknown, and no assistant message at all.
    e("pi/single_agent_error.json", 0, Failed, 0, Unknown, "ended before `agent_settled`"),
    e("pi/takopi_legacy_print_mode_events_compaction_and_retry.jsonl", 0, Completed, 0, Reported, "Retry succeeded."),
    e("pi/takopi_legacy_stream_error.jsonl", 0, Failed, 0, Reported, "Upstream error"),
    e("pi/takopi_legacy_stream_success.jsonl", 0, Completed, 0, Reported, "Done. Added notes.md."),
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/harness")
}

/// Every stream file under `dir` (documentation excluded), as `harness/file`.
fn stream_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for harness in std::fs::read_dir(dir).expect("fixture folder") {
        let harness = harness.expect("entry").path();
        if !harness.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&harness).expect("harness folder") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let rel = file.strip_prefix(dir).expect("under dir");
            out.insert(rel.to_string_lossy().into_owned());
        }
    }
    out
}

fn format_of(file: &str) -> Format {
    let harness = file.split('/').next().unwrap_or_default();
    Format::parse(harness).unwrap_or_else(|| panic!("no format for folder `{harness}`"))
}

fn replay(x: &Expect) -> BackendOutcome {
    let bytes = std::fs::read(fixtures_dir().join(x.file)).expect("fixture readable");
    let pricing = Pricing::new(builtin_models(), x.model.map(str::to_owned));
    let mut n = Normalizer::new(format_of(x.file), pricing);
    // Feed in small chunks, as a pipe would deliver them.
    for chunk in bytes.chunks(97) {
        n.feed(chunk);
    }
    n.finish(Some(x.exit), None)
}

#[test]
fn every_fixture_has_an_expectation_and_every_expectation_a_fixture() {
    let files = stream_files(&fixtures_dir());
    let expected: BTreeSet<String> = TABLE.iter().map(|x| x.file.to_owned()).collect();
    let missing: Vec<_> = files.difference(&expected).collect();
    let stale: Vec<_> = expected.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "fixtures without an expected outcome (add them to TABLE): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "expectations without a fixture: {stale:?}"
    );
    assert_eq!(TABLE.len(), expected.len(), "a fixture is listed twice");
}

#[test]
fn the_copy_matches_the_shared_fixtures_when_present() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/harness");
    if !shared.is_dir() {
        return;
    }
    let ours = stream_files(&fixtures_dir());
    let theirs = stream_files(&shared);
    assert_eq!(
        ours,
        theirs,
        "copy `{}` into tests/fixtures/harness and give each new file an expectation",
        shared.display()
    );
    for f in &theirs {
        assert_eq!(
            std::fs::read(shared.join(f)).ok(),
            std::fs::read(fixtures_dir().join(f)).ok(),
            "`{f}` differs from the shared copy"
        );
    }
}

#[test]
fn every_fixture_normalizes_to_its_expected_outcome() {
    let mut failures = Vec::new();
    for x in TABLE {
        let o = replay(x);
        let cents = (o.cost_usd.dollars() * 100.0).round() as i64;
        let text = match o.status {
            Completed => o.final_message.clone(),
            _ => o.error.clone().unwrap_or_default(),
        };
        let unknown_ok = x.file.ends_with("single_agent_error.json")
            || x.file.ends_with("takopi_phase_and_unknown_items.jsonl");
        let mut wrong = Vec::new();
        if o.status != x.status {
            wrong.push(format!("status {} (expected {})", o.status, x.status));
        }
        if cents != x.cents {
            wrong.push(format!(
                "cost ${:.6} (expected {} cents)",
                o.cost_usd.dollars(),
                x.cents
            ));
        }
        if o.cost_source != x.source {
            wrong.push(format!(
                "cost source {} (expected {})",
                o.cost_source, x.source
            ));
        }
        if !text.contains(x.says) {
            wrong.push(format!(
                "says {text:?} (expected it to contain {:?})",
                x.says
            ));
        }
        if o.skipped_lines != 0 {
            wrong.push(format!(
                "{} skipped line(s): {:?}",
                o.skipped_lines, o.warnings
            ));
        }
        if o.unknown_events != 0 && !unknown_ok {
            wrong.push(format!(
                "{} unknown event(s): {:?}",
                o.unknown_events, o.warnings
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", x.file, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn forward_compatible_events_are_counted_not_fatal() {
    let find = |f: &str| TABLE.iter().find(|x| x.file == f).expect("in table");
    let o = replay(find("codex/takopi_phase_and_unknown_items.jsonl"));
    assert_eq!(o.unknown_events, 1, "{:?}", o.warnings);
    assert!(o.warnings.iter().any(|w| w.contains("future_item")));
    let o = replay(find("pi/single_agent_error.json"));
    assert_eq!(o.unknown_events, 1);
    assert!(o.warnings.iter().any(|w| w.contains("agent_error")));
}

#[test]
fn exact_costs_of_a_few_fixtures() {
    let find = |f: &str| TABLE.iter().find(|x| x.file == f).expect("in table");
    let micros = Usd::from_micros;
    let o = replay(find("codex/exec_success.jsonl"));
    // 315 uncached × $1.25 + 24448 cached × $0.125 + 122 output × $10, per million:
    // $0.00466975, each kind rounded up to the micro-dollar (393.75 → 394).
    assert_eq!(o.cost_usd, micros(4_670), "{}", o.cost_usd.dollars());
    assert_eq!(o.usage.cache_read_tokens, 24448);
    let o = replay(find("gemini/json_success_docs.json"));
    // $0.01292653 + $0.0027979, each rounded up to the micro-dollar.
    assert_eq!(
        o.cost_usd,
        micros(12_927 + 2_798),
        "{}",
        o.cost_usd.dollars()
    );
    let o = replay(find(
        "claude/takopi_stream_session_success_then_error_during_execution.jsonl",
    ));
    assert_eq!(o.cost_usd, micros(13_345), "{}", o.cost_usd.dollars());
    let o = replay(find(
        "pi/takopi_legacy_print_mode_events_compaction_and_retry.jsonl",
    ));
    assert_eq!(o.cost_usd, micros(3_462), "{}", o.cost_usd.dollars());
    let o = replay(find("opencode/run_json_success.jsonl"));
    assert_eq!(o.cost_usd, micros(1_000), "{}", o.cost_usd.dollars());
    assert_eq!(o.usage.cache_read_tokens, 21415);
}
