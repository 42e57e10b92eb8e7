//! The fake GitHub checks what it is sent: these tests make sure it would catch a forge bug
//! (an unknown route, a body GitHub's schema rejects, an undocumented query parameter), and that
//! it paginates and answers conditional requests like GitHub.

#![expect(clippy::unwrap_used, reason = "a test: a failed step fails it loudly")]

mod common;

use common::{REPO, World, scenario};
use issueloop_fake_github::{FakeGithub, RepoSpec, TOKEN};
use octocrab::Octocrab;
use serde_json::json;

async fn client(fake: &FakeGithub) -> Octocrab {
    Octocrab::builder()
        .base_uri(fake.api_url())
        .unwrap()
        .personal_token(TOKEN.to_owned())
        .build()
        .unwrap()
}

#[tokio::test]
async fn unexpected_requests_are_recorded_as_problems() {
    scenario(async {
        let fake = FakeGithub::start().await;
        fake.add_repo(RepoSpec::new(REPO));
        let n = fake.add_issue(REPO, "t", "b", "bob", None);
        let c = client(&fake).await;

        c._get("/repos/acme/widgets/issues").await.unwrap();
        assert!(fake.problems().is_empty(), "{:?}", fake.problems());

        c._put("/repos/acme/widgets/issues", None::<&()>)
            .await
            .unwrap();
        c._get("/repos/acme/widgets/issues?colour=red")
            .await
            .unwrap();
        c._get("/repos/acme/widgets/issues?state=shut")
            .await
            .unwrap();
        let r = c
            ._post(
                "/repos/acme/widgets/pulls",
                Some(&json!({"head": "x", "darft": true})),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        c._post(
            format!("/repos/acme/widgets/issues/{n}/labels"),
            Some(&json!({"labels": []})),
        )
        .await
        .unwrap();
        let problems = fake.problems();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("PUT /repos/acme/widgets/issues"));
        assert!(problems[1].contains("`colour` is not documented"));
        assert!(problems[2].contains("\"shut\" is not one of"));
        assert!(problems[3].contains("`base`") && problems[3].contains("`darft`"));
        assert!(problems[4].contains("at least 1"));
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_no_unexpected()));
        assert!(panicked.is_err());
    })
    .await;
}

#[tokio::test]
async fn listings_paginate_and_conditional_requests_get_304() {
    scenario(async {
        let fake = FakeGithub::start().await;
        fake.add_repo(RepoSpec::new(REPO));
        for i in 0..5 {
            fake.add_issue(REPO, &format!("issue {i}"), "", "bob", None);
        }
        let c = client(&fake).await;
        let r = c
            ._get("/repos/acme/widgets/issues?per_page=2")
            .await
            .unwrap();
        let link = r
            .headers()
            .get("link")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(link.contains("page=2>; rel=\"next\""), "{link}");
        assert!(link.contains("page=3>; rel=\"last\""), "{link}");
        let etag = r.headers().get("etag").unwrap().clone();
        let before = fake.rate_remaining();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::IF_NONE_MATCH, etag);
        let r = c
            ._get_with_headers("/repos/acme/widgets/issues?per_page=2", Some(headers))
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(fake.rate_remaining(), before, "a 304 costs nothing");
        fake.assert_no_unexpected();
    })
    .await;
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    scenario(async {
        let fake = FakeGithub::start().await;
        fake.add_repo(RepoSpec::new(REPO));
        let c = Octocrab::builder()
            .base_uri(fake.api_url())
            .unwrap()
            .build()
            .unwrap();
        let r = c._get("/repos/acme/widgets").await.unwrap();
        assert_eq!(r.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn the_token_never_reaches_a_log_line() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    scenario(async {
        let w = World::new().await;
        let n = w.approved_issue("Logged");
        let forge = w.forge().await;
        let mut poll = issueloop_forge::PollState::default();
        forge
            .candidates(&w.repo, poll.repo_mut(&w.repo))
            .await
            .unwrap();
        forge
            .upsert_comment(&w.repo, n, "<!-- m -->", "hi")
            .await
            .unwrap();
        w.fake.add_repo(RepoSpec::new("acme/remote"));
        let target = forge
            .push_target(&"acme/remote".parse().unwrap())
            .await
            .unwrap();
        assert!(target.credentials.is_some());
        tracing::info!(?target, "push target");
    })
    .await;
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("github request"), "logs were captured");
    assert!(!text.contains(TOKEN), "the token leaked into the logs");
}
