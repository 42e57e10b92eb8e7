//! The PR body (issueloop's section between markers, everything else left to people) and title.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::sections;
use crate::{
    BOT_SECTION_BEGIN, BOT_SECTION_END, BudgetSummary, DiffStat, GateRow, PolicyVerdict, StageRow,
    marked_issue, pr_marker,
};
use issueloop_triage::markdown::{GITHUB_TEXT_LIMIT, ellipsize, fit_with, inline, prose, text_len};
use issueloop_triage::{AcceptanceCriteria, AcceptanceSource};

/// Characters of the agent's summary kept in the body.
pub const MAX_SUMMARY_CHARS: usize = 8_000;
/// GitHub's limit on a PR title.
pub const MAX_TITLE_CHARS: usize = 256;

/// Everything the PR body shows, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrBodyInput {
    pub issue_number: u64,
    pub issue_title: String,
    /// The agent's final message.
    pub summary: String,
    pub acceptance: AcceptanceCriteria,
    pub gates: Vec<GateRow>,
    pub policy: PolicyVerdict,
    pub budget: BudgetSummary,
    pub stages: Vec<StageRow>,
    pub diff: DiffStat,
    pub run_id: String,
}

/// The PR's title: the issue's title on one line with its number, `[draft] ` in front when the
/// repository refuses draft PRs and a regular PR stands in for one.
pub fn pr_title(issue_number: u64, issue_title: &str, draft_fallback: bool) -> String {
    let prefix = if draft_fallback { "[draft] " } else { "" };
    let suffix = format!(" (#{issue_number})");
    let room = MAX_TITLE_CHARS - prefix.len() - suffix.len();
    // One line: a `\r` or a newline becomes a space (never an overwrite that hides text), and
    // no control or bidi character reaches the git object or the forge.
    let one_line = issueloop_config::redact(&issueloop_config::clean_line(issue_title));
    let title = if one_line.is_empty() {
        format!("Issue {issue_number}")
    } else {
        ellipsize(&one_line, room)
    };
    format!("{prefix}{title}{suffix}")
}

/// The body of a new PR: issueloop's section alone, between [`BOT_SECTION_BEGIN`] and
/// [`BOT_SECTION_END`], starting with the hidden [`pr_marker`] and `Closes #N`, within GitHub's
/// size limit. Update an existing PR with [`replace_bot_section`].
pub fn pr_body(input: &PrBodyInput) -> String {
    let n = input.issue_number;
    let mut body = String::new();
    let _ = writeln!(body, "{}\nCloses #{n}\n", pr_marker(n));
    let _ = writeln!(
        body,
        "> [!NOTE]\n> Draft written by a coding agent for #{n}: {}. Review it before merging; \
         issueloop never merges.\n",
        inline(&input.issue_title, 200)
    );

    body.push_str("### Summary\n\n");
    if input.summary.trim().is_empty() {
        body.push_str("*The agent left no final message.*\n");
    } else {
        let summary = prose(input.summary.trim());
        body.push_str(&fit_with(
            &summary,
            MAX_SUMMARY_CHARS,
            "\n\n*… the rest of the agent's message is left out.*\n",
        ));
        body.push('\n');
    }

    body.push_str("\n### Acceptance criteria\n\n");
    body.push_str(&acceptance(&input.acceptance));

    body.push_str("\n### Gates\n\n");
    body.push_str(&sections::gate_table(&input.gates));
    let excerpts = sections::gate_excerpts(&input.gates, "####", false);
    if !excerpts.is_empty() {
        body.push('\n');
        body.push_str(&excerpts);
    }

    body.push_str("\n### Diff policy\n\n");
    body.push_str(&sections::policy(&input.policy));

    body.push_str("\n### Budget\n\n");
    body.push_str(&sections::budget(&input.budget));

    if !input.stages.is_empty() {
        body.push_str("\n### Stages\n\n");
        body.push_str(&sections::stages(&input.stages));
    }

    body.push_str("\n### Diff\n\n");
    body.push_str(&sections::diff(&input.diff));

    let _ = write!(
        body,
        "\n---\n<sub>issueloop run {}. On each update issueloop rewrites only the part of this \
         description between its `issueloop:begin` and `issueloop:end` markers; text outside them \
         is kept.</sub>\n",
        sections::code(&input.run_id)
    );
    wrap(&body, GITHUB_TEXT_LIMIT)
}

