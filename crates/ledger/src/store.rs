//! The state store: the ledger, the journal and small named values behind one trait, and the
//! one function that opens the backend `[state] backend` names.

use std::sync::Arc;

use issueloop_config::{Env, StateBackend, StateConfig, database_url};

use crate::journal::Journal;
use crate::ledger::{Ledger, LedgerError};
use crate::postgres::PgLedger;
use crate::sqlite::SqliteLedger;
use crate::transfer::{ImportSummary, Record};

/// Everything a tick records: the ledger, the journal, and named values that must survive
/// restarts (the forge's poll watermark). One per process, shared by its runs.
pub trait StateStore: Ledger + Journal {
    /// A named value, if set.
    fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError>;
    /// Store a named value, replacing the previous one.
    fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError>;
    /// Where the store lives, as it may be shown: a file's path, or a URL without its password.
    fn location(&self) -> String;
    /// Charge in full, now rather than at their expiry, the open reservations made on this
    /// host by a process that is gone (see [`SqliteLedger::expire_dead`]).
    fn expire_dead(&self, now: jiff::Timestamp) -> Result<Vec<crate::Expired>, LedgerError>;
    /// Everything the store holds, as `issueloop state export` writes it: the ledger's entries
    /// (oldest first, every state, with their owners), the journal's events (in order), the
    /// named values.
    fn export_records(&self) -> Result<Vec<Record>, LedgerError>;
    /// Add records exported from any store as [`crate::plan_import`] decides, all or nothing:
    /// a conflict with what the store holds writes nothing. Imported entries are history, not
    /// new reservations: the cap does not refuse them, and they count against their day.
    fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError>;
}

impl StateStore for SqliteLedger {
    fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        SqliteLedger::get_value(self, key)
    }

    fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        SqliteLedger::set_value(self, key, value)
    }

    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn expire_dead(&self, now: jiff::Timestamp) -> Result<Vec<crate::Expired>, LedgerError> {
        SqliteLedger::expire_dead(self, now)
    }

    fn export_records(&self) -> Result<Vec<Record>, LedgerError> {
        SqliteLedger::export_records(self)
    }

    fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError> {
        SqliteLedger::import_records(self, records)
    }
}

impl StateStore for PgLedger {
    fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        PgLedger::get_value(self, key)
    }

    fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        PgLedger::set_value(self, key, value)
    }

    fn location(&self) -> String {
        PgLedger::location(self)
    }

    fn expire_dead(&self, now: jiff::Timestamp) -> Result<Vec<crate::Expired>, LedgerError> {
        PgLedger::expire_dead(self, now)
    }

    fn export_records(&self) -> Result<Vec<Record>, LedgerError> {
        PgLedger::export_records(self)
    }

    fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError> {
        PgLedger::import_records(self, records)
    }
}

/// Whether opening may create the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Create the store (file, schema) if needed and apply pending migrations.
    ReadWrite,
    /// Never create anything: `None` when nothing was ever recorded (no file, no schema).
    ReadOnly,
}

/// Open the configured store. The `postgres` backend's URL is `[state] url`, else
/// `ISSUELOOP_DATABASE_URL` from `env`; errors show it with its password replaced.
pub fn open_state(
    state: &StateConfig,
    env: &Env,
    access: Access,
) -> Result<Option<Arc<dyn StateStore>>, LedgerError> {
    match state.backend {
        StateBackend::Sqlite => {
            if access == Access::ReadOnly && !state.path.exists() {
                return Ok(None);
            }
            Ok(Some(Arc::new(SqliteLedger::open(&state.path)?)))
        }
        // Needs git and the forge's push target: opened by `issueloop_state_github` from the
        // binary (`issueloop::state::open_store`).
        StateBackend::Github => Err(LedgerError::Unconfigured {
            detail: "the `github` backend is opened together with the forge".into(),
        }),
        StateBackend::Postgres => {
            let url = database_url(state.url.as_ref(), env)
                .map_err(|detail| LedgerError::Unconfigured { detail })?;
            // Whatever prints text from now on (logs, comments, the journal) masks it.
            if let Some(password) = url.password() {
                issueloop_config::register_secret(&password);
            }
            let store = match access {
                Access::ReadWrite => Some(PgLedger::open(&url)?),
                Access::ReadOnly => PgLedger::open_existing(&url)?,
            };
            Ok(store.map(|s| Arc::new(s) as Arc<dyn StateStore>))
        }
    }
}
