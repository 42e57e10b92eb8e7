//! Opening the configured state store. `sqlite` and `postgres` open on their own
//! (`issueloop_ledger::open_state`); `github` needs the forge: where the state repository is and
//! the credentials to push to it (given to git by callback, never in a URL). Commands outside a
//! tick (`ledger show`, `runs`, `state export`/`import`) open it with [`open_store_blocking`].

use std::sync::Arc;

use issueloop_config::{Config, Env, StateBackend};
use issueloop_forge::Forge;
use issueloop_ledger::{Access, LedgerError, StateStore, open_state};
use issueloop_state_github::{GithubState, GithubStateOptions};
use issueloop_workspace::{Credentials, RemoteSpec};

/// The store `[state] backend` names; `None` for a read-only open of a store never created.
/// A read-only `github` store (a dry run) keeps this machine's journal in memory.
pub async fn open_store(
    config: &Config,
    env: &Env,
    forge: &dyn Forge,
    access: Access,
) -> Result<Option<Arc<dyn StateStore>>, LedgerError> {
    open_with(config, env, forge, access, Local::InMemoryWhenReadOnly).await
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
        open_with(config, env, forge.as_ref(), access, Local::FileWhenItExists).await
    })
}

async fn open_with(
    config: &Config,
    env: &Env,
    forge: &dyn Forge,
    access: Access,
    local: Local,
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
    let remote = RemoteSpec::new(
        target.url,
        target.credentials.map(|c| Credentials {
            username: c.username,
            token: c.password,
        }),
    );
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
    let store = tokio::task::spawn_blocking(move || GithubState::open(opts))
        .await
        .map_err(|e| LedgerError::Unconfigured {
            detail: format!("opening the state branch stopped: {e}"),
        })??;
    Ok(Some(Arc::new(store)))
}
