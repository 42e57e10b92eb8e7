//! Opening the configured state store. `sqlite` and `postgres` open on their own
//! (`issueloop_ledger::open_state`); `github` needs the forge: where the state repository is and
//! the credentials to push to it (given to git by callback, never in a URL). Commands outside a
//! tick (`ledger show`, `runs`, `state export`/`import`) open it with [`open_store_blocking`].

use std::sync::Arc;

use issueloop_config::RepoName;
use issueloop_config::{Config, Env, StateBackend};
use issueloop_forge::Forge;
use issueloop_ledger::{Access, LedgerError, StateStore, open_state};
use issueloop_state_github::{GithubState, GithubStateOptions, RemoteRefresh};
use issueloop_workspace::{Credentials, RemoteSpec};

/// The store `[state] backend` names; `None` for a read-only open of a store never created.
/// A read-only `github` store (a dry run) keeps this machine's journal in memory.
/// The `github` store asks the forge for the repository's credentials again when a fetch or push
/// fails, so a long `serve` with an App outlives its hour-long installation tokens.
pub async fn open_store(
    config: &Config,
    env: &Env,
    forge: &Arc<Forge>,
    access: Access,
) -> Result<Option<Arc<dyn StateStore>>, LedgerError> {
    let refresh = tokio::runtime::Handle::try_current()
        .ok()
        .map(|runtime| Refresh {
            runtime,
            forge: forge.clone(),
        });
    open_with(
        config,
        env,
        forge.as_ref(),
        access,
        Local::InMemoryWhenReadOnly,
        refresh,
    )
    .await
}

/// How a tick's store gets the state repository's remote anew: from the forge, on the tick's
/// runtime.
struct Refresh {
    runtime: tokio::runtime::Handle,
    forge: Arc<Forge>,
}

/// How long a store waits for the forge to give the remote anew.
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Refresh {
    /// The store calls this from synchronous code, maybe on one of the runtime's own threads:
    /// the forge is asked on a thread of its own, with a deadline.
    fn into_hook(self, repo: RepoName) -> RemoteRefresh {
        RemoteRefresh(Arc::new(move || {
            let (runtime, forge, repo) = (self.runtime.clone(), self.forge.clone(), repo.clone());
            let (answer, answered) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("issueloop-state-credentials".into())
                .spawn(move || {
                    let target = runtime.block_on(forge.push_target(&repo));
                    let _ = answer.send(target.map_err(|e| e.to_string()));
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?;
            let target = answered
                .recv_timeout(REFRESH_TIMEOUT)
                .map_err(|_| format!("the forge did not answer within {REFRESH_TIMEOUT:?}"))??;
            Ok(remote_spec(target))
        }))
    }
}

fn remote_spec(target: issueloop_forge::PushTarget) -> RemoteSpec {
    RemoteSpec::new(
        target.url,
        target.credentials.map(|c| Credentials {
            username: c.username,
            token: c.password,
        }),
    )
}

/// Where a `github` store keeps this machine's journal and named values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Local {
    /// `[state] path`, except for a read-only open: in memory (a dry run writes nothing).
    InMemoryWhenReadOnly,
    /// `[state] path` when it exists (what this machine recorded), else in memory.
    FileWhenItExists,
}

/// The configured store for a command outside a tick, on a runtime of its own (the `github`
/// backend opens the forge first, to learn where the state repository is and how to push to
/// it). A read-only `github` store still reads this machine's journal when there is one.
pub fn open_store_blocking(
    config: &Config,
    env: &Env,
    access: Access,
) -> Result<Option<Arc<dyn StateStore>>, LedgerError> {
    if config.state.backend != StateBackend::Github {
        return open_state(&config.state, env, access);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LedgerError::Unconfigured {
            detail: format!("cannot start the async runtime: {e}"),
        })?;
    runtime.block_on(async {
        let forge = issueloop_forge::open_forge(config, env)
            .await
            .map_err(|e| LedgerError::Unconfigured {
                detail: format!("the `github` backend needs the forge: {e}"),
            })?;
        // A command's store lives shorter than any token: nothing to refresh.
        open_with(
            config,
            env,
            forge.as_ref(),
            access,
            Local::FileWhenItExists,
            None,
        )
        .await
    })
}

async fn open_with(
    config: &Config,
    env: &Env,
    forge: &Forge,
    access: Access,
    local: Local,
    refresh: Option<Refresh>,
) -> Result<Option<Arc<dyn StateStore>>, LedgerError> {
    if config.state.backend != StateBackend::Github {
        return open_state(&config.state, env, access);
    }
    let repo = config
        .state
        .repo
        .clone()
        .or_else(|| config.repos.first().cloned())
        .ok_or_else(|| LedgerError::Unconfigured {
            detail: "`[state] backend = \"github\"` needs `[state] repo` (or one entry in `repos`)"
                .into(),
        })?;
    let target = forge
        .push_target(&repo)
        .await
        .map_err(|e| LedgerError::Unconfigured {
            detail: format!("cannot reach the state repository `{}`: {e}", repo.full()),
        })?;
    let remote = remote_spec(target);
    let clone_dir = config
        .git
        .cache_dir
        .join("state")
        .join(&repo.owner)
        .join(format!("{}.git", repo.name));
    // A dry run keeps this machine's journal in memory: it must not create the state file.
    let path = config.state.path.to_path_buf();
    let local = match (access, local) {
        (Access::ReadWrite, _) => path,
        (Access::ReadOnly, Local::FileWhenItExists) if path.exists() => path,
        (Access::ReadOnly, _) => ":memory:".into(),
    };
    let mut opts = GithubStateOptions::new(remote, clone_dir, local);
    opts.branch = config.state.branch.clone();
    opts.refresh = refresh.map(|r| r.into_hook(repo.clone()));
    let store = tokio::task::spawn_blocking(move || GithubState::open(opts))
        .await
        .map_err(|e| LedgerError::Unconfigured {
            detail: format!("opening the state branch stopped: {e}"),
        })??;
    Ok(Some(Arc::new(store)))
}
