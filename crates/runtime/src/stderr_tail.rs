//! The end of a harness's stderr, made fit to show a person: secrets redacted, terminal control
//! sequences stripped, stack frames left out, and bounded to its last lines, for failures the
//! stream does not explain and runs stopped at their wall clock.

use std::collections::BTreeMap;

/// Lines of stderr a failure reason carries at most.
pub const TAIL_LINES: usize = 20;
/// Bytes of stderr a failure reason carries at most.
pub const TAIL_BYTES: usize = 2048;
/// Values shorter than this are not treated as secrets (they would mask ordinary words).
const MIN_SECRET_LEN: usize = 8;
/// Name parts of variables whose values are secrets.
const SECRET_NAME_PARTS: [&str; 6] = ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH"];

/// The values of the agent's environment that are secrets (a provider key, a token), longest
/// first, so a secret that contains another is masked whole.
pub fn secret_values(vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .iter()
        .filter(|(name, value)| {
            let upper = name.to_ascii_uppercase();
            SECRET_NAME_PARTS.iter().any(|p| upper.contains(p))
                && value.trim().len() >= MIN_SECRET_LEN
        })
        .map(|(_, value)| value.trim().to_owned())
        .collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `text` with every secret masked by the one redaction rule (`issueloop_config::redact`): the
/// secret shapes, the values registered at start-up, and `secrets` (the agent's own secret
/// values). Applied to the whole of stderr before any of it is kept, so no later cut can leave a
/// part of a secret behind.
pub fn redact(text: &str, secrets: &[String]) -> String {
    issueloop_config::redact(&issueloop_config::redact::redact_with(text, secrets))
}

/// The last non-empty lines of `stderr` (at most [`TAIL_LINES`] lines and [`TAIL_BYTES`]
/// bytes), escape sequences and control characters removed (`clean_multiline`), stack frames
/// left out (see [`is_stack_frame`]) and secret shapes masked, or `None` when there are none. The secret values of the agent's environment
/// are masked earlier, by the supervisor (see [`redact`]).
pub fn tail(stderr: &str) -> Option<String> {
    tail_within(stderr, TAIL_LINES, TAIL_BYTES)
}

/// [`tail`] with explicit bounds.
pub fn tail_within(stderr: &str, max_lines: usize, max_bytes: usize) -> Option<String> {
    let clean = issueloop_config::redact(&issueloop_config::clean_multiline(stderr));
    let lines: Vec<&str> = clean
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !is_stack_frame(l))
        .collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut bytes = 0usize;
    for line in lines.iter().rev().take(max_lines) {
        let cost = line.len() + usize::from(!kept.is_empty());
        if bytes + cost > max_bytes {
            if kept.is_empty() {
                // One line longer than the whole allowance: keep its end.
                let mut start = line.len().saturating_sub(max_bytes.saturating_sub(3));
                while !line.is_char_boundary(start) {
                    start += 1;
                }
                return Some(format!("…{}", &line[start..]));
            }
            break;
        }
        bytes += cost;
        kept.push(line);
    }
    if kept.is_empty() {
        return None;
    }
    kept.reverse();
    let cut = kept.len() < lines.len();
    let body = kept.join("\n");
    Some(if cut { format!("…\n{body}") } else { body })
}

