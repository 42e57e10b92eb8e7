//! Pi coding agent (`pi --print --mode json`), both wire generations.
//!
//! Pi exits 0 in json mode even when the run failed, so the stream decides: the run is over at
//! `agent_settled` (current) or at a final `agent_end` that no retry or compaction continues
//! (legacy), and it succeeded when the **last** assistant `message_end` stopped with `stop`.
//! Earlier errors that a retry or compaction covered are bookkeeping. Cost is per assistant
//! message: the sum of `usage.cost.total` over assistant `message_end` events (`turn_end` and
//! `agent_end` repeat the same messages and are not added); `message_update.usage` is the
//! running snapshot of the message in flight and feeds live enforcement only.

use issueloop_config::Usd;
use serde::Deserialize;

use super::{
    Ctx, Event, FINAL_MESSAGE_LIMIT, TypeOnly, Verdict, append_bounded, bounded, parse, sane_cost,
    tokens,
};
use crate::outcome::{CostSource, CostUpdate, Status, Usage};

#[derive(Deserialize)]
struct RoleOnly {
    message: Option<Role>,
}

#[derive(Deserialize)]
struct Role {
    role: Option<String>,
}

#[derive(Deserialize)]
struct MessageEnd {
    message: Option<PiMessage>,
}

#[derive(Deserialize)]
struct PiMessage {
    content: Option<Vec<PiBlock>>,
    model: Option<String>,
    usage: Option<PiUsage>,
    #[serde(rename = "stopReason")]
    stop_reason: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct PiBlock {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct PiUsage {
    input: Option<f64>,
    output: Option<f64>,
    #[serde(rename = "cacheRead")]
    cache_read: Option<f64>,
    #[serde(rename = "cacheWrite")]
    cache_write: Option<f64>,
    cost: Option<PiCost>,
}

impl PiUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: tokens(self.input),
            output_tokens: tokens(self.output),
            cache_read_tokens: tokens(self.cache_read),
            cache_write_tokens: tokens(self.cache_write),
        }
    }
}

#[derive(Deserialize)]
struct PiCost {
    total: Option<f64>,
}

/// `message_update`: current builds carry `usage`, legacy ones the whole partial `message`.
#[derive(Deserialize)]
struct Update {
    usage: Option<PiUsage>,
    message: Option<UsageOnly>,
}

#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<PiUsage>,
}

#[derive(Deserialize)]
struct AgentEnd {
    #[serde(rename = "willRetry")]
    will_retry: Option<bool>,
}

