//! A project's LLM configuration: defaults for new projects, reading the current
//! version, and saving a change as a new version after validating every field
//! (catalog membership, per-provider parameter ranges, fallback, URLs) and, for
//! a new BYOK key, checking it with the provider before it is encrypted and
//! stored. Nothing is saved unless everything is valid.

pub mod draft;

use crate::error::{AppError, FieldError};
use crate::model::catalog::{Catalog, ModelInfo, ProviderId};
use crate::model::llm_config::{
    fallback_problems, FallbackConfig, KeyCheck, KeySource, LlamaFlavour, LlmConfig,
    LlmConfigPatch, MAX_SYSTEM_PROMPT_CHARS,
};
use crate::model::parameters::{validate_parameters, ModelLimits, Param, Parameters};
use crate::server::crypto::{mask_key, Sealed};
use crate::server::db::llm_configs::{self, ConfigRow};
use crate::server::db::provider_keys::{self, StoredKey};
use crate::server::db::rfc3339;
use crate::server::error::{Error, Result};
use crate::server::llm::{build_provider, ErrorKind};
use crate::server::state::AppState;
pub use draft::{Draft, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Instant;

/// The project's parameters as another model (a fallback) takes them:
/// unsupported ones dropped, max tokens capped at the model's maximum.
pub fn parameters_for(provider: ProviderId, limits: ModelLimits, base: &Parameters) -> Parameters {
    let mut parameters = base.clone();
    parameters.keep_supported(provider);
    parameters.max_tokens = parameters
        .max_tokens
        .map(|m| m.min(limits.max_output_tokens));
    parameters
}

/// The key the project's calls to `provider` use, and whose it is: the
/// project's own stored key when it brings its own (always, for a provider
/// other than the configured one, if it stored one), else Cover's managed key
/// (whose spend the workspace's managed-key budget bounds); `None` when there
/// is none (self-hosted Llama usually needs none).
pub async fn project_key(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    provider: ProviderId,
) -> Result<Option<(SecretString, KeySource)>> {
    let own_key_first = provider != draft.provider || draft.key_source == KeySource::Byok;
    if own_key_first {
        let key = (project_id.to_owned(), provider.as_str().to_owned());
        let stored = state
            .hot
            .keys
            .get_or_load(&key, || {
                provider_keys::get(&state.db.pool, project_id, provider.as_str())
            })
            .await?;
        if let Some(stored) = stored {
            let key = open_key(state, project_id, &stored.sealed)?;
            return Ok(Some((key, KeySource::Byok)));
        }
    }
    Ok(state
        .managed_keys
        .get(provider)
        .map(|key| (key.clone(), KeySource::Managed)))
}

/// The base URL a project's calls to `provider` go to.
pub fn base_url_for(state: &AppState, draft: &Draft, provider: ProviderId) -> String {
    match (&draft.base_url, provider) {
        (Some(url), ProviderId::Llama) => url.clone(),
        _ => state.base_urls.base_url(provider).to_owned(),
    }
}

/// Version `version` of a project's configuration (the one a conversation
/// pinned).
pub async fn pinned_draft(state: &AppState, project_id: &str, version: i64) -> Result<Arc<Draft>> {
    draft::pinned(&state.db.pool, &state.pinned_configs, project_id, version).await
}

/// The current configuration of a project (the newest version; saved on
/// another app server, within a second).
pub async fn current(state: &AppState, project_id: &str) -> Result<(ConfigRow, Draft)> {
    let row = state
        .hot
        .configs
        .get_or_load(&project_id.to_owned(), || async {
            llm_configs::latest(&state.db.pool, project_id)
                .await?
                .ok_or(Error::App(AppError::NotFound))
        })
        .await?;
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
    let embedding_model_in_use = embedding_model_of(&state.catalog, &draft)
        .map_or_else(String::new, |model| model.id.clone());
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
        embedding_model_in_use,
        base_url: draft.base_url,
        llama_flavour: draft.llama_flavour,
        embedding_model: draft.embedding_model,
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
    if let Some(url) = draft
        .base_url
        .as_deref()
        .filter(|_| draft.base_url != before.base_url)
    {
        state
            .outbound
            .check_url(url)
            .map_err(|refusal| AppError::invalid("baseUrl", refusal.to_string()))?;
    }

    let new_key = match patch.api_key.as_ref().map(|key| key.expose().trim()) {
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

    // After every version, the project's own and its experiments' arms.
    let version = llm_configs::next_version(&state.db.pool, project_id)
        .await?
        .max(row.version + 1);
    let new_row = draft.to_row(project_id, version, actor);
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
    state.hot.configs.forget(&project_id.to_owned());
    if let Some(key) = &sealed {
        state
            .hot
            .keys
            .forget(&(project_id.to_owned(), key.provider.clone()));
    }
    // Nobody listening (no server started) is not an error.
    let _ = state.config_saved.send(project_id.to_owned());
    view(state, &new_row, draft).await
}

/// Collects every invalid field of a patch, so one answer names them all.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, message: String) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message,
        });
    }
}

