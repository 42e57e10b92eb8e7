//! Unit tests of line framing and of each harness reader on small hand-written streams (the
//! captured fixtures are a table test in `tests/fixtures.rs`).

use super::*;

fn usd(dollars: f64) -> Usd {
    Usd::from_dollars(dollars)
}
use crate::outcome::{CostSource, KillReason, Status};

fn run(format: Format, stream: &str, exit: Option<i32>) -> BackendOutcome {
    let mut n = Normalizer::new(format, Pricing::default());
    n.feed(stream.as_bytes());
    n.finish(exit, None)
}

const CLAUDE_OK: &str = r#"{"type":"system","subtype":"init","model":"claude-sonnet-4-5"}
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","content":[{"type":"text","text":"done"}],"usage":{"input_tokens":10,"output_tokens":5}}}
{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.5,"session_id":"s"}
"#;

#[test]
fn bytes_split_anywhere_give_the_same_outcome() {
    let whole = run(Format::ClaudeCode, CLAUDE_OK, Some(0));
    for chunk in [1, 2, 3, 7, 64] {
        let mut n = Normalizer::new(Format::ClaudeCode, Pricing::default());
        for piece in CLAUDE_OK.as_bytes().chunks(chunk) {
            n.feed(piece);
        }
        assert_eq!(n.finish(Some(0), None), whole, "chunk size {chunk}");
    }
    assert_eq!(whole.status, Status::Completed);
    assert_eq!(whole.cost_usd, usd(0.5));
    assert_eq!(whole.lines, 3);
}

#[test]
fn a_final_line_without_newline_is_read() {
    let stream = CLAUDE_OK.trim_end();
    let o = run(Format::ClaudeCode, stream, Some(0));
    assert_eq!(o.status, Status::Completed);
}

#[test]
fn crlf_lines_and_blank_lines_are_fine() {
    let stream = CLAUDE_OK.replace('\n', "\r\n\r\n");
    let o = run(Format::ClaudeCode, &stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.skipped_lines, 0);
}

#[test]
fn unicode_line_separators_inside_strings_do_not_split_lines() {
    let stream = "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"a\u{2028}b\u{2029}c\",\"total_cost_usd\":0.1}\n";
    let o = run(Format::ClaudeCode, stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.final_message, "a\u{2028}b\u{2029}c");
    assert_eq!(o.lines, 1);
}

#[test]
fn overlong_lines_are_dropped_and_counted_without_growing_memory() {
    let mut n = Normalizer::new(Format::ClaudeCode, Pricing::default()).with_line_limit(1024);
    n.feed(b"{\"type\":\"user\",\"x\":\"");
    for _ in 0..1000 {
        n.feed(&[b'x'; 1000]);
        assert!(n.line.capacity() <= 2048, "{}", n.line.capacity());
    }
    n.feed(b"\"}\n");
    n.feed(CLAUDE_OK.as_bytes());
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.overlong_lines, 1);
    assert_eq!(o.skipped_lines, 1);
    assert_eq!(o.lines, 4);
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains("longer than 1024 bytes"))
    );
}

#[test]
fn banners_and_malformed_lines_are_skipped_with_a_warning() {
    let stream = format!(
        "Welcome to the agent\n{{\"type\":\"assistant\",\"message\":{{\"content\":\"oops\"}}}}\n{{not json\n{CLAUDE_OK}"
    );
    let o = run(Format::ClaudeCode, &stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.skipped_lines, 3);
    assert!(
        o.warnings.iter().any(|w| w.contains("message.content")),
        "the failing JSON path is named: {:?}",
        o.warnings
    );
}

#[test]
fn unknown_events_are_counted_once_warned_and_never_fatal() {
    let stream = format!(
        "{{\"type\":\"brand_new\"}}\n{{\"type\":\"brand_new\"}}\n{{\"type\":\"other_new\"}}\n{CLAUDE_OK}"
    );
    let o = run(Format::ClaudeCode, &stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.unknown_events, 3);
    assert_eq!(
        o.warnings
            .iter()
            .filter(|w| w.contains("unknown event"))
            .count(),
        2
    );
}

#[test]
fn the_stream_error_is_kept_when_the_exit_code_is_zero() {
    let stream = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["boom"],"total_cost_usd":0.2}"#;
    let o = run(Format::ClaudeCode, stream, Some(0));
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("boom"));
    assert_eq!(o.cost_source, CostSource::Reported);
}

