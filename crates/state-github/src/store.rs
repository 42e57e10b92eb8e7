//! [`GithubState`]: the ledger kept as an append-only log on a branch of a repository. Every
//! change is one commit appending lines to a day file, pushed fast-forward only; the push is the
//! compare-and-swap. A rejected push means another runner wrote first: fetch, replay, decide
//! again, retry (bounded, with jittered backoff).

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use issueloop_config::ErrorChain;
use issueloop_ledger::{
    DayUsage, EntryState, Event, Expired, Journal, JournalEntry, Ledger, LedgerEntry, LedgerError,
    Reservation, ReserveOutcome, ReserveRequest, RunId, RunSummary, Settlement, SqliteLedger,
    StateStore, Usd, admit_held, check_release, check_settle, to_millis, utc_day,
};
use issueloop_ledger::{EntryRecord, ImportSummary, Record, plan_import};
use issueloop_workspace::{CasOutcome, CommitId, LogClone, LogTree, RemoteSpec};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::log::{DayLedger, FORMAT, Line, day_path, parse_day, replay_day};

/// The default branch the log lives on.
pub const DEFAULT_BRANCH: &str = "issueloop/state";
/// The file at the branch's root that names the log's format.
pub const FORMAT_FILE: &str = "issueloop-state.json";
/// Local ref the remote branch is fetched into.
const TRACKING_REF: &str = "refs/remotes/state/tip";

/// Where the log lives and how to reach it.
#[derive(Clone, Debug)]
pub struct GithubStateOptions {
    /// The repository (URL and credentials, which libgit2 gets by callback only).
    pub remote: RemoteSpec,
    /// The branch holding the log.
    pub branch: String,
    /// The local clone of the branch (under issueloop's `[git] cache_dir`).
    pub clone_dir: PathBuf,
    /// The local SQLite file holding this machine's full journal and named values.
    pub local_path: PathBuf,
    /// Limit of every fetch and push.
    pub network_timeout: Duration,
    /// How many times a write is tried before giving up on contention.
    pub max_attempts: u32,
    /// Gives the remote anew after a fetch or push failed: its credentials may have expired (an
    /// App's installation token lasts an hour). `None`: the remote as given, always.
    pub refresh: Option<RemoteRefresh>,
}

/// See [`GithubStateOptions::refresh`].
#[derive(Clone)]
pub struct RemoteRefresh(pub Arc<dyn Fn() -> Result<RemoteSpec, String> + Send + Sync>);

impl std::fmt::Debug for RemoteRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteRefresh")
    }
}

impl GithubStateOptions {
    pub fn new(remote: RemoteSpec, clone_dir: PathBuf, local_path: PathBuf) -> Self {
        Self {
            remote,
            branch: DEFAULT_BRANCH.to_owned(),
            clone_dir,
            local_path,
            network_timeout: Duration::from_secs(60),
            max_attempts: 12,
            refresh: None,
        }
    }
}

/// Network operations made so far (for benchmarks and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub fetches: u64,
    pub pushes: u64,
    /// Pushes the remote refused because another writer moved the branch first.
    pub rejected: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    pushes: AtomicU64,
    rejected: AtomicU64,
}

struct Inner {
    clone: LogClone,
    /// The remote branch's tip as last read or written; `None`: the branch does not exist.
    tip: Option<CommitId>,
    fetched: bool,
}

/// The `github` state store. The ledger is on the branch; the journal's events and the named
/// values stay in a local SQLite file, and a summary of every finished run is added to the log.
pub struct GithubState {
    opts: GithubStateOptions,
    /// The remote as last given (`opts.remote`, or a refreshed one).
    remote: Mutex<RemoteSpec>,
    inner: Mutex<Inner>,
    local: SqliteLedger,
    counters: Counters,
    host: Option<String>,
}

impl std::fmt::Debug for GithubState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubState")
            .field("location", &self.location_text())
            .finish()
    }
}

/// What a transaction decided on one snapshot of the log.
enum Step<T> {
    /// Nothing to write.
    Done(T),
    /// Append `(path, text)` to files and push; `T` once the push is accepted.
    Write {
        appends: Vec<(String, String)>,
        message: String,
        value: T,
    },
}

