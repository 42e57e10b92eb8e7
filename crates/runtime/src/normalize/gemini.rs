//! Gemini CLI (`gemini -o stream-json`, also the single document of `-o json`).
//!
//! success ⇔ `result.status == "success"` and no `error` event with `severity: "error"` (turn
//! limits and invalid streams emit one and may still end `success`); `severity: "warning"` is
//! informational. Gemini reports tokens but no dollars: the `result` statistics are priced per
//! model from the model table (`input_tokens` includes `cached`; `input` is the uncached part).

use std::collections::BTreeMap;

use issueloop_config::Usd;
use serde::Deserialize;

use super::{Ctx, Event, FINAL_MESSAGE_LIMIT, Verdict, append_bounded, bounded, parse, tokens};
use crate::outcome::{CostSource, CostUpdate, Status, Usage};
use crate::pricing::Pricing;

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Init {
    model: Option<String>,
}

#[derive(Deserialize)]
struct MessageEvent {
    role: Option<String>,
    content: Option<String>,
    delta: Option<bool>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    severity: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

impl ErrorBody {
    fn text(&self) -> String {
        match (&self.kind, &self.message) {
            (Some(k), Some(m)) => format!("{m} (`{k}`)"),
            (None, Some(m)) => m.clone(),
            (Some(k), None) => format!("`{k}`"),
            (None, None) => "Gemini reported an error without detail".into(),
        }
    }
}

#[derive(Deserialize)]
struct ResultEvent {
    status: Option<String>,
    error: Option<ErrorBody>,
    stats: Option<StreamStats>,
}

#[derive(Deserialize)]
struct StreamStats {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cached: Option<f64>,
    input: Option<f64>,
    models: Option<BTreeMap<String, StreamTokens>>,
}

#[derive(Deserialize)]
struct StreamTokens {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cached: Option<f64>,
    input: Option<f64>,
}

fn stream_usage(
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cached: Option<f64>,
    input: Option<f64>,
) -> Usage {
    let cached = tokens(cached);
    let uncached = match input {
        Some(_) => tokens(input),
        None => tokens(input_tokens).saturating_sub(cached),
    };
    Usage {
        input_tokens: uncached,
        output_tokens: tokens(output_tokens),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    }
}

/// The single document of `-o json`.
#[derive(Deserialize)]
struct JsonDoc {
    response: Option<String>,
    stats: Option<JsonStats>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct JsonStats {
    models: Option<BTreeMap<String, JsonModel>>,
}

#[derive(Deserialize)]
struct JsonModel {
    tokens: Option<JsonTokens>,
}

#[derive(Deserialize)]
struct JsonTokens {
    prompt: Option<f64>,
    candidates: Option<f64>,
    cached: Option<f64>,
    thoughts: Option<f64>,
    tool: Option<f64>,
}

impl JsonTokens {
    fn usage(&self) -> Usage {
        let cached = tokens(self.cached);
        Usage {
            // `prompt` includes the cached part; tool-use prompts are billed as input.
            input_tokens: tokens(self.prompt)
                .saturating_sub(cached)
                .saturating_add(tokens(self.tool)),
            // Thinking tokens are billed as output.
            output_tokens: tokens(self.candidates).saturating_add(tokens(self.thoughts)),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

/// What the run's final statistics amount to.
struct Priced {
    usage: Usage,
    /// `None` when a model has no price.
    cost: Option<Usd>,
    model: Option<String>,
}

fn price_models(per_model: Vec<(String, Usage)>, p: &Pricing) -> Priced {
    let mut usage = Usage::default();
    let mut cost = Some(Usd::ZERO);
    for (model, u) in &per_model {
        usage.add(u);
        cost = match (cost, p.price(u, Some(model))) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    // The model that did most of the work names the run.
    let model = per_model
        .iter()
        .max_by_key(|(_, u)| u.total())
        .map(|(m, _)| m.clone());
    Priced { usage, cost, model }
}

struct Finished {
    success: bool,
    error: Option<String>,
    priced: Option<Priced>,
}

#[derive(Default)]
pub(crate) struct State {
    init_model: Option<String>,
    text: String,
    /// The assistant's text before the last tool call, if none came after it.
    earlier_text: String,
    severe_error: Option<String>,
    warnings: Vec<String>,
    finished: Option<Finished>,
}

impl State {
    pub fn on_json(&mut self, text: &str, ctx: &mut Ctx<'_>) -> Event {
        let head: Head = match parse(text) {
            Ok(h) => h,
            Err(e) => return Event::Malformed(e),
        };
        let Some(kind) = head.kind else {
            // `-o json` prints one document without `type`.
            return match parse::<JsonDoc>(text) {
                Ok(doc) => {
                    self.json_doc(doc, ctx.pricing);
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            };
        };
        match kind.as_str() {
            "init" => {
                if let Ok(Init { model: Some(m) }) = parse::<Init>(text) {
                    self.init_model = Some(m);
                }
                Event::Handled
            }
            "message" => match parse::<MessageEvent>(text) {
                Ok(m) => {
                    if m.role.as_deref() == Some("assistant")
                        && let Some(content) = m.content
                    {
                        if !m.delta.unwrap_or(false) {
                            self.text.clear();
                        }
                        append_bounded(&mut self.text, &content, FINAL_MESSAGE_LIMIT);
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "tool_use" => {
                if !self.text.trim().is_empty() {
                    self.earlier_text = std::mem::take(&mut self.text);
                }
                Event::Handled
            }
            "tool_result" => Event::Handled,
            "error" => match parse::<ErrorEvent>(text) {
                Ok(e) => {
                    let message = bounded(
                        e.message.as_deref().unwrap_or("an error without detail"),
                        1024,
                    );
                    if e.severity.as_deref() == Some("warning") {
                        if self.warnings.len() < 8 {
                            self.warnings.push(format!("gemini warning: {message}"));
                        }
                    } else {
                        self.severe_error = Some(message);
                    }
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            "result" => match parse::<ResultEvent>(text) {
                Ok(r) => {
                    self.result(r, ctx.pricing);
                    Event::Handled
                }
                Err(e) => Event::Malformed(e),
            },
            _ => Event::Unknown(kind),
        }
    }

    fn result(&mut self, r: ResultEvent, p: &Pricing) {
        let priced = r.stats.map(|s| {
            let per_model: Vec<(String, Usage)> = s
                .models
                .unwrap_or_default()
                .into_iter()
                .map(|(m, t)| {
                    (
                        m,
                        stream_usage(t.input_tokens, t.output_tokens, t.cached, t.input),
                    )
                })
                .collect();
            if per_model.is_empty() {
                let usage = stream_usage(s.input_tokens, s.output_tokens, s.cached, s.input);
                Priced {
                    cost: p.price(&usage, self.init_model.as_deref()),
                    usage,
                    model: self.init_model.clone(),
                }
            } else {
                price_models(per_model, p)
            }
        });
        let success = r.status.as_deref() == Some("success");
        self.finished = Some(Finished {
            success,
            error: (!success).then(|| {
                r.error.map(|e| e.text()).unwrap_or_else(|| {
                    format!(
                        "the run ended with status `{}`",
                        r.status.as_deref().unwrap_or("(none)")
                    )
                })
            }),
            priced,
        });
    }

    fn json_doc(&mut self, doc: JsonDoc, p: &Pricing) {
        if let Some(response) = &doc.response {
            self.text.clear();
            append_bounded(&mut self.text, response, FINAL_MESSAGE_LIMIT);
        }
        let priced = doc.stats.map(|s| {
            let per_model = s
                .models
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(m, t)| Some((m, t.tokens?.usage())))
                .collect();
            price_models(per_model, p)
        });
        let success = doc.error.is_none() && doc.response.is_some();
        self.finished = Some(Finished {
            success,
            error: (!success).then(|| {
                doc.error
                    .map(|e| e.text())
                    .unwrap_or_else(|| "the JSON output has neither `response` nor `error`".into())
            }),
            priced,
        });
    }

    pub fn running_cost(&self, _p: &Pricing) -> Option<CostUpdate> {
        let cost_usd = self.finished.as_ref()?.priced.as_ref()?.cost?;
        Some(CostUpdate {
            cost_usd,
            source: CostSource::Priced,
        })
    }

    pub fn verdict(&self, p: &Pricing) -> Verdict {
        let final_message = if self.text.trim().is_empty() {
            self.earlier_text.clone()
        } else {
            self.text.clone()
        };
        let Some(f) = &self.finished else {
            return Verdict {
                final_message,
                model: self.init_model.clone().or_else(|| p.model.clone()),
                warnings: self.warnings.clone(),
                unexplained: self.severe_error.is_none(),
                ..Verdict::failed(match &self.severe_error {
                    Some(e) => format!("the stream has no `result` event; last error: {e}"),
                    None => "the stream has no `result` event (truncated, or the agent was killed)"
                        .into(),
                })
            };
        };
        let (status, error) = match (f.success, &self.severe_error) {
            (true, None) => (Status::Completed, None),
            (true, Some(e)) => (Status::Failed, Some(e.clone())),
            (false, _) => (Status::Failed, f.error.clone()),
        };
        let (cost_usd, cost_source, usage, model) = match &f.priced {
            Some(pr) => (
                pr.cost.unwrap_or(Usd::ZERO),
                if pr.cost.is_some() {
                    CostSource::Priced
                } else {
                    CostSource::Unknown
                },
                pr.usage,
                pr.model.clone(),
            ),
            None => (Usd::ZERO, CostSource::Unknown, Usage::default(), None),
        };
        let mut warnings = self.warnings.clone();
        if cost_source == CostSource::Unknown && !usage.is_zero() {
            warnings.push(format!(
                "model `{}` has no price in the model table; the run counts as its whole budget",
                model
                    .as_deref()
                    .or(self.init_model.as_deref())
                    .unwrap_or("(unnamed)")
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
            model: model
                .or_else(|| self.init_model.clone())
                .or_else(|| p.model.clone()),
            warnings,
            self_reported: true,
            unexplained: false,
        }
    }
}
