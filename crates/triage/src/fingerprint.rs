//! Fingerprints of text issueloop wrote, so a later tick can tell an identical write and skip it.

/// A stable 64-bit FNV-1a digest of `text` with line endings and trailing whitespace normalized,
/// as 16 hex digits. A change detector, not a security measure.
pub fn fingerprint(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in normalized.trim_end().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_equal_print_and_any_change_shows() {
        assert_eq!(fingerprint("a\r\nb\n"), fingerprint("a\nb"));
        assert_ne!(fingerprint("a\nb"), fingerprint("a\nc"));
        // Stored across processes and versions: the value itself must not drift.
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_eq!(fingerprint("a"), "af63dc4c8601ec8c");
    }
}
