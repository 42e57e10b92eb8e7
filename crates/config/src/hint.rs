//! What an error offers beyond its message: a hint (what to do about it, by a method, never
//! parsed out of text) and its chain of causes written on one line.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// An error that can tell a person what to do about it. The command line finds it while walking
/// an error's chain of causes and prints it as a `hint:` line after the error.
pub trait Hint {
    /// What to do about this error, when there is something to say.
    fn hint(&self) -> Option<Cow<'_, str>>;
}

/// An error with its causes on one line: `what: cause: cause`, for the places that keep an
/// error as text (the journal, a comment, a report line). A cause whose message repeats the
/// previous one is left out.
pub trait ErrorChain {
    /// The error and its [`Error::source`] chain, written `what: cause: cause`.
    fn chain(&self) -> Chain<'_>;
}

impl<E: Error + 'static> ErrorChain for E {
    fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

impl ErrorChain for dyn Error + Send + Sync + 'static {
    fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// See [`ErrorChain`].
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl Chain<'_> {
    /// The messages of the error and of each cause, in order, consecutive repeats left out.
    pub fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut next: Option<&(dyn Error + 'static)> = Some(self.0);
        while let Some(e) = next {
            let text = e.to_string();
            if out.last() != Some(&text) && !text.is_empty() {
                out.push(text);
            }
            next = e.source();
        }
        out
    }
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages().join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `x`")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Same(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("the same words")]
    struct Inner;

    #[test]
    fn a_chain_is_written_on_one_line_without_repeats() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(e.chain().to_string(), "cannot read `x`: disk on fire");
        let same = Same(Inner);
        assert_eq!(same.to_string(), "the same words");
        assert_eq!(same.chain().to_string(), "the same words");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(Outer(std::io::Error::other("gone")));
        assert_eq!(boxed.chain().to_string(), "cannot read `x`: gone");
    }
}
