//! Exit codes, error reporting and log set-up shared by every subcommand.

use std::process::ExitCode;

use issueloop_config::{Env, LoadError};

use super::{Ctx, GlobalArgs, LogFormat};

/// Exit code 1: a run or a check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code 2: usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends a subcommand: a message for a person, its kind for `--json`, an exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub kind: &'static str,
    pub message: String,
    /// Structured details for `--json` (e.g. the list of configuration errors).
    pub details: Option<serde_json::Value>,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            kind: "usage",
            message: message.into(),
            details: None,
        }
    }

    pub fn failed(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn config(e: LoadError) -> Self {
        let details = serde_json::to_value(e.errors()).ok();
        Self {
            code: EXIT_USAGE,
            kind: "config",
            message: e.to_string(),
            details,
        }
    }

    /// Print the error (JSON on stdout with `--json`, else text on stderr) and return the code.
    pub fn report(self, ctx: &Ctx) -> ExitCode {
        if ctx.global.json {
            let mut err = serde_json::json!({ "kind": self.kind, "message": self.message });
            if let Some(d) = self.details {
                err["errors"] = d;
            }
            write_stdout(format_args!("{}\n", serde_json::json!({ "error": err })));
        } else {
            eprintln!("error: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

/// Print a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failed("internal", format!("cannot render JSON: {e}")))?;
    write_stdout(format_args!("{text}\n"));
    Ok(())
}

/// Write to stdout. A reader that went away (`issueloop runs list | head`) ends the process
/// quietly instead of panicking; any other write error is reported on stderr.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::cli::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::output::write_stdout(format_args!($($arg)*)) };
}

pub(crate) use {out, outln};

/// Logs go to stderr: human-readable on a terminal, JSON with `--log-format json` or in GitHub
/// Actions. `RUST_LOG` overrides the level chosen by `-v`/`-q`.
pub fn init_logging(global: &GlobalArgs, env: &Env) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;

    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = env
        .get("RUST_LOG")
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(format!(
                "warn,issueloop={level},issueloop_{}",
                level_all(level)
            ))
        });
    let format = global.log_format.unwrap_or(if env.in_github_actions() {
        LogFormat::Json
    } else {
        LogFormat::Human
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .try_init(),
    };
}

fn level_all(level: &str) -> String {
    // One directive per crate of the workspace: `issueloop_gates=info`, ….
    [
        "config",
        "gates",
        "ledger",
        "runtime",
        "policy",
        "workspace",
        "forge",
    ]
    .iter()
    .map(|c| format!("{c}={level}"))
    .collect::<Vec<_>>()
    .join(",issueloop_")
}
