//! Hostile issue text through the real binary on the local forge: a title with NUL, escape
//! sequences, a carriage return and a bidi override yields a PR, commit and report with a clean
//! title; a title with nothing printable is skipped before any budget is reserved or agent run.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed step fails it loudly"
)]

mod support;

use support::{Knobs, MAINTAINER, World, run_of};

/// Replace the title of issue `n` by `toml_title`, written as a TOML basic-string body (so
/// escapes like `\u0000` reach the forge's parser as the characters they name).
fn set_title(w: &World, n: u64, toml_title: &str) {
    let path = w
        .root()
        .join("forge/acme/app/issues")
        .join(format!("{n}.md"));
    let path = if path.exists() {
        path
    } else {
        find_issue_file(w.root(), n).expect("the issue file exists")
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("title = ").expect("a title line");
    let end = start + text[start..].find('\n').expect("the title line ends");
    let text = format!("{}title = \"{toml_title}\"{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).unwrap();
}

fn find_issue_file(dir: &std::path::Path, n: u64) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find_issue_file(&p, n) {
                return Some(found);
            }
        } else if p.ends_with(format!("issues/{n}.md")) {
            return Some(p);
        }
    }
    None
}

const CONTROLS: [char; 5] = ['\u{0}', '\u{1b}', '\u{7}', '\u{202E}', '\r'];

#[test]
fn a_title_with_control_characters_yields_a_pr_with_a_clean_title() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue(
        "placeholder",
        "scenario: good\ncost: 0.40\n\u{1b}[2J\n## Acceptance\n- [ ] feature() returns 42",
        MAINTAINER,
    );
    set_title(
        &w,
        n,
        r"Add\u0000 \u001b[31mfeature\u001b[0m\r now \u001b]0;pwned\u0007\u202Etxt",
    );
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "pr_opened", "{report:#}\n{stderr}");
    assert_eq!(run["title"], "Add feature now txt", "{report:#}");

    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    // The PR record is TOML: a control character would show as an escape.
    assert!(pr.contains("Add feature now txt (#1)"), "{pr}");
    for escaped in [r"\u0000", r"\u001b", r"\u0007", r"\r", "\u{202E}", "pwned"] {
        assert!(!pr.contains(escaped), "{escaped} in the PR record:\n{pr}");
    }
    for c in CONTROLS {
        assert!(!stderr.contains(c), "{c:?} reached the log:\n{stderr}");
    }
    assert_eq!(w.agent_calls().len(), 1);
}

#[test]
fn a_title_with_nothing_printable_is_skipped_before_any_spend() {
    let mut w = World::new(Knobs::default());
    let n = w.add_issue("placeholder", "scenario: good", MAINTAINER);
    set_title(&w, n, r"\u0000\u001b[2J\u0007 ");
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = run_of(&report, n);
    assert_eq!(run["status"], "skipped", "{report:#}");
    assert_eq!(run["reason"], "unusable_text", "{report:#}");
    assert!(
        run["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no printable text")),
        "{report:#}"
    );
    assert!(w.agent_calls().is_empty(), "no agent ran");
    assert!(w.entries().is_empty(), "no money reserved");
    assert!(w.pulls().is_empty());
}

#[test]
fn a_token_in_a_title_reaches_neither_the_commit_nor_the_pr() {
    let token = "ghp_AbCdEfGhIjKlMnOpQrSt0123456789";
    let mut w = World::new(Knobs::default());
    let n = w.add_issue(
        &format!("Rotate {token} please"),
        "scenario: good\ncost: 0.40\n",
        MAINTAINER,
    );
    let (code, report, stderr) = w.run_once(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(run_of(&report, n)["status"], "pr_opened", "{report:#}");
    assert!(!report.to_string().contains(token), "{report:#}");
    assert!(!stderr.contains(token), "{stderr}");
    let pr = &w.pulls()[0];
    assert!(!pr.contains(token), "{pr}");
    assert!(pr.contains("Rotate ghp_[REDACTED] please"), "{pr}");
    assert_eq!(
        w.remote_branches(),
        [format!("loop/{n}-rotate-ghp-redacted-please")]
    );
    let message = support::git::git(
        &w.remote,
        &[
            "log",
            "-1",
            "--format=%B",
            &format!("refs/heads/loop/{n}-rotate-ghp-redacted-please"),
        ],
    );
    assert!(!message.contains(token), "{message}");
    assert!(message.contains("ghp_[REDACTED]"), "{message}");
}
