//! issueloop's configuration: strict parsing of `issueloop.toml`, a semantic pass that reports
//! every error at once, the embedded default policy and model prices, and the environment snapshot.
//!
//! The library never reads process state directly: the CLI takes an [`Env`] snapshot once and
//! passes it down, so tests can replace it.

mod env;
mod error;
mod gate_options;
mod hint;
mod human;
mod load;
mod model;
mod money;
mod path;
mod policy;
mod raw;
pub mod redact;
mod runtime;
mod sandbox;
mod state;
mod suggest;
mod validate;

pub use env::{CREDENTIAL_VARS, Env, Secret};
pub use error::{ConfigError, ConfigWarning, LoadError};
pub use gate_options::{GUARDED_GATE_OPTIONS, GuardedOption, guarded_option};
pub use hint::{Chain, ErrorChain, Hint};
pub use human::human_duration;
pub use load::{load_file, load_str};
pub use model::*;
pub use money::Usd;
pub use path::{AbsPath, KeyPath};
pub use policy::{
    AllowRule, EffectivePolicy, Loosening, ModelPrice, ModelTable, PolicyConfig, PolicyLimits,
    RepoPolicy, SecretPattern, builtin_models, builtin_policy,
};
pub use redact::{
    clean_line, clean_multiline, looks_like_secret, redact, register_env_secrets, register_secret,
};
pub use runtime::{BackendKind, RuntimeProfile, Stage};
pub use sandbox::{SandboxConfig, SandboxMode, SandboxNetwork};
pub use state::{DATABASE_URL_VAR, DatabaseUrl, StateBackend, database_url, redact_url};
pub use suggest::did_you_mean;
pub use validate::{COMMAND_FORMATS, looks_like_github_token, normalize_cron};

/// Source text of the compiled-in default policy (`policies/default.toml`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../policies/default.toml");
/// Source text of the compiled-in model price table (`policies/models.toml`).
pub const DEFAULT_MODELS_TOML: &str = include_str!("../../../policies/models.toml");
