//! `issueloop runtime parse`: replay a captured agent output stream through the normalizer and
//! print the outcome — how a person finds out why issueloop called a run failed.

use super::output::out;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use issueloop_config::BackendKind;
use issueloop_runtime::{BackendOutcome, CostSource, Format, Normalizer, Pricing, Status};

use super::output::{EXIT_FAILED, print_json};
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Replay a captured harness output stream and print the outcome: status, cost and its
    /// source, usage, final message, skipped lines. Exit 0 when the outcome is `completed`, 1
    /// otherwise.
    Parse(ParseArgs),
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The harness that printed the stream: `claude_code`, `codex`, `pi`, `opencode`, `gemini`
    /// (aliases such as `claude` are accepted), or `text`.
    #[arg(long, value_name = "NAME")]
    pub harness: String,
    /// The captured stream; `-` reads stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: String,
    /// Model to price tokens with, for harnesses that report no dollars (default: the
    /// configuration's `[backends.<harness>] model`).
    #[arg(long)]
    pub model: Option<String>,
    /// The exit code the harness ended with (default 0: judge by the stream alone).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub exit_code: i32,
}

pub fn run(cmd: RuntimeCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        RuntimeCommand::Parse(args) => parse(args, ctx),
    }
}

fn parse(args: ParseArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let format = Format::parse(&args.harness).ok_or_else(|| {
        CliError::usage(format!(
            "unknown harness `{}`; use one of {}",
            args.harness,
            Format::names()
        ))
    })?;
    let config = ctx.load_config_or_builtin()?;
    let model = args
        .model
        .clone()
        .or_else(|| BackendKind::parse(format.as_str()).and_then(|k| config.backend(k).model));
    let mut normalizer = Normalizer::new(format, Pricing::new(config.models.clone(), model));
    let source = if args.file == "-" {
        "stdin".to_owned()
    } else {
        format!("`{}`", args.file)
    };
    let read_error =
        |e: std::io::Error| CliError::failed_by("io", e).context(format!("cannot read {source}"));
    let mut reader: Box<dyn Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(Path::new(&args.file)).map_err(read_error)?)
    };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                normalizer.feed(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    let outcome = normalizer.finish(Some(args.exit_code), None);
    if ctx.global.json {
        let mut value = serde_json::to_value(&outcome)
            .map_err(|e| CliError::failed_by("internal", e).context("cannot render JSON"))?;
        if let Some(map) = value.as_object_mut() {
            map.insert("harness".into(), format.as_str().into());
        }
        print_json(&value)?;
    } else {
        out!("{}", render(format, &outcome));
    }
    Ok(if outcome.status == Status::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// The human-readable outcome.
pub fn render(format: Format, o: &BackendOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "harness        {format}");
    let _ = writeln!(out, "status         {}", o.status);
    if let Some(e) = &o.error {
        let mut lines = e.lines();
        let _ = writeln!(out, "error          {}", lines.next().unwrap_or_default());
        for l in lines {
            let _ = writeln!(out, "               {l}");
        }
    }
    let source = match o.cost_source {
        CostSource::Reported => "reported by the harness",
        CostSource::Priced => "priced from tokens with the model table",
        CostSource::Unknown => "unknown: the ledger charges the whole run budget",
    };
    let _ = writeln!(
        out,
        "cost           ${:.4} ({source})",
        o.cost_usd.dollars()
    );
    let u = &o.usage;
    let _ = writeln!(
        out,
        "usage          {} input, {} output, {} cache read, {} cache write tokens",
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens
    );
    if let Some(m) = &o.model {
        let _ = writeln!(out, "model          {m}");
    }
    if let Some(c) = o.exit_code {
        let _ = writeln!(out, "exit code      {c}");
    }
    let _ = writeln!(
        out,
        "lines          {} read, {} skipped ({} over the line limit), {} unknown event{}",
        o.lines,
        o.skipped_lines,
        o.overlong_lines,
        o.unknown_events,
        if o.unknown_events == 1 { "" } else { "s" }
    );
    if o.final_message.trim().is_empty() {
        let _ = writeln!(out, "final message  (none)");
    } else {
        let _ = writeln!(out, "final message");
        for l in o.final_message.lines() {
            let _ = writeln!(out, "  | {l}");
        }
    }
    if !o.warnings.is_empty() {
        let _ = writeln!(out, "warnings");
        for w in &o.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}
