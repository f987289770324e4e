//! A configuration as the service works with it (typed, not JSON), its rows,
//! and the cache of pinned versions every answer reads its configuration from.

use crate::model::catalog::{Catalog, ProviderId};
use crate::model::llm_config::{FallbackConfig, KeySource, LlamaFlavour};
use crate::model::parameters::{ModelLimits, Parameters};
use crate::server::db::llm_configs::{self, ConfigRow};
use crate::server::db::now_ms;
use crate::server::error::{Error, Result};
use sqlx::AnyPool;
use std::collections::HashMap;
use std::sync::Arc;

/// Max tokens a new configuration starts with (capped by the model's maximum).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Temperature a new configuration starts with (valid for every provider).
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

/// A configuration as the service works with it: typed, not JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Active provider.
    pub provider: ProviderId,
    /// Catalog model id.
    pub model: String,
    /// Parameters.
    pub parameters: Parameters,
    /// System prompt.
    pub system_prompt: String,
    /// Managed or BYOK.
    pub key_source: KeySource,
    /// Fallback.
    pub fallback: FallbackConfig,
    /// Llama server.
    pub base_url: Option<String>,
    /// Llama API style.
    pub llama_flavour: LlamaFlavour,
    /// The knowledge base's embedding model, when fixed; `None` follows the
    /// provider's default.
    pub embedding_model: Option<String>,
}

impl Draft {
    /// What a new project starts with: the catalog's default model (Claude 3.5
    /// Sonnet), temperature 0.7, top P 1, Cover-managed key, fallback off.
    pub fn default_for(catalog: &Catalog) -> Draft {
        let model = catalog.model(&catalog.default_model);
        let max_output = model.map_or(DEFAULT_MAX_TOKENS, |m| {
            ModelLimits::from(m).max_output_tokens
        });
        Draft {
            provider: model.map_or(ProviderId::Claude, |m| m.provider),
            model: catalog.default_model.clone(),
            parameters: Parameters {
                temperature: Some(DEFAULT_TEMPERATURE),
                top_p: Some(1.0),
                max_tokens: Some(DEFAULT_MAX_TOKENS.min(max_output)),
                ..Parameters::default()
            },
            system_prompt: String::new(),
            key_source: KeySource::Managed,
            fallback: FallbackConfig {
                enabled: false,
                provider: ProviderId::OpenAi,
                model: "gpt-4o-mini".into(),
                retry_attempts: 3,
            },
            base_url: None,
            llama_flavour: LlamaFlavour::Ollama,
            embedding_model: None,
        }
    }

    /// The row storing this draft as `version` of `project_id`.
    pub fn to_row(&self, project_id: &str, version: i64, created_by: Option<&str>) -> ConfigRow {
        ConfigRow {
            project_id: project_id.to_owned(),
            version,
            provider: self.provider.as_str().to_owned(),
            model: self.model.clone(),
            parameters: serde_json::to_string(&self.parameters).unwrap_or_else(|_| "{}".into()),
            system_prompt: self.system_prompt.clone(),
            key_source: self.key_source.as_str().to_owned(),
            fallback: serde_json::to_string(&self.fallback).unwrap_or_else(|_| "{}".into()),
            base_url: self.base_url.clone(),
            llama_flavour: self.llama_flavour.as_str().to_owned(),
            embedding_model: self.embedding_model.clone(),
            created_by: created_by.map(str::to_owned),
            created_at: now_ms(),
        }
    }

    /// Reads a stored row.
    pub fn from_row(row: &ConfigRow) -> Result<Draft> {
        let corrupt = |what: &str| {
            Error::internal(format!(
                "llm_config {} v{}: bad {what}",
                row.project_id, row.version
            ))
        };
        Ok(Draft {
            provider: ProviderId::parse(&row.provider).ok_or_else(|| corrupt("provider"))?,
            model: row.model.clone(),
            parameters: serde_json::from_str(&row.parameters).map_err(|_| corrupt("parameters"))?,
            system_prompt: row.system_prompt.clone(),
            key_source: KeySource::parse(&row.key_source).ok_or_else(|| corrupt("key source"))?,
            fallback: serde_json::from_str(&row.fallback).map_err(|_| corrupt("fallback"))?,
            base_url: row.base_url.clone(),
            llama_flavour: LlamaFlavour::parse(&row.llama_flavour)
                .ok_or_else(|| corrupt("llama flavour"))?,
            embedding_model: row.embedding_model.clone(),
        })
    }
}

/// Saved configuration versions, by project and version. A version is never
/// changed once saved, so a cached one is right on every app server; answers
/// read their conversation's pinned version from here.
#[derive(Debug, Default)]
pub struct PinnedConfigs {
    versions: std::sync::Mutex<HashMap<(String, i64), Arc<Draft>>>,
}

/// Versions kept before the cache starts over.
const PINNED_CONFIGS_KEPT: usize = 10_000;

impl PinnedConfigs {
    fn get(&self, project_id: &str, version: i64) -> Option<Arc<Draft>> {
        let versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions.get(&(project_id.to_owned(), version)).cloned()
    }

    fn keep(&self, project_id: &str, version: i64, draft: Arc<Draft>) {
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if versions.len() >= PINNED_CONFIGS_KEPT {
            versions.clear();
        }
        versions.insert((project_id.to_owned(), version), draft);
    }
}

/// Version `version` of a project's configuration (the one a conversation
/// pinned).
pub async fn pinned(
    pool: &AnyPool,
    cache: &PinnedConfigs,
    project_id: &str,
    version: i64,
) -> Result<Arc<Draft>> {
    if let Some(draft) = cache.get(project_id, version) {
        return Ok(draft);
    }
    let row = llm_configs::version(pool, project_id, version)
        .await?
        .ok_or_else(|| {
            Error::internal(format!(
                "a conversation of {project_id} pins missing config v{version}"
            ))
        })?;
    let draft = Arc::new(Draft::from_row(&row)?);
    cache.keep(project_id, version, draft.clone());
    Ok(draft)
}
