//! The figures of a cost report computed from rollup rows and the catalog:
//! spend lines, "what if" re-pricing, the recommendation and the optimisation
//! suggestions. Pure functions, in exact integer nano-dollars (per mille for
//! shares), tested without a database.

use crate::model::account::UseCase;
use crate::model::catalog::{Catalog, ModelInfo};
use crate::model::chat::TokenUsage;
use crate::model::costs::{CostRecommendation, SpendLine, Suggestion, SuggestionKind, WhatIf};
use crate::model::money::{format_usd, percent, permille, rounded_div};
use crate::model::pricing::{cost_of, Cost};
use crate::model::recommend::{recommend, Observations};
use crate::server::ledger::reports::DailyUsage;
use crate::server::ledger::rollups::{UsageSums, LONG_PROMPT_TOKENS};
use std::collections::BTreeMap;

/// Prompts shorter than this (tokens, on average) are not worth caching: the
/// providers' minimum cacheable prompt.
const MIN_CACHEABLE_PROMPT: i64 = 1024;
/// Fallback attempts from this share of all attempts (per mille) on call for a
/// look at the primary model.
const FALLBACK_ALERT_PERMILLE: i64 = 50;
/// … and at least this many of them.
const FALLBACK_ALERT_MIN: i64 = 3;

/// Sums of rollup rows, on their way to a [`SpendLine`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Everything summed.
    pub sums: UsageSums,
    /// Of the attempts, those by a fallback or degraded model.
    pub fallback_attempts: i64,
}

impl Tally {
    /// Adds a rollup row.
    pub fn add(&mut self, row: &DailyUsage) {
        self.sums.add(&row.sums);
        if row.is_fallback {
            self.fallback_attempts += row.sums.attempts;
        }
    }

    /// The rows summed.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a DailyUsage>) -> Tally {
        let mut tally = Tally::default();
        for row in rows {
            tally.add(row);
        }
        tally
    }

    /// As a spend line.
    pub fn line(&self, key: String, label: String) -> SpendLine {
        SpendLine {
            key,
            label,
            cost_nanos: self.sums.cost_nanos,
            unpriced_attempts: self.sums.unpriced_attempts,
            attempts: self.sums.attempts,
            failed_attempts: self.sums.failed_attempts,
            fallback_attempts: self.fallback_attempts,
            tokens: self.sums.tokens,
            avg_latency_ms: rounded_div(self.sums.latency_ms, self.sums.attempts),
        }
    }

    /// Prompt tokens: input, cache reads and cache writes.
    fn prompt_tokens(&self) -> i64 {
        let tokens = &self.sums.tokens;
        tokens.input_tokens + tokens.cache_read_tokens + tokens.cache_write_tokens
    }

    /// Attempts that produced an answer.
    fn answered(&self) -> i64 {
        self.sums.attempts - self.sums.failed_attempts
    }
}

/// Rollup rows summed by `key`, most expensive first (ties by key), labelled.
pub fn lines_by(
    rows: &[DailyUsage],
    key: impl Fn(&DailyUsage) -> String,
    label: impl Fn(&str) -> String,
) -> Vec<SpendLine> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in rows {
        tallies.entry(key(row)).or_default().add(row);
    }
    let mut lines: Vec<SpendLine> = tallies
        .into_iter()
        .map(|(key, tally)| {
            let label = label(&key);
            tally.line(key, label)
        })
        .collect();
    lines.sort_by(|a, b| {
        b.cost_nanos
            .cmp(&a.cost_nanos)
            .then_with(|| a.key.cmp(&b.key))
    });
    lines
}

/// Nano-dollars for a sentence: to the cent ("$12.35"), exact below a cent.
pub fn usd(nanos: i64) -> String {
    const CENT: i64 = 10_000_000;
    if nanos.abs() < CENT {
        return format_usd(nanos);
    }
    format_usd(rounded_div(nanos, CENT).unwrap_or(0) * CENT)
}