/// The log at one commit.
struct Snapshot<'r> {
    tree: LogTree<'r>,
}

impl Snapshot<'_> {
    fn text(&self, path: &str) -> Result<Option<String>, String> {
        let Some(bytes) = self
            .tree
            .read(path)
            .map_err(|e| format!("`{path}`: {}", e.chain()))?
        else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("`{path}` is not UTF-8"))
    }

    fn day(&self, day: Date) -> Result<DayLedger, String> {
        let path = day_path(day);
        let lines = match self.text(&path)? {
            Some(text) => parse_day(&text).map_err(|e| format!("`{path}` {e}"))?,
            None => Vec::new(),
        };
        Ok(replay_day(day, &lines))
    }

    /// Every day with a file, newest first. A folder that cannot be read is an error, not an
    /// empty ledger (that would under-count the day's spending).
    fn days(&self) -> Result<Vec<Date>, String> {
        let names = self
            .tree
            .list("ledger")
            .map_err(|e| format!("`ledger`: {}", e.chain()))?;
        let mut days: Vec<Date> = names
            .iter()
            .filter_map(|name| name.strip_suffix(".jsonl")?.parse().ok())
            .collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        Ok(days)
    }

    /// Every day's entries, oldest first.
    fn all_entries(&self) -> Result<Vec<LedgerEntry>, String> {
        let mut all = Vec::new();
        for day in self.days()? {
            all.extend(self.day(day)?.sorted());
        }
        all.sort_by(|a, b| (a.reserved_at, &a.run_id).cmp(&(b.reserved_at, &b.run_id)));
        Ok(all)
    }

    /// The day a run reserved on and its replayed day: the day in the run id's time stamp
    /// first, then every day, newest first.
    fn find_run(&self, run: &RunId) -> Result<Option<(Date, DayLedger)>, String> {
        let hinted = run
            .as_str()
            .get(..8)
            .and_then(|d| jiff::civil::Date::strptime("%Y%m%d", d).ok());
        let mut days = self.days()?;
        if let Some(h) = hinted {
            days.retain(|d| *d != h);
            days.insert(0, h);
        }
        for day in days {
            let ledger = self.day(day)?;
            if ledger.entries.contains_key(run) {
                return Ok(Some((day, ledger)));
            }
        }
        Ok(None)
    }
}

impl GithubState {
    /// Open the store: the local clone (created if missing), the local journal file, and a first
    /// fetch of the branch. The branch itself is created by the first write (an orphan commit).
    pub fn open(opts: GithubStateOptions) -> Result<GithubState, LedgerError> {
        let location = location(&opts);
        std::fs::create_dir_all(&opts.clone_dir).map_err(|source| LedgerError::CreateDir {
            path: opts.clone_dir.clone(),
            source,
        })?;
        let clone = LogClone::open_or_init(&opts.clone_dir).map_err(|e| LedgerError::Storage {
            path: PathBuf::from(&location),
            op: "create the local clone of the state branch",
            source: Box::new(e),
        })?;
        let local = SqliteLedger::open(&opts.local_path)?;
        let store = GithubState {
            remote: Mutex::new(opts.remote.clone()),
            opts,
            inner: Mutex::new(Inner {
                clone,
                tip: None,
                fetched: false,
            }),
            local,
            counters: Counters::default(),
            host: issueloop_ledger::ProcessOwner::current().map(|o| o.host),
        };
        {
            let _lock = store.process_lock()?;
            let mut inner = store.lock();
            store.fetch(&mut inner)?;
        }
        Ok(store)
    }

    /// Fetches and pushes made so far.
    pub fn stats(&self) -> TransferStats {
        TransferStats {
            fetches: self.counters.fetches.load(Ordering::Relaxed),
            pushes: self.counters.pushes.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
        }
    }

    /// The raw lines of `day` as the branch holds them now (fetched first).
    pub fn day_lines(&self, day: Date) -> Result<Vec<Line>, LedgerError> {
        self.read(|snap| {
            let path = day_path(day);
            match snap.text(&path)? {
                Some(text) => parse_day(&text).map_err(|e| format!("`{path}` {e}")),
                None => Ok(Vec::new()),
            }
        })
    }