#[test]
fn success_with_a_nonzero_exit_is_a_failure() {
    let o = run(Format::ClaudeCode, CLAUDE_OK, Some(3));
    assert_eq!(o.status, Status::Failed);
    assert!(o.error.unwrap().contains("exited with code 3"));
    let o = run(Format::ClaudeCode, CLAUDE_OK, None);
    assert_eq!(o.status, Status::Failed);
}

#[test]
fn kills_decide_the_status_and_keep_the_cost_so_far() {
    let mut n = Normalizer::new(Format::ClaudeCode, Pricing::default());
    n.feed(CLAUDE_OK.as_bytes());
    let o = n.finish(None, Some(KillReason::Budget));
    assert_eq!(o.status, Status::BudgetExhausted);
    assert_eq!(o.cost_usd, usd(0.5));
    let o = run(Format::Text, "hello\n", None);
    assert_eq!(o.status, Status::Failed);
    let mut n = Normalizer::new(Format::Text, Pricing::default());
    n.feed(b"working\n");
    assert_eq!(
        n.finish(None, Some(KillReason::WallClock)).status,
        Status::TimedOut
    );
}

#[test]
fn claude_running_cost_is_estimated_then_replaced_by_the_report() {
    let mut n = Normalizer::new(Format::ClaudeCode, Pricing::default());
    let lines: Vec<&str> = CLAUDE_OK.lines().collect();
    assert_eq!(n.feed_line(lines[0]), None);
    let est = n
        .feed_line(lines[1])
        .expect("an estimate from the assistant usage");
    assert_eq!(est.source, CostSource::Priced);
    // 10 input × $3 + 5 output × $15 per million
    assert_eq!(est.cost_usd, Usd::from_micros(105), "{est:?}");
    let reported = n.feed_line(lines[2]).unwrap();
    assert_eq!(reported.source, CostSource::Reported);
    assert_eq!(reported.cost_usd, usd(0.5));
}

#[test]
fn claude_split_assistant_frames_are_counted_once() {
    let frame = r#"{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":1000000,"output_tokens":0}}}"#;
    let mut n = Normalizer::new(Format::ClaudeCode, Pricing::default());
    n.feed_line(frame);
    let first = n.running_cost().unwrap().cost_usd;
    n.feed_line(frame);
    assert_eq!(n.running_cost().unwrap().cost_usd, first);
    assert_eq!(first, usd(3.0));
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Failed, "no result frame");
    assert_eq!(o.cost_source, CostSource::Unknown);
    assert_eq!(o.cost_usd, usd(3.0));
}

#[test]
fn claude_bookkeeping_frames_then_success_is_success() {
    let bookkeeping = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":517,"error_status":429,"error":"rate_limit"}
{"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":167212}}
{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning"}}
{"type":"assistant","message":{"content":[]},"error":"rate_limit"}
"#;
    let o = run(
        Format::ClaudeCode,
        &format!("{bookkeeping}{CLAUDE_OK}"),
        Some(0),
    );
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.error, None);
}

#[test]
fn codex_reconnect_notices_then_success_is_success() {
    let stream = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/5 (stream disconnected)"}
{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"fixed"}}
{"type":"turn.completed","usage":{"input_tokens":2000000,"cached_input_tokens":1000000,"output_tokens":100000}}
"#;
    let p = Pricing::new(issueloop_config::builtin_models(), Some("gpt-5".into()));
    let mut n = Normalizer::new(Format::Codex, p);
    n.feed(stream.as_bytes());
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.final_message, "fixed");
    assert_eq!(o.cost_source, CostSource::Priced);
    // 1M uncached × 1.25 + 1M cached × 0.125 + 0.1M output × 10
    assert_eq!(o.cost_usd, usd(2.375), "{}", o.cost_usd);
    assert_eq!(o.usage.input_tokens, 1_000_000);
    assert_eq!(o.usage.cache_read_tokens, 1_000_000);
}

