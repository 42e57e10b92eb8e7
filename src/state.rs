//! Opening the configured state store. `sqlite` and `postgres` open on their own
//! (`issueloop_ledger::open_state`); `github` needs the forge: where the state repository is and
//! the credentials to push to it (given to git by callback, never in a URL).

use std::sync::Arc;

use issueloop_config::{Config, Env, StateBackend};
use issueloop_forge::Forge;
use issueloop_ledger::{Access, LedgerError, StateStore, open_state};
use issueloop_state_github::{GithubState, GithubStateOptions};
use issueloop_workspace::{Credentials, RemoteSpec};

/// The store `[state] backend` names; `None` for a read-only open of a store never created.
pub async fn open_store(
    config: &Config,
    env: &Env,
    forge: &Forge,
    access: Access,
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
    let local = match access {
        Access::ReadWrite => config.state.path.to_path_buf(),
        Access::ReadOnly => ":memory:".into(),
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
