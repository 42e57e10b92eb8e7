//! Talking to a remote: its URL (never with credentials in it), credentials handed to libgit2
//! by callback only, and a deadline on every network operation.

use std::cell::Cell;
use std::time::{Duration, Instant};

use git2::{Cred, CredentialType, RemoteCallbacks};
use issueloop_config::Secret;

use crate::error::WorkspaceError;

/// Credentials for an HTTPS remote (a GitHub token: username `x-access-token`).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub token: Secret,
}

impl Credentials {
    /// Credentials for a GitHub token (installation or personal).
    pub fn github_token(token: Secret) -> Self {
        Self {
            username: "x-access-token".to_owned(),
            token,
        }
    }
}

/// A remote repository: its URL (`https://…`, `file://…` or a local path) and the credentials
/// to use, which libgit2 receives through a callback and never stores.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    pub url: String,
    pub credentials: Option<Credentials>,
}

impl RemoteSpec {
    pub fn new(url: impl Into<String>, credentials: Option<Credentials>) -> Self {
        Self {
            url: url.into(),
            credentials,
        }
    }

    /// Refuse a URL that carries credentials (`https://user:token@host/…`): they would end up
    /// in error messages, logs and `FETCH_HEAD`.
    pub(crate) fn checked_url(&self) -> Result<&str, WorkspaceError> {
        let url = self.url.as_str();
        if let Some((scheme, rest)) = url.split_once("://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if let Some((userinfo, host)) = authority.rsplit_once('@') {
                let web =
                    scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http");
                if web || userinfo.contains(':') {
                    let path = rest.get(authority.len()..).unwrap_or_default();
                    return Err(WorkspaceError::CredentialsInUrl {
                        redacted: format!("{scheme}://***@{host}{path}"),
                    });
                }
            }
        }
        Ok(url)
    }
}

/// Callbacks for one network operation: credentials on request (offered once: a rejected
/// token is not retried in a loop) and a deadline checked on every progress report.
pub(crate) fn callbacks<'a>(
    credentials: Option<&'a Credentials>,
    deadline: Deadline,
    on_progress: Option<&'a dyn Fn(usize, usize)>,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let offered = Cell::new(false);
    cb.credentials(move |_url, _username_from_url, allowed| {
        let Some(c) = credentials else {
            return Err(git2::Error::from_str(
                "the remote asks for credentials and none are configured",
            ));
        };
        if offered.replace(true) {
            return Err(git2::Error::from_str(
                "the remote rejected the credentials (check the token and its permissions)",
            ));
        }
        if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            return Err(git2::Error::from_str(
                "the remote does not accept a username and token",
            ));
        }
        Cred::userpass_plaintext(&c.username, c.token.expose())
    });
    cb.transfer_progress(move |p| {
        if let Some(f) = on_progress {
            f(p.received_objects(), p.total_objects());
        }
        !deadline.passed()
    });
    cb.sideband_progress(move |_| !deadline.passed());
    cb.pack_progress(move |_, _, _| {});
    cb.push_transfer_progress(move |_, _, _| {});
    cb
}

/// When a network operation must have finished.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    pub(crate) limit: Duration,
}

impl Deadline {
    pub(crate) fn after(limit: Duration) -> Self {
        Self {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Map an error of an operation that may have been stopped by this deadline.
    pub(crate) fn error(self, op: String) -> impl FnOnce(git2::Error) -> WorkspaceError {
        move |source| {
            if self.passed() {
                WorkspaceError::NetworkTimeout {
                    op,
                    after: self.limit,
                }
            } else {
                WorkspaceError::Git { op, source }
            }
        }
    }
}

/// What a push of one refspec answered: libgit2's own result (it refuses a non-fast-forward
/// itself when it sees the remote's tip) and the remote's refusal of the update, if any.
pub(crate) struct PushAnswer {
    pub(crate) pushed: Result<(), git2::Error>,
    pub(crate) rejection: Option<String>,
}

/// Pushes `refspec` (no `+`: the remote accepts only a fast-forward) to `url` with `remote`'s
/// credentials, under `deadline`. Only a URL libgit2 cannot use is an error here; what the push
/// answered is the caller's to judge.
pub(crate) fn push_one(
    repo: &git2::Repository,
    remote: &RemoteSpec,
    url: &str,
    refspec: &str,
    deadline: Deadline,
) -> Result<PushAnswer, WorkspaceError> {
    let rejection = std::cell::RefCell::new(None::<String>);
    let mut cb = callbacks(remote.credentials.as_ref(), deadline, None);
    cb.push_update_reference(|_name, status| {
        if let Some(reason) = status {
            *rejection.borrow_mut() = Some(reason.to_owned());
        }
        Ok(())
    });
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(cb);
    let mut anonymous = repo
        .remote_anonymous(url)
        .map_err(WorkspaceError::git(format!(
            "`{url}` is not a usable remote URL"
        )))?;
    let pushed = anonymous.push(&[refspec], Some(&mut options));
    drop(options);
    Ok(PushAnswer {
        pushed,
        rejection: rejection.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_are_refused_and_redacted() {
        let refused = [
            "https://x-access-token:ghp_abc123@github.com/acme/api.git",
            "https://ghp_abc123@github.com/acme/api.git",
            "ssh://git:pw@host/repo.git",
        ];
        for url in refused {
            let err = RemoteSpec::new(url, None).checked_url().unwrap_err();
            let text = err.to_string();
            assert!(
                !text.contains("ghp_abc123") && !text.contains(":pw"),
                "{text}"
            );
            assert!(text.contains("***@"), "{text}");
        }
        for url in [
            "https://github.com/acme/api.git",
            "ssh://git@github.com/acme/api.git",
            "file:///tmp/remote.git",
            "/tmp/remote.git",
        ] {
            assert_eq!(RemoteSpec::new(url, None).checked_url().unwrap(), url);
        }
    }

    #[test]
    fn credentials_never_print() {
        let spec = RemoteSpec::new(
            "https://github.com/acme/api.git",
            Some(Credentials::github_token(Secret::new("ghp_secret".into()))),
        );
        assert!(!format!("{spec:?}").contains("ghp_secret"));
    }
}
