//! A scripted stand-in for a coding-agent CLI, used only by this crate's tests and benchmark to
//! drive the real supervision path: replay a captured stream with delays, emit cost increments,
//! hang (with a child), flood stdout, dump its environment.
//!
//! ```text
//! issueloop-fake-agent [--stdin-to F] [--env-to F] [--brief-file-to F] [--ignore-term] [--exit N] MODE …
//!   replay FILE [--delay-ms N] [--progress F]     print FILE line by line
//!   costs --count N --step USD [--delay-ms N] [--progress F]
//!                                                 OpenCode `step_finish` lines of USD each, then `stop`
//!   hang --pid-file F [--child-pid-file C] [--parent-exits]
//!                                                 sleep forever (with a child that does too; with
//!                                                 `--parent-exits` only the child stays)
//!   flood --bytes N [--line-bytes L] [--json]     print N bytes in lines of L (0: one line)
//!   print TEXT…                                   print each TEXT on its own line
//! ```

#![expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "a stand-in for an agent CLI: it reads and dumps its environment and starts children as one would"
)]

use std::io::{Read, Write};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(agent_main(args));
}

/// Run the fake agent with `args`; the process exit code.
pub fn agent_main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("issueloop-fake-agent: {e}");
            2
        }
    }
}

struct Opts {
    args: Vec<String>,
}

impl Opts {
    /// Remove `--name VALUE` and return the value.
    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.args.iter().position(|a| a == name) {
            Some(i) => {
                if i + 1 >= self.args.len() {
                    return Err(format!("`{name}` needs a value"));
                }
                let v = self.args.remove(i + 1);
                self.args.remove(i);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        match self.args.iter().position(|a| a == name) {
            Some(i) => {
                self.args.remove(i);
                true
            }
            None => false,
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.value(name)? {
            Some(v) => v
                .parse()
                .map_err(|_| format!("`{name}` needs a number, not `{v}`")),
            None => Ok(default),
        }
    }
}

fn run(args: Vec<String>) -> Result<i32, String> {
    let mut o = Opts { args };
    let stdin_to = o.value("--stdin-to")?;
    let env_to = o.value("--env-to")?;
    let brief_to = o.value("--brief-file-to")?;
    let ignore_term = o.flag("--ignore-term");
    let exit: i32 = o.number("--exit", 0)?;
    if ignore_term {
        // SAFETY: setting a signal disposition to SIG_IGN has no memory-safety preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    if let Some(path) = stdin_to {
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| format!("reading stdin: {e}"))?;
        std::fs::write(&path, input).map_err(|e| format!("writing `{path}`: {e}"))?;
    }
    if let Some(path) = env_to {
        let mut dump = String::new();
        for (k, v) in std::env::vars_os() {
            dump.push_str(&format!(
                "{}={}\n",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
        std::fs::write(&path, dump).map_err(|e| format!("writing `{path}`: {e}"))?;
    }
    if let Some(path) = brief_to {
        let brief = std::env::var("ISSUELOOP_BRIEF_FILE")
            .map_err(|_| "ISSUELOOP_BRIEF_FILE is not set".to_string())?;
        std::fs::copy(&brief, &path).map_err(|e| format!("copying `{brief}`: {e}"))?;
    }
    let mode = if o.args.is_empty() {
        "print".to_owned()
    } else {
        o.args.remove(0)
    };
    match mode.as_str() {
        "replay" => {
            let delay = Duration::from_millis(o.number("--delay-ms", 0)?);
            let progress = o.value("--progress")?;
            let file = o.args.first().ok_or("replay needs a FILE")?.clone();
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("reading `{file}`: {e}"))?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            emit(&lines, delay, progress.as_deref())?;
        }
        "costs" => {
            let count: u32 = o.number("--count", 10)?;
            let step: f64 = o.number("--step", 0.1)?;
            let delay = Duration::from_millis(o.number("--delay-ms", 0)?);
            let progress = o.value("--progress")?;
            let mut lines = Vec::new();
            for i in 0..count {
                let reason = if i + 1 == count { "stop" } else { "tool-calls" };
                lines.push(format!(
                    r#"{{"type":"step_start","part":{{"messageID":"m{i}","type":"step-start"}}}}"#
                ));
                lines.push(format!(
                    r#"{{"type":"step_finish","part":{{"messageID":"m{i}","type":"step-finish","reason":"{reason}","cost":{step},"tokens":{{"input":100,"output":10,"reasoning":0,"cache":{{"read":0,"write":0}}}}}}}}"#
                ));
            }
            emit(&lines, delay, progress.as_deref())?;
        }
        "hang" => {
            let pid_file = o.value("--pid-file")?.ok_or("hang needs `--pid-file`")?;
            let parent_exits = o.flag("--parent-exits");
            if let Some(child_pid_file) = o.value("--child-pid-file")? {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut child = std::process::Command::new(exe);
                if ignore_term {
                    child.arg("--ignore-term");
                }
                let spawned = child
                    .args(["hang", "--pid-file", &child_pid_file])
                    .spawn()
                    .map_err(|e| format!("spawning the child: {e}"))?;
                // Written here too (the child writes the same pid): when the parent exits at
                // once, the child may be ended before it gets to write its own file.
                std::fs::write(&child_pid_file, spawned.id().to_string())
                    .map_err(|e| format!("writing `{child_pid_file}`: {e}"))?;
            }
            std::fs::write(&pid_file, std::process::id().to_string())
                .map_err(|e| format!("writing `{pid_file}`: {e}"))?;
            println!("{{\"type\":\"step_start\",\"part\":{{\"messageID\":\"m0\"}}}}");
            let _ = std::io::stdout().flush();
            if parent_exits {
                return Ok(exit);
            }
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "flood" => {
            let bytes: u64 = o.number("--bytes", 1 << 20)?;
            let line_bytes: usize = o.number("--line-bytes", 1024)?;
            let json = o.flag("--json");
            flood(bytes, line_bytes, json).map_err(|e| format!("writing stdout: {e}"))?;
        }
        "print" => {
            let mut out = std::io::stdout().lock();
            for a in &o.args {
                writeln!(out, "{a}").map_err(|e| format!("writing stdout: {e}"))?;
            }
        }
        other => return Err(format!("unknown mode `{other}`")),
    }
    Ok(exit)
}

/// Print each line (flushed), sleeping `delay` after each and counting them in `progress`.
fn emit(lines: &[String], delay: Duration, progress: Option<&str>) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for (i, line) in lines.iter().enumerate() {
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| format!("writing stdout: {e}"))?;
        if let Some(p) = progress {
            // Replaced whole, so a kill never leaves it half written.
            let tmp = format!("{p}.tmp");
            std::fs::write(&tmp, (i + 1).to_string())
                .and_then(|_| std::fs::rename(&tmp, p))
                .map_err(|e| format!("writing `{p}`: {e}"))?;
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
    Ok(())
}

fn flood(total: u64, line_bytes: usize, json: bool) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    if line_bytes == 0 {
        let block = vec![b'x'; 1 << 16];
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
        return out.flush();
    }
    let line = if json {
        let head = r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":""#;
        let tail = "\"}]}}\n";
        let pad = line_bytes.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
    } else {
        let mut l = vec![b'x'; line_bytes.max(1)];
        if let Some(last) = l.last_mut() {
            *last = b'\n';
        }
        l
    };
    let mut written = 0u64;
    while written < total {
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    out.flush()
}