/// The patched configuration, or every invalid field. Pure: no I/O. One
/// function per field group, in the order their rules depend on each other
/// (the model decides the parameters' limits and the fallback's rule).
pub fn apply(
    catalog: &Catalog,
    before: &Draft,
    patch: &LlmConfigPatch,
) -> std::result::Result<Draft, Vec<FieldError>> {
    let mut problems = Problems::default();
    let mut draft = before.clone();
    apply_model(catalog, &mut draft, patch, &mut problems);
    apply_parameters(catalog, before, &mut draft, patch, &mut problems);
    apply_prompt_and_key(&mut draft, patch, &mut problems);
    apply_fallback(catalog, &mut draft, patch, &mut problems);
    apply_llama_server(&mut draft, patch, &mut problems);
    apply_embedding_model(catalog, &mut draft, patch, &mut problems);
    if problems.0.is_empty() {
        Ok(draft)
    } else {
        Err(problems.0)
    }
}

/// Provider and model: a new provider brings its default model and keeps only
/// the parameters it takes; a model must be one of the provider's.
fn apply_model(
    catalog: &Catalog,
    draft: &mut Draft,
    patch: &LlmConfigPatch,
    problems: &mut Problems,
) {
    if let Some(provider) = patch.provider {
        if provider != draft.provider {
            draft.provider = provider;
            if let Some(info) = catalog.provider(provider) {
                draft.model = info.default_model.clone();
            }
            draft.parameters.keep_supported(provider);
        }
    }
    if let Some(model) = &patch.model {
        match catalog.chat_model(model) {
            Some(info) if info.provider == draft.provider => draft.model = info.id.clone(),
            Some(info) => problems.add(
                "model",
                format!(
                    "{} is a {} model, not a {} one",
                    info.name, info.provider, draft.provider
                ),
            ),
            None => problems.add(
                "model",
                format!(
                    "unknown model `{model}`; see GET /api/llm/providers/{}/models",
                    draft.provider
                ),
            ),
        }
    }
}

/// Parameters: merged into the current ones (null clears one), then checked
/// against the provider's ranges and the model's limits; a new model caps a
/// max tokens it cannot give unless the patch sets one.
fn apply_parameters(
    catalog: &Catalog,
    before: &Draft,
    draft: &mut Draft,
    patch: &LlmConfigPatch,
    problems: &mut Problems,
) {
    let limits = catalog.model(&draft.model).map(ModelLimits::from);
    let sets_max_tokens = patch
        .parameters
        .as_ref()
        .is_some_and(|p| p.changes(Param::MaxTokens));
    if draft.model != before.model && !sets_max_tokens {
        if let (Some(limits), Some(max)) = (limits, draft.parameters.max_tokens) {
            draft.parameters.max_tokens = Some(max.min(limits.max_output_tokens));
        }
    }
    if let Some(changes) = &patch.parameters {
        for problem in &changes.problems {
            problems.add(&problem.field, problem.message.clone());
        }
        changes.apply_to(&mut draft.parameters);
    }
    if let Err(param_errors) =
        validate_parameters(draft.provider, &draft.parameters, limits.as_ref())
    {
        for e in param_errors {
            problems.add(
                &format!("parameters.{}", e.field),
                format!("{} (allowed: {})", e.message, e.allowed),
            );
        }
    }
}

