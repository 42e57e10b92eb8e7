//! Pieces shared by the PR body and the issue comments: gate table and output, policy verdict,
//! budget, stages, diff stat.

use std::fmt::Write as _;

use crate::{BudgetSummary, DiffStat, GateRow, PolicyVerdict, StageRow};
use issueloop_config::redact;
use issueloop_triage::markdown::{
    IN_CODE_OPENER, bound_output, cell, clean_text, code_span, defuse_comment_openers, duration,
    ellipsize, fenced, inline, output_text, usd,
};

/// Rows shown per table; the rest are counted.
pub const MAX_TABLE_ROWS: usize = 50;
/// Command output excerpts shown per document.
pub const MAX_EXCERPTS: usize = 5;
/// Characters of one command output excerpt.
pub const MAX_EXCERPT_CHARS: usize = 6_000;
/// Characters of one table cell of outside text.
pub const MAX_CELL_CHARS: usize = 200;
/// Characters of one listed policy violation.
pub const MAX_VIOLATION_CHARS: usize = 300;

/// Outside text as an inline code span: cleaned, redacted, bounded, one line.
pub fn code(s: &str) -> String {
    let one_line = clean_text(s).replace(['\n', '\t'], " ");
    let safe = defuse_comment_openers(&redact(one_line.trim()), IN_CODE_OPENER);
    code_span(&ellipsize(&safe, MAX_CELL_CHARS))
}

/// `status` for people, with an icon for the words issueloop uses.
pub fn status(status: &str, exit_code: Option<i32>) -> String {
    let word = status.trim().to_ascii_lowercase();
    let icon = match word.as_str() {
        "passed" | "ok" | "success" => "✅ ",
        "failed" | "failure" | "error" => "❌ ",
        "timed_out" => "⏱️ ",
        "skipped" => "⏭️ ",
        "rejected" => "⛔ ",
        _ => "",
    };
    let mut out = format!("{icon}{}", cell(&word.replace('_', " "), 40));
    if let Some(code) = exit_code.filter(|c| *c != 0) {
        let _ = write!(out, " (exit {code})");
    }
    out
}

fn is_passed(row: &GateRow) -> bool {
    matches!(
        row.status.trim().to_ascii_lowercase().as_str(),
        "passed" | "ok" | "success"
    )
}

fn more(out: &mut String, shown: usize, total: usize, what: &str) {
    if total > shown {
        let _ = writeln!(out, "\n*… and {} more {what}.*", total - shown);
    }
}

/// The gate table, or a line saying no gate ran.
pub fn gate_table(gates: &[GateRow]) -> String {
    if gates.is_empty() {
        return "No verification gate ran.\n".to_owned();
    }
    let with_repo = gates.iter().any(|g| g.repo.is_some());
    let mut out = String::new();
    if with_repo {
        out.push_str("| repository | gate | status | duration |\n|---|---|---|---:|\n");
    } else {
        out.push_str("| gate | status | duration |\n|---|---|---:|\n");
    }
    for gate in gates.iter().take(MAX_TABLE_ROWS) {
        if with_repo {
            let repo = gate.repo.as_deref().map_or_else(|| "—".to_owned(), code);
            let _ = write!(out, "| {repo} ");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(&gate.name),
            status(&gate.status, gate.exit_code),
            duration(gate.duration)
        );
    }
    more(
        &mut out,
        MAX_TABLE_ROWS.min(gates.len()),
        gates.len(),
        "gates",
    );
    out
}