#[test]
fn codex_turn_failed_with_exit_zero_is_a_failure_of_unknown_cost() {
    let stream = r#"{"type":"turn.started"}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":1}}
{"type":"turn.started"}
{"type":"turn.failed","error":{"message":"model at capacity"}}
"#;
    let p = Pricing::new(issueloop_config::builtin_models(), Some("gpt-5".into()));
    let mut n = Normalizer::new(Format::Codex, p);
    n.feed(stream.as_bytes());
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("model at capacity"));
    assert_eq!(o.cost_source, CostSource::Unknown);
}

#[test]
fn pi_cost_is_summed_over_assistant_messages_only_and_partials_count_live() {
    let stream = r#"{"type":"agent_start"}
{"type":"message_update","usage":{"cost":{"total":0.4}},"assistantMessageEvent":{"type":"text_delta"}}
"#;
    let mut n = Normalizer::new(Format::Pi, Pricing::default());
    let live = n.feed(stream.as_bytes()).unwrap();
    assert_eq!(live.cost_usd, usd(0.4));
    let rest = r#"{"type":"message_end","message":{"role":"assistant","content":[{"type":"text","text":"a"}],"usage":{"input":1,"output":1,"cost":{"total":0.5}},"stopReason":"stop"}}
{"type":"turn_end","message":{"role":"assistant","content":[],"usage":{"input":1,"output":1,"cost":{"total":0.5}},"stopReason":"stop"}}
{"type":"message_end","message":{"role":"assistant","content":[{"type":"text","text":"b"}],"usage":{"input":1,"output":1,"cost":{"total":0.25}},"stopReason":"stop"}}
{"type":"agent_end","messages":[{"role":"assistant","usage":{"cost":{"total":0.5}}}],"willRetry":false}
{"type":"agent_settled"}
"#;
    n.feed(rest.as_bytes());
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.cost_usd, usd(0.75));
    assert_eq!(o.final_message, "b");
}

#[test]
fn pi_exhausted_retries_fail_even_with_exit_zero() {
    let stream = r#"{"type":"message_end","message":{"role":"assistant","content":[],"usage":{"cost":{"total":0}},"stopReason":"error","errorMessage":"429"}}
{"type":"agent_end","willRetry":true}
{"type":"auto_retry_start","attempt":3}
{"type":"auto_retry_end","success":false,"finalError":"429 again"}
{"type":"agent_end","willRetry":false}
{"type":"agent_settled"}
"#;
    let o = run(Format::Pi, stream, Some(0));
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("retries exhausted: 429 again"));
}

#[test]
fn opencode_recovered_error_then_stop_is_success() {
    let stream = r#"{"type":"step_start","part":{"messageID":"m1"}}
{"type":"error","error":{"name":"APIError","data":{"message":"rate limited","isRetryable":true}}}
{"type":"step_start","part":{"messageID":"m2"}}
{"type":"text","part":{"messageID":"m2","text":"all good"}}
{"type":"step_finish","part":{"messageID":"m2","reason":"stop","cost":0.25,"tokens":{"input":1,"output":1,"reasoning":0,"cache":{"read":0,"write":0}}}}
"#;
    let o = run(Format::OpenCode, stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.final_message, "all good");
    assert_eq!(o.cost_usd, usd(0.25));
}

#[test]
fn gemini_severe_error_turns_success_into_failure() {
    let stream = r#"{"type":"init","model":"gemini-2.5-pro"}
{"type":"error","severity":"error","message":"Maximum session turns exceeded"}
{"type":"result","status":"success","stats":{"input_tokens":1000000,"output_tokens":0,"cached":0,"input":1000000}}
"#;
    let o = run(Format::Gemini, stream, Some(0));
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("Maximum session turns exceeded"));
    assert_eq!(o.cost_source, CostSource::Priced);
    assert_eq!(o.cost_usd, usd(1.25));
}

#[test]
fn text_success_is_the_exit_code_and_the_message_is_the_last_lines() {
    let mut stream = String::new();
    for i in 0..100 {
        stream.push_str(&format!("line {i}\n\n"));
    }
    let o = run(Format::Text, &stream, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.cost_source, CostSource::Unknown);
    assert!(o.final_message.ends_with("line 99"));
    assert!(o.final_message.starts_with("line 60"));
    let o = run(Format::Text, &stream, Some(2));
    assert_eq!(o.status, Status::Failed);
    assert!(o.error.unwrap().contains("line 99"));
}

