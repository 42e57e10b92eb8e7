//! `issueloop run --once` (one tick, for cron and GitHub Actions) and `issueloop serve` (ticks on
//! the `[service]` cron schedule until SIGTERM/SIGINT).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use issueloop_config::{Config, Env};
use issueloop_ledger::{Access, SqliteLedger, StateStore};

use super::ledger::state_error;
use super::output::{EXIT_FAILED, out, outln, print_json};
use super::{CliError, Ctx};
use crate::pipeline::{IssueFilter, Pipeline, TickOptions, TickVerdict};
use crate::report::TickReport;
use crate::service::{self, ServeOptions, TickEnd};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run one tick and exit (the mode for cron and GitHub Actions; `serve` runs on a schedule).
    #[arg(long, required = true)]
    pub once: bool,
    /// Only this issue: `42` or `owner/name#42`.
    #[arg(long, value_parser = parse_filter)]
    pub issue: Option<IssueFilter>,
    /// Read everything and write nothing: print "would …" for each write skipped.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve Prometheus metrics on this address (e.g. `127.0.0.1:9464`).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

fn parse_filter(s: &str) -> Result<IssueFilter, String> {
    s.parse()
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed("internal", format!("cannot start the async runtime: {e}")))
}

/// Open what a tick needs. `dry_run` never creates the state file.
async fn open_pipeline(config: Config, env: &Env, dry_run: bool) -> Result<Pipeline, CliError> {
    let preflight = issueloop_runtime::preflight(&config, env);
    for w in &preflight.warnings {
        tracing::warn!("{w}");
    }
    if let Some(refusal) = preflight.refusal() {
        if dry_run {
            tracing::warn!("a real run would refuse to start: {refusal}");
        } else {
            return Err(CliError::failed("preflight", refusal));
        }
    }
    let forge = issueloop_forge::open_forge(&config, env)
        .await
        .map_err(|e| CliError::failed("forge", e.to_string()))?;
    // A dry run reads the ledger but must not create one: with nothing recorded yet, an empty
    // ledger in memory stands in for it.
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let store: Arc<dyn StateStore> =
        match crate::state::open_store(&config, env, &forge, access).await {
            Ok(Some(store)) => store,
            Ok(None) => Arc::new(SqliteLedger::open(":memory:").map_err(state_error)?),
            Err(e) => return Err(state_error(e)),
        };
    let workspace = issueloop_workspace::Workspace::from_config(&config.git);
    Ok(Pipeline {
        config: Arc::new(config),
        env: env.clone(),
        forge,
        store,
        workspace,
    })
}

pub fn run(args: RunArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    run_config(
        config,
        ctx.env.clone(),
        ctx.global.json,
        args.dry_run,
        args.issue,
    )
}

/// One tick with a loaded configuration, its report shown; used by `run --once` and `demo`.
pub fn run_config(
    config: Config,
    env: Env,
    json: bool,
    dry_run: bool,
    issue: Option<IssueFilter>,
) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async move {
        let options = ServeOptions::from_config(&config.service);
        let pipeline = Arc::new(open_pipeline(config, &env, dry_run).await?);
        let shutdown = crate::shutdown::shutdown_signal()
            .map_err(|e| CliError::failed("signals", e.to_string()))?;
        let p = pipeline.clone();
        let end = service::run_once(
            &options,
            move |input| async move {
                p.tick(&TickOptions {
                    dry_run,
                    only: issue,
                    shutdown: input.shutdown,
                })
                .await
            },
            shutdown,
        )
        .await;
        match end {
            TickEnd::Completed(report) => {
                show_report(&report, &env, json)?;
                // 0 when every run ended as designed; 1 when the tick or any run failed for an
                // infrastructure reason, so a CI job turns red.
                let verdict = TickVerdict::of(&report);
                if let Some(why) = verdict.explanation() {
                    tracing::error!("{why}");
                }
                Ok(if verdict.failed() {
                    ExitCode::from(EXIT_FAILED)
                } else {
                    ExitCode::SUCCESS
                })
            }
            TickEnd::Failed(e) => Err(CliError::failed("tick", e.to_string())),
            TickEnd::Panicked(p) => {
                Err(CliError::failed("tick", format!("the tick panicked: {p}")))
            }
            TickEnd::Cancelled => Err(CliError::failed(
                "tick",
                "the tick did not finish its clean-up in time after a shutdown signal",
            )),
        }
    })
}

