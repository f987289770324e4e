//! Turning a project's configuration into router targets: which key each
//! provider call uses, which parameters a model takes, and the circuit-breaker
//! identity of a provider + key. Shared by the chat and by Compare on a sample.

use crate::model::catalog::{ModelInfo, ProviderId};
use crate::model::llm_config::KeySource;
use crate::model::parameters::ModelLimits;
use crate::model::parameters::Parameters;
use crate::model::recommend::blended_cost;
use crate::server::error::Result;
use crate::server::llm::build_provider;
use crate::server::llm::router::{Target, TargetRole};
use crate::server::services::llm_settings::{self, base_url_for, parameters_for, Draft};
use crate::server::state::AppState;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A short, stable fingerprint of a key for the circuit breaker (never the key).
fn key_fingerprint(key: Option<&SecretString>) -> String {
    match key {
        None => "none".into(),
        Some(key) => Sha256::digest(key.expose_secret().as_bytes())
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// Which models an answer may come from, in order: the pinned model, the
/// configured fallback, then a cheaper model of the pinned provider (graceful
/// degradation). Without fallback only the pinned model is tried. The budget
/// status reads the same chain.
pub fn chain(
    state: &AppState,
    draft: &Draft,
    needs_vision: bool,
) -> Vec<(ProviderId, String, TargetRole)> {
    let mut chain = vec![(draft.provider, draft.model.clone(), TargetRole::Primary)];
    if !draft.fallback.enabled {
        return chain;
    }
    let fallback = &draft.fallback;
    if fallback.model != draft.model {
        chain.push((
            fallback.provider,
            fallback.model.clone(),
            TargetRole::Fallback,
        ));
    }
    let primary_cost = state.catalog.model(&draft.model).map(blended_cost);
    let cheaper = state
        .catalog
        .models_of(draft.provider)
        .filter(|m| !m.legacy && m.id != draft.model && m.id != fallback.model)
        .filter(|m| m.capabilities.vision || !needs_vision)
        .filter(|m| primary_cost.is_some_and(|p| blended_cost(m) < p))
        .min_by_key(|m| blended_cost(m));
    if let Some(model) = cheaper {
        chain.push((draft.provider, model.id.clone(), TargetRole::Degraded));
    }
    chain
}

/// The parameters `model` is called with: the configuration's own for the
/// configured model; for any other model (a fallback, a cheaper model, a
/// comparison) only what that provider takes, max tokens capped at its maximum.
pub fn chain_parameters(draft: &Draft, model: &ModelInfo) -> Parameters {
    if model.id == draft.model {
        draft.parameters.clone()
    } else {
        parameters_for(model.provider, ModelLimits::from(model), &draft.parameters)
    }
}

/// The router targets of an answer under the project's configuration: the
/// chain of [`chain`], each with its key and parameters.
pub async fn targets(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    needs_vision: bool,
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for (_, model_id, role) in chain(state, draft, needs_vision) {
        if let Some(model) = state.catalog.model(&model_id) {
            let attempts = draft.fallback.retry_attempts;
            targets.push(target(state, project_id, draft, model, role, attempts).await?);
        }
    }
    Ok(targets)
}

/// The router target for `model` under the project's configuration `draft`:
/// the project's key for the model's provider, the configured parameters (as
/// that model takes them, unless it is the configured primary) and `attempts`.
pub async fn target(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    model: &ModelInfo,
    role: TargetRole,
    attempts: u32,
) -> Result<Target> {
    let provider = model.provider;
    let limits = ModelLimits::from(model);
    let key = llm_settings::project_key(state, project_id, draft, provider).await?;
    let managed_key = matches!(key, Some((_, KeySource::Managed)));
    let key = key.map(|(key, _)| key);
    let breaker_key = format!("{provider}:{}", key_fingerprint(key.as_ref()));
    let parameters = chain_parameters(draft, model);
    let base_url = base_url_for(state, draft, provider);
    Ok(Target {
        provider: build_provider(
            state.executor_for(provider, &base_url),
            provider,
            &base_url,
            key,
            draft.llama_flavour,
        ),
        provider_id: provider,
        model: model.id.clone(),
        api_model: model.ollama_tag.clone().unwrap_or_else(|| model.id.clone()),
        name: model.name.clone(),
        breaker_key,
        managed_key,
        role,
        parameters,
        limits,
        attempts: attempts.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_tells_keys_apart_without_revealing_them() {
        let a = SecretString::from("sk-ant-api03-first-key".to_owned());
        let b = SecretString::from("sk-ant-api03-other-key".to_owned());
        let fa = key_fingerprint(Some(&a));
        assert_eq!(fa.len(), 8);
        assert_eq!(fa, key_fingerprint(Some(&a)));
        assert_ne!(fa, key_fingerprint(Some(&b)));
        assert!(!fa.contains("sk-"));
        assert_eq!(key_fingerprint(None), "none");
    }
}
