//! `issueloop state export` and `issueloop state import`: the configured store's ledger, journal
//! and named values as JSON lines, to move them between backends without losing the day's spend.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use issueloop_ledger::{
    Access, ImportSummary, LedgerError, Record, StateStore, TRANSFER_VERSION, parse_records,
};

use super::ledger::{state_error, state_location};
use super::output::{outln, print_json};
use super::{CliError, Ctx};

/// The largest export `state import` reads (a year of a busy ledger is a few megabytes).
const MAX_INPUT: u64 = 1 << 30;

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Write the configured store's ledger (every entry and its state), journal and named values
    /// as JSON lines, one record a line (docs/operations.md, "Moving the state").
    Export(ExportArgs),
    /// Add an export to the configured store. Records the store already holds are left as
    /// they are (importing twice changes nothing); a file that disagrees with the store about a
    /// run is refused whole (exit 2).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export to read; `-` or nothing: stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(cmd: StateCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        StateCommand::Export(args) => export(args, ctx),
        StateCommand::Import(args) => import(args, ctx),
    }
}

fn export(args: ExportArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    let location = state_location(&config, &ctx.env);
    // A store never created exports nothing, and is not created by exporting.
    let records = match crate::state::open_store_blocking(&config, &ctx.env, Access::ReadOnly)
        .map_err(state_error)?
    {
        Some(store) => store.export_records().map_err(state_error)?,
        None => Vec::new(),
    };
    let text: String = records.iter().map(Record::render).collect();
    let counts = Counts::of(&records);
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::failed("io", format!("cannot write the export: {e}")))?;
        }
        Some(path) => {
            write_file(path, &text)?;
            if ctx.global.json {
                print_json(&serde_json::json!({
                    "from": location,
                    "output": path.display().to_string(),
                    "version": TRANSFER_VERSION,
                    "entries": counts.entries,
                    "events": counts.events,
                    "values": counts.values,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    eprintln!(
        "exported {} ledger entries, {} journal events and {} named values from `{location}`",
        counts.entries, counts.events, counts.values
    );
    Ok(ExitCode::SUCCESS)
}

fn import(args: ImportArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    let (shown, text) = read_input(args.file.as_deref())?;
    let records = parse_records(&text).map_err(|e| {
        CliError::usage(format!(
            "`{shown}` {e}; nothing was imported (`issueloop state export` writes this format)"
        ))
    })?;
    let location = state_location(&config, &ctx.env);
    let store: std::sync::Arc<dyn StateStore> =
        crate::state::open_store_blocking(&config, &ctx.env, Access::ReadWrite)
            .map_err(state_error)?
            .ok_or_else(|| {
                CliError::failed(
                    "state",
                    format!("the store `{location}` could not be opened"),
                )
            })?;
    let summary = match store.import_records(&records) {
        Ok(summary) => summary,
        Err(e @ LedgerError::ImportConflict { .. }) => {
            return Err(CliError::usage(format!(
                "`{shown}` into `{location}`: {e}\nhint: this store already went on with these \
                 runs; import into a store that has not, or leave them out of the file"
            )));
        }
        Err(e) => return Err(state_error(e)),
    };
    if ctx.global.json {
        let mut value = serde_json::to_value(&summary)
            .map_err(|e| CliError::failed("internal", format!("cannot render JSON: {e}")))?;
        value["into"] = location.into();
        value["unchanged"] = summary.unchanged().into();
        print_json(&value)?;
    } else {
        outln!("{}", summary_text(&summary, &location));
    }
    Ok(ExitCode::SUCCESS)
}

/// What an import did, for a person.
fn summary_text(s: &ImportSummary, location: &str) -> String {
    if s.unchanged() {
        return format!(
            "nothing to import into `{location}`: it already holds every record of the file \
             ({} ledger entries, {} journal events; {} named values kept)",
            s.entries_present, s.events_present, s.values_kept
        );
    }
    format!(
        "imported into `{location}`: {} ledger entries ({} already there), {} journal events \
         ({} already there), {} named values ({} kept as the store had them)",
        s.entries_added,
        s.entries_present,
        s.events_added,
        s.events_present,
        s.values_added,
        s.values_kept
    )
}

struct Counts {
    entries: usize,
    events: usize,
    values: usize,
}

impl Counts {
    fn of(records: &[Record]) -> Counts {
        let count = |f: fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
        Counts {
            entries: count(|r| matches!(r, Record::Entry(_))),
            events: count(|r| matches!(r, Record::Event(_))),
            values: count(|r| matches!(r, Record::Value(_))),
        }
    }
}

/// The export's text and how to name it in messages.
fn read_input(file: Option<&Path>) -> Result<(String, String), CliError> {
    let mut text = String::new();
    let (shown, read) = match file {
        None => (
            "stdin".to_owned(),
            read_limited(std::io::stdin(), &mut text),
        ),
        Some(p) if p.as_os_str() == "-" => (
            "stdin".to_owned(),
            read_limited(std::io::stdin(), &mut text),
        ),
        Some(p) => {
            let shown = p.display().to_string();
            let read = std::fs::File::open(p).and_then(|f| read_limited(f, &mut text));
            (shown, read)
        }
    };
    read.map_err(|e| CliError::usage(format!("cannot read `{shown}`: {e}")))?;
    Ok((shown, text))
}

fn read_limited(from: impl std::io::Read, into: &mut String) -> std::io::Result<()> {
    let read = from.take(MAX_INPUT + 1).read_to_string(into)?;
    if read as u64 > MAX_INPUT {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; not an export of one store",
            MAX_INPUT >> 20
        )));
    }
    Ok(())
}

/// Write the export whole or not at all: to a temporary file beside it, then renamed.
fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::failed("io", format!("cannot write `{}`: {e}", path.display()))
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, text).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}
