//! The shipped workflow, executed: `.github/workflows/issueloop.yml`'s `tick` job runs step by
//! step as a hosted runner would run it (bash `-eo pipefail`, the runner's variables and files,
//! its `${{ }}` expressions and `if:` conditions), in a clone of a repository set up as the
//! README says (an `issueloop.toml` at the root, found without `--config`), against a fake
//! GitHub. `uses:` steps do what their documentation says (see `tests/support/workflow.rs`).
//!
//! The agent: Claude Code's install step puts a stand-in `claude` on `PATH` that answers with
//! the scripted agent in Claude Code's own stream-json. That runs the template as shipped: its
//! default backend (`claude_code`), the real argv issueloop builds for it, and the template's
//! `ANTHROPIC_API_KEY` wiring, which a `command` backend in the configuration would bypass.

mod support;

use std::collections::BTreeMap;

use support::workflow::{ActionsWorld, Event, StepStatus, V, eval};

use StepStatus::{Failed, Skipped, Succeeded};

const REPO: &str = support::REPO;

#[track_caller]
fn assert_steps(job: &support::workflow::JobRun, expected: &[(&str, StepStatus)]) {
    let actual = job.statuses();
    let names: Vec<String> = actual.iter().map(|(n, s)| format!("{n} [{s:?}]")).collect();
    assert_eq!(actual.len(), expected.len(), "{names:#?}\n{}", job.log());
    for ((name, status), (prefix, want)) in actual.iter().zip(expected) {
        assert!(
            name.starts_with(prefix) && status == want,
            "step `{name}` is {status:?}; expected `{prefix}…` {want:?}\n{names:#?}\n{}",
            job.log()
        );
    }
}

