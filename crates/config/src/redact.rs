//! The one redaction rule for every output (secret shapes and registered secret values) and the
//! cleaning of untrusted text (control and bidi characters) before it reaches a terminal, a log
//! line or a git object.

use std::sync::{LazyLock, RwLock};

use regex::{Captures, Regex};

use crate::env::{CREDENTIAL_VARS, Env};

/// Prefixes of GitHub token kinds: personal (classic and fine-grained), OAuth, user-to-server,
/// server-to-server (App installation tokens, which can be ~520 characters long), refresh.
pub const TOKEN_PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

/// A prefix followed by at least this many token characters is treated as a token.
pub const MIN_TOKEN_TAIL: usize = 20;

/// What replaces the part of a secret after its (non-secret) prefix.
pub const REDACTED: &str = "[REDACTED]";

/// Environment variables whose values are secrets besides the forge credentials: model API keys
/// and cloud credentials an agent may be given. Their current values are masked wherever they
/// appear, whatever their shape.
pub const SECRET_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SLACK_TOKEN",
    "SLACK_BOT_TOKEN",
];

/// Registered values shorter than this are not masked: they would mask ordinary words.
pub const MIN_REGISTERED_LEN: usize = 8;

/// The secret shapes. Each alternative captures the prefix kept visible (`keep`) where a kind
/// helps a reader, and the whole match is replaced.
static SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // Private-key blocks (PEM, OpenSSH), to their end line or the end of the text.
        r"(?P<pem>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*)",
        // GitHub: no word boundary needed, the prefixes are distinctive.
        r"|(?P<gh>github_pat_|gh[pousr]_)[A-Za-z0-9_]{20,}",
        // Anthropic before OpenAI: `sk-ant-` also starts with `sk-`.
        r"|\b(?P<ant>sk-ant-)[A-Za-z0-9_\-]{20,}",
        r"|\b(?P<oai>sk-proj-|sk-)(?P<oai_tail>[A-Za-z0-9_\-]{20,})",
        // AWS access key ids (long-term and temporary).
        r"|\b(?P<aws>AKIA|ASIA)[A-Z0-9]{16}\b",
        // Slack bot, user, app, refresh and legacy tokens.
        r"|\b(?P<slack>xox[abposre]-)[A-Za-z0-9\-]{10,}",
    ))
    .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable_regex()))
});

fn unreachable_regex() -> Regex {
    // Both patterns above are constants that compile; this only keeps panics out of the signature.
    Regex::new("").unwrap_or_else(|_| unreachable_regex())
}

/// Values of the configured secret variables, registered once by the command line.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers `value` to be masked by [`redact`] from now on, whatever its shape.
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_REGISTERED_LEN {
        return;
    }
    if let Ok(mut known) = REGISTERED.write()
        && !known.iter().any(|k| k == value)
    {
        known.push(value.to_owned());
        // Longest first, so a value containing another is masked whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Registers the values of every credential and secret variable present in `env`.
pub fn register_env_secrets(env: &Env) {
    for name in CREDENTIAL_VARS.iter().chain(SECRET_VARS) {
        if let Some(value) = env.get(name) {
            register_secret(value);
        }
    }
}

/// Masks every secret in `text`: the shapes (GitHub, Anthropic, OpenAI, AWS, Slack tokens and
/// private-key blocks) keep their kind prefix and lose the rest; registered values are replaced
/// whole. Applied before any truncation, so a cut can never leave a secret's head behind.
pub fn redact(text: &str) -> String {
    let known = REGISTERED.read().map(|k| k.clone()).unwrap_or_default();
    redact_with(text, &known)
}

/// [`redact`] with an explicit list of known secret values (pure; for tests and callers that
/// hold the values themselves).
pub fn redact_with(text: &str, known: &[String]) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for value in known {
        if value.chars().count() >= MIN_REGISTERED_LEN && out.contains(value.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(value.as_str(), REDACTED));
        }
    }
    SHAPES
        .replace_all(&out, |caps: &Captures<'_>| replacement(caps))
        .into_owned()
}

