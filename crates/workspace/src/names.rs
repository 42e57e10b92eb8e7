//! Pure naming: a run's branch from its issue, the commit message, protected-branch decisions.

/// Longest slug kept in a branch name, so names stay readable in listings.
const SLUG_MAX: usize = 40;

/// The branch a run works on: `<prefix><issue>-<slug of the title>`, e.g.
/// `loop/42-fix-crash-on-empty-config`. The slug keeps ASCII letters and digits, lowercased;
/// everything else becomes `-`.
pub fn branch_name(prefix: &str, issue_number: u64, title: &str) -> String {
    format!("{prefix}{issue_number}-{}", slug(title))
}

/// Lowercase ASCII words of `title` joined by `-`, at most [`SLUG_MAX`] characters, cut at a
/// word boundary when possible; `issue` when nothing is left.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + word.len() > SLUG_MAX {
            if out.is_empty() {
                out.push_str(&word[..SLUG_MAX]);
            }
            break;
        }
        if sep == 1 {
            out.push('-');
        }
        out.push_str(&word);
    }
    if out.is_empty() {
        "issue".to_owned()
    } else {
        out
    }
}

/// The commit message of a run: `issueloop: <title> (#<issue>)` on one line (the title
/// shortened to keep the subject under 72 characters). It references the issue without
/// closing it: the pull request, reviewed by a person, does that.
pub fn commit_message(issue_number: u64, title: &str) -> String {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    let suffix = format!(" (#{issue_number})");
    let budget = 72usize.saturating_sub("issueloop: ".len() + suffix.len());
    let title = if title.chars().count() > budget {
        let kept: String = title.chars().take(budget.saturating_sub(1)).collect();
        format!("{}…", kept.trim_end())
    } else {
        title
    };
    format!("issueloop: {title}{suffix}\n")
}

/// Why `branch` may not be committed to or pushed by a run, if it is protected: it is in the
/// configured list or it is the repository's default branch.
pub fn protected_reason(
    branch: &str,
    protected: &[String],
    default_branch: Option<&str>,
) -> Option<String> {
    let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if default_branch == Some(short) {
        return Some("it is the repository's default branch".to_owned());
    }
    protected
        .iter()
        .any(|p| p == short)
        .then(|| "it is listed in `git.protected_branches`".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_from_titles() {
        let table = [
            (
                "Fix crash on empty config",
                "loop/42-fix-crash-on-empty-config",
            ),
            ("  ", "loop/42-issue"),
            ("Ünïcödé: émojis 🎉 & co", "loop/42-n-c-d-mojis-co"),
            (
                "feat(api)!: add /v2/users endpoint",
                "loop/42-feat-api-add-v2-users-endpoint",
            ),
            (
                "A very long title that goes on and on beyond any reasonable length",
                "loop/42-a-very-long-title-that-goes-on-and-on",
            ),
            (&"x".repeat(100), &format!("loop/42-{}", "x".repeat(40))),
            ("..lock ~^:?*[\\ HEAD", "loop/42-lock-head"),
        ];
        for (title, expected) in table {
            assert_eq!(branch_name("loop/", 42, title), expected, "{title}");
            let name = format!("refs/heads/{expected}");
            assert!(git2::Reference::is_valid_name(&name), "{name}");
        }
    }

    #[test]
    fn commit_messages_reference_the_issue_without_closing_it() {
        assert_eq!(
            commit_message(7, "Fix the\n parser"),
            "issueloop: Fix the parser (#7)\n"
        );
        let long = commit_message(7, &"word ".repeat(40));
        let subject = long.lines().next().unwrap();
        assert!(subject.chars().count() <= 72, "{subject}");
        assert!(subject.ends_with("… (#7)"), "{subject}");
        assert!(!long.to_lowercase().contains("closes"));
    }

    #[test]
    fn protected_branches() {
        let list = vec!["main".to_owned(), "prod".to_owned()];
        assert!(protected_reason("main", &list, Some("trunk")).is_some());
        assert!(protected_reason("refs/heads/prod", &list, None).is_some());
        assert!(
            protected_reason("trunk", &list, Some("trunk"))
                .unwrap()
                .contains("default branch")
        );
        assert_eq!(protected_reason("loop/1-x", &list, Some("main")), None);
    }
}
