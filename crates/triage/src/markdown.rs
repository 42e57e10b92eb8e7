//! Markdown building blocks: GitHub's length measure, safe cuts, fences, table cells, and defusing
//! text that did not come from issueloop (agent messages, issue text, command output).

use std::sync::LazyLock;
use std::time::Duration;

use issueloop_config::Usd;
use regex::Regex;

use crate::redact::redact;

/// GitHub's limit on a PR body and on an issue comment.
pub const GITHUB_TEXT_LIMIT: usize = 65_536;

const ZWSP: char = '\u{200B}';

/// Length as GitHub may count it: UTF-16 code units, which is never less than the number of
/// characters, so a text within the limit by this measure is within it by either.
pub fn text_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The longest prefix of `s` whose [`text_len`] is at most `max`, cut at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The longest suffix of `s` whose [`text_len`] is at most `max`, cut at a character boundary.
pub fn cut_tail(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += c.len_utf16();
        if used > max {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// `s` shortened to at most `max` with a trailing ellipsis when it had to be cut.
pub fn ellipsize(s: &str, max: usize) -> String {
    if text_len(s) <= max {
        return s.to_owned();
    }
    let mut out = cut(s, max.saturating_sub(1)).trim_end().to_owned();
    out.push('…');
    out
}

/// Newlines normalized, terminal control sequences removed, carriage-return overwrites resolved
/// the way a terminal shows them, other control and bidi characters dropped (tabs kept).
pub fn clean_text(s: &str) -> String {
    let without_escapes = strip_ansi(&s.replace("\r\n", "\n"));
    let mut out = String::with_capacity(without_escapes.len());
    for (n, line) in without_escapes.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        // A progress bar rewrites its line after `\r`; the last rewrite is what a person saw.
        let shown = line
            .rsplit('\r')
            .find(|part| !part.is_empty())
            .unwrap_or("");
        out.extend(shown.chars().filter(|c| {
            *c == '\t' || !(c.is_control() || issueloop_config::redact::is_bidi_control(*c))
        }));
    }
    out
}

/// Removes ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`, two-byte `ESC x`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
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

/// Command output made safe to show inside a fenced block: cleaned, tokens masked, HTML comment
/// openers broken so no text can pose as one of issueloop's markers.
pub fn output_text(s: &str) -> String {
    defuse_comment_openers(&redact(&clean_text(s)), IN_CODE_OPENER)
}

/// `<!--` inside code, broken by an invisible character: it reads the same, but the raw text can
/// no longer hold one of issueloop's markers, which find the bot's section and comments.
pub const IN_CODE_OPENER: &str = "<\u{200B}!--";

pub fn defuse_comment_openers(s: &str, replacement: &str) -> String {
    s.replace("<!--", replacement)
}

/// Bounds command output to `max`, keeping its head and (mostly) its tail at line boundaries, with
/// a line saying how much was left out: the first error and the final summary both survive.
pub fn bound_output(text: &str, max: usize) -> String {
    let text = text.trim_end_matches('\n');
    if text_len(text) <= max {
        return text.to_owned();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let notice_room = 48;
    let budget = max.saturating_sub(notice_room);
    let head_budget = budget / 3;
    let tail_budget = budget - head_budget;
    if lines.len() == 1 {
        let omitted = text_len(text)
            - text_len(cut(text, head_budget))
            - text_len(cut_tail(text, tail_budget));
        return format!(
            "{}\n… {omitted} characters omitted …\n{}",
            cut(text, head_budget),
            cut_tail(text, tail_budget)
        );
    }
    let mut head = Vec::new();
    let mut used = 0;
    for line in &lines {
        let cost = text_len(line) + 1;
        if used + cost > head_budget {
            if head.is_empty() {
                head.push(ellipsize(line, head_budget.saturating_sub(1)));
            }
            break;
        }
        used += cost;
        head.push((*line).to_owned());
    }
    let mut tail = Vec::new();
    let mut used = 0;
    for line in lines[head.len()..].iter().rev() {
        let cost = text_len(line) + 1;
        if used + cost > tail_budget {
            if tail.is_empty() {
                tail.push(format!(
                    "…{}",
                    cut_tail(line, tail_budget.saturating_sub(2))
                ));
            }
            break;
        }
        used += cost;
        tail.push((*line).to_owned());
    }
    tail.reverse();
    let omitted = lines.len().saturating_sub(head.len() + tail.len());
    let mut out = head.join("\n");
    out.push_str(&format!("\n… {omitted} lines omitted …\n"));
    out.push_str(&tail.join("\n"));
    out
}

/// `content` in a fenced code block whose fence is longer than any backtick run inside it, so
/// nothing in the content can close the block early.
pub fn fenced(content: &str, info: &str) -> String {
    let fence = "`".repeat(longest_run(content, '`').max(2) + 1);
    let content = content.trim_end_matches('\n');
    format!("{fence}{info}\n{content}\n{fence}\n")
}

/// `s` as an inline code span on one line, delimited so inner backticks cannot end it, with table
/// pipes escaped.
pub fn code_span(s: &str) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    let ticks = "`".repeat(longest_run(&one_line, '`') + 1);
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{one_line}{pad}{ticks}").replace('|', "\\|")
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Free text from outside issueloop (agent message, issue title or body) made safe for a PR body
/// or comment: tokens masked, control characters removed, HTML comments shown instead of hidden,
/// @-mentions and closing keywords (`fixes #12`) defused outside code so the text can neither
/// ping people nor close unrelated issues, and an unclosed code fence closed.
pub fn prose(s: &str) -> String {
    let text = redact(&clean_text(s));
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<Fence> = None;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        match &fence {
            Some(open) => {
                if open.is_closed_by(line) {
                    fence = None;
                }
                out.push_str(&defuse_comment_openers(line, IN_CODE_OPENER));
            }
            None => {
                if let Some(open) = Fence::opened_by(line) {
                    fence = Some(open);
                    out.push_str(&defuse_comment_openers(line, IN_CODE_OPENER));
                } else {
                    out.push_str(&defuse_line(line));
                }
            }
        }
    }
    if let Some(open) = fence {
        out.push('\n');
        out.push_str(&open.closing());
    }
    out
}

/// One line of outside text: [`prose`] on one line, bounded.
pub fn inline(s: &str, max: usize) -> String {
    let one_line = clean_text(s).replace(['\n', '\t'], " ");
    ellipsize(&defuse_line(&redact(one_line.trim())), max)
}

/// One line of outside text for a table cell: [`inline`] with pipes escaped.
pub fn cell(s: &str, max: usize) -> String {
    inline(s, max).replace('|', "\\|")
}

/// Applies the prose defusing to the parts of one line outside inline code spans.
fn defuse_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        let closer = find_run(after, run);
        out.push_str(&defuse_plain(&rest[..start]));
        match closer {
            Some(end) => {
                let span = &rest[start..start + run + end + run];
                out.push_str(&defuse_comment_openers(span, IN_CODE_OPENER));
                rest = &after[end + run..];
            }
            None => {
                // An unmatched backtick run is literal text.
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    out.push_str(&defuse_plain(rest));
    out
}

/// Byte offset in `s` of a backtick run of exactly `len`.
fn find_run(s: &str, len: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let run = bytes[i..].iter().take_while(|b| **b == b'`').count();
            if run == len {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

static CLOSING_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    #[expect(clippy::expect_used, reason = "a constant pattern, compiled by the tests")]
    Regex::new(
        r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(\s*:?\s*(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?#[0-9]|\s*:?\s*https?://\S+/(?:issues|pull)/[0-9])",
    )
    .expect("the closing-keyword pattern is a valid constant regex")
});

/// Defuses mentions, closing keywords and HTML comment openers in text outside code.
fn defuse_plain(s: &str) -> String {
    let s = defuse_comment_openers(s, "&lt;!--");
    let s = CLOSING_KEYWORD.replace_all(&s, |caps: &regex::Captures<'_>| {
        let keyword = &caps[1];
        let mut chars = keyword.chars();
        let first = chars.next().map(String::from).unwrap_or_default();
        format!("{first}{ZWSP}{}{}", chars.as_str(), &caps[2])
    });
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let starts_mention = c == '@'
            && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.')
            && chars.peek().is_some_and(|n| n.is_ascii_alphanumeric());
        if starts_mention {
            out.push(ZWSP);
        }
        prev = Some(c);
    }
    out
}

/// An open fenced code block: its character and length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    ch: char,
    len: usize,
}

impl Fence {
    /// The fence a line opens, if it is an opening fence (up to three spaces of indent).
    pub fn opened_by(line: &str) -> Option<Fence> {
        let trimmed = strip_indent(line)?;
        let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let len = trimmed.chars().take_while(|c| *c == ch).count();
        let info = &trimmed[len..];
        (len >= 3 && !(ch == '`' && info.contains('`'))).then_some(Fence { ch, len })
    }

    /// True when `line` closes this fence.
    pub fn is_closed_by(&self, line: &str) -> bool {
        strip_indent(line).is_some_and(|t| {
            let run = t.chars().take_while(|c| *c == self.ch).count();
            run >= self.len && t[run * self.ch.len_utf8()..].trim().is_empty()
        })
    }

    /// The line that closes this fence.
    pub fn closing(&self) -> String {
        self.ch.to_string().repeat(self.len)
    }
}

/// `line` without up to three leading spaces; `None` when it is indented further (a code block).
fn strip_indent(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|b| *b == b' ').count();
    (spaces <= 3).then(|| &line[spaces..])
}