fn replacement(caps: &Captures<'_>) -> String {
    let whole = caps.get(0).map_or("", |m| m.as_str());
    if let Some(tail) = caps.name("oai_tail") {
        // `sk-` followed by words (`sk-learn-style-option-names`) is not a key: keys mix digits in.
        if !tail.as_str().bytes().any(|b| b.is_ascii_digit()) {
            return whole.to_owned();
        }
    }
    let keep = ["pem", "gh", "ant", "oai", "aws", "slack"]
        .iter()
        .find_map(|name| caps.name(name))
        .map_or("", |m| m.as_str());
    format!("{keep}{REDACTED}")
}

/// True when `text` holds a secret: one of the shapes or a registered value.
pub fn looks_like_secret(text: &str) -> bool {
    redact(text) != text
}

/// Replaces every quoted part of a message (`` `…` `` or `"…"`) that holds a secret by
/// `a secret-looking value`, then masks whatever is left. For messages that quote a value a
/// person wrote (configuration errors): the key is named, the value never repeated.
pub fn redact_quoted(message: &str) -> String {
    static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"`[^`]*`|"(?:[^"\\]|\\.)*"|'[^']*'"#).unwrap_or_else(|_| unreachable_regex())
    });
    let out = QUOTED.replace_all(message, |caps: &Captures<'_>| {
        let quoted = caps.get(0).map_or("", |m| m.as_str());
        if looks_like_secret(quoted) {
            "a secret-looking value".to_owned()
        } else {
            quoted.to_owned()
        }
    });
    redact(&out)
}

/// Characters that reorder text (bidi embeddings, overrides, isolates, marks).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Removes ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`, two-byte `ESC x`).
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' && c != '\u{9b}' {
            out.push(c);
            continue;
        }
        let kind = if c == '\u{9b}' {
            Some('[')
        } else {
            chars.next()
        };
        match kind {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']' | 'P' | '_' | '^' | 'X') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || c == '\u{9c}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Untrusted text for one line (a title, a name, a log field): escape sequences removed, line