/// Whether `line` is one frame of a stack trace (`    at fn (file.js:1:2)` of Node and Java,
/// `  File "x.py", line 3, in f` of Python): a harness that retries may print one per attempt,
/// and twenty of them would push its explanation out of the tail.
pub fn is_stack_frame(line: &str) -> bool {
    let indented = line.starts_with([' ', '\t']);
    let t = line.trim_start();
    indented
        && ((t.starts_with("at ") && t.len() > 3)
            || (t.starts_with("File \"") && t.contains("\", line ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_bounded_in_lines_and_bytes() {
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(&many).unwrap();
        assert!(t.starts_with("…\nline 80\n"), "{t}");
        assert!(t.ends_with("line 99"), "{t}");
        assert_eq!(t.lines().count(), TAIL_LINES + 1);

        let wide: String = (0..10)
            .map(|i| format!("{i}{}\n", "x".repeat(500)))
            .collect();
        let t = tail(&wide).unwrap();
        assert!(t.len() <= TAIL_BYTES + 4, "{}", t.len());
        assert!(t.ends_with(&format!("9{}", "x".repeat(500))));

        let one = format!("start{}end", "é".repeat(3000));
        let t = tail(&one).unwrap();
        assert!(t.len() <= TAIL_BYTES + 3, "{}", t.len());
        assert!(t.starts_with('…') && t.ends_with("end"));
    }

    #[test]
    fn stack_frames_are_left_out() {
        let table = [
            (
                "    at retryWithBackoff (file:///x/bundle.js:308039:23)",
                true,
            ),
            ("\tat java.base/java.lang.Thread.run(Thread.java:833)", true),
            ("    at async file:///x/bundle.js:288018:23", true),
            ("  File \"/usr/lib/x.py\", line 3, in main", true),
            ("at the wall-clock limit", false),
            ("Attempt 4 failed. Retrying with backoff...", false),
            ("    at", false),
            ("  Filesystem full", false),
        ];
        for (line, frame) in table {
            assert_eq!(is_stack_frame(line), frame, "{line:?}");
        }
        // Gemini's retries: one line of its own words, then a stack, per attempt.
        let attempt = |n: u32| {
            let mut s = format!(
                "Attempt {n} failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request\n"
            );
            for i in 0..10 {
                s.push_str(&format!(
                    "    at async GeminiChat.streamWithRetries (file:///n/chunk.js:{i}:29)\n"
                ));
            }
            s
        };
        let stderr: String = (1..=4).map(attempt).collect();
        let t = tail(&stderr).unwrap();
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(t.ends_with("Attempt 4 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request"), "{t}");
        assert!(!t.contains("GeminiChat"), "{t}");
    }

    #[test]
    fn empty_or_blank_stderr_has_no_tail() {
        assert_eq!(tail(""), None);
        assert_eq!(tail("\n  \n\t\n"), None);
        assert_eq!(tail("\u{1b}[31m\u{1b}[0m\n"), None);
    }

    #[test]
    fn control_sequences_are_stripped() {
        let cases = [
            (
                "\u{1b}[31mGemini CLI is not trusted\u{1b}[0m",
                "Gemini CLI is not trusted",
            ),
            ("a\u{7}b\u{0}c", "abc"),
            (
                "progress 10%\rprogress 100%\r\n",
                "progress 10%\nprogress 100%",
            ),
            ("safe\u{202e}txt.exe", "safetxt.exe"),
        ];
        for (input, want) in cases {
            assert_eq!(tail(input).as_deref(), Some(want), "{input:?}");
        }
    }

    #[test]
    fn secrets_of_the_agent_env_and_github_tokens_are_masked() {
        let vars: BTreeMap<String, String> = [
            ("ANTHROPIC_API_KEY", "sk-ant-0123456789abcdef"),
            ("OPENAI_API_KEY", "short"),
            ("HOME", "/home/runner-0123456789"),
            ("MY_AUTH_TOKEN", "tok-abcdefghij"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let secrets = secret_values(&vars);
        assert_eq!(secrets, ["sk-ant-0123456789abcdef", "tok-abcdefghij"]);
        let text = "401: key sk-ant-0123456789abcdef rejected; tok-abcdefghij; short; /home/runner-0123456789 ghp_abcdefghijABCDEFGHIJ0";
        let masked = redact(text, &secrets);
        assert_eq!(
            masked,
            "401: key [REDACTED] rejected; [REDACTED]; short; /home/runner-0123456789 ghp_[REDACTED]"
        );
        // Shapes are masked without being told the value.
        assert_eq!(
            redact("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", &[]),
            "key sk-ant-[REDACTED]"
        );
        // A token reaching the tail some other way is still masked.
        assert_eq!(
            tail("token ghs_abcdefghijABCDEFGHIJ").unwrap(),
            "token ghs_[REDACTED]"
        );
    }
}
