//! "Did you mean" suggestions for misspelt keys and names.

/// The closest candidate to `input`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    let max = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let d = if c_lower == input_lower {
                0
            } else if input_lower.len() >= 3
                && (c_lower.starts_with(&input_lower) || input_lower.starts_with(&c_lower))
            {
                // `deny` for `denied`, `cost` for `cost_usd`: a truncated key is a typo too.
                1
            } else {
                strsim::damerau_levenshtein(&input_lower, &c_lower)
            };
            (d <= max).then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["runtime_profile", "repos", "labels", "budget"];
        assert_eq!(
            did_you_mean("runtime_profle", keys),
            Some("runtime_profile")
        );
        assert_eq!(did_you_mean("lables", keys), Some("labels"));
        assert_eq!(did_you_mean("zzz", keys), None);
        assert_eq!(
            did_you_mean("cost", ["cost_usd", "wall_clock"]),
            Some("cost_usd")
        );
        assert_eq!(
            did_you_mean("interveiw", ["interview", "execute"]),
            Some("interview")
        );
        assert_eq!(did_you_mean("cluade", ["claude", "codex"]), Some("claude"));
    }
}