/// Token buckets of priced usage, apart by prompt size class, so re-pricing
/// applies a long-context tier exactly where the attempts were long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buckets {
    /// Attempts with prompts up to [`LONG_PROMPT_TOKENS`].
    pub normal: TokenUsage,
    /// Attempts with longer prompts.
    pub long: TokenUsage,
}

fn token_count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Buckets {
    /// Adds a rollup row's tokens to its class.
    pub fn add(&mut self, row: &DailyUsage) {
        let bucket = if row.long_prompt {
            &mut self.long
        } else {
            &mut self.normal
        };
        let tokens = &row.sums.tokens;
        bucket.input_tokens += token_count(tokens.input_tokens);
        bucket.cache_read_tokens += token_count(tokens.cache_read_tokens);
        bucket.cache_write_tokens += token_count(tokens.cache_write_tokens);
        bucket.output_tokens += token_count(tokens.output_tokens);
        bucket.reasoning_tokens += token_count(tokens.reasoning_tokens);
    }

    /// The same buckets changed alike.
    fn map(&self, change: impl Fn(TokenUsage) -> TokenUsage) -> Buckets {
        Buckets {
            normal: change(self.normal),
            long: change(self.long),
        }
    }

    /// What these tokens cost at `model`'s current list prices; `None` when
    /// it has no per-token price (unknown or self-hosted).
    pub fn price(&self, model: &ModelInfo) -> Option<i64> {
        Some(price_class(model, &self.normal, false)? + price_class(model, &self.long, true)?)
    }

    /// What the long class would have cost at the normal rates.
    fn long_at_normal_rates(&self, model: &ModelInfo) -> Option<i64> {
        price_class(model, &self.long, false)
    }
}

/// Prices one class. The long class's summed prompt always exceeds the tier
/// threshold (each of its attempts did), so `cost_of` applies the tier; the
/// normal class is priced without the tier, whatever its summed size.
fn price_class(model: &ModelInfo, usage: &TokenUsage, long: bool) -> Option<i64> {
    let tiered = model
        .pricing
        .as_ref()
        .is_some_and(|p| p.long_context.is_some());
    let cost = if tiered && !long {
        let mut normal_rates = model.clone();
        if let Some(pricing) = normal_rates.pricing.as_mut() {
            pricing.long_context = None;
        }
        cost_of(Some(&normal_rates), usage)
    } else {
        cost_of(Some(model), usage)
    };
    match cost {
        Cost::Priced { nanos, .. } => Some(nanos),
        Cost::SelfHosted | Cost::Unpriced => None,
    }
}

/// The part of a period's usage that can be compared across models: the
/// rollup rows without unpriced attempts, their cost and their tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparable {
    /// Actual cost of these rows, nano-dollars.
    pub cost_nanos: i64,
    /// All their tokens.
    pub buckets: Buckets,
    /// Their tokens and actual cost by recorded model.
    pub by_model: BTreeMap<String, (Buckets, i64)>,
}

impl Comparable {
    /// The comparable part of `rows`.
    pub fn of(rows: &[DailyUsage]) -> Comparable {
        let mut comparable = Comparable::default();
        for row in rows.iter().filter(|r| r.sums.unpriced_attempts == 0) {
            comparable.cost_nanos += row.sums.cost_nanos;
            comparable.buckets.add(row);
            let (buckets, cost) = comparable.by_model.entry(row.model.clone()).or_default();
            buckets.add(row);
            *cost += row.sums.cost_nanos;
        }
        comparable
    }

    /// Every recorded model the catalog knows, with its tokens and actual cost.
    fn models<'c>(
        &'c self,
        catalog: &'c Catalog,
    ) -> impl Iterator<Item = (&'c ModelInfo, &'c Buckets, i64)> + 'c {
        self.by_model
            .iter()
            .filter_map(|(id, (buckets, cost))| Some((catalog.model(id)?, buckets, *cost)))
    }

    /// Σ over recorded models of `figure(model, tokens)` (models without a
    /// figure, e.g. self-hosted ones, add nothing).
    fn sum_over_models(
        &self,
        catalog: &Catalog,
        figure: impl Fn(&ModelInfo, &Buckets) -> Option<i64>,
    ) -> i64 {
        self.models(catalog)
            .filter_map(|(model, buckets, _)| figure(model, buckets))
            .sum()
    }
}

