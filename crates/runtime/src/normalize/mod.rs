//! Incremental, bounded normalization of an agent's stdout into a [`BackendOutcome`].
//!
//! Bytes go in as they arrive ([`Normalizer::feed`]); they are split on `\n` only (U+2028 and
//! U+2029 are valid inside JSON strings), lines longer than the line limit are dropped and
//! counted, and each line is handed to the harness's own reader. Pretty-printed documents (the
//! `json` output modes) are reassembled up to the same limit. Nothing here grows with the length
//! of the stream: every buffer and message kept is bounded.

mod claude;
mod codex;
mod gemini;
mod opencode;
mod pi;
mod text;

use std::collections::VecDeque;

use serde::de::{DeserializeOwned, SeqAccess, Visitor};

use issueloop_config::Usd;

use crate::format::Format;
use crate::outcome::{BackendOutcome, CostSource, CostUpdate, KillReason, Status, Usage};
use crate::pricing::Pricing;
use crate::stderr_tail;

/// Lines longer than this are dropped (and counted): no harness event we read comes close.
pub const DEFAULT_LINE_LIMIT: usize = 16 << 20;
/// The final message kept, in bytes.
pub const FINAL_MESSAGE_LIMIT: usize = 64 << 10;
/// An error message kept, in bytes.
pub const ERROR_LIMIT: usize = 4 << 10;
const MAX_WARNINGS: usize = 32;
const STRAY_LINES_KEPT: usize = 5;
const STRAY_LINE_LIMIT: usize = 512;

/// Reads one agent's stdout, a chunk or a line at a time, into a [`BackendOutcome`].
pub struct Normalizer {
    format: Format,
    harness: Harness,
    pricing: Pricing,
    line_limit: usize,
    line: Vec<u8>,
    discarding: bool,
    doc: Option<PendingDoc>,
    report: Report,
    last_cost: Option<CostUpdate>,
    stderr: String,
}

impl Normalizer {
    pub fn new(format: Format, pricing: Pricing) -> Self {
        let harness = match format {
            Format::ClaudeCode => Harness::Claude(Box::default()),
            Format::Codex => Harness::Codex(codex::State::default()),
            Format::Pi => Harness::Pi(pi::State::default()),
            Format::OpenCode => Harness::OpenCode(opencode::State::default()),
            Format::Gemini => Harness::Gemini(gemini::State::default()),
            Format::Text => Harness::Text(text::State::default()),
        };
        Normalizer {
            format,
            harness,
            pricing,
            line_limit: DEFAULT_LINE_LIMIT,
            line: Vec::new(),
            discarding: false,
            doc: None,
            report: Report::default(),
            last_cost: None,
            stderr: String::new(),
        }
    }

    /// Lower the line limit (tests; a smaller memory bound).
    pub fn with_line_limit(mut self, bytes: usize) -> Self {
        self.line_limit = bytes.max(1);
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Feed the next bytes of stdout. Returns the running cost when it changed.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<CostUpdate> {
        let before = self.last_cost;
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.push_segment(&rest[..i]);
            self.end_line();
            rest = &rest[i + 1..];
        }
        self.push_segment(rest);
        (self.last_cost != before)
            .then_some(self.last_cost)
            .flatten()
    }

    /// Feed one whole line (without its `\n`). Returns the running cost when it changed.
    pub fn feed_line(&mut self, line: &str) -> Option<CostUpdate> {
        let before = self.last_cost;
        // A partial line fed through `feed` ends here.
        self.push_segment(line.as_bytes());
        self.end_line();
        (self.last_cost != before)
            .then_some(self.last_cost)
            .flatten()
    }

    /// The running cost so far, if any event told it.
    pub fn running_cost(&self) -> Option<CostUpdate> {
        self.last_cost
    }

    /// The agent's stderr (head and tail), used for the error message when the stream has none.
    pub fn set_stderr(&mut self, stderr: String) {
        self.stderr = stderr;
    }