pub fn serve(args: ServeArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let config = ctx.load_config()?;
    let env = ctx.env.clone();
    runtime()?.block_on(async move {
        let schedule = service::Schedule::from_config(&config.service)
            .map_err(|e| CliError::usage(e.to_string()))?;
        let mut options = ServeOptions::from_config(&config.service);
        let pipeline = Arc::new(open_pipeline(config, &env, false).await?);
        let shutdown = crate::shutdown::shutdown_signal().map_err(|e| CliError::failed("signals", e.to_string()))?;
        if let Some(addr) = args.metrics_addr {
            let metrics = Arc::new(crate::metrics::Metrics::default());
            let server = crate::metrics::MetricsServer::bind(addr)
                .await
                .map_err(|e| CliError::failed("metrics", e.to_string()))?;
            tracing::info!(%addr, "serving metrics");
            tokio::spawn(server.run(metrics.clone(), std::future::pending::<()>()));
            options.metrics = Some(metrics);
        }
        tracing::info!(
            cron = schedule.expression(),
            timezone = schedule.timezone(),
            "serving; next ticks: {}",
            schedule
                .upcoming(jiff::Timestamp::now(), 3)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let metrics = options.metrics.clone();
        let summary = service::serve(
            &schedule,
            options,
            move |input| {
                let p = pipeline.clone();
                let metrics = metrics.clone();
                async move {
                    let before = p.forge.stats();
                    let report = p
                        .tick(&TickOptions {
                            dry_run: false,
                            only: None,
                            shutdown: input.shutdown,
                        })
                        .await?;
                    if let Some(m) = &metrics {
                        m.add_api_requests(p.forge.stats().since(&before).billable());
                    }
                    tracing::info!(
                        "tick {} done: {} PR(s) opened, {} failed, {} skipped; ${:.2} of ${:.2} left today",
                        input.sequence,
                        report.count(crate::report::RunStatus::PrOpened),
                        report.count(crate::report::RunStatus::Failed),
                        report.count(crate::report::RunStatus::Skipped),
                        report.ledger.remaining_usd.dollars(),
                        report.ledger.cap_usd.dollars()
                    );
                    // `serve` keeps running; what would fail `run --once` is an error in the log
                    // (and `issueloop_infrastructure_failures_total` in the metrics).
                    if let Some(why) = TickVerdict::of(&report).explanation() {
                        tracing::error!(tick = input.sequence, "{why}");
                    }
                    Ok::<_, crate::pipeline::TickError>(report)
                }
            },
            shutdown,
        )
        .await
        .map_err(|e| CliError::failed("serve", e.to_string()))?;
        tracing::info!(
            ticks = summary.ticks,
            completed = summary.completed,
            failed = summary.failed,
            panicked = summary.panicked,
            cancelled = summary.cancelled,
            fires_skipped = summary.fires_skipped,
            stopped_mid_tick = summary.stopped_mid_tick,
            "stopped"
        );
        Ok(if summary.clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        })
    })
}

/// The end of a tick: JSON with `--json`, else the Markdown summary (also appended to
/// `$GITHUB_STEP_SUMMARY` in Actions) and the annotations.
pub fn show_report(report: &TickReport, env: &Env, json: bool) -> Result<(), CliError> {
    let judged = crate::pipeline::judge_tick(report);
    let emitted = crate::report::emit(report, &judged, env)
        .map_err(|e| CliError::failed("summary", e.to_string()))?;
    for line in &report.would {
        if json {
            tracing::info!("{line}");
        } else {
            outln!("{line}");
        }
    }
    if json {
        print_json(&crate::report::to_json(report))?;
        for a in &emitted.annotations {
            eprintln!("{a}");
        }
    } else {
        if let Some(md) = &emitted.markdown {
            out!("{md}");
        }
        if let Some(path) = &emitted.summary_file {
            outln!("job summary written to `{}`", path.display());
        }
        for a in &emitted.annotations {
            outln!("{a}");
        }
    }
    Ok(())
}
