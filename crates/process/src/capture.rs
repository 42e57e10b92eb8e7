//! Bounded capture of a child's output: the first and last bytes up to a limit, however much the
//! child prints.

use std::collections::VecDeque;

/// The head and tail of a byte stream, at most `limit` bytes in memory.
#[derive(Debug)]
pub struct BoundedCapture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_limit: usize,
    tail_limit: usize,
    total: u64,
}

impl BoundedCapture {
    pub fn new(limit: usize) -> Self {
        let head_limit = limit / 2;
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_limit,
            tail_limit: limit - head_limit,
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_limit - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_limit {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_limit..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes seen in total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The excerpt as text (invalid UTF-8 replaced), with a marker where bytes were left out.
    pub fn excerpt(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        if kept == self.total {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        format!(
            "{}\n[… {} bytes left out …]\n{}",
            String::from_utf8_lossy(&self.head),
            self.total - kept,
            String::from_utf8_lossy(&tail)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = BoundedCapture::new(10);
        c.push(b"abc");
        c.push(b"def");
        assert_eq!(c.excerpt(), "abcdef");
        c.push(b"ghij");
        assert_eq!(c.excerpt(), "abcdefghij");
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let mut c = BoundedCapture::new(10);
        for chunk in [&b"01234"[..], b"56789", b"abcdefghij", b"XYZ"] {
            c.push(chunk);
        }
        assert_eq!(c.total(), 23);
        assert_eq!(c.excerpt(), "01234\n[… 13 bytes left out …]\nijXYZ");
    }

    proptest! {
        #[test]
        fn never_holds_more_than_the_limit(
            limit in 2usize..64,
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
        ) {
            let mut c = BoundedCapture::new(limit);
            let mut all = Vec::new();
            for chunk in &chunks {
                c.push(chunk);
                all.extend_from_slice(chunk);
                prop_assert!(c.head.len() + c.tail.len() <= limit);
            }
            prop_assert_eq!(c.total(), all.len() as u64);
            let head_n = c.head.len();
            prop_assert_eq!(&c.head[..], &all[..head_n]);
            let tail: Vec<u8> = c.tail.iter().copied().collect();
            prop_assert_eq!(&tail[..], &all[all.len() - tail.len()..]);
            if all.len() <= limit {
                prop_assert_eq!(head_n + tail.len(), all.len());
            }
        }
    }
}