    /// End of stream: decide the outcome from what was read, the exit code and whether
    /// issueloop stopped the agent.
    pub fn finish(mut self, exit_code: Option<i32>, killed: Option<KillReason>) -> BackendOutcome {
        if !self.line.is_empty() || self.discarding {
            self.end_line();
        }
        if let Some(doc) = self.doc.take() {
            self.report.skipped += doc.lines;
            self.report.warn(format!(
                "a JSON document starting at line {} never closed; its {} line(s) were skipped",
                doc.first_line, doc.lines
            ));
        }
        let verdict = self.harness.verdict(&self.pricing);
        let mut error = verdict.error.clone();
        let mut words = None;
        let status = match killed {
            Some(KillReason::Budget) => {
                error = Some(
                    "issueloop stopped the agent: its running cost passed the run budget".into(),
                );
                Status::BudgetExhausted
            }
            Some(KillReason::WallClock) => {
                // A harness that cannot reach its model retries until the clock runs out; what
                // it said meanwhile is the explanation.
                words = last_words(self.harness.notice(), stderr_tail::tail(&self.stderr));
                error = Some(match &words {
                    Some(w) => format!("issueloop stopped the agent at the wall-clock limit; {w}"),
                    None => "issueloop stopped the agent at the wall-clock limit".into(),
                });
                Status::TimedOut
            }
            None => match (exit_code, verdict.status) {
                (Some(0), status) => status,
                (_, Status::BudgetExhausted) => Status::BudgetExhausted,
                (Some(code), Status::Completed) if verdict.self_reported => {
                    error = Some(format!(
                        "the agent reported success but exited with code {code}"
                    ));
                    Status::Failed
                }
                (None, Status::Completed) if verdict.self_reported => {
                    error = Some("the agent reported success but was ended by a signal".into());
                    Status::Failed
                }
                (Some(code), _) => {
                    error = error.or_else(|| Some(format!("the agent exited with code {code}")));
                    Status::Failed
                }
                (None, _) => {
                    error = error.or_else(|| Some("the agent was ended by a signal".into()));
                    Status::Failed
                }
            },
        };
        if status == Status::Failed {
            let generic = error.as_deref().is_none_or(|e| {
                e.starts_with("the agent exited with code") || e.starts_with("the agent was ended")
            });
            if verdict.unexplained && !generic {
                // The stream stopped short without saying why; the harness may have said so on
                // stderr ("No API key found…", "not running in a trusted directory…").
                // Its own words replace the guess ("truncated, or killed") about the stream.
                if let Some(tail) = stderr_tail::tail(&self.stderr) {
                    let how = match exit_code {
                        Some(code) => format!("the agent exited with code {code}"),
                        None => "the agent was ended by a signal".to_owned(),
                    };
                    error = Some(format!(
                        "{how} without finishing its output; its stderr ends with:\n{tail}"
                    ));
                }
            } else if generic {
                let detail = stderr_tail::tail(&self.stderr)
                    .or_else(|| verdict.hint.clone())
                    .or_else(|| {
                        (!self.report.stray.is_empty())
                            .then(|| Vec::from(self.report.stray.clone()).join("\n"))
                    });
                error = match (error, detail) {
                    (Some(e), Some(d)) => Some(format!("{e}: {d}")),
                    (None, Some(d)) => Some(d),
                    (e, None) => e.or_else(|| Some("the agent failed without saying why".into())),
                };
            }
        }
        let mut warnings = verdict.warnings;
        warnings.extend(self.report.warnings);
        warnings.truncate(MAX_WARNINGS + 1);
        BackendOutcome {
            status,
            cost_usd: verdict.cost_usd,
            cost_source: verdict.cost_source,
            usage: verdict.usage,
            final_message: bounded(&verdict.final_message, FINAL_MESSAGE_LIMIT),
            error: error.map(|e| bounded(&e, ERROR_LIMIT)),
            last_words: words.map(|w| bounded(&w, ERROR_LIMIT)),
            exit_code,
            killed,
            model: verdict.model,
            lines: self.report.lines,
            skipped_lines: self.report.skipped,
            overlong_lines: self.report.overlong,
            unknown_events: self.report.unknown,
            warnings,
            stderr: self.stderr,
        }
    }