#[test]
fn a_scheduled_tick_opens_one_draft_pr_reports_it_and_keeps_the_ledger() {
    let mut w = ActionsWorld::new();
    let good = w.approved_issue(
        "Add feature",
        "scenario: good\ncost: 0.40\n\n## Acceptance\n- [ ] feature() returns 42\n",
    );
    let denied = w.approved_issue("Tighten CI", "scenario: denied\ncost: 0.25\n");

    let job = w.tick(&Event::schedule());

    // The job: every step in order, the compile skipped on the cache hit, the App token step
    // skipped without `vars.ISSUELOOP_APP_ID`, and the tick green although one run failed (a
    // refused diff is a designed outcome, reported on the issue).
    assert_steps(
        &job,
        &[
            ("Run actions/checkout", Succeeded),
            ("Restore the issueloop binary", Succeeded),
            ("Build issueloop", Skipped),
            ("Put issueloop on PATH", Succeeded),
            ("Run astral-sh/setup-uv", Succeeded),
            ("Install Claude Code", Succeeded),
            ("GitHub App token", Skipped),
            ("Tick", Succeeded),
        ],
    );
    assert!(job.succeeded(), "{}", job.log());
    assert_eq!(job.step("Tick").exit_code, Some(0), "{}", job.log());

    // Exactly one draft PR, for the good issue.
    let pulls = w.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}\n{}", job.log());
    let pr = &pulls[0];
    assert!(pr.draft && pr.open, "{pr:#?}");
    assert_eq!(pr.head, format!("loop/{good}-add-feature"));
    assert_eq!(pr.base, "main");
    assert!(pr.body.contains(&format!("Closes #{good}")), "{}", pr.body);
    // The PR's branch, and the ledger's: the state lives on GitHub, not on the runner.
    assert_eq!(
        w.remote_branches(),
        vec![
            "issueloop/state".to_owned(),
            format!("loop/{good}-add-feature")
        ]
    );
    let labels = w.fake.issue(REPO, denied).unwrap().labels;
    assert!(labels.contains(&"loop:failed".to_owned()), "{labels:?}");

    // The job summary: the tick's table with the PR row and the failed row, and the ledger.
    let summary = &job.summary;
    assert!(summary.contains("## issueloop tick"), "{summary}");
    let pr_url = format!("/{REPO}/pull/{}", pr.number);
    let pr_row = summary
        .lines()
        .find(|l| l.starts_with(&format!("| {REPO}#{good} Add feature |")))
        .unwrap_or_else(|| panic!("no row for #{good}:\n{summary}"));
    assert!(
        pr_row.contains("| PR opened |")
            && pr_row.contains("$0.40 / $1.00")
            && pr_row.contains(&format!("[#{}]", pr.number))
            && pr_row.contains(&pr_url),
        "{pr_row}"
    );
    let failed_row = summary
        .lines()
        .find(|l| l.starts_with(&format!("| {REPO}#{denied} Tighten CI |")))
        .unwrap_or_else(|| panic!("no row for #{denied}:\n{summary}"));
    assert!(
        failed_row.contains("| failed |") && failed_row.contains("`policy_violation`"),
        "{failed_row}"
    );
    assert!(
        summary.contains("$0.65 spent, $0.00 reserved, $9.35 left of the $10.00 daily cap"),
        "{summary}"
    );

    // The annotations on stdout: one error for the refused change, none for the PR.
    let annotations = job.annotations();
    assert_eq!(annotations.len(), 1, "{annotations:#?}\n{}", job.log());
    assert!(
        annotations[0].starts_with(&format!(
            "::error title=issueloop%3A {REPO}#{denied} failed (policy_violation)::Tighten CI: "
        )),
        "{}",
        annotations[0]
    );
    assert!(
        job.step("Tick").stdout.lines().any(|l| l == annotations[0]),
        "printed on the tick's stdout"
    );

    // The agent ran as Claude Code, with the template's key and without a GitHub token.
    let calls = std::fs::read_to_string(job.home.join(".claude/claude-standin.log")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 4, "two runs:\n{calls}");
    for pair in lines.chunks(2) {
        assert!(
            pair[0].starts_with("argv: -p --output-format stream-json --verbose"),
            "{calls}"
        );
        assert_eq!(pair[1], "ANTHROPIC_API_KEY=set GITHUB_TOKEN=", "{calls}");
    }

    // The checkout keeps no credentials for the agent to find.
    let config = std::fs::read_to_string(job.workspace.join(".git/config")).unwrap();
    assert!(!config.contains("extraheader"), "{config}");

    // The token appears nowhere the job printed or summarised.
    assert!(
        !job.log().contains(issueloop_fake_github::TOKEN),
        "the token was printed:\n{}",
        job.log()
    );

    // Nothing of the state went into the Actions cache: only the binary is there.
    assert_eq!(
        w.runner.cache_keys().len(),
        1,
        "{:?}",
        w.runner.cache_keys()
    );
    assert!(
        w.runner.cache_keys()[0].starts_with("issueloop-bin-"),
        "{:?}",
        w.runner.cache_keys()
    );

    // The next scheduled tick, on a fresh runner with nothing restored, replays the ledger from
    // the state branch: the day's spend is still known, the PR is not opened again, and nothing
    // is charged twice.
    let again = w.tick(&Event::schedule());
    assert!(again.succeeded(), "{}", again.log());
    assert_eq!(again.step("Tick").exit_code, Some(0));
    assert_eq!(w.fake.pulls(REPO).len(), 1, "{:#?}", w.fake.pulls(REPO));
    assert!(
        again
            .summary
            .contains("$0.65 spent, $0.00 reserved, $9.35 left of the $10.00 daily cap"),
        "{}",
        again.summary
    );
    assert!(
        !again.home.join(".claude/claude-standin.log").exists(),
        "no agent ran again"
    );
    assert_eq!(
        w.runner.cache_keys().len(),
        1,
        "{:?}",
        w.runner.cache_keys()
    );

    // Any machine with the token reads the same day from the branch: a folder with nothing but
    // the repository's configuration (no state file, no cache) shows the day's spend.
    let ledger = w.ledger_show_elsewhere("operator");
    assert_eq!(
        (
            &ledger["spent_usd"],
            &ledger["reserved_usd"],
            &ledger["runs_today"]
        ),
        (&0.65.into(), &0.0.into(), &2.into()),
        "{ledger:#}"
    );
    let states: Vec<&str> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["settled", "settled"], "{ledger:#}");
}

