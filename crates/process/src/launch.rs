//! [`Launch`]: the builder every child process of issueloop starts through, and [`Running`], the
//! handle that streams its stdout, stops it, and ends every process it started.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::capture::BoundedCapture;
use crate::keeper::{KILL_ALL, split};
use crate::sandbox::{Prepared, Sandbox, SandboxError};

/// Default bytes of output kept (half head, half tail).
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 << 10;

/// Default bytes of stdout kept whole by [`Launch::output`]; more is read and dropped.
pub const DEFAULT_STDOUT_LIMIT: usize = 64 << 20;

/// How a child is started: argv, working directory, an environment built by the caller from an
/// allowlist (nothing is inherited), stdin, limits and an optional sandbox.
#[derive(Clone, Debug)]
pub struct Launch {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    kill_grace: Duration,
    output_limit: usize,
    stdout_limit: usize,
    sandbox: Option<Sandbox>,
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl LaunchError {
    /// The program does not exist (or is not on the child's `PATH`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, LaunchError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl Launch {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Launch {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            stdin: None,
            timeout: None,
            kill_grace: Duration::from_secs(5),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            stdout_limit: DEFAULT_STDOUT_LIMIT,
            sandbox: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's whole environment (nothing of issueloop's is inherited).
    pub fn env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// One more variable.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Bytes written to the child's stdin (then closed); without it stdin is `/dev/null`.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Wall-clock limit of [`Launch::run`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Between SIGTERM and killing everything when the timeout passes.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Bytes of output kept (head and tail).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes.max(2);
        self
    }

    /// Bytes of stdout [`Launch::output`] keeps whole; past them [`Output::stdout_complete`] is
    /// false.
    pub fn stdout_limit(mut self, bytes: usize) -> Self {
        self.stdout_limit = bytes;
        self
    }

    /// Run the child in this sandbox (`None`: unsandboxed).
    pub fn sandbox(mut self, sandbox: Option<Sandbox>) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The argv as text, for messages.
    pub fn argv_text(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self, stdout: Stdio) -> Result<Command, LaunchError> {
        let mut prepared = match &self.sandbox {
            Some(s) => Some(Prepared::new(s)?),
            None => None,
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(stdout)
            .stderr(Stdio::piped())
            // The keeper's group; the child makes its own.
            .process_group(0)
            // Killing the keeper alone would leave the child's descendants behind: `Running`
            // asks the keeper instead.
            .kill_on_drop(false);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe code:
        // `split` (raw system calls) and `Prepared::enforce` (landlock_restrict_self and prctl on
        // a ruleset built before the fork).
        unsafe {
            cmd.pre_exec(move || {
                split(parent)?;
                if let Some(p) = prepared.as_mut() {
                    p.enforce()?;
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// Start the child with its stdout piped for streaming ([`Running::take_stdout`]) and its
    /// stderr kept head and tail ([`Running::finish`]).
    pub async fn spawn(self) -> Result<Running, LaunchError> {
        let cmd = self.command(Stdio::piped())?;
        let mut child = spawn_on_keeper_thread(cmd)
            .await
            .map_err(|source| LaunchError::Spawn {
                program: self.program.to_string_lossy().into_owned(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let stdin_task = self.stdin.and_then(|bytes| {
            child.stdin.take().map(|mut stdin| {
                tokio::spawn(async move {
                    // A child that never reads its stdin is not an error.
                    let _ = stdin.write_all(&bytes).await;
                    let _ = stdin.shutdown().await;
                })
            })
        });
        let limit = self.output_limit;
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(head_tail(s, limit)));
        let stdout = child.stdout.take();
        Ok(Running {
            child,
            pid,
            stdout,
            stderr,
            stdin_task,
            reaped: false,
        })
    }

    /// Run the child to its end (or the timeout), its stdout and stderr kept together, head and
    /// tail. Every process it started has ended when this returns.
    pub async fn run(self) -> Result<Finished, LaunchError> {
        let start = Instant::now();
        let timeout = self.timeout;
        let grace = self.kill_grace;
        let limit = self.output_limit;
        let stdin = self.stdin.clone();
        let cmd = self.command(Stdio::piped())?;
        let mut child = spawn_on_keeper_thread(cmd)
            .await
            .map_err(|source| LaunchError::Spawn {
                program: self.program.to_string_lossy().into_owned(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let stdin_task = stdin.and_then(|bytes| {
            child.stdin.take().map(|mut s| {
                tokio::spawn(async move {
                    let _ = s.write_all(&bytes).await;
                    let _ = s.shutdown().await;
                })
            })
        });
        let capture = Arc::new(Mutex::new(BoundedCapture::new(limit)));
        let reader = tokio::spawn(drain_both(
            child.stdout.take(),
            child.stderr.take(),
            Arc::clone(&capture),
        ));
        let mut running = Running {
            child,
            pid,
            stdout: None,
            stderr: None,
            stdin_task,
            reaped: false,
        };
        let (waited, timed_out) = running.wait_within(timeout, grace).await;
        let output_cut = !join_within(reader, Duration::from_secs(2)).await;
        let (output, output_bytes) = {
            let c = capture.lock().unwrap_or_else(|p| p.into_inner());
            (c.excerpt(), c.total())
        };
        Ok(Finished {
            status: waited,
            timed_out,
            output,
            output_bytes,
            output_cut,
            duration: start.elapsed(),
        })
    }

    /// Run the child to its end (or the timeout) with its stdout kept whole up to the stdout
    /// limit and its stderr head and tail: for children whose stdout is data (git). Every
    /// process it started has ended when this returns.
    pub async fn output(self) -> Result<Output, LaunchError> {
        let start = Instant::now();
        let timeout = self.timeout;
        let grace = self.kill_grace;
        let stdout_limit = self.stdout_limit;
        let mut running = self.spawn().await?;
        let stdout = running.take_stdout();
        let reader = tokio::spawn(read_limited(stdout, stdout_limit));
        let (waited, timed_out) = running.wait_within(timeout, grace).await;
        let abort = reader.abort_handle();
        let (stdout, stdout_bytes, output_cut) =
            match tokio::time::timeout(Duration::from_secs(2), reader).await {
                Ok(Ok((bytes, total))) => (bytes, total, false),
                _ => {
                    abort.abort();
                    (Vec::new(), 0, true)
                }
            };
        let (_, stderr) = running.finish().await;
        Ok(Output {
            status: waited,
            timed_out,
            stdout,
            stdout_bytes,
            stderr,
            output_cut,
            duration: start.elapsed(),
        })
    }

    /// [`Launch::output`] from synchronous code (see [`Launch::run_blocking`]).
    pub fn output_blocking(self) -> Result<Output, LaunchError> {
        self.on_own_thread(Launch::output)
    }

    /// [`Launch::run`] from synchronous code: on a thread of its own with a small runtime (so
    /// it also works when called from an async runtime's thread).
    pub fn run_blocking(self) -> Result<Finished, LaunchError> {
        self.on_own_thread(Launch::run)
    }

    /// Drives `launch(self)` to its end on a thread of its own with a current-thread runtime.
    fn on_own_thread<T, F>(self, launch: impl FnOnce(Launch) -> F + Send) -> Result<T, LaunchError>
    where
        T: Send,
        F: std::future::Future<Output = Result<T, LaunchError>>,
    {
        let program = self.program.to_string_lossy().into_owned();
        let fail = |source| LaunchError::Spawn {
            program: program.clone(),
            source,
        };
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(fail)?;
                    rt.block_on(launch(self))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(fail(std::io::Error::other("the launching thread panicked")))
                })
        })
    }
}

/// The end of a [`Launch::run`].
#[derive(Debug)]
pub struct Finished {
    /// How the child ended (its exit code or signal), or why waiting failed.
    pub status: std::io::Result<ExitStatus>,
    /// The timeout passed and the child was stopped.
    pub timed_out: bool,
    /// Head and tail of stdout and stderr together.
    pub output: String,
    /// Bytes of output in total.
    pub output_bytes: u64,
    /// Output was still open two seconds after the end (and was no longer read).
    pub output_cut: bool,
    pub duration: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.as_ref().is_ok_and(ExitStatus::success)
    }

    /// The exit code, when the child exited (not when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.as_ref().ok().and_then(ExitStatus::code)
    }

    /// The signal that ended the child.
    pub fn signal(&self) -> Option<i32> {
        self.status.as_ref().ok().and_then(ExitStatusExt::signal)
    }
}

/// The end of a [`Launch::output`].
#[derive(Debug)]
pub struct Output {
    /// How the child ended (its exit code or signal), or why waiting failed.
    pub status: std::io::Result<ExitStatus>,
    /// The timeout passed and the child was stopped.
    pub timed_out: bool,
    /// Stdout, whole up to the stdout limit.
    pub stdout: Vec<u8>,
    /// Bytes of stdout in total (more than `stdout.len()` when it passed the limit).
    pub stdout_bytes: u64,
    /// Head and tail of stderr.
    pub stderr: String,
    /// Stdout was still open two seconds after the end (and was dropped).
    pub output_cut: bool,
    pub duration: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.as_ref().is_ok_and(ExitStatus::success)
    }

    /// `stdout` holds everything the child printed.
    pub fn stdout_complete(&self) -> bool {
        !self.output_cut && self.stdout.len() as u64 == self.stdout_bytes
    }

    /// The exit code, when the child exited (not when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.as_ref().ok().and_then(ExitStatus::code)
    }
}

/// A started child. Dropping it ends every process the child started.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pid: u32,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    stdin_task: Option<JoinHandle<()>>,
    reaped: bool,
}

impl Running {
    /// The process id issueloop knows it by (the keeper's; the child's group is its own).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's stdout, to read as it comes (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// Wait for the child to end (cancel-safe). When this returns, every process of the launch
    /// has ended: the keeper exits only after the last of them.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        if status.is_ok() {
            self.reaped = true;
        }
        status
    }

    /// Wait up to `timeout` (none: for ever); then SIGTERM, `grace`, and an end of everything.
    /// Returns how the child ended and whether the timeout passed.
    async fn wait_within(
        &mut self,
        timeout: Option<Duration>,
        grace: Duration,
    ) -> (std::io::Result<ExitStatus>, bool) {
        let far = Duration::from_secs(30 * 365 * 24 * 3600);
        match tokio::time::timeout(timeout.unwrap_or(far), self.wait()).await {
            Ok(status) => (status, false),
            Err(_) => {
                self.terminate();
                let status = match tokio::time::timeout(grace, self.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        self.kill();
                        self.wait_or_force().await
                    }
                };
                (status, true)
            }
        }
    }

    /// SIGTERM to the child's process group (the child may still report and exit).
    pub fn terminate(&self) {
        self.signal_keeper(libc::SIGTERM);
    }

    /// End every process of the launch now.
    pub fn kill(&self) {
        self.signal_keeper(KILL_ALL);
    }

    fn signal_keeper(&self, sig: libc::c_int) {
        if self.reaped {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.pid)
            && pid > 1
        {
            // SAFETY: kill only sends a signal, to our own unreaped child (the keeper).
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Wait for the keeper after [`Running::kill`]; if it has not ended within 10 s (it should
    /// within milliseconds), SIGKILL it and its group.
    async fn wait_or_force(&mut self) -> std::io::Result<ExitStatus> {
        match tokio::time::timeout(Duration::from_secs(10), self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(pid = self.pid, "a process keeper did not end; killing it");
                let _ = self.child.start_kill();
                self.wait().await
            }
        }
    }

    /// End every process of the launch, reap it, and return how the child ended (`None` when
    /// waiting failed) and the head and tail of its stderr.
    pub async fn finish(mut self) -> (Option<ExitStatus>, String) {
        self.kill();
        let status = self.wait_or_force().await.ok();
        self.stdout = None;
        if let Some(t) = self.stdin_task.take() {
            t.abort();
        }
        let stderr = match self.stderr.take() {
            Some(task) => {
                let abort = task.abort_handle();
                match tokio::time::timeout(Duration::from_secs(1), task).await {
                    Ok(Ok(text)) => text,
                    _ => {
                        abort.abort();
                        String::new()
                    }
                }
            }
            None => String::new(),
        };
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The keeper kills everything and exits; tokio reaps it in the background.
        self.kill();
        if let Some(t) = &self.stdin_task {
            t.abort();
        }
        if let Some(t) = &self.stderr {
            t.abort();
        }
    }
}

/// A spawn request for the keeper thread.
type SpawnRequest = (
    Command,
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<std::io::Result<Child>>,
);

/// Children are forked from one thread that lives as long as the process: the keeper's
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked it ends, and an async runtime's
/// threads come and go (`block_in_place`, blocking pools).
async fn spawn_on_keeper_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<std_mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<SpawnRequest>();
        let spawned = std::thread::Builder::new()
            .name("issueloop-spawner".into())
            .spawn(move || {
                for (mut cmd, handle, reply) in rx {
                    let _guard = handle.enter();
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the process spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::runtime::Handle::current();
    let sent = tx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, handle, reply_tx));
    if sent.is_err() {
        return Err(std::io::Error::other("the process spawner thread is gone"));
    }
    reply_rx
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the process spawner thread is gone")))
}

/// Drain a stream to its end, keeping its first and last `limit / 2` bytes.
pub async fn head_tail<R: AsyncRead + Unpin>(mut r: R, limit: usize) -> String {
    let mut capture = BoundedCapture::new(limit.max(2));
    let mut buf = vec![0u8; 8 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => capture.push(&buf[..n]),
        }
    }
    capture.excerpt()
}