    fn push_segment(&mut self, seg: &[u8]) {
        if self.discarding || seg.is_empty() {
            return;
        }
        if self.line.len() + seg.len() > self.line_limit {
            self.discarding = true;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(seg);
    }

    fn end_line(&mut self) {
        self.report.lines += 1;
        if self.discarding {
            self.discarding = false;
            self.report.skipped += 1;
            self.report.overlong += 1;
            if self.report.overlong == 1 {
                self.report.warn(format!(
                    "line {} is longer than {} bytes and was skipped",
                    self.report.lines, self.line_limit
                ));
            }
            return;
        }
        let line = std::mem::take(&mut self.line);
        {
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\r').unwrap_or(&text);
            self.process_line(text);
        }
        // Keep the buffer for the next line unless one long line left it large.
        self.line = line;
        self.line.clear();
        if self.line.capacity() > 1 << 20 {
            self.line.shrink_to(64 << 10);
        }
        self.last_cost = self.harness.running_cost(&self.pricing).or(self.last_cost);
    }

    fn process_line(&mut self, text: &str) {
        if let Harness::Text(state) = &mut self.harness {
            state.line(text);
            return;
        }
        if let Some(doc) = &mut self.doc {
            if doc.text.len() + text.len() + 1 > self.line_limit {
                let lines = doc.lines + 1;
                let first = doc.first_line;
                self.doc = None;
                self.report.skipped += lines;
                self.report.overlong += lines;
                self.report.warn(format!(
                    "the JSON document starting at line {first} is longer than {} bytes and was skipped",
                    self.line_limit
                ));
                return;
            }
            if doc.push(text)
                && let Some(doc) = self.doc.take()
            {
                self.dispatch_json(&doc.text, doc.lines, doc.first_line);
            }
            return;
        }
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        if t == "{" || t == "[" {
            let mut doc = PendingDoc::new(self.report.lines);
            doc.push(t);
            self.doc = Some(doc);
            return;
        }
        if t.starts_with('{') || t.starts_with('[') {
            self.dispatch_json(t, 1, self.report.lines);
            return;
        }
        self.report.skipped += 1;
        self.report.stray_line(t);
        if self.report.skipped == 1 {
            self.report.warn(format!(
                "line {} is not JSON and was skipped: `{}`",
                self.report.lines,
                bounded(t, 120)
            ));
        }
    }

    fn dispatch_json(&mut self, text: &str, lines: u64, first_line: u64) {
        let harness = &mut self.harness;
        let report = &mut self.report;
        let pricing = &self.pricing;
        let text = text.trim();
        if text.starts_with('[') {
            let mut handle = |element: &str| {
                let mut ctx = Ctx {
                    pricing,
                    report: &mut *report,
                    line: first_line,
                };
                let event = harness.on_json(element, &mut ctx);
                ctx.record(event);
            };
            let mut de = serde_json::Deserializer::from_str(text);
            let result = serde::Deserializer::deserialize_seq(&mut de, EachElement(&mut handle))
                .and_then(|_| de.end());
            if let Err(e) = result {
                report.skipped += lines;
                report.warn(format!(
                    "line {first_line}: a JSON array that does not parse was skipped: {e}"
                ));
            }
            return;
        }
        let mut ctx = Ctx {
            pricing,
            report,
            line: first_line,
        };
        let event = harness.on_json(text, &mut ctx);
        if let Event::Malformed(_) = &event {
            ctx.report.skipped += lines - 1;
        }
        ctx.record(event);
    }
}

/// What an agent stopped by issueloop said last, for its reason: the stream's last notice
/// (`notice`, e.g. Codex's "Reconnecting… waiting for network") and the end of its stderr
/// (`stderr_tail`, already bounded and cleaned), or `None` when it said nothing.
pub(crate) fn last_words(notice: Option<String>, stderr_tail: Option<String>) -> Option<String> {
    let notice = notice
        .map(|n| issueloop_config::redact(&issueloop_config::clean_line(&n)))
        .filter(|n| !n.is_empty())
        .map(|n| bounded(&n, STRAY_LINE_LIMIT));
    match (notice, stderr_tail) {
        (Some(n), Some(t)) => Some(format!(
            "its last notice on stdout: {n}; its last words on stderr:\n{t}"
        )),
        (Some(n), None) => Some(format!("its last notice on stdout: {n}")),
        (None, Some(t)) => Some(format!("its last words on stderr:\n{t}")),
        (None, None) => None,
    }
}

/// What a harness reader made of one JSON value.
pub(crate) enum Event {
    Handled,
    /// An event type this version does not know.
    Unknown(String),
    /// Valid JSON of the wrong shape (or not JSON at all).
    Malformed(String),
}

/// What a harness reader may touch while reading one value.
pub(crate) struct Ctx<'a> {
    pub pricing: &'a Pricing,
    pub report: &'a mut Report,
    pub line: u64,
}

