//! US dollars as integer micro-dollars: the type lives in `issueloop_config` (the lowest crate
//! every user of money depends on) and is re-exported here, so `issueloop_ledger::Usd` keeps
//! working.

pub use issueloop_config::Usd;
