//! The acceptance criteria of an issue: its `## Acceptance` section, else its checklist, else its
//! title. Deterministic, bounded, and indifferent to whatever else the body holds.

use serde::{Deserialize, Serialize};

use crate::markdown::{Fence, ellipsize};

/// Only this much of a body is read (GitHub bodies are at most 65,536 characters).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// At most this many items are kept; the rest are counted in `omitted`.
pub const MAX_ITEMS: usize = 50;
/// Each item is cut to this many characters.
pub const MAX_ITEM_CHARS: usize = 500;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceCriteria {
    pub items: Vec<String>,
    pub source: AcceptanceSource,
    /// Items beyond [`MAX_ITEMS`] that were left out.
    pub omitted: usize,
}

/// Where the criteria came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptanceSource {
    /// A `## Acceptance` or `## Acceptance criteria` section (any heading level from 2).
    FromSection,
    /// The issue's checklist items, wherever they are.
    FromChecklist,
    /// The issue's title, for want of anything better.
    #[default]
    FromTitle,
}

/// The acceptance criteria of an issue.
///
/// 1. The first non-empty section headed `Acceptance` or `Acceptance criteria` (heading level 2
///    to 6, any case, an optional trailing colon), up to the next heading of the same or a higher
///    level: its top-level list items (`- [ ]`, `- [x]`, `-`, `*`, `+`, `1.`, `1)`), with nested
///    items and continuation lines folded into their parent; a section without list items gives
///    its paragraphs.
/// 2. Else every checklist item (`- [ ]`, `- [x]`) in the body.
/// 3. Else the title.
///
/// Headings and items inside code fences and HTML comments do not count. CRLF bodies read the
/// same as LF ones; only the first [`MAX_BODY_BYTES`] are read.
pub fn acceptance_criteria(title: &str, body: &str) -> AcceptanceCriteria {
    let body = floor_boundary(body, MAX_BODY_BYTES);
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines = significant_lines(&normalized);
    let from_section = lines.iter().enumerate().find_map(|(i, line)| {
        let (level, text) = heading(line.text())?;
        if level < 2 || !is_acceptance_heading(text) {
            return None;
        }
        let end = lines[i + 1..]
            .iter()
            .position(|l| heading(l.text()).is_some_and(|(lv, _)| lv <= level))
            .map_or(lines.len(), |p| i + 1 + p);
        let criteria = bounded(
            section_items(&lines[i + 1..end]),
            AcceptanceSource::FromSection,
        );
        (!criteria.items.is_empty()).then_some(criteria)
    });
    if let Some(criteria) = from_section {
        return criteria;
    }
    let checklist: Vec<String> = lines
        .iter()
        .filter_map(|l| list_item(l.text()))
        .filter(|item| item.checkbox)
        .map(|item| item.text.to_owned())
        .collect();
    let checklist = bounded(checklist, AcceptanceSource::FromChecklist);
    if !checklist.items.is_empty() {
        return checklist;
    }
    bounded(vec![title.to_owned()], AcceptanceSource::FromTitle)
}

fn bounded(items: Vec<String>, source: AcceptanceSource) -> AcceptanceCriteria {
    let cleaned: Vec<String> = items
        .iter()
        .map(|item| {
            let visible: String = item
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let one_line = visible.split_whitespace().collect::<Vec<_>>().join(" ");
            ellipsize(&one_line, MAX_ITEM_CHARS)
        })
        .filter(|item| !item.is_empty())
        .collect();
    let omitted = cleaned.len().saturating_sub(MAX_ITEMS);
    AcceptanceCriteria {
        items: cleaned.into_iter().take(MAX_ITEMS).collect(),
        source,
        omitted,
    }
}

