//! A project's LLM configuration: defaults for new projects, reading the current
//! version, and saving a change as a new version after validating every field
//! (catalog membership, per-provider parameter ranges, fallback, URLs) and, for
//! a new BYOK key, checking it with the provider before it is encrypted and
//! stored. Nothing is saved unless everything is valid.

use crate::error::{AppError, FieldError};
use crate::model::catalog::{Catalog, ProviderId};
use crate::model::llm_config::{
    FallbackConfig, KeyCheck, KeySource, LlamaFlavour, LlmConfig, LlmConfigPatch,
    MAX_RETRY_ATTEMPTS, MAX_SYSTEM_PROMPT_CHARS,
};
use crate::model::parameters::{validate_parameters, ModelLimits, Parameters};
use crate::server::crypto::{mask_key, Sealed};
use crate::server::db::llm_configs::{self, ConfigRow};
use crate::server::db::provider_keys::{self, StoredKey};
use crate::server::db::{now_ms, rfc3339};
use crate::server::error::{Error, Result};
use crate::server::llm::{build_provider, ErrorKind};
use crate::server::state::AppState;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Max tokens a new configuration starts with (capped by the model's maximum).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Temperature a new configuration starts with (valid for every provider).
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

/// Parameter names a PATCH may set, as in the JSON.
const PARAMETER_FIELDS: [&str; 9] = [
    "temperature",
    "maxTokens",
    "topP",
    "topK",
    "frequencyPenalty",
    "presencePenalty",
    "stop",
    "safetySettings",
    "googleSearch",
];

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
            key_source: match row.key_source.as_str() {
                "byok" => KeySource::Byok,
                _ => KeySource::Managed,
            },
            fallback: serde_json::from_str(&row.fallback).map_err(|_| corrupt("fallback"))?,
            base_url: row.base_url.clone(),
            llama_flavour: LlamaFlavour::parse(&row.llama_flavour)
                .ok_or_else(|| corrupt("llama flavour"))?,
        })
    }

    /// Drops parameters the provider does not take (after a provider switch).
    fn keep_supported_parameters(&mut self) {
        keep_supported_parameters(self.provider, &mut self.parameters);
    }
}

/// Drops the parameters `provider` does not take and clamps the temperature to
/// its range: a provider switch, and a fallback to another provider, send only
/// what the new provider accepts.
fn keep_supported_parameters(provider: ProviderId, p: &mut Parameters) {
    if provider != ProviderId::OpenAi {
        p.frequency_penalty = None;
        p.presence_penalty = None;
    } else {
        p.top_k = None;
    }
    if provider != ProviderId::Gemini {
        p.safety_settings.clear();
        p.google_search = false;
    }
    if provider == ProviderId::Claude {
        p.temperature = p.temperature.map(|t| t.min(1.0));
    }
}

/// The project's parameters as another model (a fallback) takes them:
/// unsupported ones dropped, max tokens capped at the model's maximum.
pub fn parameters_for(provider: ProviderId, limits: ModelLimits, base: &Parameters) -> Parameters {
    let mut parameters = base.clone();
    keep_supported_parameters(provider, &mut parameters);
    parameters.max_tokens = parameters
        .max_tokens
        .map(|m| m.min(limits.max_output_tokens));
    parameters
}

/// The key the project's calls to `provider` use: the project's own stored key
/// when it brings its own (always, for a provider other than the configured
/// one, if it stored one), else Cover's managed key; `None` when there is none
/// (self-hosted Llama usually needs none).
pub async fn project_key(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    provider: ProviderId,
) -> Result<Option<SecretString>> {
    let own_key_first = provider != draft.provider || draft.key_source == KeySource::Byok;
    if own_key_first {
        if let Some(stored) =
            provider_keys::get(&state.db.pool, project_id, provider.as_str()).await?
        {
            return Ok(Some(open_key(state, project_id, &stored.sealed)?));
        }
    }
    Ok(state.managed_keys.get(provider).cloned())
}

