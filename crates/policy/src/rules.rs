//! One pure function per diff-policy rule: (change facts, compiled policy) → violations, each
//! with the path, the reason and the fix a person would make.

use crate::compiled::CompiledPolicy;
use crate::facts::{ChangeFacts, ChangeKind, ChangedPath, FileMode, LinkResolution};
use crate::verdict::{Rule, Violation};

/// A rule: every violation it finds in a change.
pub type RuleFn = fn(&ChangeFacts, &CompiledPolicy) -> Vec<Violation>;

/// Every rule, in the order their violations are reported.
pub const ALL: &[RuleFn] = &[
    non_utf8_paths,
    denied_paths,
    not_allowed_paths,
    symlink_escapes,
    submodule_changes,
    too_many_files,
    files_too_large,
    secrets,
    secret_scans_incomplete,
    ignored_scan_incomplete,
];

fn violation(rule: Rule, path: Option<&str>, message: String, fix: impl Into<String>) -> Violation {
    Violation {
        rule,
        path: path.map(str::to_owned),
        line: None,
        message,
        fix: fix.into(),
    }
}

/// Paths git holds as bytes that are not UTF-8 cannot be judged by globs reliably.
pub fn non_utf8_paths(facts: &ChangeFacts, _policy: &CompiledPolicy) -> Vec<Violation> {
    facts
        .paths
        .iter()
        .filter(|p| p.path_not_utf8)
        .map(|p| {
            violation(
                Rule::NonUtf8Path,
                Some(&p.path),
                format!("`{}` is not a valid UTF-8 path", p.path),
                "rename it to a UTF-8 name",
            )
        })
        .collect()
}

/// Paths (both sides of a rename, ignored files too) matching a denied glob without an
/// `allow_denied` exception. Denied wins over allowed.
pub fn denied_paths(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    for changed in &facts.paths {
        for path in changed.touched_paths() {
            let Some(glob) = policy.denied.first_match(path) else {
                continue;
            };
            // Exceptions apply to files that would be committed; an ignored denied file is
            // never excused (it was created during the run and serves no commit).
            if !changed.ignored && policy.allow_denied.first_match(path).is_some() {
                continue;
            }
            let what = if path == changed.path {
                format!("`{path}` matches denied `{glob}`")
            } else {
                format!(
                    "`{}` is renamed from `{path}`, which matches denied `{glob}`",
                    changed.path
                )
            };
            let (message, fix) = if changed.ignored {
                (
                    format!("{what} (an ignored file: git does not show it, the policy does)"),
                    format!(
                        "delete `{path}` from the worktree; ignored files are never committed, \
                         but a run may not create denied files either"
                    ),
                )
            } else {
                (
                    what,
                    format!(
                        "allow it with `allow_denied = [\"{glob}\"]` in {} if this is intended",
                        policy.repo_table()
                    ),
                )
            };
            out.push(violation(Rule::DeniedPath, Some(path), message, fix));
        }
    }
    out
}

/// Paths (both sides of a rename) that no allowed glob matches. Ignored files are not judged.
pub fn not_allowed_paths(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    for changed in facts.tracked() {
        for path in changed.touched_paths() {
            if policy.allowed.first_match(path).is_some() {
                continue;
            }
            let allowed = policy.allowed.patterns();
            let listed = if allowed.is_empty() {
                "`allowed_paths` is empty".to_owned()
            } else {
                format!("`allowed_paths` are `{}`", allowed.join("`, `"))
            };
            out.push(violation(
                Rule::NotAllowedPath,
                Some(path),
                format!("`{path}` is outside the allowed paths ({listed})"),
                format!(
                    "add a glob matching it to `allowed_paths` in {} if this is intended",
                    policy.config_table
                ),
            ));
        }
    }
    out
}

/// Where a symlink leads, judged on its written target alone: the normalized path relative to
/// the worktree root, or `None` when it leaves the worktree.
pub fn lexical_target(link_path: &str, target: &str) -> Option<String> {
    let drive_letter = {
        let b = target.as_bytes();
        b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
    };
    if target.starts_with('/') || target.starts_with('\\') || drive_letter {
        return None;
    }
    let mut parts: Vec<&str> = link_path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn is_in_git_dir(path: &str) -> bool {
    path.split('/')
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case(".git"))
}

/// Symlinks whose target leaves the worktree (absolute, `..` above the root, or through other
/// links on disk) or leads into `.git`.
pub fn symlink_escapes(facts: &ChangeFacts, _policy: &CompiledPolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    for changed in facts.tracked() {
        let Some(link) = &changed.symlink else {
            continue;
        };
        let lexical = lexical_target(&changed.path, &link.target);
        let reason = match (&lexical, &link.resolves_to) {
            (None, _) | (_, LinkResolution::Outside) => Some("outside the worktree"),
            (Some(p), _) if is_in_git_dir(p) => Some("into `.git`"),
            (_, LinkResolution::Inside(p)) if is_in_git_dir(p) => Some("into `.git`"),
            _ => None,
        };
        if let Some(reason) = reason {
            out.push(violation(
                Rule::SymlinkEscape,
                Some(&changed.path),
                format!(
                    "`{}` is a symlink to `{}`, which leads {reason}",
                    changed.path, link.target
                ),
                "replace it with a regular file, or a relative link to a file inside the repository",
            ));
        }
    }
    out
}

