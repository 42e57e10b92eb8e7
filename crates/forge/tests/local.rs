//! Scenarios of the local forge, starting from the example files in `docs/forges.md` (so the
//! documented format is the one the code reads).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{git, scenario};
use issueloop_config::{Config, ForgeKind, RepoName};
use issueloop_forge::{
    BusyReason, ClaimOutcome, ClaimRequest, Clock, ForgeError, LocalForge, ManualClock, PollState,
    PrAction, PrRequest, Release, TakeoverReason,
};
use issueloop_publish::comment_marker;
use issueloop_triage::{Permission, SkipReason, claim_stale_after, select};
use tempfile::TempDir;

const DOCS: &str = include_str!("../../../docs/forges.md");

/// The fenced block after `<!-- example: NAME -->` in the docs.
fn doc_example(name: &str) -> String {
    let marker = format!("<!-- example: {name} -->");
    let start = DOCS
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/forges.md has no example {name}"));
    let rest = &DOCS[start + marker.len()..];
    let open = rest.find("```").expect("a fenced block follows");
    let body_start = open + rest[open..].find('\n').expect("fence line ends") + 1;
    let close = rest[body_start..].find("\n```").expect("the fence closes");
    format!("{}\n", &rest[body_start..body_start + close])
}

struct Local {
    dir: TempDir,
    config: Config,
    repo: RepoName,
    clock: Arc<ManualClock>,
}

impl Local {
    fn new() -> Local {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("gitconfig"), "").unwrap();
        git(
            root,
            root,
            &["init", "-q", "--bare", "-b", "main", "widgets.git"],
        );
        git(root, root, &["init", "-q", "-b", "main", "work"]);
        std::fs::write(root.join("work/README.md"), "w\n").unwrap();
        git(root, &root.join("work"), &["add", "."]);
        git(root, &root.join("work"), &["commit", "-q", "-m", "init"]);
        git(
            root,
            &root.join("work"),
            &["push", "-q", "../widgets.git", "main"],
        );

        let folder = root.join("forge/acme/widgets");
        std::fs::create_dir_all(folder.join("issues")).unwrap();
        std::fs::write(folder.join("repo.toml"), doc_example("repo.toml")).unwrap();
        std::fs::write(folder.join("issues/1.md"), doc_example("issues/1.md")).unwrap();
        std::fs::write(
            folder.join("issues/2.md"),
            "+++\ntitle = \"Run this\"\nauthor = \"mallory\"\ncreated_at = \"2025-01-06T09:00:00Z\"\n\
             labels = [\"loop:approved\"]\n\n[[events]]\nlabel = \"loop:approved\"\nactor = \"mallory\"\n\
             at = \"2025-01-06T09:01:00Z\"\n+++\nPlease.\n",
        )
        .unwrap();

