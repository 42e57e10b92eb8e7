//! Dollars from tokens for harnesses that report no cost, using the model price table.

use issueloop_config::{ModelTable, Usd, builtin_models};

use crate::outcome::Usage;

/// The price table and the configured model (used when the harness names none).
#[derive(Clone, Debug)]
pub struct Pricing {
    pub models: ModelTable,
    pub model: Option<String>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            models: builtin_models(),
            model: None,
        }
    }
}

impl Pricing {
    pub fn new(models: ModelTable, model: Option<String>) -> Self {
        Pricing { models, model }
    }

    /// The price of `usage` for `model` (the harness-reported one, else the configured one).
    /// No tokens cost nothing whatever the model; an unknown model is `None`. Each kind of token
    /// is priced in micro-dollars rounded up (the safe side), so a price is never below the
    /// exact product by more than four micro-dollars' worth of rounding, and never below it.
    pub fn price(&self, usage: &Usage, model: Option<&str>) -> Option<Usd> {
        if usage.is_zero() {
            return Some(Usd::ZERO);
        }
        let model = model.or(self.model.as_deref())?;
        let p = self.models.lookup(model)?;
        Some(
            Usd::per_million_tokens(usage.input_tokens, p.input)
                + Usd::per_million_tokens(usage.output_tokens, p.output)
                + Usd::per_million_tokens(usage.cache_read_tokens, p.cache_read)
                + Usd::per_million_tokens(usage.cache_write_tokens, p.cache_write),
        )
    }

    /// Whether `model` has a price.
    pub fn knows(&self, model: &str) -> bool {
        self.models.lookup(model).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_each_kind_of_token() {
        let p = Pricing::default();
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cache_read_tokens: 1_000_000,
            cache_write_tokens: 1_000_000,
        };
        // claude-sonnet-4: 3 + 15 + 0.30 + 3.75
        let cost = p.price(&u, Some("claude-sonnet-4-5-20250929")).unwrap();
        assert_eq!(cost, Usd::from_micros(22_050_000), "{cost}");
        // provider prefixes are ignored
        assert!(p.price(&u, Some("openai/gpt-5")).is_some());
    }

    #[test]
    fn unknown_model_is_none_but_no_tokens_cost_nothing() {
        let p = Pricing::default();
        let u = Usage {
            input_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(p.price(&u, Some("test-model")), None);
        assert_eq!(p.price(&u, None), None);
        assert_eq!(
            p.price(&Usage::default(), Some("test-model")),
            Some(Usd::ZERO)
        );
    }

    #[test]
    fn configured_model_is_the_fallback() {
        let p = Pricing::new(builtin_models(), Some("gpt-5".into()));
        let u = Usage {
            output_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(p.price(&u, None), Some(Usd::from_whole_dollars(10)));
        assert_eq!(p.price(&u, Some("o3")), Some(Usd::from_whole_dollars(8)));
    }
}