    fn location_text(&self) -> String {
        location(&self.opts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Processes sharing the cache directory take turns on the local clone.
    fn process_lock(&self) -> Result<File, LedgerError> {
        let path = self.opts.clone_dir.with_extension("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LedgerError::CreateDir {
                path: path.clone(),
                source,
            })?;
        file.lock()
            .map_err(|e| self.storage("lock the local clone", e))?;
        Ok(file)
    }

    fn storage(
        &self,
        op: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> LedgerError {
        LedgerError::Storage {
            path: PathBuf::from(self.location_text()),
            op,
            source: Box::new(e),
        }
    }

    fn bad_log(&self, detail: String) -> LedgerError {
        LedgerError::BadRow {
            path: PathBuf::from(self.location_text()),
            detail,
        }
    }

    /// Run a network operation on the remote; when it fails and the options can give the remote
    /// again (a fresh installation token: they expire after an hour), once more with that.
    fn with_remote<T, E: std::fmt::Display>(
        &self,
        op: impl Fn(&RemoteSpec) -> Result<T, E>,
    ) -> Result<T, E> {
        let remote = self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let failed = match op(&remote) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let Some(refresh) = &self.opts.refresh else {
            return Err(failed);
        };
        match (refresh.0)() {
            Ok(fresh) => {
                tracing::debug!(error = %failed, "state branch: trying again with the remote given anew");
                *self.remote.lock().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                op(&fresh)
            }
            Err(why) => {
                tracing::warn!(%why, "state branch: cannot get the repository's credentials anew");
                Err(failed)
            }
        }
    }

    fn fetch(&self, inner: &mut Inner) -> Result<(), LedgerError> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let tip = self
            .with_remote(|remote| {
                inner.clone.fetch(
                    remote,
                    &self.opts.branch,
                    TRACKING_REF,
                    self.opts.network_timeout,
                )
            })
            .map_err(|e| self.storage("fetch the state branch", e))?;
        inner.tip = tip;
        inner.fetched = true;
        Ok(())
    }

    fn snapshot<'r>(&self, inner: &'r Inner) -> Result<Snapshot<'r>, LedgerError> {
        let tree = inner
            .clone
            .tree_at(inner.tip)
            .map_err(|e| self.storage("read the state branch", e))?;
        let snap = Snapshot { tree };
        if let Some(text) = snap.text(FORMAT_FILE).map_err(|e| self.bad_log(e))? {
            let found = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("format")?.as_u64())
                .unwrap_or(u64::MAX);
            if found > u64::from(FORMAT) {
                return Err(LedgerError::NewerSchema {
                    path: PathBuf::from(self.location_text()),
                    found: i64::try_from(found).unwrap_or(i64::MAX),
                    supported: i64::from(FORMAT),
                });
            }
        }
        Ok(snap)
    }

    /// Read the log as the remote holds it now.
    fn read<T>(
        &self,
        f: impl FnOnce(&Snapshot<'_>) -> Result<T, String>,
    ) -> Result<T, LedgerError> {
        let _lock = self.process_lock()?;
        let mut inner = self.lock();
        self.fetch(&mut inner)?;
        let snap = self.snapshot(&inner)?;
        f(&snap).map_err(|e| self.bad_log(e))
    }

    /// Decide on the newest log and write what was decided, compare-and-swap. A decision that
    /// writes nothing is only returned when made on a freshly fetched log.
    fn transact<T>(
        &self,
        mut decide: impl FnMut(&Snapshot<'_>) -> Result<Step<T>, LedgerError>,
    ) -> Result<T, LedgerError> {
        let _lock = self.process_lock()?;
        let mut inner = self.lock();
        let mut fresh = false;
        if !inner.fetched {
            self.fetch(&mut inner)?;
            fresh = true;
        }
        let mut rejections = 0;
        for _ in 0..self.opts.max_attempts.max(1) * 2 {
            let step = {
                let snap = self.snapshot(&inner)?;
                decide(&snap)?
            };
            match step {
                Step::Done(value) if fresh => return Ok(value),
                Step::Done(_) => {
                    self.fetch(&mut inner)?;
                    fresh = true;
                }
                Step::Write {
                    appends,
                    message,
                    value,
                } => {
                    let commit = self.commit(&inner, &appends, &message)?;
                    self.counters.pushes.fetch_add(1, Ordering::Relaxed);
                    let outcome = self
                        .with_remote(|remote| {
                            inner.clone.push_cas(
                                remote,
                                &self.opts.branch,
                                commit,
                                inner.tip,
                                self.opts.network_timeout,
                            )
                        })
                        .map_err(|e| self.storage("push to the state branch", e))?;
                    match outcome {
                        CasOutcome::Updated => {
                            inner.tip = Some(commit);
                            return Ok(value);
                        }
                        CasOutcome::Rejected { reason } => {
                            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                            rejections += 1;
                            tracing::debug!(reason, "another runner wrote the state first");
                            if rejections >= self.opts.max_attempts {
                                break;
                            }
                            std::thread::sleep(backoff(rejections));
                            self.fetch(&mut inner)?;
                            fresh = true;
                        }
                    }
                }
            }
        }
        Err(LedgerError::Busy {
            path: PathBuf::from(self.location_text()),
            op: "write to the state branch (other runners kept writing first)",
            timeout: self.opts.network_timeout,
        })
    }

    /// A commit on the current tip (or an orphan when the branch is new) appending `appends`,
    /// and creating the format file when the branch has none yet.
    fn commit(
        &self,
        inner: &Inner,
        appends: &[(String, String)],
        message: &str,
    ) -> Result<CommitId, LedgerError> {
        let snap = self.snapshot(inner)?;
        let mut all = Vec::with_capacity(appends.len() + 1);
        if snap
            .text(FORMAT_FILE)
            .map_err(|e| self.bad_log(e))?
            .is_none()
        {
            all.push((
                FORMAT_FILE.to_owned(),
                format!("{{\"format\": {FORMAT}}}\n"),
            ));
        }
        all.extend_from_slice(appends);
        inner
            .clone
            .commit_appends(inner.tip, &all, message)
            .map_err(|e| self.storage("write a commit of the state branch", e))
    }
}

fn location(opts: &GithubStateOptions) -> String {
    format!("branch `{}` of `{}`", opts.branch, opts.remote.url)
}

/// 50 ms doubled per rejection, at most 2 s, times a random factor in [0.5, 1.5): writers that
/// collided do not collide again in step.
fn backoff(rejections: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << rejections.min(6)).min(2_000);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u32(rejections);
    let jitter = hasher.finish() % 1000; // 0..1000 → factor 0.5..1.5
    Duration::from_millis(base * (500 + jitter) / 1000)
}

