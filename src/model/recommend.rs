//! Model recommendations by use case (spec FR-002), computed from catalog data —
//! speed class, prices, context window, capabilities — never from text written
//! per model, then checked against what the project measured (AC-007:
//! "performance data is used for provider recommendations"): with at least
//! [`MIN_OBSERVED`] rated answers on both, a candidate whose satisfaction
//! interval lies wholly above the pick's takes its place, and the reason says
//! what was measured (satisfaction with its interval, p95 latency). Without
//! enough data the catalog decides, and the reason says nothing was measured.
//! The same function marks the recommended model on the settings page and
//! answers the API.

use crate::model::account::UseCase;
use crate::model::catalog::{format_tokens, Catalog, ModelInfo, ProviderId, SpeedClass};
use crate::model::performance::{Percentiles, PerformanceReport, Satisfaction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Fewest rated answers of a model before its measured satisfaction counts.
pub const MIN_OBSERVED: u64 = 20;

/// What a project measured of one model: its satisfaction and its latency.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// Thumbs up share with its 95 % Wilson interval.
    pub satisfaction: Satisfaction,
    /// Answer latency percentiles.
    pub latency: Percentiles,
}

/// A project's measurements by catalog model id (empty: nothing measured).
pub type Observations = HashMap<String, Observed>;

/// The measurements of a performance report, by model.
pub fn observations(report: &PerformanceReport) -> Observations {
    report
        .models
        .iter()
        .map(|m| {
            (
                m.model.clone(),
                Observed {
                    satisfaction: m.satisfaction,
                    latency: m.latency,
                },
            )
        })
        .collect()
}

/// A recommended model and why, in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The model id.
    pub model: String,
    /// One line saying why, with the figures that decided it.
    pub reason: String,
}

/// Cost of a typical chatbot token mix in nano-dollars per 1M tokens: three
/// input tokens (history, knowledge) for every output token.
pub fn blended_cost(model: &ModelInfo) -> i64 {
    model
        .pricing
        .as_ref()
        .map(|p| (3 * p.input_per_m_tok.nanos() + p.output_per_m_tok.nanos()) / 4)
        .unwrap_or(0)
}

fn output_price(model: &ModelInfo) -> i64 {
    model
        .pricing
        .as_ref()
        .map(|p| p.output_per_m_tok.nanos())
        .unwrap_or(0)
}

fn price_text(model: &ModelInfo) -> String {
    match &model.pricing {
        Some(p) => format!(
            "{} in / {} out per 1M",
            p.input_per_m_tok, p.output_per_m_tok
        ),
        None => "no per-token price (self-hosted)".into(),
    }
}

/// A model's measurements when they are enough to decide on.
fn enough<'a>(observed: &'a Observations, model: &ModelInfo) -> Option<&'a Observed> {
    observed
        .get(&model.id)
        .filter(|o| o.satisfaction.up + o.satisfaction.down >= MIN_OBSERVED)
}

/// "measured here: 92 % satisfied (95 % CI 85–96 %, 140 rated), p95 1.84 s".
fn measured_text(observed: &Observed) -> String {
    let s = &observed.satisfaction;
    let satisfied = match (s.share, s.low, s.high) {
        (Some(share), Some(low), Some(high)) => format!(
            "{:.0} % satisfied (95 % CI {:.0}–{:.0} %, {} rated)",
            share * 100.0,
            low * 100.0,
            high * 100.0,
            s.up + s.down
        ),
        _ => "no ratings".to_owned(),
    };
    match observed
        .latency
        .p95
        .filter(|_| !observed.latency.low_sample)
    {
        Some(p95) => format!("measured here: {satisfied}, p95 {p95:.2} s"),
        None => format!("measured here: {satisfied}"),
    }
}