/// Output excerpts of the gates that did not pass (or of all gates with one, when `all`), each in
/// a fence nothing inside can close.
pub fn gate_excerpts(gates: &[GateRow], heading: &str, all: bool) -> String {
    let with_output: Vec<&GateRow> = gates
        .iter()
        .filter(|g| all || !is_passed(g))
        .filter(|g| g.excerpt.as_deref().is_some_and(|e| !e.trim().is_empty()))
        .collect();
    let mut out = String::new();
    for gate in with_output.iter().take(MAX_EXCERPTS) {
        let excerpt = gate.excerpt.as_deref().unwrap_or_default();
        let place = gate
            .repo
            .as_deref()
            .map(|r| format!(" in {}", code(r)))
            .unwrap_or_default();
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{heading} Output of {}{place}: {}\n",
            code(&gate.name),
            status(&gate.status, gate.exit_code)
        );
        out.push_str(&fenced(
            &bound_output(&output_text(excerpt), MAX_EXCERPT_CHARS),
            "text",
        ));
    }
    more(
        &mut out,
        MAX_EXCERPTS.min(with_output.len()),
        with_output.len(),
        "gate outputs",
    );
    out
}

/// The diff policy verdict.
pub fn policy(verdict: &PolicyVerdict) -> String {
    if verdict.ok && verdict.violations.is_empty() {
        return "✅ Every changed path is allowed by the diff policy.\n".to_owned();
    }
    let mut out = if verdict.violations.is_empty() {
        "❌ The diff policy rejected the change.\n".to_owned()
    } else {
        format!(
            "❌ The diff policy found {} violation{}:\n\n",
            verdict.violations.len(),
            if verdict.violations.len() == 1 {
                ""
            } else {
                "s"
            }
        )
    };
    for violation in verdict.violations.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(out, "- {}", inline(violation, MAX_VIOLATION_CHARS));
    }
    more(
        &mut out,
        MAX_TABLE_ROWS.min(verdict.violations.len()),
        verdict.violations.len(),
        "violations",
    );
    out
}

/// Budget, cost and how the budget was derived.
pub fn budget(budget: &BudgetSummary) -> String {
    let mut out = String::from("| budget | cost | cost source |\n|---:|---:|---|\n");
    let source = if budget.cost_source.trim().is_empty() {
        "unknown".to_owned()
    } else {
        cell(&budget.cost_source, MAX_CELL_CHARS)
    };
    let _ = writeln!(
        out,
        "| {} | {} | {source} |",
        usd(budget.budget_usd),
        usd(budget.cost_usd)
    );
    if let Some(explanation) = budget
        .explanation
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        let _ = writeln!(out, "\n{}", inline(explanation, 1_000));
    }
    out
}

/// Which runtime ran each stage.
pub fn stages(stages: &[StageRow]) -> String {
    let mut out = String::from("| stage | runtime | duration | cost |\n|---|---|---:|---:|\n");
    for row in stages.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&row.stage, MAX_CELL_CHARS),
            code(&row.runtime),
            row.duration.map_or_else(|| "—".to_owned(), duration),
            row.cost_usd.map_or_else(|| "—".to_owned(), usd)
        );
    }
    more(
        &mut out,
        MAX_TABLE_ROWS.min(stages.len()),
        stages.len(),
        "stages",
    );
    out
}

/// Files changed, lines added and removed, and the first files.
pub fn diff(stat: &DiffStat) -> String {
    let mut out = format!(
        "**{} file{} changed**, +{} −{}\n",
        stat.files,
        if stat.files == 1 { "" } else { "s" },
        stat.insertions,
        stat.deletions
    );
    if stat.per_file.is_empty() {
        return out;
    }
    let with_repo = stat.per_file.iter().any(|f| f.repo.is_some());
    out.push('\n');
    if with_repo {
        out.push_str("| repository | file | + | − |\n|---|---|---:|---:|\n");
    } else {
        out.push_str("| file | + | − |\n|---|---:|---:|\n");
    }
    for file in stat.per_file.iter().take(MAX_TABLE_ROWS) {
        if with_repo {
            let repo = file.repo.as_deref().map_or_else(|| "—".to_owned(), code);
            let _ = write!(out, "| {repo} ");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(&file.path),
            file.insertions,
            file.deletions
        );
    }
    let total = stat
        .per_file
        .len()
        .max(usize::try_from(stat.files).unwrap_or(usize::MAX));
    more(
        &mut out,
        MAX_TABLE_ROWS.min(stat.per_file.len()),
        total,
        "files",
    );
    out
}
