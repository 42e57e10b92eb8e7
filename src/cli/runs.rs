//! `issueloop runs list` and `issueloop runs show`: the journal of runs, each run's events, its
//! stage → runtime table and its final status derived from the events.

use issueloop_config::clean_line;

use super::output::{out, outln};
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use issueloop_ledger::{
    Access, EntryState, Event, JournalEntry, LedgerEntry, RunId, RunStatus, RunSummary, StateStore,
    derive_status, stage_runtimes,
};
use jiff::Timestamp;

use super::ledger::{state_error, state_location, table};
use super::output::print_json;
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The most recent runs, newest first, with their status and cost.
    List(ListArgs),
    /// One run: its final status, its stage → runtime table, its ledger entry and its events.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id, as `issueloop runs list` shows it.
    #[arg(value_name = "RUN_ID", value_parser = parse_run_id)]
    pub run_id: RunId,
}

fn parse_run_id(text: &str) -> Result<RunId, String> {
    RunId::parse(text)
}

pub fn run(cmd: RunsCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    let location = state_location(&config, &ctx.env);
    // Reading never creates the state database.
    let store = crate::state::open_store_blocking(&config, &ctx.env, Access::ReadOnly)
        .map_err(state_error)?;
    match cmd {
        RunsCommand::List(args) => list(store.as_deref(), args, ctx, &location),
        RunsCommand::Show(args) => show(store.as_deref(), args, ctx, &location),
    }
}

fn list(
    store: Option<&dyn StateStore>,
    args: ListArgs,
    ctx: &Ctx,
    location: &str,
) -> Result<ExitCode, CliError> {
    let runs = match store {
        Some(s) => s.runs(args.limit).map_err(state_error)?,
        None => Vec::new(),
    };
    if ctx.global.json {
        let runs: Vec<serde_json::Value> = runs.iter().map(summary_json).collect();
        print_json(&serde_json::json!({ "runs": runs }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        outln!("no runs recorded in `{location}`");
        return Ok(ExitCode::SUCCESS);
    }
    let now = Timestamp::now();
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.to_string(),
                match (&r.repo, r.issue) {
                    (Some(repo), Some(issue)) => format!("{repo}#{issue}"),
                    _ => "-".into(),
                },
                r.started_at.strftime("%Y-%m-%d %H:%M").to_string(),
                status_text(r.status, r.ledger.as_ref(), now),
                cost_text(r.ledger.as_ref()),
            ]
        })
        .collect();
    out!(
        "{}",
        table(&["run", "issue", "started (UTC)", "status", "cost"], &rows)
    );
    Ok(ExitCode::SUCCESS)
}

fn summary_json(r: &RunSummary) -> serde_json::Value {
    serde_json::json!({
        "run_id": r.run_id,
        "repo": r.repo,
        "issue": r.issue,
        "started_at": r.started_at,
        "last_event_at": r.last_event_at,
        "status": r.status,
        "events": r.events,
        "ledger": r.ledger,
    })
}

fn show(
    store: Option<&dyn StateStore>,
    args: ShowArgs,
    ctx: &Ctx,
    location: &str,
) -> Result<ExitCode, CliError> {
    let (entries, ledger) = match store {
        Some(s) => (
            s.events(&args.run_id).map_err(state_error)?,
            s.entry(&args.run_id).map_err(state_error)?,
        ),
        None => (Vec::new(), None),
    };
    if entries.is_empty() && ledger.is_none() {
        return Err(CliError::usage(format!(
            "no run `{}` in `{location}`; `issueloop runs list` shows the recent ones",
            args.run_id,
        )));
    }
    let events: Vec<Event> = entries.iter().filter_map(JournalEntry::event).collect();
    let status = derive_status(&events);
    let stages = stage_runtimes(&events);
    if ctx.global.json {
        print_json(&serde_json::json!({
            "run_id": args.run_id,
            "status": status,
            "stages": stages,
            "ledger": ledger,
            "events": entries,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = Timestamp::now();
    let mut out = String::new();
    let _ = writeln!(out, "run     {}", args.run_id);
    let _ = writeln!(out, "status  {}", status_text(status, ledger.as_ref(), now));
    if let Some(e) = &ledger {
        let _ = writeln!(
            out,
            "ledger  {} on {}: reserved {}, cost {}",
            e.state,
            e.day,
            e.reserved,
            cost_text(Some(e))
        );
    }
    if !stages.is_empty() {
        out.push('\n');
        let rows: Vec<[String; 3]> = stages
            .iter()
            .map(|s| [s.stage.clone(), s.runtime_id.clone(), s.starts.to_string()])
            .collect();
        out.push_str(&table(&["stage", "runtime", "starts"], &rows));
    }
    out.push('\n');
    let rows: Vec<[String; 3]> = entries
        .iter()
        .map(|e| {
            [
                e.at.strftime("%m-%d %H:%M:%S").to_string(),
                e.kind.clone(),
                payload_text(&e.payload),
            ]
        })
        .collect();
    out.push_str(&table(&["at (UTC)", "event", "details"], &rows));
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The derived status; a run with no end recorded whose reservation is still open may simply
/// still be running, which the reader should know.
fn status_text(status: RunStatus, ledger: Option<&LedgerEntry>, now: Timestamp) -> String {
    match ledger {
        Some(e)
            if status == RunStatus::Interrupted
                && e.state == EntryState::Reserved
                && !e.is_overdue(now) =>
        {
            format!("{status} (may be running)")
        }
        _ => status.to_string(),
    }
}

fn cost_text(ledger: Option<&LedgerEntry>) -> String {
    match ledger {
        None => "-".into(),
        Some(e) => match (e.state, e.cost) {
            (_, Some(c)) if e.overspent => format!("{c} (overspent)"),
            (EntryState::Expired, Some(c)) => format!("{c} (expired)"),
            (_, Some(c)) => c.to_string(),
            (EntryState::Reserved, None) => format!("{} reserved", e.reserved),
            (_, None) => "$0.00".into(),
        },
    }
}

/// `key=value` pairs of an event's payload on one line, at most 100 characters. Strings come
/// from outside (titles, harness messages, gate output): control and bidi characters are
/// removed and secrets masked before they reach the terminal.
fn payload_text(payload: &serde_json::Value) -> String {
    const MAX: usize = 100;
    let text = match payload.as_object() {
        Some(object) => object
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!(
                    "{}={}",
                    clean_line(k),
                    issueloop_config::redact(&clean_line(s))
                ),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => payload.to_string(),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_text_shows_outside_text_as_data() {
        let payload = serde_json::json!({
            "title": "a\rb \u{1b}]0;x\u{7}\u{1b}[31mred \u{202E}cod.exe",
            "message": "token ghp_AbCdEfGhIjKlMnOpQrSt0123456789",
        });
        let text = payload_text(&payload);
        assert_eq!(
            text, "message=token ghp_[REDACTED] title=a b red cod.exe",
            "{text:?}"
        );
    }
}
