//! What an answer costs, exactly: token buckets times the catalog's prices, in
//! integer nano-dollars. Cache reads and writes have their own rates, a long
//! prompt past a model's threshold moves the whole request to the higher tier,
//! reasoning tokens are output. A model without a known price is `Unpriced`,
//! never $0; self-hosted models cost nothing per token.

use crate::model::catalog::{ModelInfo, Pricing};
use crate::model::chat::TokenUsage;
use crate::model::money::PricePerMTok;
use serde::{Deserialize, Serialize};

/// Tokens per price unit: catalog prices are per one million tokens.
const TOKENS_PER_PRICE_UNIT: i128 = 1_000_000;

/// The cost of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cost {
    /// A known price: the amount and which price list it came from.
    Priced {
        /// Nano-dollars, rounded half up once per attempt.
        nanos: i64,
        /// `<model id>@<effective date>`: the price version stored with the usage.
        price_version: String,
    },
    /// A self-hosted model: no per-token price.
    SelfHosted,
    /// No price is known for the model: shown as "unpriced", never as $0.
    Unpriced,
}

impl Cost {
    /// The amount to add to totals (self-hosted is 0, unpriced has none).
    pub fn nanos(&self) -> Option<i64> {
        match self {
            Cost::Priced { nanos, .. } => Some(*nanos),
            Cost::SelfHosted => Some(0),
            Cost::Unpriced => None,
        }
    }

    /// The price version to store with the usage.
    pub fn price_version(&self) -> Option<&str> {
        match self {
            Cost::Priced { price_version, .. } => Some(price_version),
            Cost::SelfHosted => Some("self-hosted"),
            Cost::Unpriced => None,
        }
    }
}

/// Prices `usage` at `model`'s current list prices (`None` for a model the
/// catalog does not know): the "if you had used …" figures.
pub fn cost_of(model: Option<&ModelInfo>, usage: &TokenUsage) -> Cost {
    cost_with(model, usage, |m| m.pricing.as_ref())
}

/// Prices `usage` with the list in force on `day` (`YYYY-MM-DD`): what an
/// attempt made that day cost, whatever the prices are today.
pub fn cost_on(model: Option<&ModelInfo>, usage: &TokenUsage, day: &str) -> Cost {
    cost_with(model, usage, |m| m.pricing_on(day))
}

/// What an admin says a self-hosted model costs from `effective_date`: per hour
/// of answer time (GPU time) and/or per 1M tokens (prompt and output alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InternalRate {
    /// The self-hosted model (catalog id).
    pub model: String,
    /// From when (`YYYY-MM-DD`).
    pub effective_date: String,
    /// Nano-dollars per hour of answer time.
    pub per_hour_nanos: i64,
    /// Nano-dollars per 1M tokens.
    pub per_m_tok_nanos: i64,
}

/// Milliseconds in an hour: the unit of [`InternalRate::per_hour_nanos`].
const MS_PER_HOUR: i128 = 3_600_000;

/// What an attempt made on `day` and lasting `duration_ms` cost: catalog
/// prices in force that day, or for a self-hosted model the internal rate in
/// force that day (none: $0).
pub fn attempt_cost(
    model: Option<&ModelInfo>,
    usage: &TokenUsage,
    day: &str,
    duration_ms: i64,
    rates: &[InternalRate],
) -> Cost {
    let rate = model.filter(|m| m.capabilities.self_hosted).and_then(|m| {
        rates
            .iter()
            .filter(|r| r.model == m.id && r.effective_date.as_str() <= day)
            .max_by(|a, b| a.effective_date.cmp(&b.effective_date))
    });
    let Some(rate) = rate else {
        return cost_on(model, usage, day);
    };
    let tokens = usage.input_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens
        + usage.output_tokens;
    let scaled = i128::from(tokens) * i128::from(rate.per_m_tok_nanos) * MS_PER_HOUR
        + i128::from(duration_ms.max(0)) * i128::from(rate.per_hour_nanos) * TOKENS_PER_PRICE_UNIT;
    let unit = TOKENS_PER_PRICE_UNIT * MS_PER_HOUR;
    Cost::Priced {
        nanos: i64::try_from((scaled + unit / 2) / unit).unwrap_or(i64::MAX),
        price_version: format!("{}@internal-{}", rate.model, rate.effective_date),
    }
}