#[test]
fn manual_runs_refuse_a_bad_issue_number_write_nothing_on_a_dry_run_and_take_one_issue() {
    let mut w = ActionsWorld::new();
    let n = w.approved_issue("Add feature", "scenario: good\n");

    // `issue` must be a number: the step fails with exit 2 and an annotation, before issueloop
    // starts.
    let job = w.tick(&Event::dispatch(&[("issue", "abc")]));
    assert!(!job.succeeded(), "{}", job.log());
    let tick = job.step("Tick");
    assert_eq!(
        (tick.status, tick.exit_code),
        (Failed, Some(2)),
        "{}",
        job.log()
    );
    assert_eq!(
        job.annotations(),
        vec!["::error::issue must be a number, got 'abc'".to_owned()]
    );
    assert!(w.writes().is_empty(), "{:#?}", w.writes());
    assert!(w.fake.pulls(REPO).is_empty());

    // A dry run reads everything and writes nothing: no request that writes, no branch (not
    // even the state branch), nothing cached.
    let keys_before = w.runner.cache_keys().to_vec();
    let job = w.tick(&Event::dispatch(&[("dry_run", "true")]));
    assert!(job.succeeded(), "{}", job.log());
    assert_eq!(job.step("Tick").exit_code, Some(0), "{}", job.log());
    assert!(w.writes().is_empty(), "{:#?}", w.writes());
    assert!(w.remote_branches().is_empty(), "{:?}", w.remote_branches());
    assert!(w.fake.pulls(REPO).is_empty());
    assert_eq!(w.runner.cache_keys(), keys_before.as_slice());
    assert!(
        !job.home.join(".claude/claude-standin.log").exists(),
        "no agent ran"
    );
    let row = job
        .summary
        .lines()
        .find(|l| l.starts_with(&format!("| {REPO}#{n} Add feature |")))
        .unwrap_or_else(|| panic!("no row for #{n}:\n{}", job.summary));
    assert!(row.contains("`dry_run`"), "{row}");
    let labels = w.fake.issue(REPO, n).unwrap().labels;
    assert_eq!(labels, vec!["loop:approved".to_owned()]);

    // `issue` set: that issue only.
    let other = w.approved_issue("Add another feature", "scenario: good\n");
    let job = w.tick(&Event::dispatch(&[("issue", &other.to_string())]));
    assert!(job.succeeded(), "{}", job.log());
    let pulls = w.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0].head, format!("loop/{other}-add-another-feature"));
    assert!(pulls[0].draft);
    assert_eq!(
        w.fake.issue(REPO, n).unwrap().labels,
        vec!["loop:approved".to_owned()],
        "the other issue is left alone"
    );
}

