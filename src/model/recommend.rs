//! Model recommendations by use case (spec FR-002), computed from catalog data —
//! speed class, prices, context window, capabilities — never from text written
//! per model. The same function marks the recommended model on the settings page
//! and answers the API.

use crate::model::account::UseCase;
use crate::model::catalog::{format_tokens, Catalog, ModelInfo, ProviderId, SpeedClass};
use serde::{Deserialize, Serialize};

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

/// Recommends a model for `use_case`, among one provider's models or (with
/// `None`) among every hosted model. Only current-generation models with tool use
/// are considered.
pub fn recommend(
    catalog: &Catalog,
    use_case: UseCase,
    provider: Option<ProviderId>,
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
    Some(Recommendation {
        model: model.id.clone(),
        reason: format!(
            "{}: {why} — {}, {} context, {}",
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
        recommend(&catalog(), use_case, provider).unwrap().model
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
        )
        .unwrap();
        assert_eq!(
            rec.reason,
            "Claude 3.5 Haiku: the lowest cost of the fast models with tool use — fastest, 200K context, $0.80 in / $4.00 out per 1M"
        );
    }

    #[test]
    fn legacy_models_are_never_recommended() {
        let catalog = catalog();
        for use_case in UseCase::ALL {
            for provider in ProviderId::ALL {
                if let Some(rec) = recommend(&catalog, use_case, Some(provider)) {
                    assert!(!catalog.model(&rec.model).unwrap().legacy, "{rec:?}");
                }
            }
        }
    }
}
