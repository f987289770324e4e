//! Loads the model catalog (`src/model/catalog.json`, embedded in the binary) and
//! checks it at start-up, so a bad edit fails loudly instead of showing wrong
//! prices.

use crate::model::catalog::{Catalog, ProviderId};
use crate::server::error::{Error, Result};
use std::collections::HashSet;

/// The catalog as shipped with this build.
const CATALOG_JSON: &str = include_str!("../model/catalog.json");

/// Every model the spec (FR-002) requires, by API id.
pub const REQUIRED_MODELS: [&str; 17] = [
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "claude-3-opus-20240229",
    "claude-3-sonnet-20240229",
    "claude-3-haiku-20240307",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "gemini-1.5-pro",
    "gemini-1.5-flash",
    "gemini-1.0-pro",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.2-1b",
    "llama-3.2-3b",
];

/// Parses and checks the shipped catalog.
pub fn load() -> Result<Catalog> {
    parse(CATALOG_JSON)
}

/// Parses and checks a catalog document.
pub fn parse(json: &str) -> Result<Catalog> {
    let catalog: Catalog =
        serde_json::from_str(json).map_err(|e| Error::internal(format!("catalog: {e}")))?;
    check(&catalog).map_err(|e| Error::internal(format!("catalog: {e}")))?;
    Ok(catalog)
}

fn check(catalog: &Catalog) -> std::result::Result<(), String> {
    let mut ids = HashSet::new();
    for model in &catalog.models {
        for id in std::iter::once(&model.id).chain(&model.aliases) {
            if !ids.insert(id.as_str()) {
                return Err(format!("model id `{id}` appears twice"));
            }
        }
        if model.max_output == 0 || model.max_output > model.context_window {
            return Err(format!(
                "{}: max output must be within the context window",
                model.id
            ));
        }
        let self_hosted = model.provider == ProviderId::Llama;
        if model.capabilities.self_hosted != self_hosted {
            return Err(format!("{}: only Llama models are self-hosted", model.id));
        }
        if model.pricing.is_none() && !self_hosted {
            return Err(format!("{}: a hosted model needs prices", model.id));
        }
        if let Some(current) = &model.pricing {
            let mut dates: Vec<&str> = model
                .price_history
                .iter()
                .map(|p| p.effective_date.as_str())
                .collect();
            dates.push(&current.effective_date);
            if dates
                .iter()
                .any(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err())
            {
                return Err(format!("{}: effective dates must be YYYY-MM-DD", model.id));
            }
            if dates.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "{}: price history must be oldest first and before the current prices",
                    model.id
                ));
            }
        } else if !model.price_history.is_empty() {
            return Err(format!(
                "{}: a price history needs current prices",
                model.id
            ));
        }
        if self_hosted && model.ollama_tag.is_none() {
            return Err(format!("{}: a Llama model needs its Ollama tag", model.id));
        }
    }
    for required in REQUIRED_MODELS {
        if catalog.model(required).is_none() {
            return Err(format!("required model `{required}` is missing"));
        }
    }
    for kind in ProviderId::ALL {
        let provider = catalog
            .provider(kind)
            .ok_or_else(|| format!("provider `{}` is missing", kind.as_str()))?;
        let default = catalog
            .model(&provider.default_model)
            .ok_or_else(|| format!("{}: default model is not in the catalog", kind.as_str()))?;
        if default.provider != kind {
            return Err(format!(
                "{}: default model belongs to another provider",
                kind.as_str()
            ));
        }
    }
    if catalog.model(&catalog.default_model).is_none() {
        return Err("the workspace default model is not in the catalog".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_has_every_spec_model_with_exact_prices() {
        let catalog = load().expect("shipped catalog loads");
        assert_eq!(catalog.default_model, "claude-3-5-sonnet-20241022");
        let sonnet = catalog.model("claude-3-5-sonnet-latest").unwrap();
        let pricing = sonnet.pricing.as_ref().unwrap();
        assert_eq!(pricing.input_per_m_tok.nanos(), 3_000_000_000);
        assert_eq!(pricing.output_per_m_tok.nanos(), 15_000_000_000);
        assert_eq!(
            pricing.cache_write_per_m_tok.unwrap().nanos(),
            3_750_000_000
        );
        let flash = catalog
            .model("gemini-1.5-flash")
            .unwrap()
            .pricing
            .as_ref()
            .unwrap();
        assert_eq!(flash.cache_read_per_m_tok.unwrap().nanos(), 18_750_000);
        let long = flash.long_context.as_ref().unwrap();
        assert_eq!(
            (long.threshold_tokens, long.input_per_m_tok.nanos()),
            (128_000, 150_000_000)
        );
        assert_eq!(catalog.models_of(ProviderId::Llama).count(), 5);
        assert!(catalog
            .models_of(ProviderId::Llama)
            .all(|m| m.pricing.is_none()));
    }

    #[test]
    fn a_catalog_missing_a_spec_model_is_refused() {
        let mut doc: serde_json::Value = serde_json::from_str(CATALOG_JSON).unwrap();
        doc["models"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["id"] != "gpt-4-turbo");
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(err.contains("gpt-4-turbo"), "{err}");
    }

    #[test]
    fn a_price_with_more_than_nine_decimals_is_refused() {
        let doc = CATALOG_JSON.replacen("\"3.00\"", "\"3.0000000001\"", 1);
        assert!(parse(&doc).is_err());
    }
}