impl Ctx<'_> {
    fn record(&mut self, event: Event) {
        match event {
            Event::Handled => {}
            Event::Unknown(kind) => {
                self.report.unknown += 1;
                if self.report.unknown_kinds.len() < MAX_WARNINGS
                    && !self.report.unknown_kinds.contains(&kind)
                {
                    self.report.unknown_kinds.push(kind.clone());
                    self.report.warn(format!(
                        "line {}: unknown event `{kind}` skipped",
                        self.line
                    ));
                }
            }
            Event::Malformed(why) => {
                self.report.skipped += 1;
                self.report
                    .warn(format!("line {}: skipped: {why}", self.line));
            }
        }
    }

    pub fn warn(&mut self, message: String) {
        self.report.warn(format!("line {}: {message}", self.line));
    }
}

/// Counters and warnings of one stream.
#[derive(Default)]
pub(crate) struct Report {
    lines: u64,
    skipped: u64,
    overlong: u64,
    unknown: u64,
    unknown_kinds: Vec<String>,
    warnings: Vec<String>,
    /// The last non-JSON lines, for the error message when the stream tells nothing else.
    stray: VecDeque<String>,
}

impl Report {
    fn warn(&mut self, message: String) {
        match self.warnings.len() {
            n if n < MAX_WARNINGS => self.warnings.push(message),
            n if n == MAX_WARNINGS => self.warnings.push("… further warnings omitted".into()),
            _ => {}
        }
    }

    fn stray_line(&mut self, line: &str) {
        if self.stray.len() == STRAY_LINES_KEPT {
            self.stray.pop_front();
        }
        self.stray.push_back(bounded(line, STRAY_LINE_LIMIT));
    }
}

/// The harness's own judgment of its stream, before the exit code and kills are considered.
pub(crate) struct Verdict {
    pub status: Status,
    pub error: Option<String>,
    /// Context for an error message when the process failed and the stream has no error.
    pub hint: Option<String>,
    pub final_message: String,
    pub cost_usd: Usd,
    pub cost_source: CostSource,
    pub usage: Usage,
    pub model: Option<String>,
    pub warnings: Vec<String>,
    /// The stream itself claims success or failure (every harness format; not plain text).
    pub self_reported: bool,
    /// The stream ended without its terminal event and without an error of its own: it does not
    /// say why the run failed, so the reason carries the end of stderr.
    pub unexplained: bool,
}

impl Verdict {
    pub fn failed(error: impl Into<String>) -> Self {
        Verdict {
            status: Status::Failed,
            error: Some(error.into()),
            hint: None,
            final_message: String::new(),
            cost_usd: Usd::ZERO,
            cost_source: CostSource::Unknown,
            usage: Usage::default(),
            model: None,
            warnings: Vec::new(),
            self_reported: true,
            unexplained: false,
        }
    }

    pub fn completed() -> Self {
        Verdict {
            status: Status::Completed,
            error: None,
            ..Verdict::failed("")
        }
    }
}

enum Harness {
    Claude(Box<claude::State>),
    Codex(codex::State),
    Pi(pi::State),
    OpenCode(opencode::State),
    Gemini(gemini::State),
    Text(text::State),
}

impl Harness {
    fn on_json(&mut self, text: &str, ctx: &mut Ctx<'_>) -> Event {
        match self {
            Harness::Claude(s) => s.on_json(text, ctx),
            Harness::Codex(s) => s.on_json(text, ctx),
            Harness::Pi(s) => s.on_json(text, ctx),
            Harness::OpenCode(s) => s.on_json(text, ctx),
            Harness::Gemini(s) => s.on_json(text, ctx),
            Harness::Text(s) => {
                s.line(text);
                Event::Handled
            }
        }
    }