fn cost_with<'m>(
    model: Option<&'m ModelInfo>,
    usage: &TokenUsage,
    prices: impl Fn(&'m ModelInfo) -> Option<&'m Pricing>,
) -> Cost {
    let Some(model) = model else {
        return Cost::Unpriced;
    };
    match prices(model) {
        Some(pricing) => Cost::Priced {
            nanos: priced_nanos(pricing, usage),
            price_version: format!("{}@{}", model.id, pricing.effective_date),
        },
        None if model.capabilities.self_hosted => Cost::SelfHosted,
        None => Cost::Unpriced,
    }
}

/// The rates that apply to a request of this size.
struct Rates {
    input: PricePerMTok,
    output: PricePerMTok,
    cache_read: PricePerMTok,
    cache_write: PricePerMTok,
}

fn rates_for(pricing: &Pricing, prompt_tokens: u64) -> Rates {
    // A cache without its own price is billed like ordinary input.
    let base = Rates {
        input: pricing.input_per_m_tok,
        output: pricing.output_per_m_tok,
        cache_read: pricing
            .cache_read_per_m_tok
            .unwrap_or(pricing.input_per_m_tok),
        cache_write: pricing
            .cache_write_per_m_tok
            .unwrap_or(pricing.input_per_m_tok),
    };
    match &pricing.long_context {
        Some(tier) if prompt_tokens > tier.threshold_tokens => Rates {
            input: tier.input_per_m_tok,
            output: tier.output_per_m_tok,
            cache_read: tier.cache_read_per_m_tok.unwrap_or(tier.input_per_m_tok),
            cache_write: base.cache_write,
        },
        _ => base,
    }
}

