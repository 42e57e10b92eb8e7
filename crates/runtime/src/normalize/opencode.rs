//! OpenCode (`opencode run --format json`).
//!
//! success ⇔ the last `step_finish` has reason `stop` (older builds omit the reason; newer v1
//! builds end with `done`), no step is left open, and no `error` came after the last
//! `step_finish` (an error followed by further steps was retried). Cost and tokens are per step:
//! the sum of `step_finish.part.cost` and `part.tokens`.

use issueloop_config::Usd;
use serde::Deserialize;

use super::{
    Ctx, Event, FINAL_MESSAGE_LIMIT, TypeOnly, Verdict, append_bounded, bounded, parse, sane_cost,
    tokens,
};
use crate::outcome::{CostSource, CostUpdate, Status, Usage};
use crate::pricing::Pricing;

#[derive(Deserialize)]
struct PartEvent {
    part: Option<Part>,
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "messageID")]
    message_id: Option<String>,
    text: Option<String>,
    reason: Option<String>,
    cost: Option<f64>,
    tokens: Option<Tokens>,
}

#[derive(Deserialize)]
struct Tokens {
    input: Option<f64>,
    output: Option<f64>,
    reasoning: Option<f64>,
    cache: Option<CacheTokens>,
}

#[derive(Deserialize)]
struct CacheTokens {
    read: Option<f64>,
    write: Option<f64>,
}

impl Tokens {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: tokens(self.input),
            // Reasoning tokens are billed as output.
            output_tokens: tokens(self.output).saturating_add(tokens(self.reasoning)),
            cache_read_tokens: tokens(self.cache.as_ref().and_then(|c| c.read)),
            cache_write_tokens: tokens(self.cache.as_ref().and_then(|c| c.write)),
        }
    }
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: Option<serde_json::Value>,
}

#[derive(Default)]
pub(crate) struct State {
    cost: Usd,
    /// Steps whose tokens had no `cost` and were priced (or could not be).
    priced_usage: Usage,
    usage: Usage,
    steps_finished: u32,
    step_open: bool,
    /// The reason of the last `step_finish`: `Some(None)` when it had none (older builds).
    last_reason: Option<Option<String>>,
    pending_error: Option<String>,
    done: bool,
    text_message: Option<String>,
    text: String,
}

impl State {
    pub fn on_json(&mut self, text: &str, ctx: &mut Ctx<'_>) -> Event {
        let kind = match parse::<TypeOnly>(text) {
            Ok(TypeOnly { kind: Some(k) }) => k,
            Ok(_) => return Event::Malformed("an event without `type`".into()),
            Err(e) => return Event::Malformed(e),
        };
        match kind.as_str() {
            "step_start" => {
                self.step_open = true;
                self.done = false;
                Event::Handled
            }
            "text" => match parse::<PartEvent>(text) {
                Ok(PartEvent { part: Some(p) }) => {
                    if p.message_id != self.text_message {
                        self.text.clear();
                        self.text_message = p.message_id;
                    }
                    if let Some(t) = p.text {
                        if !self.text.is_empty() {
                            append_bounded(&mut self.text, "\n", FINAL_MESSAGE_LIMIT);
                        }
                        append_bounded(&mut self.text, &t, FINAL_MESSAGE_LIMIT);
                    }
                    Event::Handled
                }
                Ok(_) => Event::Handled,
                Err(e) => Event::Malformed(e),
            },
            "step_finish" => match parse::<PartEvent>(text) {
                Ok(PartEvent { part: Some(p) }) => {
                    self.step_open = false;
                    self.steps_finished += 1;
                    self.pending_error = None;
                    self.last_reason = Some(p.reason);
                    let usage = p.tokens.as_ref().map(Tokens::usage).unwrap_or_default();
                    self.usage.add(&usage);
                    match sane_cost(p.cost, ctx) {
                        Some(c) => self.cost += c,
                        None => self.priced_usage.add(&usage),
                    }
                    Event::Handled
                }
                Ok(_) => Event::Malformed("`step_finish` without `part`".into()),
                Err(e) => Event::Malformed(e),
            },
            "error" => match parse::<ErrorEvent>(text) {
                Ok(e) => {
                    self.pending_error = Some(bounded(&error_text(e.error), 2048));
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "done" => {
                self.done = true;
                Event::Handled
            }
            "tool_use" | "reasoning" => Event::Handled,
            _ => Event::Unknown(kind),
        }
    }

    /// Dollars so far and their source; `None` when nothing reported any.
    fn cost(&self, p: &Pricing) -> Option<(Usd, CostSource)> {
        if self.steps_finished == 0 {
            return None;
        }
        if self.priced_usage.is_zero() {
            return Some((self.cost, CostSource::Reported));
        }
        match p.price(&self.priced_usage, None) {
            Some(c) => Some((self.cost + c, CostSource::Priced)),
            None => Some((self.cost, CostSource::Unknown)),
        }
    }

    pub fn running_cost(&self, p: &Pricing) -> Option<CostUpdate> {
        self.cost(p)
            .map(|(cost_usd, source)| CostUpdate { cost_usd, source })
    }

    pub fn verdict(&self, p: &Pricing) -> Verdict {
        let (status, error) = if let Some(e) = &self.pending_error {
            (Status::Failed, Some(e.clone()))
        } else if self.done {
            (Status::Completed, None)
        } else if self.step_open {
            (
                Status::Failed,
                Some(
                    "a step started and never finished (truncated, or the agent was killed)".into(),
                ),
            )
        } else {
            match &self.last_reason {
                None => (
                    Status::Failed,
                    Some("the stream has no finished step (`step_finish`)".into()),
                ),
                Some(None) => (Status::Completed, None),
                Some(Some(r)) if r == "stop" => (Status::Completed, None),
                Some(Some(r)) => (
                    Status::Failed,
                    Some(format!(
                        "the last step finished with reason `{r}`, not a final answer"
                    )),
                ),
            }
        };
        let (cost_usd, mut cost_source) = self.cost(p).unwrap_or((Usd::ZERO, CostSource::Unknown));
        if self.step_open {
            // A step that never finished spent what no event reported.
            cost_source = CostSource::Unknown;
        }
        Verdict {
            status,
            error,
            hint: None,
            final_message: self.text.clone(),
            cost_usd,
            cost_source,
            usage: self.usage,
            model: p.model.clone(),
            warnings: Vec::new(),
            self_reported: true,
            // No terminal step and no error event: the stream does not say why.
            unexplained: self.pending_error.is_none()
                && (self.step_open || (!self.done && self.last_reason.is_none())),
        }
    }
}

/// v1 errors are `{name, data: {message}}`, v2 errors `{type, message}`.
fn error_text(error: Option<serde_json::Value>) -> String {
    let Some(error) = error else {
        return "OpenCode reported an error without detail".into();
    };
    let name = error
        .get("name")
        .or_else(|| error.get("type"))
        .and_then(|n| n.as_str());
    let message = error
        .get("data")
        .and_then(|d| d.get("message"))
        .or_else(|| error.get("message"))
        .and_then(|m| m.as_str());
    match (name, message) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (None, Some(m)) => m.to_owned(),
        (Some(n), None) => n.to_owned(),
        (None, None) => match error {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    }
}
