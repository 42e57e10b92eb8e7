//! Key paths into a TOML document (`budget.labels."loop:budget-xl".cost_usd`), and finding
//! where a path stands in the source text.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct KeyPath(pub Vec<Seg>);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn parse_dotted(s: &str) -> Self {
        Self(
            s.split('.')
                .filter(|s| !s.is_empty())
                .map(|s| Seg::Key(s.to_owned()))
                .collect(),
        )
    }

    pub fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
    }

    pub fn parent(&self) -> Self {
        let mut p = self.clone();
        p.0.pop();
        p
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Byte range of the deepest part of this path that exists in `doc` (the key itself where
    /// the path ends at a key).
    pub fn span_in(&self, doc: &toml_edit::Document<String>) -> Option<std::ops::Range<usize>> {
        let mut node = Node::Table(doc.as_table());
        let mut span = None;
        for seg in &self.0 {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Table(t)) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span().or_else(|| item.span()), Node::of_item(item))),
                (Seg::Key(k), Node::Inline(t)) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span().or_else(|| item.span()), Node::of_item(item))),
                (Seg::Index(i), Node::TableArray(a)) => {
                    a.get(*i).map(|t| (t.span(), Node::Table(t)))
                }
                (Seg::Index(i), Node::Array(a)) => a.get(*i).map(|v| (v.span(), Node::of_value(v))),
                _ => None,
            };
            let Some((s, n)) = next else { break };
            span = s.or(span);
            node = n;
        }
        span
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
    TableArray(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

impl<'a> Node<'a> {
    fn of_item(item: &'a toml_edit::Item) -> Self {
        match item {
            toml_edit::Item::Table(t) => Node::Table(t),
            toml_edit::Item::ArrayOfTables(a) => Node::TableArray(a),
            toml_edit::Item::Value(v) => Node::of_value(v),
            toml_edit::Item::None => Node::Leaf,
        }
    }

    fn of_value(v: &'a toml_edit::Value) -> Self {
        match v {
            toml_edit::Value::InlineTable(t) => Node::Inline(t),
            toml_edit::Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count() + 1)
        .unwrap_or(1);
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_quoted_keys_and_indexes() {
        let p = KeyPath::root()
            .key("budget")
            .key("labels")
            .key("loop:budget-xl")
            .key("cost_usd");
        assert_eq!(p.to_string(), "budget.labels.\"loop:budget-xl\".cost_usd");
        let p = KeyPath::root().key("gates").key("commands").index(2);
        assert_eq!(p.to_string(), "gates.commands[2]");
    }

    #[test]
    fn finds_spans_of_nested_keys() {
        let text = "[budget]\ndaily_cap_usd = 1\n[budget.labels.\"loop:x\"]\ncost_usd = 2\n";
        let doc = toml_edit::Document::parse(text.to_owned()).unwrap();
        let p = KeyPath::root()
            .key("budget")
            .key("labels")
            .key("loop:x")
            .key("cost_usd");
        let span = p.span_in(&doc).unwrap();
        assert_eq!(line_col(text, span.start), (4, 1));
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