fn floor_boundary(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A body line with HTML comments removed, marked when it belongs to a code fence.
enum Line {
    Text(String),
    Fenced,
}

impl Line {
    /// The text a heading or list item could come from; fenced lines have none.
    fn text(&self) -> &str {
        match self {
            Line::Text(t) => t,
            Line::Fenced => "",
        }
    }
}

fn significant_lines(body: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut fence: Option<Fence> = None;
    let mut in_comment = false;
    for raw in body.split('\n') {
        if let Some(open) = &fence {
            if open.is_closed_by(raw) {
                fence = None;
            }
            out.push(Line::Fenced);
            continue;
        }
        let mut text = String::new();
        let mut rest = raw;
        loop {
            if in_comment {
                match rest.find("-->") {
                    Some(end) => {
                        rest = &rest[end + 3..];
                        in_comment = false;
                    }
                    None => break,
                }
            } else {
                match rest.find("<!--") {
                    Some(start) => {
                        text.push_str(&rest[..start]);
                        rest = &rest[start + 4..];
                        in_comment = true;
                    }
                    None => {
                        text.push_str(rest);
                        break;
                    }
                }
            }
        }
        if let Some(open) = Fence::opened_by(&text) {
            fence = Some(open);
            out.push(Line::Fenced);
        } else {
            out.push(Line::Text(text));
        }
    }
    out
}

/// An ATX heading: its level and text (closing `#`s removed).
fn heading(line: &str) -> Option<(usize, &str)> {
    let spaces = line.bytes().take_while(|b| *b == b' ').count();
    if spaces > 3 {
        return None;
    }
    let rest = &line[spaces..];
    let level = rest.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let text = after.trim();
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some((level, text))
}

fn is_acceptance_heading(text: &str) -> bool {
    let plain = text
        .trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace())
        .trim_end_matches(':')
        .trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
    let words: Vec<String> = plain.split_whitespace().map(str::to_lowercase).collect();
    words == ["acceptance"] || words == ["acceptance", "criteria"]
}

struct ListItem<'a> {
    indent: usize,
    checkbox: bool,
    text: &'a str,
}

/// A list item: `-`, `*`, `+`, `1.` or `1)` followed by a space, with an optional `[ ]`/`[x]`.
fn list_item(line: &str) -> Option<ListItem<'_>> {
    let indent: usize = line
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    let rest = line.trim_start_matches([' ', '\t']);
    if is_thematic_break(rest) {
        return None;
    }
    let after_marker = if let Some(r) = rest.strip_prefix(['-', '*', '+']) {
        r
    } else {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        rest[digits..].strip_prefix(['.', ')'])?
    };
    if !(after_marker.is_empty() || after_marker.starts_with([' ', '\t'])) {
        return None;
    }
    let content = after_marker.trim_start();
    let checkbox = ["[ ]", "[x]", "[X]"].iter().find_map(|b| {
        let r = content.strip_prefix(b)?;
        (r.is_empty() || r.starts_with([' ', '\t'])).then_some(r)
    });
    Some(ListItem {
        indent,
        checkbox: checkbox.is_some(),
        text: checkbox.unwrap_or(content).trim(),
    })
}

fn is_thematic_break(s: &str) -> bool {
    let marks: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3 && matches!(marks[0], '-' | '*' | '_') && marks.iter().all(|c| *c == marks[0])
}

/// Top-level list items of a section (nested items and continuation lines folded in), or its
/// paragraphs when it has no list.
fn section_items(lines: &[Line]) -> Vec<String> {
    let top_indent = lines
        .iter()
        .filter_map(|l| list_item(l.text()))
        .map(|item| item.indent)
        .min();
    let Some(top_indent) = top_indent else {
        return paragraphs(lines);
    };
    let mut items: Vec<String> = Vec::new();
    let mut in_item = false;
    for line in lines {
        let Line::Text(text) = line else { continue };
        if text.trim().is_empty() {
            continue;
        }
        match list_item(text) {
            Some(item) if item.indent <= top_indent + 1 => {
                items.push(item.text.to_owned());
                in_item = true;
            }
            Some(nested) if in_item => {
                if let Some(parent) = items.last_mut() {
                    parent.push_str(if parent.ends_with(':') { " " } else { "; " });
                    parent.push_str(nested.text);
                }
            }
            None if in_item && heading(text).is_none() => {
                if let Some(parent) = items.last_mut() {
                    parent.push(' ');
                    parent.push_str(text.trim());
                }
            }
            _ => {}
        }
        if items.len() > MAX_ITEMS * 2 {
            break;
        }
    }
    items
}

