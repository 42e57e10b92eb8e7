//! Snapshot and limit tests of the text issueloop writes to the forge: PR bodies and comments.

#![expect(clippy::expect_used, reason = "a test: a failed step fails it loudly")]

use std::time::Duration;

use issueloop_config::Usd;
use issueloop_publish::{
    BOT_SECTION_BEGIN, BOT_SECTION_END, BudgetSummary, CommentInput, DiffStat, Failure, FileStat,
    GITHUB_TEXT_LIMIT, GateRow, PolicyVerdict, PrBodyInput, RunOutcome, StageRow,
    TakeoverCommentInput, comment_marker, marked_issue, outcome_comment, pr_body, pr_marker,
    pr_title, replace_bot_section, takeover_comment, trust_comment,
};
use issueloop_triage::{AcceptanceSource, Distrust, DistrustReason, acceptance_criteria};

const TOKEN: &str = "ghs_0123456789abcdefghijABCDEFGHIJ0123456789";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn success_input() -> PrBodyInput {
    let body = "The `status` command prints a table.\n\n## Acceptance criteria\n\n\
                - [ ] `issueloop status --json` prints one JSON object per run\n\
                - [ ] the table output is unchanged\n\
                - [ ] documented in `docs/cli.md`\n\n## Notes\nNothing else.\n";
    PrBodyInput {
        issue_number: 42,
        issue_title: "Add `--json` output to `status`".into(),
        summary: "Added a `--json` flag to `issueloop status`.\n\n\
                  - `src/cli/status.rs`: new `StatusJson` struct, serialized with serde\n\
                  - tests in `tests/status.rs` cover both outputs\n\n\
                  Thanks @maintainer for the clear issue; this fixes #42 and closes #7.\n\n\
                  ```console\n$ issueloop status --json\n{\"runs\": []}\n```\n"
            .into(),
        acceptance: acceptance_criteria("Add `--json` output to `status`", body),
        gates: vec![
            GateRow {
                repo: None,
                name: "uv run --locked ruff check --no-cache .".into(),
                status: "passed".into(),
                duration: secs(0.84),
                exit_code: Some(0),
                excerpt: None,
            },
            GateRow {
                repo: None,
                name: "uv run --locked --group dev pytest -p no:cacheprovider".into(),
                status: "passed".into(),
                duration: secs(12.31),
                exit_code: Some(0),
                excerpt: Some("===== 48 passed in 11.9s =====".into()),
            },
        ],
        policy: PolicyVerdict {
            ok: true,
            violations: vec![],
        },
        budget: BudgetSummary {
            budget_usd: Usd::from_dollars(5.0),
            cost_usd: Usd::from_dollars(0.4213),
            cost_source: "reported by the harness".into(),
            explanation: None,
        },
        stages: vec![
            StageRow {
                stage: "execute".into(),
                runtime: "claude_code".into(),
                duration: Some(secs(312.0)),
                cost_usd: Some(Usd::from_dollars(0.39)),
            },
            StageRow {
                stage: "evaluate".into(),
                runtime: "codex".into(),
                duration: Some(secs(41.5)),
                cost_usd: Some(Usd::from_dollars(0.0313)),
            },
        ],
        diff: DiffStat {
            files: 3,
            insertions: 120,
            deletions: 4,
            per_file: vec![
                FileStat {
                    repo: None,
                    path: "src/cli/status.rs".into(),
                    insertions: 88,
                    deletions: 4,
                },
                FileStat {
                    repo: None,
                    path: "tests/status.rs".into(),
                    insertions: 30,
                    deletions: 0,
                },
                FileStat {
                    repo: None,
                    path: "docs/cli.md".into(),
                    insertions: 2,
                    deletions: 0,
                },
            ],
        },
        run_id: "r-20250102-0001".into(),
    }
}