impl Ledger for GithubState {
    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        req.check_amount()?;
        let reservation = Reservation::new(req);
        let day = reservation.day;
        self.transact(|snap| {
            let ledger = snap.day(day).map_err(|e| self.bad_log(e))?;
            if ledger.entries.contains_key(&req.run_id) {
                return Err(LedgerError::DuplicateRun {
                    run_id: req.run_id.clone(),
                });
            }
            let usage = ledger.usage(day);
            if let Some(reason) = admit_held(&usage, ledger.entries.values(), req) {
                return Ok(Step::Done(ReserveOutcome::Refused { reason, usage }));
            }
            let line = Line::Reserve {
                run: req.run_id.clone(),
                repo: req.repo.clone(),
                issue: req.issue,
                amount_micros: req.amount.micros(),
                cap_micros: req.cap.micros(),
                max_runs: req.max_runs,
                soft_claim_ms: u64::try_from(req.soft_claim.as_millis()).unwrap_or(u64::MAX),
                at: reservation.reserved_at,
                expires_at: reservation.expires_at,
                host: self.host.clone(),
            };
            Ok(Step::Write {
                appends: vec![(day_path(day), line.render())],
                message: format!(
                    "reserve {} for {}#{} ({})",
                    req.amount, req.repo, req.issue, req.run_id
                ),
                value: ReserveOutcome::Reserved(reservation.clone()),
            })
        })
    }

    fn settle(
        &self,
        run_id: &RunId,
        actual: Usd,
        now: Timestamp,
    ) -> Result<Settlement, LedgerError> {
        let now = to_millis(now);
        self.transact(|snap| {
            let (day, ledger) = snap
                .find_run(run_id)
                .map_err(|e| self.bad_log(e))?
                .ok_or_else(|| LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                })?;
            let settlement = check_settle(&ledger.entries[run_id], actual)?;
            let line = Line::Settle {
                run: run_id.clone(),
                cost_micros: actual.micros(),
                at: now,
            };
            Ok(Step::Write {
                appends: vec![(day_path(day), line.render())],
                message: format!("settle {} at {actual}", run_id),
                value: settlement,
            })
        })
    }

    fn release(&self, run_id: &RunId, now: Timestamp) -> Result<(), LedgerError> {
        let now = to_millis(now);
        self.transact(|snap| {
            let (day, ledger) = snap
                .find_run(run_id)
                .map_err(|e| self.bad_log(e))?
                .ok_or_else(|| LedgerError::UnknownRun {
                    run_id: run_id.clone(),
                })?;
            check_release(&ledger.entries[run_id])?;
            let line = Line::Release {
                run: run_id.clone(),
                at: now,
            };
            Ok(Step::Write {
                appends: vec![(day_path(day), line.render())],
                message: format!("release {run_id}"),
                value: (),
            })
        })
    }

    fn expire(&self, now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        let now = to_millis(now);
        self.transact(|snap| {
            let mut appends = Vec::new();
            let mut expired = Vec::new();
            for day in snap.days().map_err(|e| self.bad_log(e))? {
                let ledger = snap.day(day).map_err(|e| self.bad_log(e))?;
                for e in ledger.sorted() {
                    if e.state == EntryState::Reserved && e.expires_at <= now {
                        let line = Line::Expire {
                            run: e.run_id.clone(),
                            at: now,
                        };
                        appends.push((day_path(day), line.render()));
                        expired.push(Expired {
                            run_id: e.run_id,
                            repo: e.repo,
                            issue: e.issue,
                            day,
                            amount: e.reserved,
                            reserved_at: e.reserved_at,
                            expires_at: e.expires_at,
                        });
                    }
                }
            }
            if expired.is_empty() {
                return Ok(Step::Done(expired));
            }
            Ok(Step::Write {
                appends,
                message: format!("expire {} unsettled reservation(s)", expired.len()),
                value: expired,
            })
        })
    }

    fn day_usage(&self, day: Date) -> Result<DayUsage, LedgerError> {
        self.read(|snap| Ok(snap.day(day)?.usage(day)))
    }

    fn entries(&self, day: Date) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.read(|snap| Ok(snap.day(day)?.sorted()))
    }

    fn entry(&self, run_id: &RunId) -> Result<Option<LedgerEntry>, LedgerError> {
        self.read(|snap| {
            Ok(snap
                .find_run(run_id)?
                .and_then(|(_, mut l)| l.entries.remove(run_id)))
        })
    }
}

