//! Claude Code (`claude -p --output-format stream-json --verbose`, also `--output-format json`).
//!
//! The `result` frame decides: success ⇔ `subtype == "success"` and `is_error == false`;
//! `error_max_budget_usd` is the harness's own budget stop. `total_cost_usd` is cumulative for
//! one session, so a stream holding several sessions adds the last value of each. Until a
//! `result` arrives, the running cost is estimated from the `assistant` frames' usage (deduplicated
//! by `message.id`) priced from the model table, so live enforcement works mid-run. A
//! `system`/`api_retry` frame (the model API failed and Claude Code will try again) is the
//! stream's last notice: it is all Claude Code says while it cannot reach its endpoint.

use std::collections::BTreeMap;

use issueloop_config::Usd;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{
    Ctx, Event, FINAL_MESSAGE_LIMIT, Verdict, append_bounded, bounded, parse, sane_cost, tokens,
};
use crate::outcome::{CostSource, CostUpdate, Status, Usage};
use crate::pricing::Pricing;

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
    subtype: Option<String>,
    model: Option<String>,
}

/// `{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"error_status":null,
/// "error":"unknown",…}`.
#[derive(Deserialize)]
struct ApiRetry {
    attempt: Option<u64>,
    max_retries: Option<u64>,
    error_status: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
}

impl ApiRetry {
    fn notice(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        let text = |v: &Option<serde_json::Value>| match v {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let status = text(&self.error_status)
            .map_or_else(|| "no HTTP status".to_owned(), |s| format!("HTTP {s}"));
        format!(
            "`api_retry` attempt {} of {}: the model API failed (error `{}`, {status})",
            n(self.attempt),
            n(self.max_retries),
            text(&self.error).unwrap_or_else(|| "unknown".into()),
        )
    }
}

#[derive(Deserialize)]
struct AssistantFrame {
    message: Option<AssistantMessage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    id: Option<String>,
    model: Option<String>,
    content: Option<Vec<Block>>,
    usage: Option<ClaudeUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct ClaudeUsage {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cache_creation_input_tokens: Option<f64>,
    cache_read_input_tokens: Option<f64>,
}

impl ClaudeUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: tokens(self.input_tokens),
            output_tokens: tokens(self.output_tokens),
            cache_read_tokens: tokens(self.cache_read_input_tokens),
            cache_write_tokens: tokens(self.cache_creation_input_tokens),
        }
    }
}

#[derive(Deserialize)]
struct ResultFrame {
    subtype: Option<String>,
    is_error: Option<bool>,
    result: Option<serde_json::Value>,
    errors: Option<Vec<serde_json::Value>>,
    total_cost_usd: Option<f64>,
    usage: Option<ClaudeUsage>,
    permission_denials: Option<Vec<IgnoredAny>>,
    terminal_reason: Option<String>,
    session_id: Option<String>,
    #[serde(rename = "modelUsage")]
    model_usage: Option<BTreeMap<String, IgnoredAny>>,
}

struct ResultInfo {
    session_id: Option<String>,
    subtype: String,
    is_error: bool,
    text: Option<String>,
    errors: Vec<String>,
    cost: Option<Usd>,
    usage: Option<Usage>,
    /// The estimate from assistant frames at the time of the result (used when it has no cost).
    estimate: Estimate,
    denials: usize,
    terminal_reason: Option<String>,
    model: Option<String>,
}

/// Cost and usage estimated from `assistant` frames, one message at a time.
#[derive(Clone, Default)]
struct Estimate {
    usage: Usage,
    cost: Usd,
    unpriced: bool,
    /// The message being streamed: split frames repeat its id and usage.
    current: Option<(Option<String>, Usage, Option<String>)>,
}

impl Estimate {
    fn frame(&mut self, id: Option<String>, usage: Usage, model: Option<String>, p: &Pricing) {
        if let Some((cur_id, cur_usage, _)) = &mut self.current
            && id.is_some()
            && *cur_id == id
        {
            *cur_usage = max_usage(cur_usage, &usage);
            return;
        }
        self.fold(p);
        self.current = Some((id, usage, model));
    }

    fn fold(&mut self, p: &Pricing) {
        if let Some((_, usage, model)) = self.current.take() {
            self.usage.add(&usage);
            match p.price(&usage, model.as_deref()) {
                Some(c) => self.cost += c,
                None => self.unpriced = true,
            }
        }
    }

    /// Cost and usage including the message in flight; cost `None` when a model has no price.
    fn total(&self, p: &Pricing) -> (Option<Usd>, Usage) {
        let mut e = self.clone();
        e.fold(p);
        ((!e.unpriced).then_some(e.cost), e.usage)
    }

    fn is_empty(&self) -> bool {
        self.current.is_none() && self.usage.is_zero() && !self.unpriced
    }
}