fn clamped_input() -> PrBodyInput {
    PrBodyInput {
        issue_number: 7,
        issue_title: "Speed up the mirror fetch".into(),
        summary: "Fetch only the default branch when the mirror is fresh.".into(),
        acceptance: acceptance_criteria("Speed up the mirror fetch", "We fetch too much."),
        gates: vec![
            GateRow {
                repo: Some("acme/api".into()),
                name: "cargo test --locked".into(),
                status: "passed".into(),
                duration: secs(95.0),
                exit_code: Some(0),
                excerpt: None,
            },
            GateRow {
                repo: Some("acme/web".into()),
                name: "uv run --locked pytest -p no:cacheprovider".into(),
                status: "passed".into(),
                duration: secs(7.2),
                exit_code: Some(0),
                excerpt: None,
            },
        ],
        policy: PolicyVerdict { ok: true, violations: vec![] },
        budget: BudgetSummary {
            budget_usd: Usd::from_dollars(2.1),
            cost_usd: Usd::from_dollars(1.87),
            cost_source: "priced from the model table (`gpt-5-codex`)".into(),
            explanation: Some(
                "`loop:budget-large` asks for $7.50; clamped to $2.10, what is left of today's $10.00 cap."
                    .into(),
            ),
        },
        stages: vec![StageRow {
            stage: "execute".into(),
            runtime: "codex".into(),
            duration: Some(secs(1830.0)),
            cost_usd: Some(Usd::from_dollars(1.87)),
        }],
        diff: DiffStat {
            files: 2,
            insertions: 14,
            deletions: 9,
            per_file: vec![
                FileStat {
                    repo: Some("acme/api".into()),
                    path: "src/mirror.rs".into(),
                    insertions: 10,
                    deletions: 9,
                },
                FileStat {
                    repo: Some("acme/web".into()),
                    path: "scripts/fetch.py".into(),
                    insertions: 4,
                    deletions: 0,
                },
            ],
        },
        run_id: "r-20250102-0002".into(),
    }
}

fn failure(reason_id: &str, reason: &str) -> Failure {
    Failure {
        reason_id: reason_id.into(),
        reason: reason.into(),
        failed_label: "loop:failed".into(),
        claim_label: "loop:in-progress".into(),
        ..Failure::default()
    }
}

fn failed_comment(failure: Failure) -> String {
    outcome_comment(&CommentInput {
        issue_number: 42,
        run_id: "r-20250102-0003".into(),
        outcome: RunOutcome::Failed(failure),
    })
}

#[test]
fn successful_pr_body() {
    insta::assert_snapshot!(pr_body(&success_input()));
}

#[test]
fn clamped_budget_pr_body() {
    insta::assert_snapshot!(pr_body(&clamped_input()));
}

#[test]
fn gate_failure_comment() {
    let output = format!(
        "\u{1b}[1m============ FAILURES ============\u{1b}[0m\r\n\
         ___ test_status_json ___\n\
         E   AssertionError: expected ```json fence\n\
         E   env GITHUB_TOKEN={TOKEN}\n\
         ```\n\
         <!-- issueloop:end -->\n\
         FAILED tests/test_status.py::test_status_json - AssertionError\n\
         1 failed, 47 passed in 12.0s\n"
    );
    let comment = failed_comment(Failure {
        gates: vec![
            GateRow {
                repo: None,
                name: "uv run --locked ruff check --no-cache .".into(),
                status: "passed".into(),
                duration: secs(0.8),
                exit_code: Some(0),
                excerpt: Some("All checks passed!".into()),
            },
            GateRow {
                repo: None,
                name: "uv run --locked --group dev pytest -p no:cacheprovider".into(),
                status: "failed".into(),
                duration: secs(12.4),
                exit_code: Some(1),
                excerpt: Some(output),
            },
        ],
        budget: Some(BudgetSummary {
            budget_usd: Usd::from_dollars(5.0),
            cost_usd: Usd::from_dollars(2.35),
            cost_source: "reported by the harness".into(),
            explanation: None,
        }),
        ..failure(
            "gates_failed",
            "The gates still failed after 2 repair attempts by the agent.",
        )
    });
    assert!(!comment.contains(TOKEN), "the token is redacted");
    assert_eq!(
        comment.matches("<!-- issueloop:end -->").count(),
        0,
        "markers in output are defused"
    );
    insta::assert_snapshot!(comment);
}

#[test]
fn policy_violation_comment() {
    let comment = failed_comment(Failure {
        policy: Some(PolicyVerdict {
            ok: false,
            violations: vec![
                "`.github/workflows/ci.yml`: denied by `.github/**`".into(),
                "`vendor/lib` → `/etc/passwd`: a symlink that leaves the worktree".into(),
                "`third_party/sub`: submodule pointer changed".into(),
            ],
        }),
        budget: Some(BudgetSummary {
            budget_usd: Usd::from_dollars(5.0),
            cost_usd: Usd::from_dollars(0.9),
            cost_source: "reported by the harness".into(),
            explanation: None,
        }),
        ..failure(
            "policy_violation",
            "The change touches paths the diff policy does not allow; no PR was opened.",
        )
    });
    insta::assert_snapshot!(comment);
}

