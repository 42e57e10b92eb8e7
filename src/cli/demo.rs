//! `issueloop demo`: the whole loop on this machine, without a token or an installed agent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use super::{CliError, Ctx};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the sandbox (an empty or new folder); default: a new temporary folder,
    /// kept afterwards so you can look around.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: DemoArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let dir = match args.dir {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(&dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(CliError::usage(format!("`{}` is not empty", dir.display()))
                    .with_hint("pass a new folder, or leave out `--dir`"));
            }
            dir
        }
        None => tempfile::Builder::new()
            .prefix("issueloop-demo-")
            .tempdir()
            .map_err(|e| CliError::failed_by("demo", e).context("cannot make a temporary folder"))?
            .keep(),
    };
    let uv = issueloop_runtime::find_program("uv", &ctx.env, &dir).is_some();
    let sandbox =
        crate::demo::build_sandbox(&dir, uv).map_err(|e| CliError::failed_by("demo", e))?;
    outln!("issueloop demo: sandbox in `{}`", sandbox.dir.display());
    outln!(
        "  a local forge with 3 issues labelled `loop:approved` in `{}`",
        sandbox.forge.display()
    );
    outln!(
        "  the repository `demo/textkit` in `{}`",
        sandbox.remote.display()
    );
    outln!(
        "  a stand-in agent (`agent.py`) through the `command` backend; $1.00 daily cap, $0.50 per run"
    );
    if sandbox.without_uv {
        outln!(
            "  `uv` is not installed: the gate byte-compiles the code (`python3 -m compileall`) instead of running pytest"
        );
    } else {
        outln!(
            "  gates run for real: `uv run --locked --group dev pytest` (the first run downloads pytest)"
        );
    }
    outln!();

    let config = issueloop_config::load_file(&sandbox.config).map_err(CliError::config)?;
    let mut env = ctx.env.clone();
    // The demo never talks to GitHub: make sure no token is even in reach.
    for var in issueloop_config::CREDENTIAL_VARS {
        env.remove(var);
    }
    let code = super::run::run_config(config, env, ctx.global.json, false, None)?;
    let cfg = sandbox.config.display();
    outln!();
    outln!("where to look:");
    outln!(
        "  issues, comments and the PR record: `{}`",
        sandbox.forge.join(crate::demo::DEMO_REPO).display()
    );
    outln!(
        "  the pushed branch:                  git -C {} log --all --oneline",
        sandbox.remote.display()
    );
    outln!("  the runs and their events:          issueloop --config {cfg} runs list");
    outln!("  today's ledger:                     issueloop --config {cfg} ledger show");
    Ok(code)
}