/// The comparable usage re-priced at every catalog model's prices but the
/// current model's, most expensive first (unpriced last).
pub fn what_if(catalog: &Catalog, comparable: &Comparable, current_model: &str) -> Vec<WhatIf> {
    let mut list: Vec<WhatIf> = catalog
        .models
        .iter()
        .filter(|m| m.id != current_model)
        .map(|model| {
            let cost_nanos = comparable.buckets.price(model);
            WhatIf {
                model: model.id.clone(),
                name: model.name.clone(),
                provider: model.provider,
                cost_nanos,
                difference_permille: cost_nanos
                    .and_then(|cost| permille(cost - comparable.cost_nanos, comparable.cost_nanos)),
            }
        })
        .collect();
    list.sort_by_key(|line| std::cmp::Reverse(line.cost_nanos));
    list
}

/// The model recommended for the use case (within the current provider
/// first, then among all), when it would have cost less than the actual spend;
/// `observed` is what the project measured (the recommendation takes it into
/// account when there is enough, and says so).
pub fn recommendation(
    catalog: &Catalog,
    use_case: UseCase,
    current: &ModelInfo,
    what_if: &[WhatIf],
    actual_nanos: i64,
    observed: &Observations,
) -> Option<CostRecommendation> {
    [Some(current.provider), None].into_iter().find_map(|provider| {
        let pick = recommend(catalog, use_case, provider, observed)?;
        let alternative = what_if.iter().find(|w| w.model == pick.model)?;
        let cost = alternative.cost_nanos.filter(|&cost| cost < actual_nanos)?;
        let saving = permille(actual_nanos - cost, actual_nanos);
        Some(CostRecommendation {
            model: alternative.model.clone(),
            name: alternative.name.clone(),
            reason: format!(
                "For your use case ({}), {} would have cost {} instead of {} in this period ({} less). {}.",
                use_case.label().to_lowercase(),
                alternative.name,
                usd(cost),
                usd(actual_nanos),
                saving.map(percent).unwrap_or_default(),
                pick.reason
            ),
            saving_permille: saving,
        })
    })
}

/// What a suggestion is computed from.
pub struct Evidence<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The period's rollup rows.
    pub rows: &'a [DailyUsage],
    /// Conversations with usage in the period.
    pub conversations: i64,
    /// The comparable part.
    pub comparable: &'a Comparable,
    /// The what-if figures.
    pub what_if: &'a [WhatIf],
}