#[test]
fn stderr_explains_a_failure_the_stream_does_not() {
    let mut n = Normalizer::new(Format::Codex, Pricing::default());
    n.set_stderr("Error: OPENAI_API_KEY is not set\n".into());
    let o = n.finish(Some(1), None);
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        o.error.as_deref(),
        Some(
            "the agent exited with code 1 without finishing its output; its stderr ends with:\nError: OPENAI_API_KEY is not set"
        )
    );
    let mut n = Normalizer::new(Format::Text, Pricing::default());
    n.set_stderr("Error: OPENAI_API_KEY is not set\n".into());
    let o = n.finish(Some(1), None);
    assert_eq!(
        o.error.as_deref(),
        Some("the agent exited with code 1: Error: OPENAI_API_KEY is not set")
    );
}

#[test]
fn a_stream_that_stops_short_carries_the_end_of_stderr() {
    // (harness, stdout, exit code, stderr, text the reason must contain, or None: the stream
    // explains the failure itself and stderr stays out of the reason)
    let pi_stderr = "No API key found for the selected model.\n\nUse /login to log into a provider via OAuth or API key. See:\n  docs/providers.md\n";
    let gemini_stderr = "Approval mode overridden to \"default\" because the current folder is not trusted.\n\u{1b}[31mGemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory in interactive mode.\u{1b}[0m\n";
    type Case<'a> = (Format, &'a str, Option<i32>, &'a str, Option<&'a str>);
    let cases: [Case<'_>; 8] = [
        (
            Format::Pi,
            "{\"type\":\"session\",\"version\":3,\"id\":\"s\",\"cwd\":\"/w\"}\n",
            Some(1),
            pi_stderr,
            Some("No API key found for the selected model."),
        ),
        // Exit code 0 and no terminal event: still the stderr's explanation.
        (
            Format::Pi,
            "{\"type\":\"session\",\"version\":3,\"id\":\"s\",\"cwd\":\"/w\"}\n",
            Some(0),
            pi_stderr,
            Some("Use /login to log into a provider"),
        ),
        (
            Format::Gemini,
            "",
            Some(55),
            gemini_stderr,
            Some(
                "Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`",
            ),
        ),
        (
            Format::OpenCode,
            "",
            Some(1),
            "Error: Model not found: scripted/none\n",
            Some("Model not found: scripted/none"),
        ),
        (
            Format::ClaudeCode,
            "{\"type\":\"system\",\"subtype\":\"init\",\"model\":\"m\"}\n",
            Some(1),
            "Error: fetch failed\n",
            Some("Error: fetch failed"),
        ),
        (
            Format::Codex,
            "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n",
            Some(1),
            "Error: Missing environment variable: `SCRIPTED_KEY`.\n",
            Some("Missing environment variable: `SCRIPTED_KEY`"),
        ),
        // The stream says why: stderr noise stays out.
        (
            Format::ClaudeCode,
            "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Not logged in · Please run /login\",\"total_cost_usd\":0}\n",
            Some(1),
            "some warning on stderr\n",
            None,
        ),
        (
            Format::Codex,
            "{\"type\":\"turn.started\"}\n{\"type\":\"turn.failed\",\"error\":{\"message\":\"401 Unauthorized\"}}\n",
            Some(1),
            "some warning on stderr\n",
            None,
        ),
    ];
    for (format, stdout, exit, stderr, want) in cases {
        let mut n = Normalizer::new(format, Pricing::default());
        n.feed(stdout.as_bytes());
        n.set_stderr(stderr.into());
        let o = n.finish(exit, None);
        assert_eq!(o.status, Status::Failed, "{format:?} {stdout}");
        let error = o.error.unwrap_or_default();
        match want {
            Some(text) => {
                assert!(error.contains(text), "{format:?}: {error}");
                assert!(
                    !error.contains('\u{1b}'),
                    "control characters kept: {error:?}"
                );
            }
            None => assert!(!error.contains("stderr"), "{format:?}: {error}"),
        }
    }
}

#[test]
fn the_stderr_in_a_reason_is_bounded() {
    let mut n = Normalizer::new(Format::Pi, Pricing::default());
    let noise: String = (0..500).map(|i| format!("noise line {i}\n")).collect();
    n.set_stderr(noise + "No API key found for the selected model.\n");
    let o = n.finish(Some(1), None);
    let error = o.error.unwrap();
    assert!(
        error.ends_with("No API key found for the selected model."),
        "{error}"
    );
    assert!(error.len() < 2048 + 200, "{}", error.len());
    assert!(!error.contains("noise line 400\n"), "{error}");
}