#[test]
fn budget_exhausted_comment() {
    let comment = failed_comment(Failure {
        budget: Some(BudgetSummary {
            budget_usd: Usd::from_dollars(2.1),
            cost_usd: Usd::from_dollars(2.14),
            cost_source: "reported by the harness".into(),
            explanation: Some(
                "`loop:budget-large` asks for $7.50; clamped to $2.10, what is left of today's $10.00 cap."
                    .into(),
            ),
        }),
        ..failure(
            "budget_exhausted",
            "The agent's reported cost reached the run's budget, so it was stopped.",
        )
    });
    insta::assert_snapshot!(comment);
}

#[test]
fn published_comment() {
    let comment = outcome_comment(&CommentInput {
        issue_number: 42,
        run_id: "r-20250102-0001".into(),
        outcome: RunOutcome::Published {
            pr_number: 57,
            pr_url: "https://github.com/acme/api/pull/57".into(),
            draft: true,
            updated: false,
            budget: Some(BudgetSummary {
                budget_usd: Usd::from_dollars(5.0),
                cost_usd: Usd::from_dollars(0.42),
                cost_source: "reported by the harness".into(),
                explanation: None,
            }),
        },
    });
    assert!(comment.starts_with(&comment_marker(42)));
    insta::assert_snapshot!(comment);
}

fn distrust(reason: DistrustReason) -> Distrust {
    Distrust {
        label: "loop:approved".into(),
        reason,
        detail: String::new(),
        say_so_in_comment: true,
        applied_by: Some("maint".into()),
        applied_at: Some("2025-01-01T09:00:00Z".parse().expect("valid timestamp")),
        applier_permission: None,
        edited_by: Some("drive-by".into()),
        edited_at: Some("2025-01-01T10:30:00Z".parse().expect("valid timestamp")),
    }
}

#[test]
fn trust_comments() {
    insta::assert_snapshot!(
        "body_edited_after_label",
        trust_comment(42, &distrust(DistrustReason::BodyEditedAfterLabel))
    );
    let untrusted = Distrust {
        applied_by: Some("drive-by".into()),
        ..distrust(DistrustReason::ApplierCannotWrite)
    };
    insta::assert_snapshot!("untrusted_label", trust_comment(42, &untrusted));
    // GitHub's REST API names no editor: said in words, never a broken `@(unknown)` mention.
    let unknown_editor = Distrust {
        edited_by: Some("(unknown)".into()),
        ..distrust(DistrustReason::BodyEditedAfterLabel)
    };
    let text = trust_comment(42, &unknown_editor);
    assert!(!text.contains("@(unknown)"), "{text}");
    assert!(
        text.contains("edited by an account GitHub does not name"),
        "{text}"
    );
    assert!(
        text.contains("cannot confirm that the editor has write permission"),
        "{text}"
    );
}

#[test]
fn stale_claim_comment() {
    insta::assert_snapshot!(takeover_comment(&TakeoverCommentInput {
        issue_number: 42,
        run_id: "r-20250102-0004".into(),
        claim_label: "loop:in-progress".into(),
        claimed_at: "2025-01-01T21:00:00Z".parse().expect("valid timestamp"),
        now: "2025-01-02T00:10:00Z".parse().expect("valid timestamp"),
        stale_after: Duration::from_secs(3600),
        lease: None,
    }));
}

#[test]
fn expired_lease_comment() {
    insta::assert_snapshot!(takeover_comment(&TakeoverCommentInput {
        issue_number: 42,
        run_id: "r-20250102-0004".into(),
        claim_label: "loop:in-progress".into(),
        claimed_at: "2025-01-01T21:00:00Z".parse().expect("valid timestamp"),
        now: "2025-01-02T00:10:00Z".parse().expect("valid timestamp"),
        stale_after: Duration::from_secs(3600),
        lease: Some(issueloop_triage::LeaseFacts {
            holder: "r-20250101-0001".into(),
            expires: "2025-01-02T00:05:00Z".parse().expect("valid timestamp"),
            ttl: Duration::from_secs(180),
        }),
    }));
}

#[test]
fn pr_body_carries_markers_and_closes_the_issue() {
    let body = pr_body(&success_input());
    assert!(body.starts_with(BOT_SECTION_BEGIN));
    assert!(body.ends_with(BOT_SECTION_END));
    assert!(body.contains(&pr_marker(42)));
    assert!(body.contains("\nCloses #42\n"));
    assert_eq!(marked_issue(&body), Some(42));
    assert_eq!(marked_issue("<!-- issueloop:issue=4x -->"), None);
    assert_eq!(marked_issue("no marker"), None);
    // The agent's own closing keywords and mentions are defused.
    assert!(!body.contains("fixes #42") && !body.contains("closes #7"));
    assert!(!body.contains("@maintainer"));
    assert_eq!(body.matches("Closes #").count(), 1);
}

