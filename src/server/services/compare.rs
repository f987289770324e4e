//! Compare on a sample (`POST /api/llm/compare`, the Compare page's button):
//! one sample question sent to several models side by side with the project's
//! keys and parameters. Each model gets one attempt through the router (its
//! time limits and circuit breakers apply, no fallback: the point is to see
//! each model), and every attempt is billed in the usage ledger like any other.

use crate::error::AppError;
use crate::model::catalog::ProviderId;
use crate::model::chat::MAX_MESSAGE_CHARS;
use crate::model::costs::{CompareRequest, CompareResult};
use crate::model::llm_config::MAX_SYSTEM_PROMPT_CHARS;
use crate::server::error::{Error, Result};
use crate::server::ledger::pricing::UsageContext;
use crate::server::llm::router::{Route, TargetRole};
use crate::server::llm::{Message, ResponseFormat, Role, ToolChoice};
use crate::server::services::metering::MeteredSink;
use crate::server::services::routing;
use crate::server::services::{budgets, llm_settings};
use crate::server::state::AppState;
use std::time::Instant;

/// Most models one comparison may ask.
pub const MAX_MODELS: usize = 6;

fn validate(state: &AppState, request: &CompareRequest) -> Result<()> {
    let prompt = request.prompt.trim();
    if prompt.is_empty() {
        return Err(AppError::invalid("prompt", "write a sample question").into());
    }
    if request.prompt.chars().count() > MAX_MESSAGE_CHARS {
        return Err(
            AppError::invalid("prompt", format!("at most {MAX_MESSAGE_CHARS} characters")).into(),
        );
    }
    if request
        .system_prompt
        .as_ref()
        .is_some_and(|prompt| prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS)
    {
        return Err(AppError::invalid(
            "systemPrompt",
            format!("at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
        )
        .into());
    }
    if request.models.is_empty() || request.models.len() > MAX_MODELS {
        return Err(AppError::invalid("models", format!("choose 1 to {MAX_MODELS} models")).into());
    }
    for (i, model) in request.models.iter().enumerate() {
        if state.catalog.chat_model(model).is_none() {
            return Err(AppError::invalid(
                &format!("models[{i}]"),
                format!("unknown model `{model}`"),
            )
            .into());
        }
        if request.models[..i].contains(model) {
            return Err(AppError::invalid(
                &format!("models[{i}]"),
                format!("`{model}` is listed twice"),
            )
            .into());
        }
    }
    Ok(())
}

impl CompareResult {
    /// A model the budget did not admit: no request was sent.
    fn refused(model: String, name: String, provider: ProviderId, refusal: &Error) -> Self {
        CompareResult {
            model,
            name,
            provider,
            content: String::new(),
            error: Some(refusal.to_string()),
            latency_ms: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanos: Some(0),
        }
    }
}

/// Sends the sample to every model at once, each admitted by the budget
/// first; answers come back in the order asked.
pub async fn sample(state: &AppState, request: &CompareRequest) -> Result<Vec<CompareResult>> {
    validate(state, request)?;
    let (config, draft) = llm_settings::current(state, &request.project_id).await?;
    let system = request
        .system_prompt
        .clone()
        .unwrap_or_else(|| draft.system_prompt.clone());
    let mut messages = Vec::with_capacity(2);
    if !system.trim().is_empty() {
        messages.push(Message::text(Role::System, system));
    }
    messages.push(Message::text(Role::User, request.prompt.trim()));

    let mut runs = Vec::with_capacity(request.models.len());
    for model_id in &request.models {
        let Some(model) = state.catalog.chat_model(model_id) else {
            continue;
        };
        let target = routing::target(
            state,
            &request.project_id,
            &draft,
            model,
            TargetRole::Primary,
            1,
        )
        .await?;
        let mut route = Route {
            targets: vec![target],
            messages: messages.clone(),
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            response_format: ResponseFormat::Text,
            restart_after_output: true,
        };
        // The one budget gate: each model's answer is admitted (and its most
        // cost held) before it is asked, like a chat answer.
        let admission = budgets::admit(state, &request.project_id, &mut route, None).await;
        // Each model's answer is a request of its own.
        let sink = MeteredSink::new(
            state,
            UsageContext::new(&request.project_id, Some(config.version)),
        );
        let (id, name, provider) = (model.id.clone(), model.name.clone(), model.provider);
        runs.push(async move {
            let mut admission = match admission {
                Ok(admission) => admission,
                Err(refused) => return CompareResult::refused(id, name, provider, &refused),
            };
            let started = Instant::now();
            let outcome = state.router.generate(route, &sink).await;
            match state.ledger.settle(admission.settlement(&sink)).await {
                Ok(month) => budgets::after_settlement(state, &admission, month).await,
                Err(error) => tracing::error!(%error, "settling a comparison's hold failed"),
            }
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let cost_nanos = sink.totals().cost();
            match outcome {
                Ok(routed) => CompareResult {
                    model: id,
                    name,
                    provider,
                    content: routed.response.text(),
                    error: None,
                    latency_ms,
                    input_tokens: routed.response.usage.input_tokens
                        + routed.response.usage.cache_read_tokens
                        + routed.response.usage.cache_write_tokens,
                    output_tokens: routed.response.usage.output_tokens,
                    cost_nanos,
                },
                Err(failure) => CompareResult {
                    model: id,
                    name,
                    provider,
                    content: String::new(),
                    error: Some(failure.error.to_string()),
                    latency_ms,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost_nanos,
                },
            }
        });
    }
    let results = futures::future::join_all(runs).await;
    // Answered only once every attempt's row is stored: a cost shown is never lost.
    state.ledger.flush().await;
    Ok(results)
}
