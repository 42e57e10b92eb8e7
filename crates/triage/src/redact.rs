//! Masks GitHub tokens in text before it leaves the process in a PR body or an issue comment.

/// Prefixes of GitHub token kinds: personal (classic and fine-grained), OAuth, user-to-server,
/// server-to-server (App installation tokens, which can be ~520 characters long), refresh.
pub const TOKEN_PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

/// A prefix followed by at least this many token characters is treated as a token.
pub const MIN_TOKEN_TAIL: usize = 20;

/// What replaces the part of a token after its prefix.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces every token-shaped run (`ghp_` + at least 20 of `[A-Za-z0-9_]`, and the other
/// prefixes in [`TOKEN_PREFIXES`]) by its prefix and [`REDACTED`], keeping the kind visible and
/// nothing of the secret. Applied to every piece of outside text before it is truncated, so a cut
/// can never leave a token's head behind.
pub fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = text[i..].find('g') {
        // `g` is ASCII, so `start` is a char boundary.
        let start = i + offset;
        let matched = TOKEN_PREFIXES.iter().find_map(|prefix| {
            let rest = text[start..].strip_prefix(prefix)?;
            let tail = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (tail >= MIN_TOKEN_TAIL).then_some((prefix.len(), tail))
        });
        match matched {
            Some((prefix_len, tail)) => {
                out.push_str(&text[copied..start + prefix_len]);
                out.push_str(REDACTED);
                copied = start + prefix_len + tail;
                i = copied;
            }
            None => i = start + 1,
        }
        if i >= bytes.len() {
            break;
        }
    }
    out.push_str(&text[copied..]);
    out
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
    fn leaves_short_and_unrelated_text_alone() {
        for text in [
            "ghp_short",
            "ghp_0123456789012345678", // 19 characters after the prefix
            "github_pat_",
            "gh_abcdefghijabcdefghijabcdefghij",
            "GHP_ABCDEFGHIJABCDEFGHIJ",
            "the ghost of gho",
            "ünïcödé g ghp_ ✓",
            "",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn exactly_twenty_characters_is_a_token() {
        assert_eq!(redact(&format!("ghu_{TAIL_20}")), format!("ghu_{REDACTED}"));
    }
}
