//! Exit codes, output on stdout and log set-up shared by every subcommand.

use issueloop_config::Env;

use super::error::CliError;
use super::{GlobalArgs, LogFormat};

/// Exit code 1: a run or a check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code 2: usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Print a value as pretty JSON on stdout, every string in it passed through the redaction rule.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut value = serde_json::to_value(value)
        .map_err(|e| CliError::failed_by("internal", e).context("cannot render JSON"))?;
    redact_json(&mut value);
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| CliError::failed_by("internal", e).context("cannot render JSON"))?;
    write_stdout(format_args!("{text}\n"));
    Ok(())
}

/// Masks secrets in every string (and key) of a JSON value.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = issueloop_config::redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v);
                map.insert(issueloop_config::redact(&k), v);
            }
        }
        _ => {}
    }
}

/// Write to stdout, secrets masked. A reader that went away (`issueloop runs list | head`) ends the process
/// quietly instead of panicking; any other write error is reported on stderr.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let text = issueloop_config::redact(&args.to_string());
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
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
        // octocrab's ERROR lines stay out unless asked for by name (see below).
        .map(|f| {
            if f.contains("octocrab") {
                f.to_owned()
            } else {
                format!("{f},octocrab=off")
            }
        })
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            // octocrab logs every non-2xx answer at ERROR ("failed with status 502"), even one a
            // retry then gets through; the transport logs retries (WARN) and the caller the
            // final failure, with method and path, so octocrab's own lines stay out.
            EnvFilter::new(format!(
                "warn,octocrab=off,issueloop={level},issueloop_{}",
                level_all(level)
            ))
        });
    let format = global.log_format.unwrap_or(if env.in_github_actions() {
        LogFormat::Json
    } else {
        LogFormat::Human
    });
    let ansi = format == LogFormat::Human && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || CleanStderr { ansi })
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.with_ansi(ansi).without_time().try_init(),
    };
}

/// Stderr for log lines: every secret masked (the one redaction rule), and every control and
/// bidi character a logged title or message could carry removed, so a log line can neither leak
/// a token nor drive the terminal. With colours on, the formatter's own colour codes are kept.
struct CleanStderr {
    ansi: bool,
}

impl std::io::Write for CleanStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one whole event per call, so a secret is never split across calls.
        let text = String::from_utf8_lossy(buf);
        let cleaned = clean_log_text(&issueloop_config::redact(&text), self.ansi);
        std::io::stderr().lock().write_all(cleaned.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

/// Log text with control and bidi characters removed (newlines and tabs kept). With `ansi`,
/// colour sequences (`ESC [ digits ; … m`) stay; every other escape sequence goes.
pub fn clean_log_text(text: &str, ansi: bool) -> String {
    use issueloop_config::clean_multiline;
    if !ansi {
        return clean_multiline(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\u{1b}') {
        out.push_str(&clean_multiline(&rest[..i]));
        let after = &rest[i + 1..];
        match sgr_len(after) {
            Some(len) => {
                out.push_str(&rest[i..i + 1 + len]);
                rest = &after[len..];
            }
            None => {
                // Not a colour: the cleaning removes the sequence with its payload.
                let end = rest[i..].find('\n').map_or(rest.len(), |e| i + e);
                out.push_str(&clean_multiline(&rest[i..end]));
                rest = &rest[end..];
            }
        }
    }
    out.push_str(&clean_multiline(rest));
    out
}

/// Length of a colour sequence (`[`, digits and `;`, `m`) at the start of `s`, if it is one.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('[')?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    body[params..].starts_with('m').then_some(params + 2)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_keeps_colours_only_when_asked_and_nothing_else() {
        let hostile = "\u{1b}[1mINFO\u{1b}[0m title \u{1b}]0;pwned\u{7}x \u{202E}y\u{0}\n";
        assert_eq!(clean_log_text(hostile, false), "INFO title x y\n");
        assert_eq!(
            clean_log_text(hostile, true),
            "\u{1b}[1mINFO\u{1b}[0m title x y\n"
        );
    }
}