/// Recommends a model for `use_case`, among one provider's models or (with
/// `None`) among every hosted model. Only current-generation models with tool use
/// are considered. `observed` is what the project measured (see the module).
pub fn recommend(
    catalog: &Catalog,
    use_case: UseCase,
    provider: Option<ProviderId>,
    observed: &Observations,
) -> Option<Recommendation> {
    let candidates: Vec<&ModelInfo> = catalog
        .models
        .iter()
        .filter(|m| provider.is_none_or(|p| m.provider == p))
        .filter(|m| provider.is_some() || m.pricing.is_some())
        .filter(|m| !m.legacy && m.capabilities.tools)
        .collect();
    let fast = || {
        candidates
            .iter()
            .copied()
            .filter(|m| m.speed <= SpeedClass::Fast)
    };
    let (model, why) = match use_case {
        UseCase::CustomerSupport => {
            let model = fast().min_by_key(|m| (blended_cost(m), m.speed))?;
            (model, "the lowest cost of the fast models with tool use")
        }
        UseCase::Sales => {
            let model = fast().max_by_key(|m| (output_price(m), std::cmp::Reverse(m.speed)))?;
            (
                model,
                "the top-tier fast model with tool use, for persuasive, accurate answers",
            )
        }
        UseCase::TechnicalDocs => {
            let model = candidates
                .iter()
                .copied()
                .filter(|m| m.speed <= SpeedClass::Medium)
                .max_by_key(|m| (m.context_window, output_price(m)))?;
            (model, "the largest context window, for long documents")
        }
        UseCase::Other => {
            let default = match provider {
                Some(p) => catalog.provider(p)?.default_model.clone(),
                None => catalog.default_model.clone(),
            };
            let model = candidates.iter().copied().find(|m| m.id == default)?;
            (model, "a balanced default")
        }
    };
    let mut why = why.to_owned();
    let mut model = model;
    // A candidate measured clearly more satisfying than the pick replaces it.
    if let Some(mine) = enough(observed, model).and_then(|o| o.satisfaction.high) {
        let better = candidates
            .iter()
            .copied()
            .filter(|c| c.id != model.id)
            .filter_map(|c| Some((c, enough(observed, c)?.satisfaction.low?)))
            .filter(|(_, low)| *low > mine)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((winner, _)) = better {
            why = format!(
                "its users here are clearly more satisfied than with {} (the catalog's pick)",
                model.name
            );
            model = winner;
        }
    }
    let measured = enough(observed, model).map_or_else(
        || "not measured in this project yet".to_owned(),
        measured_text,
    );
    Some(Recommendation {
        model: model.id.clone(),
        reason: format!(
            "{}: {why} — {}, {} context, {}; {measured}",
            model.name,
            model.speed.label().to_lowercase(),
            format_tokens(model.context_window),
            price_text(model)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        serde_json::from_str(include_str!("catalog.json")).unwrap()
    }

    fn pick(use_case: UseCase, provider: Option<ProviderId>) -> String {
        recommend(&catalog(), use_case, provider, &Observations::new())
            .unwrap()
            .model
    }

    fn rated(up: u64, down: u64, p95_millis: i64) -> Observed {
        Observed {
            satisfaction: Satisfaction::new(up, down),
            latency: Percentiles::of_millis(vec![p95_millis; 40]),
        }
    }

    #[test]
    fn customer_support_gets_the_cheapest_fast_current_model() {
        assert_eq!(
            pick(UseCase::CustomerSupport, Some(ProviderId::Claude)),
            "claude-3-5-haiku-20241022"
        );
        assert_eq!(
            pick(UseCase::CustomerSupport, Some(ProviderId::OpenAi)),
            "gpt-4o-mini"
        );
        assert_eq!(pick(UseCase::CustomerSupport, None), "gemini-1.5-flash");
    }

    #[test]
    fn sales_gets_the_top_tier_fast_model() {
        assert_eq!(
            pick(UseCase::Sales, Some(ProviderId::Claude)),
            "claude-3-5-sonnet-20241022"
        );
        assert_eq!(pick(UseCase::Sales, Some(ProviderId::OpenAi)), "gpt-4o");
    }

    #[test]
    fn technical_docs_get_the_largest_context_window() {
        assert_eq!(pick(UseCase::TechnicalDocs, None), "gemini-1.5-pro");
        assert_eq!(
            pick(UseCase::TechnicalDocs, Some(ProviderId::Claude)),
            "claude-3-5-sonnet-20241022"
        );
    }

    #[test]
    fn reasons_carry_the_deciding_figures() {
        let rec = recommend(
            &catalog(),
            UseCase::CustomerSupport,
            Some(ProviderId::Claude),
            &Observations::new(),
        )
        .unwrap();
        assert_eq!(
            rec.reason,
            "Claude 3.5 Haiku: the lowest cost of the fast models with tool use — fastest, 200K context, $0.80 in / $4.00 out per 1M; not measured in this project yet"
        );
    }

    #[test]
    fn a_model_measured_clearly_more_satisfying_replaces_the_catalogs_pick() {
        let catalog = catalog();
        let support = |observed: &Observations| {
            recommend(
                &catalog,
                UseCase::CustomerSupport,
                Some(ProviderId::Claude),
                observed,
            )
            .unwrap()
        };
        // Haiku disappoints (30 of 100), Sonnet delights (90 of 100): Sonnet.
        let mut observed = Observations::new();
        observed.insert("claude-3-5-haiku-20241022".into(), rated(30, 70, 900));
        observed.insert("claude-3-5-sonnet-20241022".into(), rated(90, 10, 1_840));
        let rec = support(&observed);
        assert_eq!(rec.model, "claude-3-5-sonnet-20241022");
        assert!(
            rec.reason
                .contains("clearly more satisfied than with Claude 3.5 Haiku"),
            "{}",
            rec.reason
        );
        assert!(
            rec.reason
                .contains("measured here: 90 % satisfied (95 % CI 83–94 %, 100 rated), p95 1.84 s"),
            "{}",
            rec.reason
        );
        // Overlapping intervals do not overturn the catalog.
        observed.insert("claude-3-5-haiku-20241022".into(), rated(85, 15, 900));
        assert_eq!(support(&observed).model, "claude-3-5-haiku-20241022");
        // Too few ratings say nothing.
        observed.insert("claude-3-5-haiku-20241022".into(), rated(1, 9, 900));
        let rec = support(&observed);
        assert_eq!(rec.model, "claude-3-5-haiku-20241022");
        assert!(
            rec.reason.ends_with("not measured in this project yet"),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn legacy_models_are_never_recommended() {
        let catalog = catalog();
        for use_case in UseCase::ALL {
            for provider in ProviderId::ALL {
                if let Some(rec) =
                    recommend(&catalog, use_case, Some(provider), &Observations::new())
                {
                    assert!(!catalog.model(&rec.model).unwrap().legacy, "{rec:?}");
                }
            }
        }
    }
}