/// Cuts a Markdown document to at most `max` ([`text_len`]) at a line boundary, or inside a long
/// line at a character boundary, closes a code fence left open by the cut, and says it was cut.
pub fn fit(text: &str, max: usize) -> String {
    fit_with(text, max, "\n\n*… cut to fit GitHub's size limit.*\n")
}

/// [`fit`] with its own closing notice.
pub fn fit_with(text: &str, max: usize, notice: &str) -> String {
    if text_len(text) <= max {
        return text.to_owned();
    }
    let notice_len = text_len(notice);
    if max < notice_len + 16 {
        return cut(text, max).to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut fence: Option<Fence> = None;
    let closing_cost = |f: &Option<Fence>| f.as_ref().map_or(0, |f| f.len + 2);
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        let next = match &fence {
            Some(open) if open.is_closed_by(bare) => None,
            Some(open) => Some(open.clone()),
            None => Fence::opened_by(bare),
        };
        let cost = text_len(line);
        if used + cost + closing_cost(&next) + notice_len <= max {
            out.push_str(line);
            used += cost;
            fence = next;
            continue;
        }
        // Keep the head of a line that does not fit, unless the line or its head would open or
        // close a fence (`````` ```` `````` cut from a longer line can become one).
        let room = max.saturating_sub(used + closing_cost(&fence) + notice_len + 1);
        let partial = cut(bare, room);
        let after_partial = match &fence {
            Some(open) if open.is_closed_by(partial) => None,
            Some(open) => Some(open.clone()),
            None => Fence::opened_by(partial),
        };
        if next == fence && after_partial == fence {
            out.push_str(partial);
        }
        break;
    }
    if let Some(open) = fence {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&open.closing());
    }
    out.push_str(notice);
    out
}