fn max_usage(a: &Usage, b: &Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.max(b.input_tokens),
        output_tokens: a.output_tokens.max(b.output_tokens),
        cache_read_tokens: a.cache_read_tokens.max(b.cache_read_tokens),
        cache_write_tokens: a.cache_write_tokens.max(b.cache_write_tokens),
    }
}

#[derive(Default)]
pub(crate) struct State {
    init_model: Option<String>,
    assistant_model: Option<String>,
    /// Assistant frames since the last `result`.
    estimate: Estimate,
    /// A session started (init or assistant frame) after the last `result`.
    session_open: bool,
    last_text: Option<String>,
    last_api_error: Option<String>,
    /// The last `api_retry` notice, until a `result` or an assistant message follows it.
    last_retry: Option<String>,
    /// Sessions finished before the current `result` (several `claude -p` runs in one stream).
    settled_cost: Usd,
    settled_cost_unknown: bool,
    settled_usage: Usage,
    result: Option<ResultInfo>,
}

impl State {
    pub fn on_json(&mut self, text: &str, ctx: &mut Ctx<'_>) -> Event {
        let head: Head = match parse(text) {
            Ok(h) => h,
            Err(e) => return Event::Malformed(e),
        };
        let Some(kind) = head.kind else {
            return Event::Malformed("a frame without `type`".into());
        };
        match kind.as_str() {
            "system" => {
                if head.subtype.as_deref() == Some("init") {
                    if head.model.is_some() {
                        self.init_model = head.model;
                    }
                    if self.result.is_some() {
                        self.session_open = true;
                    }
                } else if head.subtype.as_deref() == Some("api_retry") {
                    match parse::<ApiRetry>(text) {
                        Ok(r) => self.last_retry = Some(bounded(&r.notice(), 512)),
                        Err(e) => return Event::Malformed(e),
                    }
                }
                Event::Handled
            }
            "assistant" => {
                let frame: AssistantFrame = match parse(text) {
                    Ok(f) => f,
                    Err(e) => return Event::Malformed(e),
                };
                self.assistant(frame, ctx);
                Event::Handled
            }
            "result" => {
                let frame: ResultFrame = match parse(text) {
                    Ok(f) => f,
                    Err(e) => return Event::Malformed(e),
                };
                self.result(frame, ctx);
                Event::Handled
            }
            "user" | "stream_event" | "rate_limit_event" | "control_request"
            | "control_response" | "keep_alive" => Event::Handled,
            _ => Event::Unknown(kind),
        }
    }

