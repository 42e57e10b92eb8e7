//! Codex CLI (`codex exec --json`).
//!
//! success ⇔ the last turn event is `turn.completed` (and the exit code is 0); `turn.failed` is
//! authoritative for failure; top-level `error` lines alone are not terminal (they are also
//! "Reconnecting… N/5" retry notices) and items of type `error` are warnings. Codex reports no
//! dollars: `turn.completed.usage` is the thread's cumulative total, priced from the model table
//! with the configured model. A turn that started and never reported usage spent an unknown
//! amount, so the cost is then `unknown`.

use issueloop_config::Usd;
use serde::Deserialize;

use super::{Ctx, Event, FINAL_MESSAGE_LIMIT, TypeOnly, Verdict, bounded, parse, tokens};
use crate::outcome::{CostSource, CostUpdate, Status, Usage};
use crate::pricing::Pricing;

#[derive(Deserialize)]
struct TurnCompleted {
    usage: Option<CodexUsage>,
}

#[derive(Deserialize)]
struct CodexUsage {
    input_tokens: Option<f64>,
    cached_input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

impl CodexUsage {
    fn usage(&self) -> Usage {
        let input = tokens(self.input_tokens);
        let cached = tokens(self.cached_input_tokens);
        Usage {
            // `cached_input_tokens` is a subset of `input_tokens`.
            input_tokens: input.saturating_sub(cached),
            output_tokens: tokens(self.output_tokens),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
struct TurnFailed {
    error: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    message: Option<String>,
}

#[derive(Deserialize)]
struct ItemEvent {
    item: Option<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    message: Option<String>,
    phase: Option<String>,
}

enum Turn {
    Completed,
    Failed(String),
}

#[derive(Default)]
pub(crate) struct State {
    last_turn: Option<Turn>,
    /// A `turn.started` without its `turn.completed`/`turn.failed` yet.
    turn_open: bool,
    /// A turn ended without reporting usage (`turn.failed`).
    unreported_turn: bool,
    usage: Option<Usage>,
    last_error: Option<String>,
    final_message: Option<String>,
    final_is_commentary: bool,
    item_warnings: Vec<String>,
}

impl State {
    pub fn on_json(&mut self, text: &str, _ctx: &mut Ctx<'_>) -> Event {
        let kind = match parse::<TypeOnly>(text) {
            Ok(TypeOnly { kind: Some(k) }) => k,
            Ok(_) => return Event::Malformed("an event without `type`".into()),
            Err(e) => return Event::Malformed(e),
        };
        match kind.as_str() {
            "thread.started" | "item.plan.delta" | "request_user_input" => Event::Handled,
            "turn.started" => {
                self.turn_open = true;
                Event::Handled
            }
            "turn.completed" => match parse::<TurnCompleted>(text) {
                Ok(t) => {
                    self.turn_open = false;
                    self.last_turn = Some(Turn::Completed);
                    match t.usage {
                        Some(u) => self.usage = Some(u.usage()),
                        None => self.unreported_turn = true,
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "turn.failed" => match parse::<TurnFailed>(text) {
                Ok(t) => {
                    self.turn_open = false;
                    self.unreported_turn = true;
                    let message = t
                        .error
                        .and_then(|e| e.message)
                        .or_else(|| self.last_error.clone())
                        .unwrap_or_else(|| "the turn failed (`turn.failed`)".into());
                    self.last_turn = Some(Turn::Failed(bounded(&message, 2048)));
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "error" => match parse::<Message>(text) {
                Ok(m) => {
                    if let Some(m) = m.message {
                        self.last_error = Some(bounded(&m, 2048));
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "item.started" | "item.updated" | "item.completed" => {
                let event: ItemEvent = match parse(text) {
                    Ok(i) => i,
                    Err(e) => return Event::Malformed(e),
                };
                self.item(&kind, event)
            }
            _ => Event::Unknown(kind),
        }
    }

    fn item(&mut self, kind: &str, event: ItemEvent) -> Event {
        let Some(item) = event.item else {
            return Event::Handled;
        };
        let item_kind = item.kind.unwrap_or_default();
        match item_kind.as_str() {
            "agent_message" if kind == "item.completed" => {
                let commentary = item.phase.as_deref() == Some("commentary");
                // A commentary message never replaces a final answer.
                if let Some(text) = item.text
                    && (!commentary || self.final_message.is_none() || self.final_is_commentary)
                {
                    self.final_message = Some(bounded(&text, FINAL_MESSAGE_LIMIT));
                    self.final_is_commentary = commentary;
                }
                Event::Handled
            }
            "error" if kind == "item.completed" => {
                if let Some(m) = item.message
                    && self.item_warnings.len() < 8
                {
                    self.item_warnings
                        .push(format!("codex warning: {}", bounded(&m, 300)));
                }
                Event::Handled
            }
            "agent_message" | "error" | "reasoning" | "command_execution" | "file_change"
            | "mcp_tool_call" | "web_search" | "todo_list" | "collab_tool_call" | "plan" => {
                Event::Handled
            }
            other => Event::Unknown(format!("{kind} item `{other}`")),
        }
    }

    fn priced(&self, p: &Pricing) -> Option<Usd> {
        self.usage.as_ref().and_then(|u| p.price(u, None))
    }

    pub fn running_cost(&self, p: &Pricing) -> Option<CostUpdate> {
        Some(CostUpdate {
            cost_usd: self.priced(p)?,
            source: CostSource::Priced,
        })
    }

    /// What the stream said last about trouble: its last top-level `error` event, such as
    /// "Reconnecting... waiting for network (…)" while it cannot reach its endpoint.
    pub fn notice(&self) -> Option<String> {
        self.last_error.clone()
    }

    pub fn verdict(&self, p: &Pricing) -> Verdict {
        let mut unexplained = false;
        let (status, error) = match &self.last_turn {
            Some(Turn::Completed) if !self.turn_open => (Status::Completed, None),
            Some(Turn::Failed(m)) if !self.turn_open => (Status::Failed, Some(m.clone())),
            _ => {
                unexplained = self.last_error.is_none();
                let what = if self.turn_open {
                    "a turn started and never finished (no `turn.completed` or `turn.failed`)"
                } else {
                    "the stream has no turn result (`turn.completed` or `turn.failed`)"
                };
                let error = match &self.last_error {
                    Some(e) => format!("{what}; last error: {e}"),
                    None => what.to_owned(),
                };
                (Status::Failed, Some(error))
            }
        };
        let priced = self.priced(p);
        let complete = !self.turn_open && !self.unreported_turn;
        let cost_source = match priced {
            Some(_) if complete => CostSource::Priced,
            _ => CostSource::Unknown,
        };
        let mut warnings = self.item_warnings.clone();
        if self.usage.is_some() && priced.is_none() {
            warnings.push(match &p.model {
                Some(m) => format!(
                    "model `{m}` has no price in the model table; the run counts as its whole budget"
                ),
                None => "Codex reports tokens but no dollars, and no model is configured to price them; set `[backends.codex] model`".into(),
            });
        }
        Verdict {
            status,
            error,
            hint: None,
            final_message: self.final_message.clone().unwrap_or_default(),
            cost_usd: priced.unwrap_or(Usd::ZERO),
            cost_source,
            usage: self.usage.unwrap_or_default(),
            model: p.model.clone(),
            warnings,
            self_reported: true,
            unexplained,
        }
    }
}