fn short(id: &Option<String>) -> String {
    match id {
        Some(id) => id.chars().take(10).collect(),
        None => "none".to_owned(),
    }
}

/// Submodule pointer changes, additions and removals, unless `allow_submodules` is set.
pub fn submodule_changes(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    if policy.allow_submodules {
        return Vec::new();
    }
    facts
        .tracked()
        .filter(|p| p.is_submodule_change())
        .map(|p| {
            let what = match (p.old_mode, p.new_mode) {
                (Some(FileMode::Submodule), Some(FileMode::Submodule)) => format!(
                    "submodule `{}` moves from `{}` to `{}`",
                    p.path,
                    short(&p.old_id),
                    short(&p.new_id)
                ),
                (_, Some(FileMode::Submodule)) => format!("submodule `{}` is added", p.path),
                _ => format!("submodule `{}` is removed", p.path),
            };
            violation(
                Rule::SubmoduleChange,
                Some(&p.path),
                what,
                format!(
                    "revert the submodule, or allow it with `allow_submodules = true` in {} if \
                     this is intended",
                    policy.repo_table()
                ),
            )
        })
        .collect()
}

/// More changed files (renames count once, ignored files not at all) than `max_changed_files`.
pub fn too_many_files(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    let count = facts.tracked().count();
    if count as u64 <= u64::from(policy.max_changed_files) {
        return Vec::new();
    }
    vec![violation(
        Rule::TooManyFiles,
        None,
        format!(
            "the change touches {count} files, more than `max_changed_files` = {}",
            policy.max_changed_files
        ),
        format!(
            "make the change smaller (split the issue), or raise `max_changed_files` in {} if \
             this is intended",
            policy.repo_table()
        ),
    )]
}

/// Files larger than `max_file_bytes` after the change.
pub fn files_too_large(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    facts
        .tracked()
        .filter(|p| p.kind != ChangeKind::Deleted)
        .filter_map(|p| Some((p, p.size?)))
        .filter(|(_, size)| *size > policy.max_file_bytes)
        .map(|(p, size)| {
            violation(
                Rule::FileTooLarge,
                Some(&p.path),
                format!(
                    "`{}` is {size} bytes, more than `max_file_bytes` = {}",
                    p.path, policy.max_file_bytes
                ),
                format!(
                    "keep generated or binary data out of the change, or raise `max_file_bytes` \
                     in {} if this is intended",
                    policy.repo_table()
                ),
            )
        })
        .collect()
}

/// Added lines matching a secret pattern: reported by file, line and pattern name; the matched
/// text is never part of the violation.
pub fn secrets(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    for changed in facts.tracked() {
        for line in &changed.added.lines {
            let Some(pattern) = policy.secrets.iter().find(|s| s.regex.is_match(&line.text)) else {
                continue;
            };
            out.push(Violation {
                rule: Rule::Secret,
                path: Some(changed.path.clone()),
                line: Some(line.number),
                message: format!(
                    "`{}` line {}: an added line matches the secret pattern `{}`",
                    changed.path, line.number, pattern.name
                ),
                fix: "remove the secret from the change (and rotate it if it is real); read it \
                      from the environment or a secret store instead"
                    .to_owned(),
            });
        }
    }
    out
}

fn has_added_content(p: &ChangedPath) -> bool {
    p.kind != ChangeKind::Deleted && p.new_mode != Some(FileMode::Submodule)
}

/// Files whose added text exceeded what the secret scan reads.
pub fn secret_scans_incomplete(facts: &ChangeFacts, policy: &CompiledPolicy) -> Vec<Violation> {
    facts
        .tracked()
        .filter(|p| p.added.truncated && has_added_content(p))
        .map(|p| {
            violation(
                Rule::SecretScanIncomplete,
                Some(&p.path),
                format!(
                    "`{}` adds more text than the secret scan reads, so it was not fully checked",
                    p.path
                ),
                format!(
                    "keep large generated files out of the change (`max_file_bytes` in {} is {})",
                    policy.repo_table(),
                    policy.max_file_bytes
                ),
            )
        })
        .collect()
}

/// The look into ignored files stopped before it saw them all.
pub fn ignored_scan_incomplete(facts: &ChangeFacts, _policy: &CompiledPolicy) -> Vec<Violation> {
    if !facts.ignored_scan.truncated {
        return Vec::new();
    }
    vec![violation(
        Rule::IgnoredScanIncomplete,
        None,
        format!(
            "the worktree holds more ignored files than are checked for denied paths (stopped \
             after {})",
            facts.ignored_scan.checked
        ),
        "delete generated files the run does not need, or mark cache directories with a \
         `CACHEDIR.TAG` file so they are skipped",
    )]
}