#[test]
fn replacing_the_bot_section_keeps_what_people_wrote() {
    let old = pr_body(&clamped_input());
    let existing =
        format!("Reviewer note: please look at the fetch path.\n\n{old}\n\nMore notes after.\n");
    let new = pr_body(&success_input());
    let updated = replace_bot_section(&existing, &new);
    assert!(updated.starts_with("Reviewer note: please look at the fetch path.\n\n"));
    assert!(updated.ends_with("\n\nMore notes after.\n"));
    assert!(updated.contains(&new));
    assert!(!updated.contains("mirror fetch"), "the old section is gone");
    assert_eq!(updated.matches(BOT_SECTION_BEGIN).count(), 1);

    // Idempotent: replacing again with the same section changes nothing.
    assert_eq!(replace_bot_section(&updated, &new), updated);

    // Markers deleted by a person: the section is appended, their text kept as written.
    let edited = "Rewritten by hand.\n<!-- issueloop:begin -->\nstray";
    let repaired = replace_bot_section(edited, &new);
    assert!(
        repaired.starts_with("Rewritten by hand.\n\nstray\n\n"),
        "{repaired}"
    );
    assert!(repaired.ends_with(BOT_SECTION_END));
    assert_eq!(repaired.matches(BOT_SECTION_BEGIN).count(), 1);

    // An empty body becomes just the section.
    assert_eq!(replace_bot_section("", &new), new);
}

#[test]
fn replacing_shrinks_the_bot_section_to_fit_next_to_long_human_text() {
    let human = "é".repeat(60_000);
    let mut input = success_input();
    input.summary = "word ".repeat(3_000);
    let updated = replace_bot_section(&format!("{human}\n"), &pr_body(&input));
    assert!(updated.starts_with(&human));
    assert!(updated.chars().count() <= GITHUB_TEXT_LIMIT);
    assert!(updated.contains(&pr_marker(42)));
    assert!(updated.ends_with(BOT_SECTION_END));

    let no_room = "x".repeat(GITHUB_TEXT_LIMIT - 100);
    let updated = replace_bot_section(&no_room, &pr_body(&input));
    assert!(updated.contains(&pr_marker(42)) && updated.contains("Closes #42"));
}

/// True when every code fence in `text` is closed.
fn fences_balanced(text: &str) -> bool {
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let t = line.trim_start_matches(' ');
        if line.len() - t.len() > 3 {
            continue;
        }
        let Some(ch) = t.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let run = t.chars().take_while(|c| *c == ch).count();
        match open {
            None if run >= 3 => open = Some((ch, run)),
            Some((c, n)) if c == ch && run >= n && t[run..].trim().is_empty() => open = None,
            _ => {}
        }
    }
    open.is_none()
}

#[test]
fn huge_inputs_stay_within_githubs_limit_with_fences_closed() {
    let line = "E   assert frobnicate(x) == 42 — ✗ 😀 ``` ~~~\n";
    let huge_output = line.repeat(20_000);
    let mut input = success_input();
    input.summary = format!("```text\n{}", "summary line 😀\n".repeat(20_000));
    input.issue_title = "t".repeat(10_000);
    input.gates = (0..200)
        .map(|i| GateRow {
            repo: Some(format!("acme/r{i}")),
            name: format!("gate-{i} {}", "arg ".repeat(100)),
            status: "failed".into(),
            duration: secs(1.0),
            exit_code: Some(1),
            excerpt: Some(huge_output.clone()),
        })
        .collect();
    input.policy.violations = (0..500).map(|i| format!("path/{i}: denied")).collect();
    input.diff.per_file = (0..5_000)
        .map(|i| FileStat {
            repo: None,
            path: format!("src/{i}.rs"),
            insertions: 1,
            deletions: 1,
        })
        .collect();
    input.diff.files = 5_000;
    let body = pr_body(&input);
    let units: usize = body.chars().map(char::len_utf16).sum();
    assert!(units <= GITHUB_TEXT_LIMIT, "{units}");
    assert!(fences_balanced(&body));
    assert!(body.ends_with(BOT_SECTION_END));
    assert!(body.contains("… and 4950 more files"));

    let comment = failed_comment(Failure {
        gates: input.gates.clone(),
        policy: Some(input.policy.clone()),
        ..failure("gates_failed", &"reason ".repeat(20_000))
    });
    let units: usize = comment.chars().map(char::len_utf16).sum();
    assert!(units <= GITHUB_TEXT_LIMIT, "{units}");
    assert!(fences_balanced(&comment));
    assert!(comment.starts_with(&comment_marker(42)));
}

