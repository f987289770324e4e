//! Loads the model catalog (`src/model/catalog.json`, embedded in the binary) and
//! checks it at start-up, so a bad edit fails loudly instead of showing wrong
//! prices.

use crate::model::catalog::{Catalog, ModelInfo, ProviderId};
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
        check_model(model, &mut ids)?;
        if model.max_output == 0 || model.max_output > model.context_window {
            return Err(format!(
                "{}: max output must be within the context window",
                model.id
            ));
        }
        if model.embedding.is_some() {
            return Err(format!(
                "{}: an embedding model belongs in `embeddingModels`",
                model.id
            ));
        }
    }
    for model in &catalog.embedding_models {
        check_model(model, &mut ids)?;
        check_embedding_model(model)?;
    }
    for model in &catalog.image_models {
        check_model(model, &mut ids)?;
        check_image_model(model)?;
    }
    for required in REQUIRED_MODELS {
        if catalog.chat_model(required).is_none() {
            return Err(format!("required model `{required}` is missing"));
        }
    }
    for kind in ProviderId::ALL {
        let provider = catalog
            .provider(kind)
            .ok_or_else(|| format!("provider `{}` is missing", kind.as_str()))?;
        let default = catalog
            .chat_model(&provider.default_model)
            .ok_or_else(|| format!("{}: default model is not in the catalog", kind.as_str()))?;
        let embedding = catalog.default_embedding_model(kind).ok_or_else(|| {
            format!(
                "{}: default embedding model is not an embedding model of the catalog",
                kind.as_str()
            )
        })?;
        if default.provider != kind || embedding.provider != kind {
            return Err(format!(
                "{}: a default model belongs to another provider",
                kind.as_str()
            ));
        }
    }
    if catalog.chat_model(&catalog.default_model).is_none() {
        return Err("the workspace default model is not in the catalog".into());
    }
    Ok(())
}