fn priced_nanos(pricing: &Pricing, usage: &TokenUsage) -> i64 {
    let prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
    let rates = rates_for(pricing, prompt);
    let term = |tokens: u64, rate: PricePerMTok| i128::from(tokens) * i128::from(rate.nanos());
    let scaled = term(usage.input_tokens, rates.input)
        + term(usage.cache_read_tokens, rates.cache_read)
        + term(usage.cache_write_tokens, rates.cache_write)
        + term(usage.output_tokens, rates.output);
    let rounded = (scaled + TOKENS_PER_PRICE_UNIT / 2) / TOKENS_PER_PRICE_UNIT;
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Catalog;

    fn catalog() -> Catalog {
        serde_json::from_str(include_str!("catalog.json")).unwrap()
    }

    fn usage(input: u64, cache_read: u64, cache_write: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            output_tokens: output,
            ..TokenUsage::default()
        }
    }

    fn nanos(model: &str, usage: TokenUsage) -> Option<i64> {
        let catalog = catalog();
        cost_of(catalog.model(model), &usage).nanos()
    }

    #[test]
    fn input_and_output_at_list_prices() {
        // Claude 3.5 Sonnet: $3 in, $15 out per 1M tokens.
        // 1,234 in = 3,702,000 n$; 567 out = 8,505,000 n$.
        assert_eq!(
            nanos("claude-3-5-sonnet-20241022", usage(1234, 0, 0, 567)),
            Some(12_207_000)
        );
    }

    #[test]
    fn cache_reads_and_writes_have_their_own_rates() {
        // $0.30 per 1M cache reads, $3.75 per 1M cache writes.
        assert_eq!(
            nanos("claude-3-5-sonnet-20241022", usage(0, 10_000, 2_000, 0)),
            Some(3_000_000 + 7_500_000)
        );
    }

    #[test]
    fn gemini_long_prompts_bill_the_whole_request_at_the_higher_tier() {
        let catalog = catalog();
        let model = catalog
            .models
            .iter()
            .find(|m| m.pricing.as_ref().is_some_and(|p| p.long_context.is_some()))
            .expect("a tiered model");
        let pricing = model.pricing.as_ref().unwrap();
        let tier = pricing.long_context.as_ref().unwrap();
        let at = |input: u64| cost_of(Some(model), &usage(input, 0, 0, 1000)).nanos();
        let expected = |input: u64, rate_in: PricePerMTok, rate_out: PricePerMTok| {
            let scaled = i128::from(input) * i128::from(rate_in.nanos())
                + 1000 * i128::from(rate_out.nanos());
            Some(i64::try_from((scaled + 500_000) / 1_000_000).unwrap())
        };
        let threshold = tier.threshold_tokens;
        assert_eq!(
            at(threshold),
            expected(threshold, pricing.input_per_m_tok, pricing.output_per_m_tok)
        );
        assert_eq!(
            at(threshold + 1),
            expected(threshold + 1, tier.input_per_m_tok, tier.output_per_m_tok)
        );
        assert!(at(threshold + 1) > at(threshold));
    }

    #[test]
    fn fractions_of_a_nano_dollar_round_half_up_once_per_attempt() {
        let pricing = Pricing {
            input_per_m_tok: PricePerMTok(18_750_000), // $0.01875
            output_per_m_tok: PricePerMTok(0),
            cache_read_per_m_tok: None,
            cache_write_per_m_tok: None,
            long_context: None,
            source: String::new(),
            effective_date: "2024-01-01".into(),
        };
        // 1 token = 18.75 n$ → 19; 2 tokens = 37.5 → 38; 4 tokens = 75 exactly.
        assert_eq!(priced_nanos(&pricing, &usage(1, 0, 0, 0)), 19);
        assert_eq!(priced_nanos(&pricing, &usage(2, 0, 0, 0)), 38);
        assert_eq!(priced_nanos(&pricing, &usage(4, 0, 0, 0)), 75);
    }

    #[test]
    fn self_hosted_is_free_and_unknown_models_are_unpriced() {
        let catalog = catalog();
        let llama = catalog
            .models
            .iter()
            .find(|m| m.capabilities.self_hosted)
            .unwrap();
        assert_eq!(
            cost_of(Some(llama), &usage(1000, 0, 0, 1000)),
            Cost::SelfHosted
        );
        assert_eq!(cost_of(None, &usage(1, 0, 0, 1)), Cost::Unpriced);
        assert_eq!(Cost::Unpriced.nanos(), None);
    }

    #[test]
    fn usage_is_priced_with_the_list_in_force_on_its_day() {
        let catalog = catalog();
        let gpt4o = catalog.model("gpt-4o");
        let million_each = usage(1_000_000, 0, 0, 1_000_000);
        // $5 + $15 until 2024-10-01, $2.50 + $10 from 2024-10-02.
        let before = cost_on(gpt4o, &million_each, "2024-10-01");
        let after = cost_on(gpt4o, &million_each, "2024-10-02");
        assert_eq!(before.nanos(), Some(20_000_000_000));
        assert_eq!(before.price_version(), Some("gpt-4o@2024-05-13"));
        assert_eq!(after.nanos(), Some(12_500_000_000));
        assert_eq!(after.price_version(), Some("gpt-4o@2024-10-02"));
        // The current list is what "if you had used" uses.
        assert_eq!(cost_of(gpt4o, &million_each), after);
        // Before the oldest known list, the oldest list applies.
        assert_eq!(cost_on(gpt4o, &million_each, "2023-01-01"), before);
    }

    #[test]
    fn self_hosted_models_cost_their_internal_rate_from_its_date() {
        let catalog = catalog();
        let llama = catalog.model("llama-3.1-70b");
        let tokens = usage(600_000, 0, 0, 400_000);
        let rates = [InternalRate {
            model: "llama-3.1-70b".into(),
            effective_date: "2026-01-01".into(),
            per_hour_nanos: 2_500_000_000, // $2.50 per GPU hour
            per_m_tok_nanos: 100_000_000,  // $0.10 per 1M tokens
        }];
        // 1M tokens = $0.10; 90 s of answer time = $2.50 / 40 = $0.0625.
        let cost = attempt_cost(llama, &tokens, "2026-03-01", 90_000, &rates);
        assert_eq!(cost.nanos(), Some(162_500_000));
        assert_eq!(
            cost.price_version(),
            Some("llama-3.1-70b@internal-2026-01-01")
        );
        // Before the rate applies, and without one, self-hosted is $0.
        assert_eq!(
            attempt_cost(llama, &tokens, "2025-12-31", 90_000, &rates),
            Cost::SelfHosted
        );
        assert_eq!(
            attempt_cost(llama, &tokens, "2026-03-01", 90_000, &[]),
            Cost::SelfHosted
        );
        // A hosted model ignores internal rates.
        let sonnet = catalog.model("claude-3-5-sonnet-20241022");
        assert_eq!(
            attempt_cost(sonnet, &tokens, "2026-03-01", 90_000, &rates),
            cost_on(sonnet, &tokens, "2026-03-01")
        );
    }

    #[test]
    fn the_price_version_names_model_and_effective_date() {
        let catalog = catalog();
        let cost = cost_of(
            catalog.model("claude-3-5-sonnet-latest"),
            &usage(1, 0, 0, 1),
        );
        assert_eq!(
            cost.price_version(),
            Some("claude-3-5-sonnet-20241022@2024-10-22")
        );
    }
}