#[test]
fn no_token_reaches_a_body_or_comment() {
    let mut input = success_input();
    input.summary = format!("I used {TOKEN} to push");
    input.issue_title = format!("title {TOKEN}");
    input.gates[0].name = format!("git push https://x-access-token:{TOKEN}@github.com/o/r");
    input.gates[0].status = "failed".into();
    input.gates[0].excerpt = Some(format!("fatal: {TOKEN}\n").repeat(3));
    input.budget.explanation = Some(TOKEN.into());
    input.budget.cost_source = TOKEN.into();
    input.policy = PolicyVerdict {
        ok: false,
        violations: vec![TOKEN.into()],
    };
    input.stages[0].runtime = TOKEN.into();
    input.diff.per_file[0].path = TOKEN.into();
    input.acceptance.items = vec![TOKEN.into()];
    input.run_id = TOKEN.into();
    let body = pr_body(&input);
    assert!(!body.contains(&TOKEN[4..24]), "{body}");
    assert!(body.contains("ghs_[REDACTED]"));

    let comment = failed_comment(Failure {
        gates: input.gates.clone(),
        policy: Some(input.policy.clone()),
        budget: Some(input.budget.clone()),
        ..failure(TOKEN, TOKEN)
    });
    assert!(!comment.contains(&TOKEN[4..24]), "{comment}");

    // A token cut by a length bound must not leave its head behind either.
    let mut long = success_input();
    long.issue_title = format!("{} {TOKEN}", "x".repeat(190));
    assert!(!pr_body(&long).contains("ghs_0123"));
}

#[test]
fn titles() {
    assert_eq!(
        pr_title(42, "Add `--json`\nto status ", false),
        "Add `--json` to status (#42)"
    );
    assert_eq!(pr_title(42, "Fix it", true), "[draft] Fix it (#42)");
    assert_eq!(pr_title(3, "  ", false), "Issue 3 (#3)");
    let long = pr_title(5, &"ü".repeat(1000), true);
    assert_eq!(long.chars().count(), 256);
    assert!(long.ends_with("… (#5)"));
    // A carriage return drops nothing; escapes, NUL and bidi controls never reach the title.
    assert_eq!(
        pr_title(7, "keep this\rand this", false),
        "keep this and this (#7)"
    );
    assert_eq!(
        pr_title(
            7,
            "\u{1b}[31mred\u{1b}[0m \u{1b}]0;t\u{7}nul\u{0} \u{202E}rtl",
            false
        ),
        "red nul rtl (#7)"
    );
}

#[test]
fn acceptance_source_is_stated() {
    let from_title = pr_body(&clamped_input());
    assert_eq!(
        clamped_input().acceptance.source,
        AcceptanceSource::FromTitle
    );
    assert!(from_title.contains("From the issue's title"));
    assert!(from_title.contains("- [ ] Speed up the mirror fetch"));
}

#[test]
fn outside_text_cannot_forge_issueloops_markers() {
    let fake = format!(
        "{BOT_SECTION_END} {BOT_SECTION_BEGIN} {} {}",
        pr_marker(1),
        comment_marker(1)
    );
    let mut input = success_input();
    input.summary = format!("{fake}\n`{fake}`\n```\n{fake}\n```\n");
    input.issue_title = fake.clone();
    input.gates[0].name = fake.clone();
    input.gates[0].status = "failed".into();
    input.gates[0].excerpt = Some(fake.clone());
    input.budget.explanation = Some(fake.clone());
    input.budget.cost_source = fake.clone();
    input.policy = PolicyVerdict {
        ok: false,
        violations: vec![fake.clone()],
    };
    input.stages[0].stage = fake.clone();
    input.stages[0].runtime = fake.clone();
    input.diff.per_file[0].path = fake.clone();
    input.acceptance.items = vec![fake.clone()];
    input.run_id = fake.clone();
    let body = pr_body(&input);
    assert_eq!(
        body.matches("<!--").count(),
        3,
        "only begin, issue marker and end: {body}"
    );
    assert_eq!(marked_issue(&body), Some(42));
    let updated = replace_bot_section(
        &format!("before\n{body}\nafter"),
        &pr_body(&success_input()),
    );
    assert_eq!(
        updated,
        format!("before\n{}\nafter", pr_body(&success_input()))
    );

    let comment = failed_comment(Failure {
        gates: input.gates.clone(),
        policy: Some(input.policy.clone()),
        budget: Some(input.budget.clone()),
        ..failure(&fake, &fake)
    });
    assert_eq!(comment.matches("<!--").count(), 1, "{comment}");
}