    fn assistant(&mut self, frame: AssistantFrame, ctx: &mut Ctx<'_>) {
        // The model answered: an earlier retry notice no longer explains anything.
        self.last_retry = None;
        self.session_open = true;
        if let Some(error) = frame.error {
            let code = match &error {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            self.last_api_error = Some(bounded(&format!("API error `{code}`"), 512));
        }
        let Some(message) = frame.message else {
            return;
        };
        if message.model.is_some() {
            self.assistant_model.clone_from(&message.model);
        }
        let mut text = String::new();
        for block in message.content.unwrap_or_default() {
            if block.kind.as_deref() == Some("text")
                && let Some(t) = block.text
            {
                append_bounded(&mut text, &t, FINAL_MESSAGE_LIMIT);
            }
        }
        if !text.trim().is_empty() {
            self.last_text = Some(text);
        }
        if let Some(usage) = message.usage {
            let model = message.model.or_else(|| self.init_model.clone());
            self.estimate
                .frame(message.id, usage.usage(), model, ctx.pricing);
        }
    }

    fn result(&mut self, frame: ResultFrame, ctx: &mut Ctx<'_>) {
        self.last_retry = None;
        let cost = sane_cost(frame.total_cost_usd, ctx);
        let estimate = std::mem::take(&mut self.estimate);
        if let Some(previous) = self.result.take() {
            if previous.session_id.is_some() && previous.session_id == frame.session_id {
                // The same session reporting again: its figures are cumulative, keep the last.
            } else {
                match previous.cost {
                    Some(c) => self.settled_cost += c,
                    None => self.settled_cost_unknown = true,
                }
                self.settled_usage
                    .add(&previous.usage.unwrap_or(previous.estimate.usage));
            }
        }
        let text = match frame.result {
            Some(serde_json::Value::String(s)) => Some(bounded(&s, FINAL_MESSAGE_LIMIT)),
            _ => None,
        };
        let errors = frame
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| match e {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .filter(|e| !e.trim().is_empty())
            .collect();
        self.session_open = false;
        self.result = Some(ResultInfo {
            session_id: frame.session_id,
            subtype: frame.subtype.unwrap_or_else(|| "success".into()),
            is_error: frame.is_error.unwrap_or(false),
            text,
            errors,
            cost,
            usage: frame.usage.map(|u| u.usage()),
            estimate,
            denials: frame.permission_denials.map_or(0, |d| d.len()),
            terminal_reason: frame.terminal_reason,
            model: frame
                .model_usage
                .and_then(|m| m.into_keys().next())
                .or_else(|| self.assistant_model.clone()),
        });
    }

    /// Reported dollars of finished sessions, `None` when one of them reported none.
    fn reported(&self) -> Option<Usd> {
        if self.settled_cost_unknown {
            return None;
        }
        match &self.result {
            Some(r) => r.cost.map(|c| self.settled_cost + c),
            None => Some(self.settled_cost),
        }
    }

    pub fn running_cost(&self, p: &Pricing) -> Option<CostUpdate> {
        let reported = self.reported();
        if self.estimate.is_empty() {
            return match (&self.result, reported) {
                (Some(_), Some(cost_usd)) => Some(CostUpdate {
                    cost_usd,
                    source: CostSource::Reported,
                }),
                _ => None,
            };
        }
        let (estimate, _) = self.estimate.total(p);
        Some(CostUpdate {
            cost_usd: reported.unwrap_or(self.settled_cost) + estimate?,
            source: CostSource::Priced,
        })
    }

    /// What the stream said last about trouble while it ran: a retry notice or an API error.
    pub fn notice(&self) -> Option<String> {
        self.last_retry
            .clone()
            .or_else(|| self.last_api_error.clone())
    }

    pub fn verdict(&self, p: &Pricing) -> Verdict {
        let model = self
            .result
            .as_ref()
            .and_then(|r| r.model.clone())
            .or_else(|| self.assistant_model.clone())
            .or_else(|| self.init_model.clone())
            .or_else(|| p.model.clone());
        let (estimate, estimate_usage) = self.estimate.total(p);
        let Some(r) = self.result.as_ref().filter(|_| !self.session_open) else {
            // No result for the last session: truncated or killed.
            let unexplained = self.last_api_error.is_none();
            let error = self.last_api_error.clone().unwrap_or_else(|| {
                "the stream ended without a `result` frame (truncated, or the agent was killed)"
                    .into()
            });
            let mut usage = self.settled_usage;
            let mut cost = self.settled_cost;
            if let Some(r) = &self.result {
                usage.add(&r.usage.unwrap_or(r.estimate.usage));
                cost += r.cost.unwrap_or(Usd::ZERO);
            }
            usage.add(&estimate_usage);
            return Verdict {
                final_message: self.last_text.clone().unwrap_or_default(),
                cost_usd: cost + estimate.unwrap_or(Usd::ZERO),
                usage,
                model,
                unexplained,
                ..Verdict::failed(error)
            };
        };
        let status = if r.subtype == "success" && !r.is_error {
            Status::Completed
        } else if r.subtype == "error_max_budget_usd" {
            Status::BudgetExhausted
        } else {
            Status::Failed
        };
        let error = (status != Status::Completed).then(|| {
            if !r.errors.is_empty() {
                r.errors.join("; ")
            } else if let Some(t) = r.text.as_ref().filter(|t| !t.trim().is_empty()) {
                t.clone()
            } else if let Some(e) = &self.last_api_error {
                e.clone()
            } else {
                let reason = r
                    .terminal_reason
                    .as_deref()
                    .map(|t| format!(" (`{t}`)"))
                    .unwrap_or_default();
                format!("the agent stopped with `{}`{reason}", r.subtype)
            }
        });
        let final_message = match (&r.text, status) {
            (Some(t), Status::Completed) if !t.trim().is_empty() => t.clone(),
            _ => self.last_text.clone().unwrap_or_default(),
        };
        let mut usage = self.settled_usage;
        usage.add(&r.usage.unwrap_or(r.estimate.usage));
        let (cost_usd, cost_source) = match self.reported() {
            Some(c) => (c, CostSource::Reported),
            None => {
                let (est, _) = r.estimate.total(p);
                (
                    self.settled_cost + r.cost.unwrap_or(Usd::ZERO) + est.unwrap_or(Usd::ZERO),
                    CostSource::Unknown,
                )
            }
        };
        let mut warnings = Vec::new();
        if r.denials > 0 {
            warnings.push(format!(
                "the agent was denied {} tool call(s) (`permission_denials`); allow the tools it needs with `--permission-mode` or `--allowedTools` in `[backends.claude_code] args`",
                r.denials
            ));
        }
        Verdict {
            status,
            error,
            hint: None,
            final_message,
            cost_usd,
            cost_source,
            usage,
            model,
            warnings,
            self_reported: true,
            unexplained: false,
        }
    }
}