impl Journal for GithubState {
    /// Every event goes to the local journal; a finished run's summary (its event types, status
    /// and reason) is also appended to `journal/<day>.jsonl` on the branch, one push per run.
    fn append(&self, run_id: &RunId, at: Timestamp, event: &Event) -> Result<u64, LedgerError> {
        let seq = self.local.append(run_id, at, event)?;
        if let Event::RunFinished { status, reason } = event {
            let events = self.local.events(run_id)?;
            let summary = serde_json::json!({
                "run": run_id,
                "finished_at": to_millis(at),
                "status": status,
                "reason": reason,
                "events": events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            });
            let line = format!("{summary}\n");
            let path = format!("journal/{}.jsonl", utc_day(at));
            self.transact(|_| {
                Ok(Step::Write {
                    appends: vec![(path.clone(), line.clone())],
                    message: format!("journal: {run_id} {status}"),
                    value: (),
                })
            })?;
        }
        Ok(seq)
    }

    fn events(&self, run_id: &RunId) -> Result<Vec<JournalEntry>, LedgerError> {
        self.local.events(run_id)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, LedgerError> {
        let mut runs = self.local.runs(limit)?;
        // One fetch for all of them.
        self.read(|snap| {
            for run in &mut runs {
                run.ledger = snap
                    .find_run(&run.run_id)?
                    .and_then(|(_, mut l)| l.entries.remove(&run.run_id));
            }
            Ok(())
        })?;
        Ok(runs)
    }
}

impl StateStore for GithubState {
    fn get_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.local.get_value(key)
    }