#[test]
fn pretty_printed_documents_are_reassembled_and_bounded() {
    let doc = "{\n  \"response\": \"a } in a string {\",\n  \"stats\": {\"models\": {}}\n}\n";
    let o = run(Format::Gemini, doc, Some(0));
    assert_eq!(o.status, Status::Completed);
    assert_eq!(o.final_message, "a } in a string {");
    assert_eq!(o.skipped_lines, 0);

    let mut n = Normalizer::new(Format::Gemini, Pricing::default()).with_line_limit(64);
    n.feed(b"{\n");
    for _ in 0..10 {
        n.feed(b"  \"response\": \"xxxxxxxxxxxxxxxxxxxxxxxx\",\n");
    }
    let o = n.finish(Some(0), None);
    assert_eq!(o.status, Status::Failed);
    assert!(o.skipped_lines >= 2);
}

#[test]
fn final_message_is_bounded() {
    let big = "y".repeat(FINAL_MESSAGE_LIMIT * 2);
    let stream = format!(
        "{{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"{big}\",\"total_cost_usd\":0}}\n"
    );
    let o = run(Format::ClaudeCode, &stream, Some(0));
    assert!(o.final_message.len() <= FINAL_MESSAGE_LIMIT + 4);
}

#[test]
fn negative_costs_are_refused() {
    let stream = r#"{"type":"result","subtype":"success","is_error":false,"result":"x","total_cost_usd":-1}"#;
    let o = run(Format::ClaudeCode, stream, Some(0));
    assert_eq!(o.cost_source, CostSource::Unknown);
    assert!(o.warnings.iter().any(|w| w.contains("cannot be a cost")));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any bytes, for any harness: no panic, and counters stay consistent.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), split in 1usize..64) {
            for format in Format::ALL {
                let mut n = Normalizer::new(format, Pricing::default()).with_line_limit(256);
                for piece in bytes.chunks(split) {
                    n.feed(piece);
                }
                let o = n.finish(Some(0), None);
                prop_assert!(o.skipped_lines <= o.lines + 1);
                prop_assert!(o.cost_usd >= Usd::ZERO);
            }
        }

        /// JSON-looking lines with arbitrary types in known fields never panic either.
        #[test]
        fn arbitrary_json_events_never_panic(kind in "[a-z_.]{1,16}", value in any::<i64>(), text in ".{0,40}") {
            let lines = [
                format!("{{\"type\":\"{kind}\",\"message\":{value}}}"),
                format!("{{\"type\":\"result\",\"total_cost_usd\":{value},\"result\":{text:?}}}"),
                format!("{{\"type\":\"message_end\",\"message\":{{\"role\":\"assistant\",\"usage\":{{\"cost\":{{\"total\":{value}}}}}}}}}"),
                format!("{{\"type\":\"step_finish\",\"part\":{{\"cost\":{value}}}}}"),
                format!("[{{\"type\":\"{kind}\"}}, {value}]"),
            ];
            for format in Format::ALL {
                let mut n = Normalizer::new(format, Pricing::default());
                for l in &lines {
                    n.feed_line(l);
                }
                let o = n.finish(Some(0), None);
                prop_assert!(o.cost_usd >= Usd::ZERO);
            }
        }
    }
}

