//! The command line: argument parsing, logging set-up, exit codes, and one module per
//! subcommand. Subcommands load the configuration and call into the library.

mod config_cmd;
mod demo;
mod doctor;
mod gates;
mod ledger;
mod output;
mod policy;
mod run;
mod runs;
mod runtime;
mod setup;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use issueloop_config::{Config, Env};

pub use output::CliError;

/// Turn labelled GitHub issues into draft pull requests written by a coding agent, under hard
/// budget and policy limits.
#[derive(Debug, Parser)]
#[command(name = "issueloop", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Configuration file (a relative path is taken from the current directory; paths in the
    /// file are relative to the file's directory).
    #[arg(
        long,
        global = true,
        env = "ISSUELOOP_CONFIG",
        default_value = "issueloop.toml"
    )]
    pub config: PathBuf,
    /// Print data as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr (default: human on a terminal, JSON in GitHub Actions).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and print what it resolves to.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Prepare, check and run the verification gates of a checkout.
    #[command(subcommand)]
    Gates(gates::GatesCommand),
    /// Show the daily budget ledger: spend, reservations and runs of a UTC day.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// List recorded runs, or show one run's events, stage → runtime table and final status.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Move the ledger and the journal between state backends: `export` writes JSON lines,
    /// `import` adds them to the configured store.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Replay a captured agent output stream and print its normalized outcome.
    #[command(subcommand)]
    Runtime(runtime::RuntimeCommand),
    /// Show the stage → backend table, each program found and its version, and what would
    /// stop a run at start. Exit 1 when something does.
    Doctor(doctor::DoctorArgs),
    /// Set up a runtime for issueloop (`--runtime codex`: its managed profile).
    Setup(setup::SetupArgs),
    /// Judge a checkout's change against the diff policy (paths, symlinks, submodules,
    /// sizes, secrets). Exit 1 when it violates.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run one tick: select labelled issues, run the agent under budget, verify, publish draft
    /// PRs. Exit 0 when every run ended as designed, 1 when the tick itself failed.
    Run(run::RunArgs),
    /// Run ticks on the `[service]` cron schedule until SIGTERM/SIGINT.
    Serve(run::ServeArgs),
    /// Watch the whole loop on this machine: a throwaway local forge, three labelled issues, a
    /// stand-in agent, real worktrees, gates, ledger and journal; one tick and its summary.
    Demo(demo::DemoArgs),
}

/// What every subcommand gets: the parsed global flags and the environment snapshot.
pub struct Ctx {
    pub global: GlobalArgs,
    pub env: Env,
    /// Whether `--config`/`ISSUELOOP_CONFIG` was given rather than defaulted.
    pub config_explicit: bool,
}

impl Ctx {
    /// Load and validate the configuration, or a usage error (exit 2) listing every problem.
    pub fn load_config(&self) -> Result<Config, CliError> {
        issueloop_config::load_file(&self.global.config).map_err(CliError::config)
    }

    /// The configuration file when one exists, else the built-in defaults (for commands that
    /// work in any repository, like `policy check`). A file that exists but is invalid is an error.
    pub fn load_config_or_builtin(&self) -> Result<Config, CliError> {
        if !self.config_explicit && !self.global.config.exists() {
            // Default paths under the current directory, resolved like a file's there.
            return Ok(Config::builtin(PathBuf::from(".")));
        }
        self.load_config()
    }
}

/// Parse arguments, set up logging, run the subcommand and map its result to an exit code.
pub fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let config_explicit = matches
        .value_source("config")
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue);
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let env = Env::from_process();
    // From here on every output path masks the values of the secret variables too.
    issueloop_config::register_env_secrets(&env);
    output::init_logging(&cli.global, &env);
    let ctx = Ctx {
        global: cli.global,
        env,
        config_explicit,
    };
    let result = match cli.command {
        Command::Config(cmd) => config_cmd::run(cmd, &ctx),
        Command::Run(args) => run::run(args, &ctx),
        Command::Serve(args) => run::serve(args, &ctx),
        Command::Demo(args) => demo::run(args, &ctx),
        Command::Gates(cmd) => gates::run(cmd, &ctx),
        Command::Ledger(cmd) => ledger::run(cmd, &ctx),
        Command::Runs(cmd) => runs::run(cmd, &ctx),
        Command::State(cmd) => state::run(cmd, &ctx),
        Command::Runtime(cmd) => runtime::run(cmd, &ctx),
        Command::Doctor(args) => doctor::run(args, &ctx),
        Command::Setup(args) => setup::run(args, &ctx),
        Command::Policy(cmd) => policy::run(cmd, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(&ctx),
    }
}