/// The base URL a project's calls to `provider` go to.
pub fn base_url_for(state: &AppState, draft: &Draft, provider: ProviderId) -> String {
    match (&draft.base_url, provider) {
        (Some(url), ProviderId::Llama) => url.clone(),
        _ => state.base_urls.base_url(provider).to_owned(),
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
pub async fn pinned_draft(state: &AppState, project_id: &str, version: i64) -> Result<Arc<Draft>> {
    if let Some(draft) = state.pinned_configs.get(project_id, version) {
        return Ok(draft);
    }
    let row = llm_configs::version(&state.db.pool, project_id, version)
        .await?
        .ok_or_else(|| {
            Error::internal(format!(
                "a conversation of {project_id} pins missing config v{version}"
            ))
        })?;
    let draft = Arc::new(Draft::from_row(&row)?);
    state
        .pinned_configs
        .keep(project_id, version, draft.clone());
    Ok(draft)
}

/// The current configuration of a project (the newest version).
pub async fn current(state: &AppState, project_id: &str) -> Result<(ConfigRow, Draft)> {
    let row = llm_configs::latest(&state.db.pool, project_id)
        .await?
        .ok_or(Error::App(AppError::NotFound))?;
    let draft = Draft::from_row(&row)?;
    Ok((row, draft))
}

/// The configuration as shown to people and programs (key masked).
pub async fn get(state: &AppState, project_id: &str) -> Result<LlmConfig> {
    let (row, draft) = current(state, project_id).await?;
    view(state, &row, draft).await
}

async fn view(state: &AppState, row: &ConfigRow, draft: Draft) -> Result<LlmConfig> {
    let stored =
        provider_keys::get(&state.db.pool, &row.project_id, draft.provider.as_str()).await?;
    Ok(LlmConfig {
        project_id: row.project_id.clone(),
        version: row.version,
        provider: draft.provider,
        model: draft.model,
        parameters: draft.parameters,
        system_prompt: draft.system_prompt,
        api_key_source: draft.key_source,
        api_key_masked: stored.map(|k| k.masked),
        fallback_config: draft.fallback,
        base_url: draft.base_url,
        llama_flavour: draft.llama_flavour,
        updated_at: rfc3339(row.created_at),
    })
}

/// Applies a partial update and saves it as a new version. Every invalid field
/// is reported at once (422); a new key is checked with the provider first; on
/// any error nothing is stored.
pub async fn update(
    state: &AppState,
    project_id: &str,
    actor: Option<&str>,
    patch: LlmConfigPatch,
) -> Result<LlmConfig> {
    let (row, before) = current(state, project_id).await?;
    let draft = apply(&state.catalog, &before, &patch)
        .map_err(|errors| Error::App(AppError::InvalidFields { errors }))?;

    let new_key = match patch.api_key.as_deref().map(str::trim) {
        Some(key) if !key.is_empty() => Some(SecretString::from(key.to_owned())),
        _ => None,
    };
    let sealed = match &new_key {
        Some(key) => {
            let check = check_key(
                state,
                draft.provider,
                key.clone(),
                &base_url_for(state, &draft, draft.provider),
                draft.llama_flavour,
            )
            .await;
            if !check.valid {
                return Err(AppError::invalid("apiKey", check.message).into());
            }
            let sealed = state
                .keyring
                .seal(project_id, key)
                .map_err(Error::internal)?;
            Some(StoredKey {
                project_id: project_id.to_owned(),
                provider: draft.provider.as_str().to_owned(),
                sealed,
                masked: mask_key(key),
            })
        }
        None => None,
    };
    if draft.key_source == KeySource::Byok
        && sealed.is_none()
        && provider_keys::get(&state.db.pool, project_id, draft.provider.as_str())
            .await?
            .is_none()
    {
        return Err(AppError::invalid(
            "apiKey",
            format!("enter your {} API key to use your own key", draft.provider),
        )
        .into());
    }

    let new_row = draft.to_row(project_id, row.version + 1, actor);
    let mut tx = state.db.writer.begin().await?;
    if let Some(key) = &sealed {
        provider_keys::upsert(&mut *tx, key).await?;
    }
    if !llm_configs::insert(&mut *tx, &new_row).await? {
        return Err(AppError::Conflict {
            field: "version".into(),
            message: "the configuration was changed at the same time; reload and try again".into(),
        }
        .into());
    }
    tx.commit().await?;
    view(state, &new_row, draft).await
}

/// The patched configuration, or every invalid field. Pure: no I/O.
pub fn apply(
    catalog: &Catalog,
    before: &Draft,
    patch: &LlmConfigPatch,
) -> std::result::Result<Draft, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut invalid = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_owned(),
            message,
        })
    };
    let mut draft = before.clone();

    if let Some(provider) = patch.provider {
        if provider != draft.provider {
            draft.provider = provider;
            if let Some(info) = catalog.provider(provider) {
                draft.model = info.default_model.clone();
            }
            draft.keep_supported_parameters();
        }
    }
    if let Some(model) = &patch.model {
        match catalog.model(model) {
            Some(info) if info.provider == draft.provider => draft.model = info.id.clone(),
            Some(info) => invalid(
                "model",
                format!(
                    "{} is a {} model, not a {} one",
                    info.name, info.provider, draft.provider
                ),
            ),
            None => invalid(
                "model",
                format!(
                    "unknown model `{model}`; see GET /api/llm/providers/{}/models",
                    draft.provider
                ),
            ),
        }
    }
    let limits = catalog.model(&draft.model).map(ModelLimits::from);
    let sets_max_tokens = patch
        .parameters
        .as_ref()
        .is_some_and(|p| p.contains_key("maxTokens"));
    if draft.model != before.model && !sets_max_tokens {
        if let (Some(limits), Some(max)) = (limits, draft.parameters.max_tokens) {
            draft.parameters.max_tokens = Some(max.min(limits.max_output_tokens));
        }
    }
    if let Some(changes) = &patch.parameters {
        let mut merged = serde_json::to_value(&draft.parameters).unwrap_or_default();
        for (name, value) in changes {
            if !PARAMETER_FIELDS.contains(&name.as_str()) {
                invalid(
                    &format!("parameters.{name}"),
                    format!("unknown parameter; known: {}", PARAMETER_FIELDS.join(", ")),
                );
            } else if value.is_null() {
                if let Some(object) = merged.as_object_mut() {
                    object.remove(name);
                }
            } else {
                merged[name.as_str()] = value.clone();
            }
        }
        match serde_json::from_value::<Parameters>(merged) {
            Ok(parameters) => draft.parameters = parameters,
            Err(e) => invalid("parameters", format!("wrong type: {e}")),
        }
    }
    if let Err(param_errors) =
        validate_parameters(draft.provider, &draft.parameters, limits.as_ref())
    {
        for e in param_errors {
            invalid(
                &format!("parameters.{}", e.field),
                format!("{} (allowed: {})", e.message, e.allowed),
            );
        }
    }
    if let Some(prompt) = &patch.system_prompt {
        if prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS {
            invalid(
                "systemPrompt",
                format!("must be at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
            );
        } else {
            draft.system_prompt = prompt.clone();
        }
    }
    if let Some(source) = patch.api_key_source {
        draft.key_source = source;
    }
    if patch
        .api_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
    {
        draft.key_source = KeySource::Byok;
    }
    if let Some(fallback) = &patch.fallback_config {
        match catalog.model(&fallback.model) {
            Some(info) if info.provider == fallback.provider => {
                let fallback = FallbackConfig {
                    model: info.id.clone(),
                    ..fallback.clone()
                };
                draft.fallback = fallback;
            }
            Some(info) => invalid(
                "fallbackConfig.model",
                format!(
                    "{} is a {} model, not a {} one",
                    info.name, info.provider, fallback.provider
                ),
            ),
            None => invalid(
                "fallbackConfig.model",
                format!("unknown model `{}`", fallback.model),
            ),
        }
        if fallback.retry_attempts > MAX_RETRY_ATTEMPTS {
            invalid(
                "fallbackConfig.retryAttempts",
                format!("must be between 0 and {MAX_RETRY_ATTEMPTS}"),
            );
        }
    }
    if draft.fallback.enabled && draft.fallback.model == draft.model {
        invalid(
            "fallbackConfig.model",
            "must differ from the primary model".into(),
        );
    }
    if let Some(url) = &patch.base_url {
        let url = url.trim();
        if url.is_empty() {
            draft.base_url = None;
        } else {
            match reqwest::Url::parse(url) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
                {
                    draft.base_url = Some(url.trim_end_matches('/').to_owned());
                }
                _ => invalid(
                    "baseUrl",
                    "must be an http:// or https:// URL, e.g. http://127.0.0.1:11434".into(),
                ),
            }
        }
    }
    if let Some(flavour) = patch.llama_flavour {
        draft.llama_flavour = flavour;
    }
    if errors.is_empty() {
        Ok(draft)
    } else {
        Err(errors)
    }
}