/// A run stopped at its wall clock carries what the agent said last: the stream's last notice
/// (Claude Code's `api_retry`, Codex's `error` events), the end of its stderr, both, or neither.
#[test]
fn a_run_stopped_at_the_wall_clock_carries_its_last_words() {
    const RETRY: &str = r#"{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"retry_delay_ms":2283,"error_status":529,"error":"server_error"}"#;
    const ANSWER: &str = r#"{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","content":[{"type":"text","text":"on it"}],"usage":{"input_tokens":10,"output_tokens":5}}}"#;
    const RECONNECTING: &str = r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#;
    let table: [(Format, &[&str], &str, Option<&str>); 7] = [
        (
            Format::ClaudeCode,
            &[RETRY],
            "",
            Some(
                "its last notice on stdout: `api_retry` attempt 3 of 10: the model API failed (error `server_error`, HTTP 529)",
            ),
        ),
        // The model answered after the retry: the notice no longer explains anything.
        (Format::ClaudeCode, &[RETRY, ANSWER], "", None),
        (
            Format::Codex,
            &[r#"{"type":"turn.started"}"#, RECONNECTING],
            "",
            Some(
                "its last notice on stdout: Reconnecting... waiting for network (Connection failed: error sending request)",
            ),
        ),
        (
            Format::Codex,
            &[r#"{"type":"turn.started"}"#, RECONNECTING],
            "\u{1b}[33mWARNING: slow\u{1b}[0m\n",
            Some(
                "its last notice on stdout: Reconnecting... waiting for network (Connection failed: error sending request); its last words on stderr:\nWARNING: slow",
            ),
        ),
        (
            Format::Gemini,
            &[],
            "Attempt 2 failed. Retrying with backoff... Error: fetch failed\n    at f (file:///c.js:1:2)\n    at async g (file:///c.js:3:4)\n",
            Some(
                "its last words on stderr:\nAttempt 2 failed. Retrying with backoff... Error: fetch failed",
            ),
        ),
        (
            Format::OpenCode,
            &[],
            "level=ERROR message=\"stream error\" error.error=\"Cannot connect to API: Unable to connect\"\n",
            Some(
                "its last words on stderr:\nlevel=ERROR message=\"stream error\" error.error=\"Cannot connect to API: Unable to connect\"",
            ),
        ),
        (Format::Pi, &[], " \n", None),
    ];
    for (format, lines, stderr, words) in table {
        let mut n = Normalizer::new(format, Pricing::default());
        for l in lines {
            n.feed_line(l);
        }
        n.set_stderr(stderr.to_owned());
        let o = n.finish(None, Some(KillReason::WallClock));
        assert_eq!(o.status, Status::TimedOut, "{format:?}");
        assert_eq!(o.last_words.as_deref(), words, "{format:?} {lines:?}");
        let expected = match words {
            Some(w) => format!("issueloop stopped the agent at the wall-clock limit; {w}"),
            None => "issueloop stopped the agent at the wall-clock limit".to_owned(),
        };
        assert_eq!(o.error.as_deref(), Some(expected.as_str()), "{format:?}");
    }
    // Other endings carry no last words (their error says why on its own).
    let mut n = Normalizer::new(Format::Codex, Pricing::default());
    n.feed_line(RECONNECTING);
    assert_eq!(n.finish(None, Some(KillReason::Budget)).last_words, None);
}

#[test]
fn last_words_are_cleaned_and_bounded() {
    assert_eq!(last_words(None, None), None);
    assert_eq!(last_words(Some("  ".into()), None), None);
    assert_eq!(
        last_words(Some("a\u{1b}[31mb\u{0}c\n d".into()), None).as_deref(),
        Some("its last notice on stdout: abc d")
    );
    let long = last_words(Some("x".repeat(10_000)), None).unwrap();
    assert!(long.len() < STRAY_LINE_LIMIT + 40, "{}", long.len());
    assert_eq!(
        last_words(Some("key ghp_abcdefghijABCDEFGHIJ0".into()), None).as_deref(),
        Some("its last notice on stdout: key ghp_[REDACTED]")
    );
}

/// The supervisor kills at the first event whose running cost passes the budget
/// (`update.cost_usd > budget`). These pin at which event that is, now that costs are `Usd`.
mod kill_event {
    use super::*;
    use proptest::prelude::*;

    /// The index of the first line after which the running cost passes `budget`.
    fn first_over(format: Format, lines: &[String], budget: Usd) -> Option<usize> {
        let mut n = Normalizer::new(format, Pricing::default());
        lines.iter().position(|line| {
            n.feed_line(line);
            n.running_cost().is_some_and(|c| c.cost_usd > budget)
        })
    }

    /// `n` nano-dollars written as a harness writes dollars: `0.123456789`.
    fn dollars_text(nanos: u64) -> String {
        format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
    }

    fn opencode_step(i: usize, cost: &str) -> String {
        format!(
            r#"{{"type":"step_finish","part":{{"messageID":"m{i}","type":"step-finish","reason":"tool-calls","cost":{cost},"tokens":{{"input":100,"output":10,"reasoning":0,"cache":{{"read":0,"write":0}}}}}}}}"#
        )
    }

    #[test]
    fn the_supervisors_own_case_kills_at_the_third_step() {
        // Steps of $0.10 under a $0.25 budget: f64 and Usd both pass it at $0.30.
        let lines: Vec<String> = (0..20).map(|i| opencode_step(i, "0.1")).collect();
        let budget = Usd::from_dollars(0.25);
        assert_eq!(first_over(Format::OpenCode, &lines, budget), Some(2));
        // Exactly the budget is not over it; a micro-dollar more is.
        let lines: Vec<String> = ["0.1", "0.15", "0.000001"]
            .iter()
            .enumerate()
            .map(|(i, c)| opencode_step(i, c))
            .collect();
        assert_eq!(first_over(Format::OpenCode, &lines, budget), Some(2));
        // A reported total a tenth of a micro-dollar over the budget is over it (rounded up,
        // not to the nearest micro-dollar).
        let lines: Vec<String> = ["0.25", "0.2500001"]
            .iter()
            .map(|t| format!(
                r#"{{"type":"result","subtype":"success","is_error":false,"result":"x","total_cost_usd":{t},"session_id":"s"}}"#
            ))
            .collect();
        assert_eq!(first_over(Format::ClaudeCode, &lines, budget), Some(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A harness that reports its session's cumulative cost (Claude Code's `result`): the kill
        /// comes at exactly the event where the float comparison the supervisor made before
        /// money was a type would have come, whatever the digits reported (short of a total
        /// within float noise, 10⁻¹⁵ of itself, of the budget).
        #[test]
        fn cumulative_reports_kill_at_the_same_event_as_f64(
            steps in proptest::collection::vec(0.0f64..0.5, 1..30),
            budget_micros in 1i64..5_000_000,
        ) {
            let mut total = 0.0f64;
            let totals: Vec<f64> = steps.iter().map(|s| { total += s; total }).collect();
            let lines: Vec<String> = totals
                .iter()
                .map(|t| format!(
                    r#"{{"type":"result","subtype":"success","is_error":false,"result":"x","total_cost_usd":{t},"session_id":"s"}}"#
                ))
                .collect();
            let budget = Usd::from_micros(budget_micros);
            let with_f64 = totals.iter().position(|t| *t > budget.dollars());
            prop_assert_eq!(first_over(Format::ClaudeCode, &lines, budget), with_f64);
        }

        /// A harness that reports each step's cost (OpenCode, pi), summed by issueloop: with
        /// amounts in whole micro-dollars the kill comes at exactly the event where the reported
        /// amounts' exact sum passes the budget; with finer amounts (each rounded up) never
        /// later, and earlier only when the exact sum is within the rounding (under a
        /// micro-dollar per step) of the budget.
        #[test]
        fn summed_steps_kill_no_later_than_the_exact_sum(
            nanos in proptest::collection::vec(0u64..300_000_000, 1..30),
            whole_micros in any::<bool>(),
            budget_micros in 1u64..3_000_000,
        ) {
            let nanos: Vec<u64> = if whole_micros {
                nanos.iter().map(|n| n / 1_000 * 1_000).collect()
            } else {
                nanos
            };
            let lines: Vec<String> = nanos
                .iter()
                .enumerate()
                .map(|(i, n)| opencode_step(i, &dollars_text(*n)))
                .collect();
            let mut sum = 0u64;
            let exact = nanos.iter().position(|n| {
                sum += n;
                sum > budget_micros * 1_000
            });
            let budget = Usd::from_micros(i64::try_from(budget_micros).unwrap());
            let got = first_over(Format::OpenCode, &lines, budget);
            if whole_micros {
                prop_assert_eq!(got, exact);
            } else {
                prop_assert!(got.is_some() || exact.is_none());
                prop_assert!(got.unwrap_or(usize::MAX) <= exact.unwrap_or(usize::MAX));
                // Rounding adds under a micro-dollar per step: the exact sum at the kill is
                // within that of the budget.
                if let Some(i) = got {
                    let exact_at: u64 = nanos[..=i].iter().sum();
                    prop_assert!(exact_at + 1_000 * (i as u64 + 1) > budget_micros * 1_000);
                }
            }
        }
    }
}