/// The emulated expression language agrees with Actions on the forms the workflows use.
#[test]
fn expressions_evaluate_as_actions_does() {
    let ctx: BTreeMap<&str, V> = [
        ("inputs.dry_run", V::Null),
        ("inputs.flag", V::Bool(true)),
        ("inputs.issue", V::Str(String::new())),
        ("steps.app.outputs.token", V::Null),
        ("secrets.GITHUB_TOKEN", V::Str("t".into())),
        ("vars.ISSUELOOP_APP_ID", V::Null),
        ("steps.binary.outputs.cache-hit", V::Str("true".into())),
    ]
    .into();
    let lookup = |path: &[&str]| {
        ctx.get(path.join(".").as_str())
            .cloned()
            .ok_or_else(|| format!("unknown `{}`", path.join(".")))
    };
    let table: &[(&str, bool, Result<V, ()>)] = &[
        // A schedule has no inputs: null is not `true`.
        ("inputs.dry_run != true", false, Ok(V::Bool(true))),
        ("inputs.flag != true", false, Ok(V::Bool(false))),
        (
            "always() && inputs.dry_run != true",
            true,
            Ok(V::Bool(true)),
        ),
        ("success()", true, Ok(V::Bool(false))),
        ("failure()", true, Ok(V::Bool(true))),
        // `||` yields the first truthy operand itself.
        (
            "steps.app.outputs.token || secrets.GITHUB_TOKEN",
            false,
            Ok(V::Str("t".into())),
        ),
        ("vars.ISSUELOOP_APP_ID != ''", false, Ok(V::Bool(false))),
        (
            "steps.binary.outputs.cache-hit != 'true'",
            false,
            Ok(V::Bool(false)),
        ),
        // Strings compare ignoring case; mixed types as numbers.
        ("'TRUE' == 'true'", false, Ok(V::Bool(true))),
        ("inputs.issue == 0", false, Ok(V::Bool(true))),
        ("!(inputs.issue)", false, Ok(V::Bool(true))),
        // Anything else fails loudly.
        ("github.event.issue.title", false, Err(())),
        ("contains(inputs.issue, 'x')", false, Err(())),
        ("fromJSON('1') == 1", false, Err(())),
        ("inputs.issue > 1", false, Err(())),
    ];
    for (src, failed, want) in table {
        let got = eval(src, &lookup, *failed).map_err(|_| ());
        assert_eq!(&got, want, "`{src}` (a step failed before: {failed})");
    }
}

/// The emulated runner keeps Actions' rules that the template relies on: `$GITHUB_ENV`,
/// `$GITHUB_OUTPUT` (with a multi-line value) and `$GITHUB_PATH` reach later steps; `-o
/// pipefail` fails a pipeline; after a failure, steps without a status function are skipped
/// while `always()` and `failure()` run; the step's `env:` and `${{ env.X }}` see the workflow's
/// variables.
#[test]
fn the_emulated_runner_keeps_the_rules_the_template_relies_on() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("rules.yml");
    std::fs::write(
        &workflow,
        r#"
on: workflow_dispatch
env:
  GREETING: hello
jobs:
  rules:
    runs-on: ubuntu-latest
    steps:
      - id: one
        run: |
          echo "FROM_ENV=set-by-one" >> "$GITHUB_ENV"
          printf 'text<<EOF\nline 1\nline 2\nEOF\n' >> "$GITHUB_OUTPUT"
          mkdir -p "$RUNNER_TEMP/bin"
          printf '#!/bin/sh\necho tool ran\n' > "$RUNNER_TEMP/bin/my-tool"
          chmod +x "$RUNNER_TEMP/bin/my-tool"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
      - name: Reads
        env:
          TEXT: ${{ steps.one.outputs.text }}
          WHO: ${{ env.GREETING }} world
        run: |
          test "$FROM_ENV" = set-by-one
          test "$TEXT" = "$(printf 'line 1\nline 2')"
          test "$WHO" = "hello world"
          test "$GITHUB_ACTIONS" = true && test "$CI" = true
          my-tool
      - name: Pipefail
        run: |
          false | true
          echo not reached
      - name: Skipped after a failure
        run: echo no
      - name: Always
        if: always()
        run: exit 0
      - name: On failure
        if: ${{ failure() }}
        run: exit 3
"#,
    )
    .unwrap();
    let mut runner = support::workflow::Runner::new(dir.path(), REPO);
    let job = runner.run_job(&workflow, "rules", &Event::dispatch(&[]));
    assert_steps(
        &job,
        &[
            ("Run echo \"FROM_ENV", Succeeded),
            ("Reads", Succeeded),
            ("Pipefail", Failed),
            ("Skipped after a failure", Skipped),
            ("Always", Succeeded),
            ("On failure", Failed),
        ],
    );
    assert_eq!(job.step("Reads").stdout, "tool ran\n");
    assert_eq!(job.step("Pipefail").exit_code, Some(1));
    assert!(!job.step("Pipefail").stdout.contains("not reached"));
    assert_eq!(job.step("On failure").exit_code, Some(3));
    assert!(!job.succeeded());
}