/// Wait for a reader task up to `limit`; abort it past that. Whether it ended in time.
async fn join_within(mut task: JoinHandle<()>, limit: Duration) -> bool {
    if tokio::time::timeout(limit, &mut task).await.is_err() {
        task.abort();
        return false;
    }
    true
}

/// Read a pipe to its end, keeping its first `limit` bytes; returns them and the total.
async fn read_limited(pipe: Option<ChildStdout>, limit: usize) -> (Vec<u8>, u64) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), 0);
    };
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, total)
}

/// Read stdout and stderr as they come into one bounded capture, until both are closed.
async fn drain_both(
    mut stdout: Option<tokio::process::ChildStdout>,
    mut stderr: Option<tokio::process::ChildStderr>,
    capture: Arc<Mutex<BoundedCapture>>,
) {
    let mut out_buf = vec![0u8; 8192];
    let mut err_buf = vec![0u8; 8192];
    let push = |bytes: &[u8]| {
        capture
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(bytes);
    };
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            r = read_some(&mut stdout, &mut out_buf) => match r {
                Ok(0) => stdout = None,
                Ok(n) => push(&out_buf[..n]),
                Err(e) => {
                    push(format!("\n[reading stdout failed: {e}]\n").as_bytes());
                    stdout = None;
                }
            },
            r = read_some(&mut stderr, &mut err_buf) => match r {
                Ok(0) => stderr = None,
                Ok(n) => push(&err_buf[..n]),
                Err(e) => {
                    push(format!("\n[reading stderr failed: {e}]\n").as_bytes());
                    stderr = None;
                }
            },
        }
    }
}

/// Read from a pipe that may already be closed (`None`: never ready).
pub async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}