        let mut config = Config::builtin(root.to_owned());
        config.forge.kind = ForgeKind::Local;
        config.forge.local_path = issueloop_config::AbsPath::resolve(&config.base_dir, "forge");
        config.repos = vec!["acme/widgets".parse().unwrap()];
        Local {
            clock: Arc::new(ManualClock::new("2025-01-06T10:00:00Z".parse().unwrap())),
            dir,
            config,
            repo: "acme/widgets".parse().unwrap(),
        }
    }

    fn forge(&self) -> LocalForge {
        LocalForge::with_clock(&self.config, self.clock.clone())
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("forge/acme/widgets")
    }

    fn push(&self, branch: &str) {
        let root = self.dir.path();
        let work = root.join("work");
        git(root, &work, &["checkout", "-q", "-B", branch, "main"]);
        std::fs::write(work.join("fix.txt"), "fix\n").unwrap();
        git(root, &work, &["add", "."]);
        git(root, &work, &["commit", "-q", "-m", "fix"]);
        git(
            root,
            &work,
            &[
                "push",
                "-q",
                "../widgets.git",
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.folder().join(rel)).unwrap()
    }

    fn claim_request(&self, info_sha: &str) -> ClaimRequest {
        ClaimRequest {
            repo: self.repo.clone(),
            issue: 1,
            branch: "loop/1-parser".into(),
            base_sha: info_sha.into(),
            current: None,
            stale_after: Duration::from_secs(3600),
            takeover_comment: None,
            holder: "test-run".into(),
            lease_ttl: Duration::from_secs(180),
            dead_holder: None,
        }
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test]
async fn the_documented_folder_serves_a_whole_run() {
    scenario(async {
        let l = Local::new();
        let forge = l.forge();
        let mut poll = PollState::default();
        let candidates = forge
            .candidates(&l.repo, poll.repo_mut(&l.repo))
            .await
            .unwrap();
        assert_eq!(candidates.len(), 2);
        assert_eq!(
            candidates[0].permissions.get("alice"),
            Some(&Permission::Maintain)
        );
        assert_eq!(
            candidates[1].permissions.get("mallory"),
            Some(&Permission::Triage)
        );
        let labels = &l.config.labels;
        let selection = select(
            &candidates,
            labels,
            l.clock.now(),
            |f| claim_stale_after(&l.config.budget, labels, f),
            2,
        );
        let picked: Vec<u64> = selection.selected.iter().map(|s| s.number).collect();
        assert_eq!(picked, vec![1]);
        assert_eq!(selection.skipped[0].reason, SkipReason::UntrustedLabel);

        let info = forge.repo_info(&l.repo).await.unwrap();
        assert_eq!(info.default_branch, "main");
        assert_eq!(
            Path::new(&info.clone_url),
            std::fs::canonicalize(l.dir.path().join("widgets.git")).unwrap()
        );
        let ClaimOutcome::Acquired(claim) =
            forge.claim(&l.claim_request(&info.head_sha)).await.unwrap()
        else {
            panic!("claim refused");
        };
        assert!(exists(&l.folder().join("claims/1.lock")));
        assert!(
            l.read("issues/1.md")
                .contains("label = \"loop:in-progress\"")
        );
        // Another process (another forge) is turned away.
        let other = l.forge();
        assert!(matches!(
            other.claim(&l.claim_request(&info.head_sha)).await.unwrap(),
            ClaimOutcome::Busy(BusyReason::ClaimedByAnotherRun { .. })
        ));

        let target = forge.push_target(&l.repo).await.unwrap();
        assert!(target.credentials.is_none());
        let req = PrRequest {
            repo: l.repo.clone(),
            issue: 1,
            branch: "loop/1-parser".into(),
            base: "main".into(),
            title: "Parser accepts empty input (#1)".into(),
            body: "First attempt.".into(),
            known: None,
        };
        let err = forge.publish_pr(&req).await.unwrap_err();
        assert!(
            err.to_string().contains("push it before opening the PR"),
            "{err}"
        );
        l.push("loop/1-parser");
        let first = forge.publish_pr(&req).await.unwrap();
        assert_eq!(first.action, PrAction::Created);
        assert_eq!(first.pr.number, 3, "numbers are shared with issues");
        let second = forge
            .publish_pr(&PrRequest {
                body: "Second attempt.".into(),
                ..req.clone()
            })
            .await
            .unwrap();
        assert_eq!((second.action, second.pr.number), (PrAction::Updated, 3));
        let pr_file = l.read("pulls/3.md");
        assert!(
            pr_file.contains("Second attempt.") && !pr_file.contains("First attempt."),
            "{pr_file}"
        );
        assert_eq!(pr_file.matches("Closes #1").count(), 1, "{pr_file}");
        assert!(!l.folder().join("pulls/4.md").exists());

        for text in ["Working on it.", "Opened a draft PR."] {
            forge
                .upsert_comment(&l.repo, 1, &comment_marker(1), text)
                .await
                .unwrap();
        }
        forge
            .add_labels(&l.repo, 1, std::slice::from_ref(&labels.pr_opened))
            .await
            .unwrap();
        forge.release(&claim, Release::KeepBranch).await.unwrap();

        let issue = l.read("issues/1.md");
        assert_eq!(issue.matches("[[comments]]").count(), 1, "{issue}");
        assert!(issue.contains("Opened a draft PR.") && !issue.contains("Working on it."));
        assert!(
            issue.contains("labels = [\n    \"loop:approved\",\n    \"loop:pr-opened\",\n]")
                || issue.contains("labels = [\"loop:approved\", \"loop:pr-opened\"]"),
            "{issue}"
        );
        assert!(!exists(&l.folder().join("claims/1.lock")));

        let facts = forge.issue_facts(&l.repo, 1).await.unwrap().unwrap();
        assert_eq!(facts.open_pr.map(|p| p.number), Some(3));
        assert_eq!(facts.claim, None);
    })
    .await;
}

#[tokio::test]
async fn a_stale_local_claim_is_taken_over_once() {
    scenario(async {
        let l = Local::new();
        let forge = l.forge();
        let info = forge.repo_info(&l.repo).await.unwrap();
        assert!(matches!(
            forge.claim(&l.claim_request(&info.head_sha)).await.unwrap(),
            ClaimOutcome::Acquired(_)
        ));
        l.clock.advance(Duration::from_secs(2 * 3600));
        let (a, b) = (l.forge(), l.forge());
        let req = l.claim_request(&info.head_sha);
        let (ra, rb) = tokio::join!(a.claim(&req), b.claim(&req));
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let taken: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                ClaimOutcome::Acquired(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(taken.len(), 1, "{outcomes:?}");
        assert!(matches!(
            taken[0].took_over,
            Some(TakeoverReason::LeaseExpired { .. })
        ));
        assert!(l.read("issues/1.md").contains("issueloop:takeover"));
        // The new claim carries a fresh lease: not expired for the next runner.
        let facts = forge.issue_facts(&l.repo, 1).await.unwrap().unwrap();
        let claim = facts.claim.expect("claimed");
        assert_eq!(claim.at, l.clock.now());
        assert_eq!(claim.lease.map(|l| l.expires), Some(taken[0].lease.expires));
        a.release(&taken[0], Release::DeleteBranch).await.unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(l.folder().join("claims"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    })
    .await;
}

#[tokio::test]
async fn malformed_local_files_are_named() {
    scenario(async {
        let l = Local::new();
        std::fs::write(
            l.folder().join("issues/5.md"),
            "+++\ntitle = \"x\"\ncreated_at = \"soon\"\n+++\n",
        )
        .unwrap();
        let err = l
            .forge()
            .candidates(&l.repo, PollState::default().repo_mut(&l.repo))
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Local { .. }));
        let text = err.to_string();
        assert!(
            text.contains("issues/5.md") && text.contains("front matter"),
            "{text}"
        );

        let missing: RepoName = "acme/none".parse().unwrap();
        let err = l.forge().repo_info(&missing).await.unwrap_err();
        assert!(
            err.to_string().contains("repository `acme/none` not found"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_renewed_lease_is_never_taken_over_and_a_lost_one_is_reported() {
    scenario(async {
        let l = Local::new();
        let a = l.forge();
        let info = a.repo_info(&l.repo).await.unwrap();
        let ClaimOutcome::Acquired(held) = a.claim(&l.claim_request(&info.head_sha)).await.unwrap()
        else {
            panic!("first claim refused");
        };
        let ttl = Duration::from_secs(180);
        // The claim grows far older than any age limit, but its lease is renewed in time.
        let mut req = l.claim_request(&info.head_sha);
        req.holder = "run-b".into();
        req.stale_after = Duration::from_secs(60);
        for _ in 0..5 {
            l.clock.advance(Duration::from_secs(100));
            assert_eq!(
                a.renew(&held, ttl).await.unwrap(),
                issueloop_forge::Renewal::Renewed {
                    expires: issueloop_forge::clock::add(l.clock.now(), ttl)
                }
            );
            let b = l.forge();
            req.current = b.issue_facts(&l.repo, 1).await.unwrap().unwrap().claim;
            match b.claim(&req).await.unwrap() {
                ClaimOutcome::Busy(BusyReason::ClaimedByAnotherRun { .. }) => {}
                other => panic!("a renewed lease was taken: {other:?}"),
            }
        }
        // No renewal for longer than the TTL plus its margin: run B takes over.
        l.clock.advance(Duration::from_secs(241));
        let b = l.forge();
        req.current = b.issue_facts(&l.repo, 1).await.unwrap().unwrap().claim;
        let ClaimOutcome::Acquired(taken) = b.claim(&req).await.unwrap() else {
            panic!("an expired lease was not taken over");
        };
        assert!(
            matches!(&taken.took_over, Some(TakeoverReason::LeaseExpired { holder, .. }) if holder == "test-run"),
            "{:?}",
            taken.took_over
        );
        // The first run's next renewal learns it lost, and its release leaves B's claim alone.
        assert_eq!(
            a.renew(&held, ttl).await.unwrap(),
            issueloop_forge::Renewal::Lost {
                holder: Some("run-b".into())
            }
        );
        a.release(&held, Release::DeleteBranch).await.unwrap();
        assert!(l.read("claims/1.lock").contains("run-b"));
        assert!(l.read("issues/1.md").contains("loop:in-progress"));
    })
    .await;
}