/// Checks a key with the provider (its cheapest authenticated call). Never
/// fails: the outcome is in the answer, in words a person can act on.
pub async fn check_key(
    state: &AppState,
    provider: ProviderId,
    key: SecretString,
    base_url: &str,
    flavour: LlamaFlavour,
) -> KeyCheck {
    let client = build_provider(&state.executor, provider, base_url, Some(key), flavour);
    let started = Instant::now();
    let outcome = client.validate_api_key().await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(()) => KeyCheck {
            valid: true,
            message: format!("Connected: {provider} accepted the key"),
            latency_ms,
        },
        Err(error) => KeyCheck {
            valid: false,
            message: match error.kind {
                ErrorKind::Auth => format!("{provider} rejected this key: {}", error.message),
                _ => format!(
                    "could not reach {provider} to check the key: {}",
                    error.message
                ),
            },
            latency_ms,
        },
    }
}

/// Test Connection: checks the key a project would use now — a key just typed,
/// else its stored key for the provider, else Cover's managed key.
pub async fn test_connection(
    state: &AppState,
    project_id: &str,
    provider: Option<ProviderId>,
    typed_key: Option<String>,
) -> Result<KeyCheck> {
    let (_, draft) = current(state, project_id).await?;
    let provider = provider.unwrap_or(draft.provider);
    let base_url = base_url_for(state, &draft, provider);
    let typed = typed_key
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_owned()));
    let key = match typed {
        Some(key) => Some(key),
        None => project_key(state, project_id, &draft, provider).await?,
    };
    match key {
        Some(key) => Ok(check_key(state, provider, key, &base_url, draft.llama_flavour).await),
        None if provider == ProviderId::Llama => {
            // NOTE: self-hosted servers usually take no key; check reachability.
            Ok(check_key(
                state,
                provider,
                SecretString::from(String::new()),
                &base_url,
                draft.llama_flavour,
            )
            .await)
        }
        None => Ok(KeyCheck {
            valid: false,
            message: format!(
                "no key: this server has no Cover-managed {provider} key; enter your own"
            ),
            latency_ms: 0,
        }),
    }
}