    fn set_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.local.set_value(key, value)
    }

    fn location(&self) -> String {
        self.location_text()
    }

    /// Reservations on the branch record no process: the clock alone expires them.
    fn expire_dead(&self, _now: Timestamp) -> Result<Vec<Expired>, LedgerError> {
        Ok(Vec::new())
    }

    /// The branch's entries (replayed; no owner: the branch records only the host, and the
    /// clock alone expires its reservations), then this machine's journal and named values.
    fn export_records(&self) -> Result<Vec<Record>, LedgerError> {
        let entries = self.read(|snap| snap.all_entries())?;
        let mut out: Vec<Record> = entries
            .iter()
            .map(|e| Record::Entry(EntryRecord::new(e, None)))
            .collect();
        out.extend(
            self.local
                .export_records()?
                .into_iter()
                .filter(|r| !matches!(r, Record::Entry(_))),
        );
        Ok(out)
    }

    /// Entries go to the branch in one commit (one push): each as the lines that replay to it,
    /// its reservation line carrying no limits of its own (it is history: the cap does not
    /// refuse it, and it counts against its day). Events and named values go to this machine's
    /// journal. Conflicts in either are found before anything is written.
    fn import_records(&self, records: &[Record]) -> Result<ImportSummary, LedgerError> {
        let (entries, local): (Vec<Record>, Vec<Record>) = records
            .iter()
            .cloned()
            .partition(|r| matches!(r, Record::Entry(_)));
        plan_import(&self.local.export_records()?, &local)?;
        let on_branch = self.transact(|snap| {
            let current: Vec<Record> = snap
                .all_entries()
                .map_err(|e| self.bad_log(e))?
                .iter()
                .map(|e| Record::Entry(EntryRecord::new(e, None)))
                .collect();
            let plan = plan_import(&current, &entries)?;
            if plan.entries.is_empty() {
                return Ok(Step::Done(plan.summary));
            }
            let appends = plan
                .entries
                .iter()
                .flat_map(|e| {
                    import_lines(e)
                        .into_iter()
                        .map(move |line| (day_path(e.day), line.render()))
                })
                .collect();
            Ok(Step::Write {
                appends,
                message: format!("import {} ledger entries", plan.entries.len()),
                value: plan.summary,
            })
        })?;
        let here = self.local.import_records(&local)?;
        Ok(ImportSummary {
            entries_added: on_branch.entries_added,
            entries_present: on_branch.entries_present,
            ..here
        })
    }
}

/// The log lines that replay to an imported entry: its reservation, without limits of its own
/// (the largest cap and run count), then how it ended.
fn import_lines(e: &EntryRecord) -> Vec<Line> {
    let mut lines = vec![Line::Reserve {
        run: e.run_id.clone(),
        repo: e.repo.clone(),
        issue: e.issue,
        amount_micros: e.reserved_micros,
        cap_micros: i64::MAX,
        max_runs: u32::MAX,
        soft_claim_ms: 0,
        at: e.reserved_at,
        expires_at: e.expires_at,
        host: e.owner.as_ref().map(|o| o.host.clone()),
    }];
    let run = e.run_id.clone();
    let at = e.closed_at.unwrap_or(e.reserved_at);
    match e.state {
        EntryState::Reserved => {}
        EntryState::Settled => lines.push(Line::Settle {
            run,
            cost_micros: e.cost_micros.unwrap_or(0),
            at,
        }),
        EntryState::Released => lines.push(Line::Release { run, at }),
        EntryState::Expired => lines.push(Line::Expire { run, at }),
    }
    lines
}