fn paragraphs(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        let text = line.text().trim();
        if text.is_empty() || heading(text).is_some() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(text);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use AcceptanceSource::*;

    fn criteria(body: &str) -> (Vec<String>, AcceptanceSource) {
        let c = acceptance_criteria("The title", body);
        (c.items, c.source)
    }

    fn owned(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, &[&str], AcceptanceSource)] = &[
            (
                "checklist in an acceptance section",
                "Intro\n\n## Acceptance\n- [ ] exits 0\n- [x] prints help\n\n## Notes\n- [ ] not this\n",
                &["exits 0", "prints help"],
                FromSection,
            ),
            (
                "acceptance criteria heading, any case, level 3, trailing colon",
                "### ACCEPTANCE Criteria:\n* one\n+ two\n1. three\n2) four\n",
                &["one", "two", "three", "four"],
                FromSection,
            ),
            (
                "a deeper heading stays in the section; a same-level one ends it",
                "## Acceptance\n- a\n### Detail\n- b\n## Other\n- c\n",
                &["a", "b"],
                FromSection,
            ),
            (
                "level-1 heading does not count",
                "# Acceptance\n- [ ] a checklist item\n- plain\n",
                &["a checklist item"],
                FromChecklist,
            ),
            (
                "CRLF body",
                "## Acceptance\r\n- [ ] one\r\n- [ ] two\r\n",
                &["one", "two"],
                FromSection,
            ),
            (
                "headings and items inside fences are ignored",
                "```md\n## Acceptance\n- [ ] fake\n```\n## Acceptance\n- real\n~~~\n- [ ] fenced\n~~~\n",
                &["real"],
                FromSection,
            ),
            (
                "headings and items inside HTML comments are ignored",
                "<!-- template:\n## Acceptance\n- [ ] placeholder\n-->\n## Acceptance\n- <!-- hint --> kept\n",
                &["kept"],
                FromSection,
            ),
            (
                "nested items and continuation lines fold into their parent",
                "## Acceptance\n- works on:\n  - Linux\n  - macOS\n- long item\n  continued here\n",
                &["works on: Linux; macOS", "long item continued here"],
                FromSection,
            ),
            (
                "a section without a list gives its paragraphs",
                "## Acceptance\nThe command exits 0\nwhen the file exists.\n\nIt prints nothing.\n",
                &[
                    "The command exits 0 when the file exists.",
                    "It prints nothing.",
                ],
                FromSection,
            ),
            (
                "an empty section falls back to the checklist",
                "## Acceptance\n\n## Tasks\n- [ ] do it\n  - [x] nested too\n",
                &["do it", "nested too"],
                FromChecklist,
            ),
            (
                "nothing at all falls back to the title",
                "Just prose.\n- a bullet that is not a checkbox\n",
                &["The title"],
                FromTitle,
            ),
            (
                "thematic breaks and empty checkboxes are not items",
                "## Acceptance\n---\n* * *\n- [ ]\n- real\n",
                &["real"],
                FromSection,
            ),
            (
                "a section of empty items falls back",
                "## Acceptance\n-\n- [ ]\n* \n",
                &["The title"],
                FromTitle,
            ),
            (
                "closing hashes are not part of the heading",
                "## Acceptance ##\n- x\n",
                &["x"],
                FromSection,
            ),
            (
                "an unclosed comment hides the rest",
                "- [ ] visible\n<!-- open\n- [ ] hidden\n",
                &["visible"],
                FromChecklist,
            ),
        ];
        for (name, body, items, source) in cases {
            assert_eq!(criteria(body), (owned(items), *source), "{name}");
        }
    }

    #[test]
    fn items_and_bodies_are_bounded() {
        let body: String = (0..200).map(|i| format!("- [ ] item {i}\n")).collect();
        let c = acceptance_criteria("t", &body);
        assert_eq!(c.items.len(), MAX_ITEMS);
        assert_eq!(c.omitted, 150);
        let long = format!("## Acceptance\n- {}\n", "é".repeat(2000));
        let c = acceptance_criteria("t", &long);
        assert_eq!(c.items[0].chars().count(), MAX_ITEM_CHARS);
        let huge = format!(
            "{}\n## Acceptance\n- beyond the bound\n",
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(acceptance_criteria("t", &huge).source, FromTitle);
    }

    #[test]
    fn an_empty_title_gives_no_items() {
        assert_eq!(acceptance_criteria("  ", "").items, Vec::<String>::new());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(title in ".{0,40}", body in "(?s).{0,400}") {
            let c = acceptance_criteria(&title, &body);
            proptest::prop_assert!(c.items.len() <= MAX_ITEMS);
        }

        #[test]
        fn never_panics_on_markdown_like_text(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "## Acceptance", "### acceptance criteria:", "# x", "```", "~~~", "<!--", "-->",
                    "- [ ] a", "- [x] b", "* c", "1. d", "  - e", "\r\n", "\n", "\t", "é", "😀", "",
                    "#", "-", "[ ]", "`", "## Other",
                ]),
                0..60,
            )
        ) {
            let body = parts.concat();
            let c = acceptance_criteria("t", &body);
            proptest::prop_assert!(!c.items.is_empty());
        }
    }
}