fn open_key(state: &AppState, project_id: &str, sealed: &Sealed) -> Result<SecretString> {
    state
        .keyring
        .open(project_id, sealed)
        .map_err(Error::internal)
}

/// Compare's Select button and the cost page's Switch Model: the same update
/// path as the settings page, changing provider and model.
pub async fn select_model(
    state: &AppState,
    project_id: &str,
    actor: Option<&str>,
    model: &str,
) -> Result<LlmConfig> {
    let info = state.catalog.model(model).ok_or_else(|| {
        Error::App(AppError::invalid(
            "model",
            format!("unknown model `{model}`"),
        ))
    })?;
    update(
        state,
        project_id,
        actor,
        LlmConfigPatch {
            provider: Some(info.provider),
            model: Some(info.id.clone()),
            ..LlmConfigPatch::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        crate::server::catalog::load().unwrap()
    }

    fn patch(value: serde_json::Value) -> LlmConfigPatch {
        serde_json::from_value(value).unwrap()
    }

    fn fields(result: std::result::Result<Draft, Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn new_projects_start_on_claude_3_5_sonnet_with_valid_parameters() {
        let catalog = catalog();
        let draft = Draft::default_for(&catalog);
        assert_eq!(
            (draft.provider, draft.model.as_str()),
            (ProviderId::Claude, "claude-3-5-sonnet-20241022")
        );
        assert_eq!(draft.parameters.max_tokens, Some(4096));
        assert!(apply(&catalog, &draft, &LlmConfigPatch::default()).is_ok());
    }

    #[test]
    fn switching_provider_picks_its_default_model_and_drops_foreign_parameters() {
        let catalog = catalog();
        let mut openai = Draft::default_for(&catalog);
        openai.provider = ProviderId::OpenAi;
        openai.model = "gpt-4o".into();
        openai.parameters.frequency_penalty = Some(0.5);
        openai.parameters.temperature = Some(1.6);
        let claude = apply(&catalog, &openai, &patch(json!({"provider": "claude"}))).unwrap();
        assert_eq!(claude.model, "claude-3-5-sonnet-20241022");
        assert_eq!(claude.parameters.frequency_penalty, None);
        assert_eq!(claude.parameters.temperature, Some(1.0));
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_field() {
        let catalog = catalog();
        let draft = Draft::default_for(&catalog);
        let result = apply(
            &catalog,
            &draft,
            &patch(json!({
                "parameters": {"temperature": 1.5, "maxTokens": 9000, "topP": 2, "frequencyPenalty": 1},
                "fallbackConfig": {"enabled": true, "provider": "openai", "model": "claude-3-opus-20240229", "retryAttempts": 11},
                "baseUrl": "ftp://example.com"
            })),
        );
        assert_eq!(
            fields(result),
            [
                "parameters.temperature",
                "parameters.topP",
                "parameters.frequencyPenalty",
                "parameters.maxTokens",
                "fallbackConfig.model",
                "fallbackConfig.retryAttempts",
                "baseUrl"
            ]
        );
    }

    #[test]
    fn a_model_of_another_provider_or_an_unknown_model_is_refused() {
        let catalog = catalog();
        let draft = Draft::default_for(&catalog);
        assert_eq!(
            fields(apply(&catalog, &draft, &patch(json!({"model": "gpt-4o"})))),
            ["model"]
        );
        assert_eq!(
            fields(apply(
                &catalog,
                &draft,
                &patch(json!({"model": "claude-9"}))
            )),
            ["model"]
        );
        assert_eq!(
            fields(apply(
                &catalog,
                &draft,
                &patch(json!({"parameters": {"temprature": 1}}))
            )),
            ["parameters.temprature"]
        );
    }

    #[test]
    fn a_smaller_model_caps_max_tokens_unless_the_patch_sets_them() {
        let catalog = catalog();
        let mut draft = Draft::default_for(&catalog);
        draft.parameters.max_tokens = Some(8192);
        let opus = apply(
            &catalog,
            &draft,
            &patch(json!({"model": "claude-3-opus-20240229"})),
        )
        .unwrap();
        assert_eq!(opus.parameters.max_tokens, Some(4096));
        let explicit = apply(
            &catalog,
            &draft,
            &patch(json!({"model": "claude-3-opus-20240229", "parameters": {"maxTokens": 8192}})),
        );
        assert_eq!(fields(explicit), ["parameters.maxTokens"]);
    }

    #[test]
    fn parameters_merge_and_null_removes_one() {
        let catalog = catalog();
        let draft = Draft::default_for(&catalog);
        let merged = apply(
            &catalog,
            &draft,
            &patch(json!({"parameters": {"temperature": 0.2, "topP": null}})),
        )
        .unwrap();
        assert_eq!(merged.parameters.temperature, Some(0.2));
        assert_eq!(merged.parameters.top_p, None);
        assert_eq!(merged.parameters.max_tokens, Some(4096));
    }

    #[test]
    fn a_typed_key_implies_bring_your_own_key() {
        let catalog = catalog();
        let draft = Draft::default_for(&catalog);
        let byok = apply(&catalog, &draft, &patch(json!({"apiKey": "sk-ant-x"}))).unwrap();
        assert_eq!(byok.key_source, KeySource::Byok);
    }
}