fn acceptance(criteria: &AcceptanceCriteria) -> String {
    let mut out = String::new();
    let origin = match criteria.source {
        AcceptanceSource::FromSection => "From the issue's acceptance criteria.",
        AcceptanceSource::FromChecklist => {
            "From the issue's checklist (it has no `## Acceptance` section)."
        }
        AcceptanceSource::FromTitle => {
            "From the issue's title (it has no `## Acceptance` section and no checklist)."
        }
    };
    let _ = writeln!(out, "*{origin}*\n");
    if criteria.items.is_empty() {
        out.push_str("- [ ] *(none given)*\n");
    }
    for item in &criteria.items {
        let _ = writeln!(out, "- [ ] {}", inline(item, 600));
    }
    if criteria.omitted > 0 {
        let _ = writeln!(out, "\n*… and {} more in the issue.*", criteria.omitted);
    }
    out
}

/// `inner` between the section markers, cut so the whole is at most `max`.
fn wrap(inner: &str, max: usize) -> String {
    let markers = text_len(BOT_SECTION_BEGIN) + text_len(BOT_SECTION_END) + 2;
    let inner = fit_with(
        inner,
        max.saturating_sub(markers),
        "\n\n*… cut to fit GitHub's size limit.*\n",
    );
    let inner = inner.trim_end_matches('\n');
    format!("{BOT_SECTION_BEGIN}\n{inner}\n{BOT_SECTION_END}")
}

/// An existing PR body with issueloop's section replaced by `new_section` (as [`pr_body`] renders
/// it), keeping everything a person wrote before and after the markers. When the markers are gone
/// the new section is appended after the person's text (stray markers of ours removed). The result
/// stays within GitHub's limit by shrinking issueloop's section, never the person's text.
pub fn replace_bot_section(existing_body: &str, new_section: &str) -> String {
    let inner = strip_markers(new_section);
    let (head, tail) = match find_section(existing_body) {
        Some((start, end)) => (
            existing_body[..start].to_owned(),
            existing_body[end..].to_owned(),
        ),
        None => {
            let kept = existing_body
                .replace(BOT_SECTION_BEGIN, "")
                .replace(BOT_SECTION_END, "");
            let kept = kept.trim_end();
            let head = if kept.is_empty() {
                String::new()
            } else {
                format!("{kept}\n\n")
            };
            (head, String::new())
        }
    };
    let room = GITHUB_TEXT_LIMIT.saturating_sub(text_len(&head) + text_len(&tail));
    let section = if room >= 400 {
        wrap(&inner, room)
    } else {
        // No room to speak of: keep what lets a rerun find this PR and close the issue.
        let n = marked_issue(&inner).unwrap_or_default();
        format!(
            "{BOT_SECTION_BEGIN}\n{}\nCloses #{n}\n{BOT_SECTION_END}",
            pr_marker(n)
        )
    };
    format!("{head}{section}{tail}")
}

/// Byte range of issueloop's section (markers included) in `body`.
fn find_section(body: &str) -> Option<(usize, usize)> {
    let start = body.find(BOT_SECTION_BEGIN)?;
    let after = start + BOT_SECTION_BEGIN.len();
    let end = body[after..].find(BOT_SECTION_END)? + after + BOT_SECTION_END.len();
    Some((start, end))
}

fn strip_markers(section: &str) -> String {
    match find_section(section) {
        Some((start, end)) => section[start + BOT_SECTION_BEGIN.len()..end - BOT_SECTION_END.len()]
            .trim_matches('\n')
            .to_owned(),
        None => section.trim_matches('\n').to_owned(),
    }
}