/// A duration for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// A USD amount for people: `$0.42`, or `<$0.01` for a positive amount that would read as zero.
pub fn usd(amount: Usd) -> String {
    if amount.is_positive() && amount < Usd::from_micros(5_000) {
        "<$0.01".to_owned()
    } else {
        format!("${:.2}", amount.dollars())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_never_splits_a_character() {
        let s = "aé😀b";
        assert_eq!(cut(s, 0), "");
        assert_eq!(cut(s, 2), "aé");
        assert_eq!(cut(s, 3), "aé", "the emoji is two UTF-16 units");
        assert_eq!(cut(s, 4), "aé😀");
        assert_eq!(cut_tail(s, 1), "b");
        assert_eq!(cut_tail(s, 2), "b");
        assert_eq!(cut_tail(s, 3), "😀b");
    }

    #[test]
    fn fenced_outlasts_backticks_in_the_content() {
        let block = fenced("before\n````\ninside\n", "text");
        assert!(block.starts_with("`````text\n"), "{block}");
        assert!(block.ends_with("\n`````\n"), "{block}");
        assert_eq!(fenced("x", ""), "```\nx\n```\n");
    }

    #[test]
    fn code_span_is_safe_in_tables() {
        assert_eq!(code_span("a|b"), "`a\\|b`");
        assert_eq!(code_span("x `y` z"), "``x `y` z``");
        assert_eq!(code_span("`edge"), "`` `edge ``");
    }

    #[test]
    fn clean_text_resolves_terminal_output() {
        let raw = "\u{1b}[31mFAILED\u{1b}[0m test\r\n10%\r50%\r100%\n\u{1b}]0;title\u{7}done\u{0}";
        assert_eq!(clean_text(raw), "FAILED test\n100%\ndone");
    }

    #[test]
    fn prose_defuses_mentions_closing_keywords_and_comments() {
        let text = "Thanks @alice, this fixes #12 and Closes org/repo#3; mail a@b.c.\n\
                    <!-- hidden --> and `@decorator fixes #9`";
        let out = prose(text);
        assert!(out.contains("@\u{200B}alice"), "{out}");
        assert!(out.contains("f\u{200B}ixes #12"), "{out}");
        assert!(out.contains("C\u{200B}loses org/repo#3"), "{out}");
        assert!(out.contains("a@b.c"), "{out}");
        assert!(out.contains("&lt;!-- hidden -->"), "{out}");
        assert!(
            out.contains("`@decorator fixes #9`"),
            "code spans are left as written: {out}"
        );
        assert!(!prose("prefix fixes the bug").contains('\u{200B}'));
    }

    #[test]
    fn prose_closes_an_unclosed_fence() {
        assert_eq!(
            prose("text\n```rust\nfn x() {}"),
            "text\n```rust\nfn x() {}\n```"
        );
        assert_eq!(
            prose("```\n@a fixes #1\n```\n@b"),
            "```\n@a fixes #1\n```\n@\u{200B}b"
        );
    }

    #[test]
    fn fit_closes_the_fence_it_cuts_and_stays_within_the_limit() {
        let mut doc = String::from("# Title\n\n```text\n");
        for i in 0..2000 {
            doc.push_str(&format!("line {i} ✓\n"));
        }
        doc.push_str("```\nafter\n");
        for max in [100, 500, 4096] {
            let out = fit(&doc, max);
            assert!(text_len(&out) <= max, "{max}: {}", text_len(&out));
            assert!(out.contains("\n```\n"), "{out}");
            assert!(out.ends_with("size limit.*\n"), "{out}");
        }
        assert_eq!(fit("short", 100), "short");
    }

    #[test]
    fn fit_cuts_one_huge_line_at_a_character_boundary() {
        let doc = "é".repeat(10_000);
        let out = fit(&doc, 1000);
        assert!(text_len(&out) <= 1000);
        assert!(out.starts_with("éé"));
    }

    #[test]
    fn bound_output_keeps_head_and_tail() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = bound_output(&text, 600);
        assert!(text_len(&out) <= 600, "{}", text_len(&out));
        assert!(out.starts_with("line 0\n"));
        assert!(out.ends_with("line 999"));
        assert!(out.contains("lines omitted"));
        let one = "x".repeat(5000);
        let out = bound_output(&one, 600);
        assert!(text_len(&out) <= 600);
        assert!(out.contains("characters omitted"));
    }

    #[test]
    fn durations_and_money() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h 03m");
        let at = Usd::from_dollars;
        assert_eq!(usd(at(0.4249)), "$0.42");
        assert_eq!(usd(at(0.001)), "<$0.01");
        assert_eq!(usd(at(0.004999)), "<$0.01");
        assert_eq!(usd(at(0.005)), "$0.01");
        assert_eq!(usd(at(0.0)), "$0.00");
        assert_eq!(usd(at(2.675)), "$2.67");
        assert_eq!(usd(at(-1.5)), "$-1.50");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn markdownish() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(vec![
                "```",
                "````",
                "~~~",
                "`",
                "\n",
                "\r\n",
                "\r",
                "text ",
                "😀",
                "é",
                "<!--",
                "-->",
                "@user ",
                "fixes #1 ",
                "ghp_",
                "abcdefghij",
                "\u{1b}[31m",
                "\t",
                "|",
                "    ```",
            ]),
            0..80,
        )
        .prop_map(|parts| parts.concat())
    }

    fn open_fence_at_end(text: &str) -> bool {
        let mut fence: Option<Fence> = None;
        for line in text.split('\n') {
            fence = match fence {
                Some(open) if open.is_closed_by(line) => None,
                Some(open) => Some(open),
                None => Fence::opened_by(line),
            };
        }
        fence.is_some()
    }

    proptest! {
        #[test]
        fn fit_stays_within_the_limit_and_closes_fences(text in markdownish(), max in 60usize..400) {
            let out = fit(&text, max);
            prop_assert!(text_len(&out) <= max, "{} > {max}", text_len(&out));
            if !open_fence_at_end(&text) {
                prop_assert!(!open_fence_at_end(&out), "{out:?}");
            }
        }

        #[test]
        fn prose_never_leaves_a_fence_open_or_a_comment_opener(text in markdownish()) {
            let out = prose(&text);
            prop_assert!(!open_fence_at_end(&out), "{out:?}");
            prop_assert!(!out.contains("<!--"), "{out:?}");
            prop_assert!(!inline(&text, 1000).contains("<!--"));
        }

        #[test]
        fn redacted_text_holds_no_token(prefix in proptest::sample::select(crate::redact::TOKEN_PREFIXES.to_vec()),
                                        tail in "[A-Za-z0-9_]{20,600}", around in ".{0,20}") {
            let text = format!("{around}{prefix}{tail}{around}");
            let out = crate::redact::redact(&text);
            prop_assert!(!out.contains(&tail), "{out}");
        }

        #[test]
        fn cuts_and_bounds_never_panic(text in "(?s).{0,300}", max in 0usize..100) {
            let _ = cut(&text, max);
            let _ = cut_tail(&text, max);
            let _ = ellipsize(&text, max);
            let _ = bound_output(&text, max + 50);
            let _ = output_text(&text);
            let _ = cell(&text, max);
        }
    }
}