/// System prompt and key source (a new key means the project's own key).
fn apply_prompt_and_key(draft: &mut Draft, patch: &LlmConfigPatch, problems: &mut Problems) {
    if let Some(prompt) = &patch.system_prompt {
        if prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS {
            problems.add(
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
    if patch.api_key.as_ref().is_some_and(|k| !k.is_blank()) {
        draft.key_source = KeySource::Byok;
    }
}

/// Fallback: a known model of its provider, with the shared fallback rules.
fn apply_fallback(
    catalog: &Catalog,
    draft: &mut Draft,
    patch: &LlmConfigPatch,
    problems: &mut Problems,
) {
    if let Some(fallback) = &patch.fallback_config {
        match catalog.chat_model(&fallback.model) {
            Some(info) if info.provider == fallback.provider => {
                let fallback = FallbackConfig {
                    model: info.id.clone(),
                    ..fallback.clone()
                };
                draft.fallback = fallback;
            }
            Some(info) => problems.add(
                "fallbackConfig.model",
                format!(
                    "{} is a {} model, not a {} one",
                    info.name, info.provider, fallback.provider
                ),
            ),
            None => problems.add(
                "fallbackConfig.model",
                format!("unknown model `{}`", fallback.model),
            ),
        }
    }
    let retry_attempts = patch
        .fallback_config
        .as_ref()
        .map_or(draft.fallback.retry_attempts, |f| f.retry_attempts);
    for problem in fallback_problems(
        draft.fallback.enabled,
        &draft.fallback.model,
        retry_attempts,
        &draft.model,
    ) {
        problems.add(&problem.field, problem.message);
    }
}

/// The self-hosted Llama server: an http(s) URL (empty removes it) and its API style.
fn apply_llama_server(draft: &mut Draft, patch: &LlmConfigPatch, problems: &mut Problems) {
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
                _ => problems.add(
                    "baseUrl",
                    "must be an http:// or https:// URL, e.g. http://127.0.0.1:11434".into(),
                ),
            }
        }
    }
    if let Some(flavour) = patch.llama_flavour {
        draft.llama_flavour = flavour;
    }
}

/// The knowledge base's embedding model: a catalog embedding model (empty
/// follows the provider again).
fn apply_embedding_model(
    catalog: &Catalog,
    draft: &mut Draft,
    patch: &LlmConfigPatch,
    problems: &mut Problems,
) {
    let Some(model) = patch.embedding_model.as_deref().map(str::trim) else {
        return;
    };
    if model.is_empty() {
        draft.embedding_model = None;
        return;
    }
    match catalog.embedding_model(model) {
        Some(info) => draft.embedding_model = Some(info.id.clone()),
        None => problems.add(
            "embeddingModel",
            format!(
                "unknown embedding model `{model}`; use one of {}, or leave it empty to follow the provider",
                catalog
                    .embedding_models
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// The embedding model a configuration uses: the fixed one, else its
/// provider's default. `None` only for a catalog without one.
pub fn embedding_model_of<'c>(catalog: &'c Catalog, draft: &Draft) -> Option<&'c ModelInfo> {
    catalog.embedding_model_for(draft.provider, draft.embedding_model.as_deref())
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
    let executor = state.executor_for(provider, base_url);
    let client = build_provider(executor, provider, base_url, Some(key), flavour);
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
        None => project_key(state, project_id, &draft, provider)
            .await?
            .map(|(key, _)| key),
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
    let info = state.catalog.chat_model(model).ok_or_else(|| {
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