    fn running_cost(&self, pricing: &Pricing) -> Option<CostUpdate> {
        match self {
            Harness::Claude(s) => s.running_cost(pricing),
            Harness::Codex(s) => s.running_cost(pricing),
            Harness::Pi(s) => s.running_cost(),
            Harness::OpenCode(s) => s.running_cost(pricing),
            Harness::Gemini(s) => s.running_cost(pricing),
            Harness::Text(_) => None,
        }
    }

    /// What the stream said last about trouble while the run went on (a retry notice, an API
    /// error), for a run issueloop stopped. Only Claude Code and Codex report such notices on
    /// stdout; the others print them on stderr, if anywhere.
    fn notice(&self) -> Option<String> {
        match self {
            Harness::Claude(s) => s.notice(),
            Harness::Codex(s) => s.notice(),
            Harness::Pi(_) | Harness::OpenCode(_) | Harness::Gemini(_) | Harness::Text(_) => None,
        }
    }

    fn verdict(&self, pricing: &Pricing) -> Verdict {
        match self {
            Harness::Claude(s) => s.verdict(pricing),
            Harness::Codex(s) => s.verdict(pricing),
            Harness::Pi(s) => s.verdict(),
            Harness::OpenCode(s) => s.verdict(pricing),
            Harness::Gemini(s) => s.verdict(pricing),
            Harness::Text(s) => s.verdict(),
        }
    }
}

/// A pretty-printed JSON document being reassembled line by line.
struct PendingDoc {
    text: String,
    depth: i64,
    in_string: bool,
    escaped: bool,
    lines: u64,
    first_line: u64,
}

impl PendingDoc {
    fn new(first_line: u64) -> Self {
        PendingDoc {
            text: String::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            lines: 0,
            first_line,
        }
    }

    /// Add a line; true when the document is complete.
    fn push(&mut self, line: &str) -> bool {
        self.text.push_str(line);
        self.text.push('\n');
        self.lines += 1;
        for b in line.bytes() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth -= 1,
                    _ => {}
                }
            }
        }
        self.depth <= 0
    }
}

/// Hands each element of a JSON array to a callback as JSON text, one at a time, so a large
/// array is never held as a tree.
struct EachElement<'f>(&'f mut dyn FnMut(&str));

impl<'de> Visitor<'de> for EachElement<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            (self.0)(&value.to_string());
        }
        Ok(())
    }
}

/// Parse `text` as `T`, naming the JSON path that failed.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{}", e.inner())
        } else {
            format!("at `{path}`: {}", e.inner())
        }
    })
}

/// The `type` of an event (most harnesses tag events this way).
#[derive(serde::Deserialize)]
pub(crate) struct TypeOnly {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `s` cut to at most `limit` bytes on a character boundary, marked when cut.
pub(crate) fn bounded(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Append to a bounded text; false once the limit is reached.
pub(crate) fn append_bounded(buf: &mut String, s: &str, limit: usize) {
    if buf.len() >= limit {
        return;
    }
    let room = limit - buf.len();
    if s.len() <= room {
        buf.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        buf.push_str(&s[..end]);
        buf.push('…');
    }
}

/// A dollar amount from a harness, refusing what cannot be a cost: parsed into [`Usd`] here, at
/// the edge, rounded **up** to the micro-dollar (the safe side; see [`Usd::from_dollars_up`]).
pub(crate) fn sane_cost(value: Option<f64>, ctx: &mut Ctx<'_>) -> Option<Usd> {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Some(Usd::from_dollars_up(v)),
        Some(v) => {
            ctx.warn(format!("ignored a cost of `{v}` that cannot be a cost"));
            None
        }
        None => None,
    }
}

/// A token count from a harness (some print floats).
pub(crate) fn tokens(value: Option<f64>) -> u64 {
    match value {
        Some(v) if v.is_finite() && v > 0.0 => v as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