#[derive(Deserialize)]
struct CompactionEnd {
    #[serde(rename = "willRetry")]
    will_retry: Option<bool>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct RetryEnd {
    success: Option<bool>,
    #[serde(rename = "finalError")]
    final_error: Option<String>,
}

struct LastAssistant {
    stop_reason: String,
    error: Option<String>,
    text: String,
}

#[derive(Default)]
pub(crate) struct State {
    cost: Usd,
    /// `None` until the first assistant message.
    source: Option<CostSource>,
    usage: Usage,
    /// Dollars of the assistant message in flight (`message_update`).
    partial: Option<Usd>,
    last: Option<LastAssistant>,
    final_text: Option<String>,
    settled: bool,
    /// A final `agent_end` that nothing continued (the legacy terminal).
    ended: bool,
    /// A failure after the last assistant message (retries exhausted, compaction failed).
    late_error: Option<String>,
    model: Option<String>,
}

impl State {
    pub fn on_json(&mut self, text: &str, ctx: &mut Ctx<'_>) -> Event {
        let kind = match parse::<TypeOnly>(text) {
            Ok(TypeOnly { kind: Some(k) }) => k,
            Ok(_) => return Event::Malformed("an event without `type`".into()),
            Err(e) => return Event::Malformed(e),
        };
        match kind.as_str() {
            "message_end" => {
                let role = match parse::<RoleOnly>(text) {
                    Ok(r) => r.message.and_then(|m| m.role),
                    Err(e) => return Event::Malformed(e),
                };
                if role.as_deref() != Some("assistant") {
                    return Event::Handled;
                }
                match parse::<MessageEnd>(text) {
                    Ok(MessageEnd { message: Some(m) }) => {
                        self.assistant(m, ctx);
                        Event::Handled
                    }
                    Ok(_) => Event::Handled,
                    Err(e) => Event::Malformed(e),
                }
            }
            "message_update" => {
                if let Ok(u) = parse::<Update>(text) {
                    let usage = u.usage.or_else(|| u.message.and_then(|m| m.usage));
                    if let Some(total) = usage.and_then(|u| u.cost).and_then(|c| c.total)
                        && total.is_finite()
                        && total >= 0.0
                    {
                        self.partial = Some(Usd::from_dollars_up(total));
                    }
                }
                Event::Handled
            }
            "agent_start" | "turn_start" | "auto_retry_start" => {
                self.ended = false;
                self.settled = false;
                Event::Handled
            }
            "agent_end" => match parse::<AgentEnd>(text) {
                Ok(a) => {
                    self.ended = !a.will_retry.unwrap_or(false);
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "agent_settled" => {
                self.settled = true;
                Event::Handled
            }
            "compaction_end" | "auto_compaction_end" => match parse::<CompactionEnd>(text) {
                Ok(c) => {
                    if c.will_retry.unwrap_or(false) {
                        self.ended = false;
                    } else if let Some(e) = c.error_message {
                        self.late_error =
                            Some(format!("context compaction failed: {}", bounded(&e, 1024)));
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "auto_retry_end" => match parse::<RetryEnd>(text) {
                Ok(r) => {
                    if r.success == Some(false) {
                        let why = r.final_error.unwrap_or_else(|| "no detail".into());
                        self.late_error =
                            Some(format!("retries exhausted: {}", bounded(&why, 1024)));
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "session"
            | "turn_end"
            | "message_start"
            | "tool_execution_start"
            | "tool_execution_update"
            | "tool_execution_end"
            | "compaction_start"
            | "auto_compaction_start"
            | "queue_update"
            | "entry_appended"
            | "session_info_changed"
            | "thinking_level_changed"
            | "bash_execution_update"
            | "extension_error"
            | "response"
            | "summarization_retry_start"
            | "summarization_retry_end" => Event::Handled,
            _ => Event::Unknown(kind),
        }
    }

    fn assistant(&mut self, m: PiMessage, ctx: &mut Ctx<'_>) {
        self.partial = None;
        self.ended = false;
        self.late_error = None;
        if m.model.is_some() {
            self.model.clone_from(&m.model);
        }
        let (cost, source) = match &m.usage {
            Some(u) => {
                let usage = u.usage();
                self.usage.add(&usage);
                match sane_cost(u.cost.as_ref().and_then(|c| c.total), ctx) {
                    Some(c) => (c, CostSource::Reported),
                    None => match ctx.pricing.price(&usage, m.model.as_deref()) {
                        Some(c) => (c, CostSource::Priced),
                        None => (Usd::ZERO, CostSource::Unknown),
                    },
                }
            }
            None => (Usd::ZERO, CostSource::Unknown),
        };
        self.cost += cost;
        self.source = Some(self.source.map_or(source, |s| s.weakest(source)));
        let mut text = String::new();
        for block in m.content.unwrap_or_default() {
            if block.kind.as_deref() == Some("text")
                && let Some(t) = block.text
            {
                append_bounded(&mut text, &t, FINAL_MESSAGE_LIMIT);
            }
        }
        let stop_reason = m.stop_reason.unwrap_or_else(|| "stop".into());
        if matches!(stop_reason.as_str(), "stop" | "length") && !text.trim().is_empty() {
            self.final_text = Some(text.clone());
        }
        self.last = Some(LastAssistant {
            stop_reason,
            error: m.error_message.map(|e| bounded(&e, 2048)),
            text,
        });
    }

    pub fn running_cost(&self) -> Option<CostUpdate> {
        let source = match (self.source, self.partial) {
            (None, None) => return None,
            (Some(s), _) => s,
            (None, Some(_)) => CostSource::Reported,
        };
        Some(CostUpdate {
            cost_usd: self.cost + self.partial.unwrap_or(Usd::ZERO),
            source,
        })
    }

    pub fn verdict(&self) -> Verdict {
        let terminal = self.settled || self.ended;
        let unexplained = !terminal && self.last.as_ref().is_none_or(|l| l.stop_reason != "error");
        let (status, error) = if !terminal {
            let error = match &self.last {
                Some(l) if l.stop_reason == "error" => l
                    .error
                    .clone()
                    .unwrap_or_else(|| "the model call failed (`stopReason: error`)".into()),
                _ => "the stream ended before `agent_settled` or a final `agent_end` (truncated, or the agent was killed)".into(),
            };
            (Status::Failed, Some(error))
        } else if let Some(e) = &self.late_error {
            (Status::Failed, Some(e.clone()))
        } else {
            match &self.last {
                None => (
                    Status::Failed,
                    Some("the stream has no assistant message".into()),
                ),
                Some(l) => match l.stop_reason.as_str() {
                    "stop" => (Status::Completed, None),
                    "error" => (
                        Status::Failed,
                        Some(l.error.clone().unwrap_or_else(|| {
                            "the model call failed (`stopReason: error`)".into()
                        })),
                    ),
                    "aborted" => (
                        Status::Failed,
                        Some("the agent aborted (`stopReason: aborted`)".into()),
                    ),
                    "length" => (
                        Status::Failed,
                        Some("the answer was cut off at the output length limit (`stopReason: length`)".into()),
                    ),
                    other => (
                        Status::Failed,
                        Some(format!(
                            "the last assistant message ended with `stopReason: {other}`, not a final answer"
                        )),
                    ),
                },
            }
        };
        let final_message = self
            .final_text
            .clone()
            .or_else(|| self.last.as_ref().map(|l| l.text.clone()))
            .unwrap_or_default();
        let mut warnings = Vec::new();
        let cost_source = self.source.unwrap_or(CostSource::Unknown);
        if cost_source == CostSource::Reported && self.cost.is_zero() && !self.usage.is_zero() {
            warnings.push(format!(
                "pi reported $0 for {} tokens{}; if the model is not free, give it a price in pi's model settings",
                self.usage.total(),
                self.model
                    .as_deref()
                    .map(|m| format!(" of `{m}`"))
                    .unwrap_or_default()
            ));
        }
        Verdict {
            status,
            error,
            hint: None,
            final_message,
            cost_usd: self.cost + self.partial.unwrap_or(Usd::ZERO),
            cost_source,
            usage: self.usage,
            model: self.model.clone(),
            warnings,
            self_reported: true,
            unexplained,
        }
    }
}
