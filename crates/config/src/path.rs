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

/// An absolute, lexically normalised path: no `.` or `..` components, whether or not it exists.
/// Every path in a loaded [`crate::Config`] is one, resolved once at load against the
/// configuration file's directory, so nothing downstream depends on the process's working
/// directory or joins paths itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AbsPath(std::path::PathBuf);

impl AbsPath {
    /// `path` when it is absolute, normalised; `None` for a relative path.
    pub fn new(path: impl AsRef<std::path::Path>) -> Option<AbsPath> {
        let path = path.as_ref();
        path.is_absolute().then(|| AbsPath(normalize(path)))
    }

    /// `path` resolved against `base` (unless it is absolute), normalised.
    pub fn resolve(base: &AbsPath, path: impl AsRef<std::path::Path>) -> AbsPath {
        AbsPath(normalize(&base.0.join(path)))
    }

    /// `path` resolved against the process's current directory (unless it is absolute),
    /// normalised. The one place a relative path meets the working directory.
    pub fn from_cwd(path: impl AsRef<std::path::Path>) -> std::io::Result<AbsPath> {
        let path = path.as_ref();
        if path.is_absolute() {
            return Ok(AbsPath(normalize(path)));
        }
        Ok(AbsPath(normalize(&std::env::current_dir()?.join(path))))
    }

    /// The file system root.
    pub fn root() -> AbsPath {
        AbsPath(std::path::PathBuf::from("/"))
    }

    /// The directory holding this path (itself for the root).
    pub fn parent(&self) -> AbsPath {
        AbsPath(self.0.parent().unwrap_or(&self.0).to_owned())
    }

    pub fn as_path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn into_path_buf(self) -> std::path::PathBuf {
        self.0
    }
}

impl std::ops::Deref for AbsPath {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for AbsPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for AbsPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl From<AbsPath> for std::path::PathBuf {
    fn from(p: AbsPath) -> std::path::PathBuf {
        p.0
    }
}

impl PartialEq<std::path::Path> for AbsPath {
    fn eq(&self, other: &std::path::Path) -> bool {
        self.0 == other
    }
}

impl PartialEq<std::path::PathBuf> for AbsPath {
    fn eq(&self, other: &std::path::PathBuf) -> bool {
        &self.0 == other
    }
}

impl PartialEq<AbsPath> for std::path::PathBuf {
    fn eq(&self, other: &AbsPath) -> bool {
        self == &other.0
    }
}

/// Drop `.` components and let `..` remove the component before it (never above the root),
/// without touching the file system: `/a/./b/../c` is `/a/c`. Symbolic links are not followed,
/// so `..` after a link means the link's parent, as in a shell's `cd`.
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::Normal(_) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                // `pop` refuses to remove the root; a relative path keeps a leading `..`.
                if !out.pop() && !out.has_root() {
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod abs_path_tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn resolving_normalises_lexically() {
        let base = AbsPath::new("/work/checkout").unwrap();
        let table = [
            (".issueloop/cache", "/work/checkout/.issueloop/cache"),
            ("./.issueloop/cache", "/work/checkout/.issueloop/cache"),
            ("cache/./mirrors/", "/work/checkout/cache/mirrors"),
            ("../shared/state.sqlite", "/work/shared/state.sqlite"),
            ("../../../../x", "/x"),
            (
                "/var/lib/issueloop/./state.sqlite",
                "/var/lib/issueloop/state.sqlite",
            ),
            ("/a/b/../c", "/a/c"),
            ("bin/agent", "/work/checkout/bin/agent"),
            (".", "/work/checkout"),
        ];
        for (value, expected) in table {
            assert_eq!(
                AbsPath::resolve(&base, value).as_path(),
                Path::new(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn only_absolute_paths_are_taken_as_they_are() {
        assert!(AbsPath::new("issueloop.toml").is_none());
        assert!(AbsPath::new("./x").is_none());
        assert_eq!(
            AbsPath::new("/a/./b/..").unwrap().as_path(),
            Path::new("/a")
        );
        assert_eq!(AbsPath::new("/..").unwrap().as_path(), Path::new("/"));
    }

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let p = AbsPath::from_cwd("./issueloop.toml").unwrap();
        assert_eq!(p, cwd.join("issueloop.toml"));
        assert!(p.components().all(|c| c != std::path::Component::CurDir));
        assert_eq!(p.parent(), cwd);
    }

    #[test]
    fn serialises_as_a_plain_path() {
        let p = AbsPath::new("/srv/loop/state.sqlite").unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            "\"/srv/loop/state.sqlite\""
        );
    }
}
