//! Small pure text rules the forge enforces on what it publishes, whatever the caller rendered:
//! a PR body always carries the hidden marker and `Closes #N` inside issueloop's own section, a
//! comment always its marker.

use crate::{BOT_SECTION_BEGIN, BOT_SECTION_END, pr_marker};

/// `body` as issueloop's PR section: the PR marker of `issue` and a `Closes #N` line added when
/// missing, and wrapped in the section markers when it is not already, so a later update
/// replaces it and nothing a person wrote around it.
pub fn ensure_pr_body(body: &str, issue: u64) -> String {
    let marker = pr_marker(issue);
    let has_closes = body.lines().any(|line| {
        let line = line.trim().to_ascii_lowercase();
        ["closes", "fixes", "resolves"].iter().any(|kw| {
            line.strip_prefix(kw)
                .map(str::trim_start)
                .is_some_and(|rest| rest.strip_prefix('#') == Some(&issue.to_string()))
        })
    });
    let mut missing = Vec::new();
    if !body.contains(&marker) {
        missing.push(marker);
    }
    if !has_closes {
        missing.push(format!("Closes #{issue}"));
    }
    let missing = missing.join("\n");
    let sectioned = body
        .find(BOT_SECTION_BEGIN)
        .is_some_and(|start| body[start..].contains(BOT_SECTION_END));
    if sectioned {
        if missing.is_empty() {
            return body.to_owned();
        }
        // Inside the section, before its end.
        let end = body.rfind(BOT_SECTION_END).unwrap_or(body.len());
        let head = body[..end].trim_end_matches('\n');
        return format!("{head}\n\n{missing}\n{}", &body[end..]);
    }
    let inner = body.trim_matches('\n');
    let inner = match (inner.is_empty(), missing.is_empty()) {
        (true, _) => missing,
        (false, true) => inner.to_owned(),
        (false, false) => format!("{inner}\n\n{missing}"),
    };
    format!("{BOT_SECTION_BEGIN}\n{inner}\n{BOT_SECTION_END}")
}

/// `body` starting with `marker` (prepended when the body does not contain it).
pub fn ensure_marker(body: &str, marker: &str) -> String {
    if body.contains(marker) {
        body.to_owned()
    } else {
        format!("{marker}\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replace_bot_section;

    #[test]
    fn plain_body_becomes_a_section_with_marker_and_closes() {
        let b = ensure_pr_body("Summary.", 7);
        assert_eq!(
            b,
            "<!-- issueloop:begin -->\nSummary.\n\n<!-- issueloop:issue=7 -->\nCloses #7\n<!-- issueloop:end -->"
        );
        assert_eq!(ensure_pr_body(&b, 7), b, "idempotent");
        // `Closes #70` does not close #7.
        assert!(ensure_pr_body("Closes #70", 7).contains("\nCloses #7\n"));
        assert_eq!(
            ensure_pr_body("", 3),
            "<!-- issueloop:begin -->\n<!-- issueloop:issue=3 -->\nCloses #3\n<!-- issueloop:end -->"
        );
    }

    #[test]
    fn a_rendered_section_is_kept_and_completed_inside() {
        let rendered = "<!-- issueloop:begin -->\n<!-- issueloop:issue=7 -->\nCloses #7\n\nBody\n<!-- issueloop:end -->";
        assert_eq!(ensure_pr_body(rendered, 7), rendered);
        let no_closes =
            "<!-- issueloop:begin -->\n<!-- issueloop:issue=7 -->\nBody\n<!-- issueloop:end -->";
        assert_eq!(
            ensure_pr_body(no_closes, 7),
            "<!-- issueloop:begin -->\n<!-- issueloop:issue=7 -->\nBody\n\nCloses #7\n<!-- issueloop:end -->"
        );
    }

    #[test]
    fn an_update_replaces_only_the_section() {
        let first = ensure_pr_body("First.", 7);
        let edited = format!("Reviewer note on top.\n\n{first}");
        let second = replace_bot_section(&edited, &ensure_pr_body("Second.", 7));
        assert!(second.starts_with("Reviewer note on top."));
        assert!(
            second.contains("Second.") && !second.contains("First."),
            "{second}"
        );
        assert_eq!(second.matches("Closes #7").count(), 1);
    }

    #[test]
    fn comment_marker_is_prepended_when_missing() {
        assert_eq!(ensure_marker("hi", "<!-- m -->"), "<!-- m -->\nhi");
        assert_eq!(
            ensure_marker("x <!-- m --> y", "<!-- m -->"),
            "x <!-- m --> y"
        );
    }
}