/// Optimisation suggestions from the data, each with its figures.
pub fn suggestions(evidence: &Evidence) -> Vec<Suggestion> {
    let total = Tally::of(evidence.rows);
    [
        prompt_caching(evidence, &total),
        cheaper_output(evidence),
        long_prompts(evidence),
        check_primary(&total),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Long prompts repeated turn after turn, hardly ever read from a cache.
fn prompt_caching(evidence: &Evidence, total: &Tally) -> Option<Suggestion> {
    let prompt = total.prompt_tokens();
    let answered = total.answered();
    let conversations = evidence.conversations;
    if answered == 0 || conversations == 0 || answered < 2 * conversations {
        return None;
    }
    let average_prompt = prompt / answered;
    let cached = total.sums.tokens.cache_read_tokens;
    if average_prompt < MIN_CACHEABLE_PROMPT || cached * 100 >= prompt {
        return None;
    }
    // Each answer resends the conversation so far: of A answers per
    // conversation, about (A − 1) / A of the input was sent before.
    let repeated = 1000 - permille(conversations, answered)?;
    let cached_share = |usage: TokenUsage| {
        let moved = usage.input_tokens * u64::try_from(repeated).unwrap_or(0) / 1000;
        TokenUsage {
            input_tokens: usage.input_tokens - moved,
            cache_read_tokens: usage.cache_read_tokens + moved,
            ..usage
        }
    };
    let saving = evidence
        .comparable
        .sum_over_models(evidence.catalog, |model, buckets| {
            Some(buckets.price(model)? - buckets.map(cached_share).price(model)?)
        });
    (saving > 0).then(|| Suggestion {
        kind: SuggestionKind::PromptCaching,
        message: format!(
            "Prompts average {average_prompt} tokens and {} of prompt tokens were read from a cache, \
             while a conversation averages {} answers, so earlier turns are sent again with every question. \
             Prompt caching the repeated part (about {}) would have saved up to {} in this period.",
            percent(permille(cached, prompt).unwrap_or(0)),
            one_decimal(answered, conversations),
            percent(repeated),
            usd(saving)
        ),
    })
}

/// `numerator / denominator` with one decimal: 21 / 5 → "4.2".
fn one_decimal(numerator: i64, denominator: i64) -> String {
    let tenths = rounded_div(numerator * 10, denominator).unwrap_or(0);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Output tokens are most of the spend: a model with cheaper output.
fn cheaper_output(evidence: &Evidence) -> Option<Suggestion> {
    let catalog = evidence.catalog;
    let comparable = evidence.comparable;
    let no_output = |usage: TokenUsage| TokenUsage {
        output_tokens: 0,
        reasoning_tokens: 0,
        ..usage
    };
    let all = comparable.sum_over_models(catalog, |model, buckets| buckets.price(model));
    let output = comparable.sum_over_models(catalog, |model, buckets| {
        Some(buckets.price(model)? - buckets.map(no_output).price(model)?)
    });
    if all == 0 || output * 2 <= all {
        return None;
    }
    let (main, _, _) = comparable
        .models(catalog)
        .max_by_key(|(_, _, cost)| *cost)?;
    let output_price = |m: &ModelInfo| m.pricing.as_ref().map(|p| p.output_per_m_tok);
    let main_price = output_price(main)?;
    let cheaper: Vec<(&ModelInfo, i64)> = evidence
        .what_if
        .iter()
        .filter_map(|w| {
            let model = catalog.model(&w.model)?;
            let cost = w.cost_nanos.filter(|&c| c < comparable.cost_nanos)?;
            let cheaper_output = output_price(model).is_some_and(|p| p < main_price);
            (cheaper_output && !model.legacy).then_some((model, cost))
        })
        .collect();
    let (pick, cost) = cheaper
        .iter()
        .filter(|(m, _)| m.provider == main.provider)
        .min_by_key(|(_, cost)| *cost)
        .or_else(|| cheaper.iter().min_by_key(|(_, cost)| *cost))?;
    Some(Suggestion {
        kind: SuggestionKind::CheaperOutput,
        message: format!(
            "Output tokens are {} of the spend ({} of {}). {} bills output at {} instead of {} per 1M: \
             the same usage would have cost {} ({} less).",
            percent(permille(output, all)?),
            usd(output),
            usd(all),
            pick.name,
            output_price(pick)?,
            main_price,
            usd(*cost),
            percent(permille(comparable.cost_nanos - cost, comparable.cost_nanos)?)
        ),
    })
}

/// Prompts over the long-context threshold billed at the higher tier.
fn long_prompts(evidence: &Evidence) -> Option<Suggestion> {
    let extra = evidence
        .comparable
        .sum_over_models(evidence.catalog, |model, buckets| {
            let as_billed = price_class(model, &buckets.long, true)?;
            Some(as_billed - buckets.long_at_normal_rates(model)?)
        });
    let attempts: i64 = evidence
        .rows
        .iter()
        .filter(|r| r.long_prompt)
        .map(|r| r.sums.attempts)
        .sum();
    (extra > 0).then(|| Suggestion {
        kind: SuggestionKind::TrimLongPrompts,
        message: format!(
            "{attempts} attempts sent prompts over {} tokens and were billed at the long-context rates: \
             keeping prompts under that (a shorter history or less retrieved context) would have saved {}.",
            crate::model::catalog::format_tokens(token_count(LONG_PROMPT_TOKENS)),
            usd(extra)
        ),
    })
}

/// Many attempts went to fallback models.
fn check_primary(total: &Tally) -> Option<Suggestion> {
    let attempts = total.sums.attempts;
    let fallback = total.fallback_attempts;
    let share = permille(fallback, attempts)?;
    (fallback >= FALLBACK_ALERT_MIN && share >= FALLBACK_ALERT_PERMILLE).then(|| Suggestion {
        kind: SuggestionKind::CheckPrimary,
        message: format!(
            "{fallback} of {attempts} attempts ({}) went to a fallback or degraded model and {} failed: \
             check the primary model's key, quota and rate limits.",
            percent(share),
            total.sums.failed_attempts
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::costs::TokenTotals;

    fn catalog() -> Catalog {
        serde_json::from_str(include_str!("../../../model/catalog.json")).unwrap()
    }

    const SONNET: &str = "claude-3-5-sonnet-20241022";

    /// A rollup row of `model` with these tokens, priced as the ledger would.
    fn row(model: &str, long: bool, input: i64, cache_read: i64, output: i64) -> DailyUsage {
        let catalog = catalog();
        let info = catalog.model(model);
        let usage = TokenUsage {
            input_tokens: token_count(input),
            cache_read_tokens: token_count(cache_read),
            output_tokens: token_count(output),
            ..TokenUsage::default()
        };
        let cost = info.and_then(|m| price_class(m, &usage, long));
        DailyUsage {
            project_id: "p".into(),
            day: 0,
            provider: info.map_or("claude".into(), |m| m.provider.as_str().to_owned()),
            model: model.into(),
            is_fallback: false,
            long_prompt: long,
            sums: UsageSums {
                attempts: 10,
                failed_attempts: 0,
                unpriced_attempts: if cost.is_some() { 0 } else { 10 },
                tokens: TokenTotals {
                    input_tokens: input,
                    cache_read_tokens: cache_read,
                    output_tokens: output,
                    ..TokenTotals::default()
                },
                cost_nanos: cost.unwrap_or(0),
                latency_ms: 10_000,
            },
        }
    }

    fn kinds(rows: &[DailyUsage], conversations: i64) -> Vec<Suggestion> {
        let catalog = catalog();
        let comparable = Comparable::of(rows);
        let what_if = what_if(&catalog, &comparable, SONNET);
        suggestions(&Evidence {
            catalog: &catalog,
            rows,
            conversations,
            comparable: &comparable,
            what_if: &what_if,
        })
    }

    #[test]
    fn every_long_context_tier_starts_where_the_rollups_split_prompts() {
        for model in &catalog().models {
            if let Some(tier) = model.pricing.as_ref().and_then(|p| p.long_context.as_ref()) {
                assert_eq!(
                    tier.threshold_tokens,
                    token_count(LONG_PROMPT_TOKENS),
                    "{}",
                    model.id
                );
            }
        }
    }

    #[test]
    fn what_if_reprices_each_prompt_class_at_its_own_rates() {
        // 1M input + 100k output in normal prompts, 300k input + 10k output in long ones.
        let rows = [
            row(SONNET, false, 1_000_000, 0, 100_000),
            row(SONNET, true, 300_000, 0, 10_000),
        ];
        let comparable = Comparable::of(&rows);
        // Sonnet: $3 in, $15 out. 1.3M × 3,000 n$/1k… = 3.9 $ + 110k × 15 µ$ = 1.65 $.
        assert_eq!(comparable.cost_nanos, 5_550_000_000);
        let list = what_if(&catalog(), &comparable, SONNET);
        assert!(list.iter().all(|w| w.model != SONNET));
        let pro = list.iter().find(|w| w.model == "gemini-1.5-pro").unwrap();
        // Normal: 1M × $1.25 + 100k × $5 = 1.75 $; long: 300k × $2.50 + 10k × $10 = 0.85 $.
        assert_eq!(pro.cost_nanos, Some(2_600_000_000));
        // (2.60 − 5.55) / 5.55 = −531.5… ‰.
        assert_eq!(pro.difference_permille, Some(-532));
        let flash = list.iter().find(|w| w.model == "gemini-1.5-flash").unwrap();
        // 1M × $0.075 + 100k × $0.30 + 300k × $0.15 + 10k × $0.60 = 0.156 $.
        assert_eq!(flash.cost_nanos, Some(156_000_000));
        let llama = list.iter().find(|w| w.model == "llama-3.1-70b").unwrap();
        assert_eq!((llama.cost_nanos, llama.difference_permille), (None, None));
        assert!(list.windows(2).all(|w| w[0].cost_nanos >= w[1].cost_nanos));
    }

    #[test]
    fn unpriced_usage_is_left_out_of_the_comparison() {
        let rows = [
            row(SONNET, false, 1_000_000, 0, 0),
            row("my-own-model", false, 5_000_000, 0, 0),
        ];
        let comparable = Comparable::of(&rows);
        assert_eq!(comparable.cost_nanos, 3_000_000_000);
        assert_eq!(comparable.buckets.normal.input_tokens, 1_000_000);
        let total = Tally::of(&rows);
        assert_eq!(total.sums.unpriced_attempts, 10);
        assert_eq!(total.sums.cost_nanos, 3_000_000_000);
    }

    #[test]
    fn the_recommendation_names_the_saving_and_only_if_there_is_one() {
        let catalog = catalog();
        let rows = [row(SONNET, false, 1_000_000, 0, 100_000)];
        let comparable = Comparable::of(&rows);
        let list = what_if(&catalog, &comparable, SONNET);
        let sonnet = catalog.model(SONNET).unwrap();
        let rec = recommendation(
            &catalog,
            UseCase::CustomerSupport,
            sonnet,
            &list,
            comparable.cost_nanos,
            &Observations::new(),
        )
        .unwrap();
        // Haiku: 1M × $0.80 + 100k × $4 = 1.20 $ against 4.50 $: 73.3 % less.
        assert_eq!(rec.model, "claude-3-5-haiku-20241022");
        assert_eq!(rec.saving_permille, Some(733));
        assert!(
            rec.reason.starts_with(
                "For your use case (customer support), Claude 3.5 Haiku would have cost $1.20 instead of $4.50 in this period (73.3% less). Claude 3.5 Haiku: "
            ),
            "{}",
            rec.reason
        );
        let haiku = catalog.model("claude-3-5-haiku-20241022").unwrap();
        let cheap = [row(
            "claude-3-5-haiku-20241022",
            false,
            1_000_000,
            0,
            100_000,
        )];
        let comparable = Comparable::of(&cheap);
        let list = what_if(&catalog, &comparable, &haiku.id);
        // Haiku itself is the pick within Claude; across providers Gemini 1.5 Flash saves more.
        let rec = recommendation(
            &catalog,
            UseCase::CustomerSupport,
            haiku,
            &list,
            comparable.cost_nanos,
            &Observations::new(),
        )
        .unwrap();
        assert_eq!(rec.model, "gemini-1.5-flash");
        assert_eq!(
            recommendation(
                &catalog,
                UseCase::CustomerSupport,
                haiku,
                &list,
                0,
                &Observations::new()
            ),
            None
        );
    }

    #[test]
    fn long_uncached_repeated_prompts_suggest_prompt_caching_with_the_saving() {
        // 40 answers in 10 conversations, 5,000-token prompts, nothing cached.
        let mut rows = vec![row(SONNET, false, 200_000, 0, 4_000)];
        rows[0].sums.attempts = 40;
        let found = kinds(&rows, 10);
        let caching = found
            .iter()
            .find(|s| s.kind.as_str() == "promptCaching")
            .unwrap();
        // 75 % repeated: 150k tokens at $0.30 instead of $3.00 = $0.405 saved.
        assert_eq!(
            caching.message,
            "Prompts average 5000 tokens and 0% of prompt tokens were read from a cache, while a conversation \
             averages 4.0 answers, so earlier turns are sent again with every question. Prompt caching the repeated \
             part (about 75%) would have saved up to $0.41 in this period."
        );
        // One answer per conversation: nothing repeats.
        assert!(kinds(&rows, 40)
            .iter()
            .all(|s| s.kind.as_str() != "promptCaching"));
        // Already cached: nothing to suggest.
        let cached = [row(SONNET, false, 100_000, 100_000, 4_000)];
        assert!(kinds(&cached, 2)
            .iter()
            .all(|s| s.kind.as_str() != "promptCaching"));
    }

    #[test]
    fn output_heavy_spend_suggests_a_model_with_cheaper_output() {
        // 100k in ($0.30) and 100k out ($1.50): output is 83.3 % of the spend.
        let rows = [row(SONNET, false, 100_000, 0, 100_000)];
        let found = kinds(&rows, 10);
        let output = found
            .iter()
            .find(|s| s.kind.as_str() == "cheaperOutput")
            .unwrap();
        // Haiku: 100k × $0.80 + 100k × $4 = $0.48 against $1.80.
        assert_eq!(
            output.message,
            "Output tokens are 83.3% of the spend ($1.50 of $1.80). Claude 3.5 Haiku bills output at $4.00 \
             instead of $15.00 per 1M: the same usage would have cost $0.48 (73.3% less)."
        );
        let input_heavy = [row(SONNET, false, 1_000_000, 0, 10_000)];
        assert!(kinds(&input_heavy, 10)
            .iter()
            .all(|s| s.kind.as_str() != "cheaperOutput"));
    }

    #[test]
    fn long_prompts_on_a_tiered_model_show_what_the_tier_cost() {
        let rows = [row("gemini-1.5-pro", true, 1_000_000, 0, 0)];
        let found = kinds(&rows, 10);
        let long = found
            .iter()
            .find(|s| s.kind.as_str() == "trimLongPrompts")
            .unwrap();
        // 1M at $2.50 instead of $1.25.
        assert!(
            long.message
                .starts_with("10 attempts sent prompts over 128K tokens"),
            "{}",
            long.message
        );
        assert!(
            long.message.ends_with("would have saved $1.25."),
            "{}",
            long.message
        );
        let untiered = [row(SONNET, true, 1_000_000, 0, 0)];
        assert!(kinds(&untiered, 10)
            .iter()
            .all(|s| s.kind.as_str() != "trimLongPrompts"));
    }

    #[test]
    fn many_fallback_attempts_suggest_checking_the_primary() {
        let mut fallback = row("gpt-4o-mini", false, 1000, 0, 100);
        fallback.is_fallback = true;
        fallback.sums.attempts = 6;
        let mut primary = row(SONNET, false, 1000, 0, 100);
        primary.sums.attempts = 94;
        primary.sums.failed_attempts = 6;
        let found = kinds(&[primary.clone(), fallback.clone()], 50);
        let check = found
            .iter()
            .find(|s| s.kind.as_str() == "checkPrimary")
            .unwrap();
        assert_eq!(
            check.message,
            "6 of 100 attempts (6%) went to a fallback or degraded model and 6 failed: check the primary \
             model's key, quota and rate limits."
        );
        primary.sums.attempts = 200;
        assert!(kinds(&[primary, fallback], 50)
            .iter()
            .all(|s| s.kind.as_str() != "checkPrimary"));
    }

    #[test]
    fn amounts_in_sentences_round_to_the_cent_half_away_from_zero() {
        assert_eq!(usd(127_454_999_999), "$127.45");
        assert_eq!(usd(127_455_000_000), "$127.46");
        assert_eq!(usd(3_456_000), "$0.003456");
    }
}