/// The checks every model passes, chat or embedding: unique ids, prices
/// where the model is hosted, dated price lists, Ollama tags for Llama.
fn check_model<'a>(
    model: &'a ModelInfo,
    ids: &mut HashSet<&'a str>,
) -> std::result::Result<(), String> {
    for id in std::iter::once(&model.id).chain(&model.aliases) {
        if !ids.insert(id.as_str()) {
            return Err(format!("model id `{id}` appears twice"));
        }
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
    Ok(())
}

/// An embedding model has its spec with sizes that make sense, writes no
/// text and is billed for its input only.
fn check_embedding_model(model: &ModelInfo) -> std::result::Result<(), String> {
    let spec = model.embedding.as_ref().ok_or_else(|| {
        format!(
            "{}: an embedding model needs its `embedding` spec",
            model.id
        )
    })?;
    if spec.dimensions == 0
        || spec.max_batch_inputs == 0
        || spec.max_input_tokens == 0
        || spec.max_batch_tokens < spec.max_input_tokens
    {
        return Err(format!(
            "{}: dimensions and batch limits must be positive, a batch at least one input",
            model.id
        ));
    }
    if spec.max_input_tokens > model.context_window {
        return Err(format!(
            "{}: an input cannot be longer than the context window",
            model.id
        ));
    }
    if model.max_output != 0 {
        return Err(format!("{}: an embedding model writes no text", model.id));
    }
    let priced_output = model
        .pricing
        .iter()
        .chain(&model.price_history)
        .any(|p| p.output_per_m_tok.nanos() != 0);
    if priced_output {
        return Err(format!("{}: embeddings have no output price", model.id));
    }
    Ok(())
}

/// An image model has its spec, draws its default size and quality, bills
/// every option some output, and writes no text.
fn check_image_model(model: &ModelInfo) -> std::result::Result<(), String> {
    let spec = model
        .image
        .as_ref()
        .ok_or_else(|| format!("{}: an image model needs its `image` spec", model.id))?;
    if model.embedding.is_some() || model.max_output != 0 {
        return Err(format!("{}: an image model writes no text", model.id));
    }
    if spec
        .option(&spec.default_size, &spec.default_quality)
        .is_none()
    {
        return Err(format!(
            "{}: the default size and quality must be one of its options",
            model.id
        ));
    }
    if spec.max_images == 0
        || spec.max_prompt_chars == 0
        || spec.options.iter().any(|o| o.output_tokens == 0)
    {
        return Err(format!(
            "{}: pictures, prompt length and each option's output tokens must be positive",
            model.id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::EmbeddingService;

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

    #[test]
    fn every_provider_has_a_default_embedding_model_its_projects_embed_with() {
        let catalog = load().unwrap();
        let defaults: Vec<(&str, EmbeddingService, u32)> = ProviderId::ALL
            .iter()
            .map(|&kind| {
                let model = catalog.default_embedding_model(kind).unwrap();
                let spec = model.embedding.unwrap();
                (model.id.as_str(), spec.service, spec.dimensions)
            })
            .collect();
        assert_eq!(
            defaults,
            [
                ("voyage-3.5", EmbeddingService::Voyage, 1024),
                ("text-embedding-3-small", EmbeddingService::OpenAi, 1536),
                ("gemini-embedding-001", EmbeddingService::Gemini, 768),
                ("nomic-embed-text", EmbeddingService::Ollama, 768),
            ]
        );
        let nomic = catalog.embedding_model("nomic-embed-text").unwrap();
        assert!(nomic.pricing.is_none() && nomic.capabilities.self_hosted);
        assert_eq!(nomic.ollama_tag.as_deref(), Some("nomic-embed-text"));
    }

    #[test]
    fn embedding_models_are_found_by_id_but_never_listed_as_chat_models() {
        let catalog = load().unwrap();
        assert!(catalog.model("text-embedding-3-large").is_some());
        assert!(catalog.chat_model("text-embedding-3-large").is_none());
        assert!(catalog.embedding_model("gpt-4o").is_none());
        assert_eq!(catalog.models_of(ProviderId::OpenAi).count(), 4);
        assert!(catalog.models.iter().all(|m| m.embedding.is_none()));
    }

    #[test]
    fn embeddings_are_priced_for_their_input_tokens_only() {
        let catalog = load().unwrap();
        let usage = crate::model::chat::TokenUsage {
            input_tokens: 1_000_000,
            ..Default::default()
        };
        let cost = |model: &str| {
            crate::model::pricing::attempt_cost(catalog.model(model), &usage, "2025-09-01", 0, &[])
                .nanos()
        };
        assert_eq!(cost("text-embedding-3-small"), Some(20_000_000));
        assert_eq!(cost("text-embedding-3-large"), Some(130_000_000));
        assert_eq!(cost("gemini-embedding-001"), Some(150_000_000));
        assert_eq!(cost("voyage-3.5"), Some(60_000_000));
    }

    #[test]
    fn image_models_are_openai_billed_per_token_and_never_chat_models() {
        let catalog = load().unwrap();
        assert!(catalog.chat_model("gpt-image-2").is_none());
        assert_eq!(
            catalog
                .image_models_of(ProviderId::OpenAi)
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>(),
            ["gpt-image-2", "gpt-image-1"]
        );
        assert_eq!(catalog.image_models_of(ProviderId::Claude).count(), 0);
        let spec = catalog
            .image_model("gpt-image-1")
            .unwrap()
            .image
            .as_ref()
            .unwrap();
        assert_eq!(
            spec.option("1024x1024", "high").unwrap().output_tokens,
            4160
        );
        assert_eq!(spec.sizes(), ["1024x1024", "1536x1024", "1024x1536"]);
        assert_eq!(spec.qualities(), ["low", "medium", "high"]);
        // One high-quality square picture: 4,160 output tokens at $40 per 1M,
        // and a 20-token prompt at $5 per 1M.
        let usage = crate::model::chat::TokenUsage {
            input_tokens: 20,
            output_tokens: 4160,
            ..Default::default()
        };
        let cost = crate::model::pricing::attempt_cost(
            catalog.model("gpt-image-1"),
            &usage,
            "2026-12-01",
            0,
            &[],
        );
        assert_eq!(cost.nanos(), Some(166_400_000 + 100_000));
    }

    #[test]
    fn an_image_model_whose_default_it_does_not_draw_is_refused() {
        let mut doc: serde_json::Value = serde_json::from_str(CATALOG_JSON).unwrap();
        doc["imageModels"][0]["image"]["defaultSize"] = "999x999".into();
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(
            err.contains("gpt-image-2") && err.contains("default size"),
            "{err}"
        );
    }

    #[test]
    fn an_embedding_model_without_its_spec_is_refused() {
        let mut doc: serde_json::Value = serde_json::from_str(CATALOG_JSON).unwrap();
        doc["embeddingModels"][0]
            .as_object_mut()
            .unwrap()
            .remove("embedding");
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(err.contains("voyage-3.5") && err.contains("spec"), "{err}");
    }

    #[test]
    fn a_provider_whose_default_embedding_model_is_missing_is_refused() {
        let mut doc: serde_json::Value = serde_json::from_str(CATALOG_JSON).unwrap();
        doc["providers"][2]["defaultEmbeddingModel"] = "text-embedding-004".into();
        let err = parse(&doc.to_string()).unwrap_err().to_string();
        assert!(err.contains("gemini: default embedding model"), "{err}");
        doc["providers"][2]["defaultEmbeddingModel"] = "gpt-4o".into();
        assert!(
            parse(&doc.to_string()).is_err(),
            "a chat model is no default embedding model"
        );
    }
}