/// breaks and tabs turned into spaces (a `\r` never hides what came before it), every other
/// control and bidi character dropped, runs of spaces collapsed, trimmed.
pub fn clean_line(s: &str) -> String {
    let stripped = strip_escapes(s);
    let mut out = String::with_capacity(stripped.len());
    let mut space = false;
    for c in stripped.chars() {
        let c = if matches!(c, '\n' | '\r' | '\t') {
            ' '
        } else {
            c
        };
        if c.is_control() || is_bidi_control(c) {
            continue;
        }
        if c == ' ' {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Untrusted multi-line text (a body, a comment, command output): escape sequences removed,
/// `\r\n` and lone `\r` turned into `\n`, newlines and tabs kept, every other control and bidi
/// character dropped.
pub fn clean_multiline(s: &str) -> String {
    let stripped = strip_escapes(&s.replace("\r\n", "\n"));
    stripped
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|c| matches!(c, '\n' | '\t') || !(c.is_control() || is_bidi_control(*c)))
        .collect()
}

/// True when `s` holds anything [`clean_multiline`] would remove (NUL, escapes, bidi controls).
pub fn has_unsafe_characters(s: &str) -> bool {
    s.chars()
        .any(|c| (c.is_control() && !matches!(c, '\n' | '\t' | '\r')) || is_bidi_control(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL_20: &str = "abcdefghijABCDEFGHIJ";

    #[test]
    fn masks_every_token_kind() {
        for prefix in TOKEN_PREFIXES {
            let token = format!("{prefix}{TAIL_20}");
            let masked = redact(&format!("token={token} end"));
            assert_eq!(masked, format!("token={prefix}{REDACTED} end"), "{prefix}");
        }
    }

    #[test]
    fn masks_long_app_tokens_and_fine_grained_underscores() {
        let app = format!("ghs_{}", "A1b2C3d4".repeat(65)); // 520 characters after the prefix
        assert_eq!(redact(&app), format!("ghs_{REDACTED}"));
        let fine = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(redact(fine), format!("github_pat_{REDACTED}"));
    }

    #[test]
    fn masks_tokens_inside_urls_and_next_to_other_text() {
        let url = format!("https://x-access-token:ghs_{TAIL_20}@github.com/o/r.git");
        assert_eq!(
            redact(&url),
            format!("https://x-access-token:ghs_{REDACTED}@github.com/o/r.git")
        );
        let glued = format!("Authorization: token ghp_{TAIL_20}ghp_{TAIL_20}\n");
        assert_eq!(
            redact(&glued),
            format!("Authorization: token ghp_{REDACTED}\n")
        );
        let two = format!("a ghp_{TAIL_20} b gho_{TAIL_20}");
        assert_eq!(redact(&two), format!("a ghp_{REDACTED} b gho_{REDACTED}"));
    }

    #[test]
    fn masks_the_other_shapes() {
        let cases = [
            (
                "key sk-ant-api03-AbCdEf0123456789_xyzXYZ-abc end",
                "key sk-ant-[REDACTED] end",
            ),
            (
                "OPENAI=sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12",
                "OPENAI=sk-proj-[REDACTED]",
            ),
            (
                "sk-AbCdEfGhIj0123456789KlMnOpQrStUvWxYz0123",
                "sk-[REDACTED]",
            ),
            ("id AKIAIOSFODNN7EXAMPLE.", "id AKIA[REDACTED]."),
            ("xoxb-123456789012-abcdefABCDEF", "xoxb-[REDACTED]"),
            (
                "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----\nb",
                "a\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]\nb",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut)",
                "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn registered_values_are_masked_whatever_their_shape() {
        let known = vec!["plain-secret-value-42".to_owned()];
        assert_eq!(
            redact_with("x=plain-secret-value-42;", &known),
            format!("x={REDACTED};")
        );
        let short = vec!["abc".to_owned()];
        assert_eq!(redact_with("abc", &short), "abc");
    }

    #[test]
    fn leaves_short_and_unrelated_text_alone() {
        for text in [
            "ghp_short",
            "ghp_0123456789012345678", // 19 characters after the prefix
            "github_pat_",
            "gh_abcdefghijabcdefghijabcdefghij",
            "GHP_ABCDEFGHIJABCDEFGHIJ",
            "the ghost of gho",
            "ünïcödé g ghp_ ✓",
            "task-abcdefghij0123456789abcdefghij",
            "sk-learn-style-option-names-without-digits",
            "AKIA is a prefix",
            "",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn exactly_twenty_characters_is_a_token() {
        assert_eq!(redact(&format!("ghu_{TAIL_20}")), format!("ghu_{REDACTED}"));
    }

    #[test]
    fn quoted_secrets_are_named_not_quoted() {
        let msg = format!("invalid type: string \"ghp_{TAIL_20}\", expected a sequence");
        assert_eq!(
            redact_quoted(&msg),
            "invalid type: string a secret-looking value, expected a sequence"
        );
        let msg = "unknown backend `sk-ant-api03-AbCdEf0123456789xyz`";
        assert_eq!(redact_quoted(msg), "unknown backend a secret-looking value");
        assert_eq!(redact_quoted("unknown key `x`"), "unknown key `x`");
    }

    #[test]
    fn clean_line_table() {
        let cases = [
            ("plain title", "plain title"),
            ("red \u{1b}[31mtext\u{1b}[0m", "red text"),
            ("osc \u{1b}]0;owned\u{7}title", "osc title"),
            ("bell\u{7} and NUL\u{0}!", "bell and NUL!"),
            ("rtl \u{202E}txt.exe", "rtl txt.exe"),
            ("keep before\rafter", "keep before after"),
            ("multi\nline\ttabs", "multi line tabs"),
            ("  spaced   out  ", "spaced out"),
            ("c1 \u{9b}31mx", "c1 x"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_line(input), want, "{input:?}");
        }
    }

    #[test]
    fn clean_multiline_table() {
        let cases = [
            ("a\r\nb", "a\nb"),
            ("a\rb", "a\nb"),
            ("tab\tkept\nnl kept", "tab\tkept\nnl kept"),
            ("esc \u{1b}[2Jgone\u{0}", "esc gone"),
            ("\u{2066}isolate\u{2069}", "isolate"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_multiline(input), want, "{input:?}");
        }
        assert!(has_unsafe_characters("a\u{0}b"));
        assert!(has_unsafe_characters("a\u{202E}b"));
        assert!(!has_unsafe_characters("a\nb\tc\r\n"));
    }
}
