//! `issueloop ledger show`: a UTC day's spend, reservations and runs against the daily cap.

use super::output::out;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use issueloop_config::{Config, Env, StateBackend, database_url};
use issueloop_ledger::{Access, DayUsage, LedgerEntry, LedgerError, Usd, utc_day};
use jiff::Timestamp;
use jiff::civil::Date;

use super::output::print_json;
use super::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Show a UTC day's spend, reservations and runs against the daily cap, entry by entry.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The UTC day, `YYYY-MM-DD` (default: today in UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub day: Option<Date>,
}

fn parse_day(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .map_err(|_| format!("`{text}` is not a day; write it like `2026-11-21`"))
}

pub fn run(cmd: LedgerCommand, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        LedgerCommand::Show(args) => show(args, ctx),
    }
}

fn show(args: ShowArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    let now = Timestamp::now();
    let day = args.day.unwrap_or_else(|| utc_day(now));
    let location = state_location(&config, &ctx.env);
    // Reading never creates the state database: a missing one is a day with nothing in it.
    let (usage, entries) =
        match crate::state::open_store_blocking(&config, &ctx.env, Access::ReadOnly)
            .map_err(state_error)?
        {
            Some(ledger) => (
                ledger.day_usage(day).map_err(state_error)?,
                ledger.entries(day).map_err(state_error)?,
            ),
            None => (DayUsage::empty(day), Vec::new()),
        };
    let view = DayView {
        cap: config.budget.daily_cap_usd,
        max_runs: config.budget.max_runs_per_day,
        usage,
        entries,
        now,
    };
    if ctx.global.json {
        print_json(&view.to_json())?;
    } else {
        out!("{}", view.render(&location));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the configured state lives, as it may be shown: the SQLite file, or the PostgreSQL
/// URL with its password replaced.
pub fn state_location(config: &Config, env: &Env) -> String {
    match config.state.backend {
        StateBackend::Sqlite => config.state.path.display().to_string(),
        StateBackend::Postgres => database_url(config.state.url.as_ref(), env)
            .map(|url| url.redacted())
            .unwrap_or_else(|_| "postgres (no URL configured)".into()),
        StateBackend::Github => github_state_location(config),
    }
}

/// `branch `issueloop/state` of `acme/app``: where the `github` backend keeps the ledger.
pub fn github_state_location(config: &Config) -> String {
    let repo = config
        .state
        .repo
        .as_ref()
        .or(config.repos.first())
        .map_or_else(|| "(no repository)".to_owned(), |r| r.full());
    format!("branch `{}` of `{repo}`", config.state.branch)
}

/// A ledger or journal error as the CLI reports it (exit 1).
pub fn state_error(e: LedgerError) -> CliError {
    CliError::failed("state", e.to_string())
}

struct DayView {
    cap: Usd,
    max_runs: u32,
    usage: DayUsage,
    entries: Vec<LedgerEntry>,
    now: Timestamp,
}

impl DayView {
    fn to_json(&self) -> serde_json::Value {
        let entries: Vec<serde_json::Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
                v["overdue"] = e.is_overdue(self.now).into();
                v
            })
            .collect();
        serde_json::json!({
            "day": self.usage.day.to_string(),
            "cap_usd": self.cap,
            "spent_usd": self.usage.spent,
            "reserved_usd": self.usage.reserved,
            "remaining_usd": self.usage.left(self.cap),
            "runs_today": self.usage.runs,
            "max_runs_per_day": self.max_runs,
            "entries": entries,
        })
    }

    fn render(&self, location: &str) -> String {
        let u = &self.usage;
        let mut out = String::new();
        let _ = writeln!(out, "ledger for {} (UTC), state `{location}`\n", u.day);
        let _ = writeln!(out, "spent      {}", u.spent);
        let _ = writeln!(out, "reserved   {}", u.reserved);
        let _ = writeln!(
            out,
            "remaining  {} of the {} daily cap",
            u.left(self.cap),
            self.cap
        );
        let _ = writeln!(out, "runs       {} of {} allowed", u.runs, self.max_runs);
        if self.entries.is_empty() {
            let _ = writeln!(out, "\nno runs reserved a budget on {}", u.day);
            return out;
        }
        let rows: Vec<[String; 6]> = self
            .entries
            .iter()
            .map(|e| {
                let mut state = e.state.to_string();
                if e.is_overdue(self.now) {
                    state.push_str(" (overdue)");
                }
                let mut cost = e.cost.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                if e.overspent {
                    cost.push_str(" overspent");
                }
                [
                    e.reserved_at.strftime("%H:%M").to_string(),
                    e.run_id.to_string(),
                    format!("{}#{}", e.repo, e.issue),
                    state,
                    e.reserved.to_string(),
                    cost,
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["at", "run", "issue", "state", "reserved", "cost"],
            &rows,
        ));
        out
    }
}

/// Left-aligned columns separated by two spaces, with a header row.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
