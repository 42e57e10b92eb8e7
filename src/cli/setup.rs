//! `issueloop setup --runtime codex`: add the managed `[profiles.issueloop-<name>]` table to
//! the user's Codex `config.toml`, keeping everything else in the file as it is.

use super::output::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use issueloop_config::{BackendKind, did_you_mean};
use issueloop_runtime::{
    SetupError, codex_profile_name, default_codex_config, install_codex_profile,
};

use super::output::print_json;
use super::{CliError, Ctx};

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The runtime to set up. Only `codex` has something to set up: the profile it runs with
    /// (`--profile issueloop-<runtime_profile.backend_profile>`, default `issueloop-worker`).
    #[arg(long, value_name = "NAME")]
    pub runtime: String,
    /// The Codex configuration file (default: `$CODEX_HOME/config.toml`, else
    /// `~/.codex/config.toml`).
    #[arg(long, value_name = "PATH")]
    pub codex_config: Option<PathBuf>,
}

pub fn run(args: SetupArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match BackendKind::parse(&args.runtime) {
        Some(BackendKind::Codex) => {}
        Some(other) => {
            return Err(CliError::usage(format!(
                "the `{other}` runtime has nothing to set up; only `codex` reads an issueloop profile"
            )));
        }
        None => {
            let hint = did_you_mean(&args.runtime, BackendKind::all_spellings())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(CliError::usage(format!(
                "unknown runtime `{}`{hint}",
                args.runtime
            )));
        }
    }
    let config = ctx.load_config_or_builtin()?;
    let backend_profile = config.runtime_profile.backend_profile.as_deref();
    let profile = codex_profile_name(backend_profile);
    let path = args
        .codex_config
        .clone()
        .or_else(|| default_codex_config(&ctx.env))
        .ok_or_else(|| {
            CliError::usage("neither `CODEX_HOME` nor `HOME` is set; pass `--codex-config PATH`")
        })?;
    let outcome = install_codex_profile(&path, &profile).map_err(|e| match e {
        SetupError::Invalid { .. }
        | SetupError::ProfilesNotTable { .. }
        | SetupError::ProfileNotTable { .. } => CliError::usage_by(e).with_kind("setup"),
        other => CliError::failed_by("setup", other),
    })?;
    if ctx.global.json {
        print_json(&outcome)?;
        return Ok(ExitCode::SUCCESS);
    }
    let where_ = outcome.path.display();
    if !outcome.changed {
        outln!("`{where_}` already has `[profiles.{profile}]`; nothing changed");
    } else if outcome.set.len() == issueloop_runtime::MANAGED_KEYS.len()
        && outcome.set.iter().all(|k| k.was.is_none())
    {
        outln!("added `[profiles.{profile}]` to `{where_}`");
    } else {
        outln!("updated `[profiles.{profile}]` in `{where_}`:");
        for k in &outcome.set {
            match &k.was {
                Some(was) => outln!("  `{}` = \"{}\" (was {was})", k.key, k.value),
                None => outln!("  `{}` = \"{}\"", k.key, k.value),
            }
        }
    }
    if backend_profile.is_none() {
        outln!(
            "Codex runs use it once the configuration says `backend_profile = \"worker\"` under `[runtime_profile]`"
        );
    }
    Ok(ExitCode::SUCCESS)
}
