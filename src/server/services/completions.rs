//! Completions for programs: what the gateway's SDK-compatible endpoints
//! (`/v1/chat/completions`, `/v1/messages`) run. A request carries its own
//! messages (nothing is stored but its usage), names a model of any provider
//! or `cover/default`, and goes through everything a chat answer does: the
//! per-server answer bound, the project's key per provider, its fallback
//! chain, retries and circuit breakers (the router), the one budget gate, and
//! a priced ledger row per attempt, durable before the answer is returned.
//!
//! ```text
//! prepare: slot ─► model + parameters checked ─► targets (requested model, then the project's chain) ─► budget admits
//! complete:        router.generate ───────────────────────────────┐
//! complete_stream: router.stream ─► CompletionEvents (first token ─┼─► settle (rows + hold, one commit) ─► Completion
//!                  fixes who answers; a later break ends with Failed)
//! ```

use crate::error::AppError;
use crate::model::catalog::{JsonOutput, ModelInfo, ProviderId};
use crate::model::llm_config::KeySource;
use crate::model::parameters::{validate_parameters, ModelLimits, Parameters};
use crate::server::error::{Error, Result};
use crate::server::ledger::pricing::UsageContext;
use crate::server::llm::router::{Next, Route, RouterEvent, Switch, Target};
use crate::server::llm::{
    ContentPart, ErrorKind, GenerateResponse, LlmError, Message, ResponseFormat, ToolChoice,
    ToolDefinition,
};
use crate::server::services::budgets::{self, Admission};
use crate::server::services::capacity::AnswerSlot;
use crate::server::services::experiments;
use crate::server::services::llm_settings::{self, parameters_for, Draft};
use crate::server::services::metering::{MeteredSink, Totals};
use crate::server::services::routing;
use crate::server::state::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument;

/// The model name that means "whatever the project is configured with".
pub const PROJECT_MODEL: &str = "cover/default";

/// Events buffered between a streamed completion's task and its response.
const EVENT_BUFFER: usize = 64;

/// Parameters a request sets for itself; those it leaves unset keep the
/// project's configured values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u32>,
    /// Most output tokens.
    pub max_tokens: Option<u32>,
    /// OpenAI frequency penalty.
    pub frequency_penalty: Option<f64>,
    /// OpenAI presence penalty.
    pub presence_penalty: Option<f64>,
    /// Stop sequences.
    pub stop: Option<Vec<String>>,
}

impl Overrides {
    fn apply_to(&self, parameters: &mut Parameters) {
        let set = |value: Option<f64>, slot: &mut Option<f64>| {
            if value.is_some() {
                *slot = value;
            }
        };
        set(self.temperature, &mut parameters.temperature);
        set(self.top_p, &mut parameters.top_p);
        set(self.frequency_penalty, &mut parameters.frequency_penalty);
        set(self.presence_penalty, &mut parameters.presence_penalty);
        if self.top_k.is_some() {
            parameters.top_k = self.top_k;
        }
        if self.max_tokens.is_some() {
            parameters.max_tokens = self.max_tokens;
        }
        if let Some(stop) = &self.stop {
            parameters.stop = stop.clone();
        }
    }
}

/// One program request, already read from its wire format.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// A catalog id or alias of any provider, or [`PROJECT_MODEL`].
    pub model: String,
    /// The whole conversation, system messages included.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// How it must use them.
    pub tool_choice: ToolChoice,
    /// The shape its text must take (the model must offer it).
    pub response_format: ResponseFormat,
    /// The request's own parameters.
    pub overrides: Overrides,
    /// The program's end user (OpenAI's `user`, Anthropic's
    /// `metadata.user_id`): the unit a running experiment assigns to an arm,
    /// so one user stays on one arm. Without it each request is its own unit.
    pub end_user: Option<String>,
}

/// The catalog's chat models that can be held to JSON at `needs`, for an error
/// message.
fn json_models(state: &AppState, needs: JsonOutput) -> String {
    state
        .catalog
        .models
        .iter()
        .filter(|m| !m.legacy && m.capabilities.json_output >= needs)
        .map(|m| m.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who answered a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Answerer {
    /// Its provider.
    pub provider: ProviderId,
    /// Its catalog model id.
    pub model: String,
}

/// A completion served by another model than the one asked for, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackUsed {
    /// The model asked for (or the project's, for `cover/default`).
    pub from: String,
    /// The failure class that made the router move on (`rate_limited`, …),
    /// or `budget` when the budget chose a cheaper model.
    pub reason: String,
}

/// A finished completion.
#[derive(Debug)]
pub struct Completion {
    /// The answer: content, tool calls, finish reason, usage.
    pub response: GenerateResponse,
    /// Who gave it.
    pub answerer: Answerer,
    /// Set when it is not the model asked for.
    pub fallback: Option<FallbackUsed>,
    /// What every attempt cost; `None` when one had no known price.
    pub cost_nanos: Option<i64>,
    /// The ledger's id of the request (every attempt's row carries it).
    pub request_id: String,
    /// Time spent in Cover: the request's whole time less the time its
    /// attempts waited on providers.
    pub overhead: Duration,
}

/// What a streamed completion sends, in order: `Started`, deltas, then
/// exactly one of `Finished` or `Failed`.
#[derive(Debug)]
pub enum CompletionEvent {
    /// The first token came: who answers is now fixed.
    Started {
        /// The answering model.
        answerer: Answerer,
        /// Set when it is not the model asked for.
        fallback: Option<FallbackUsed>,
        /// The ledger's id of the request.
        request_id: String,
    },
    /// A piece of text.
    TextDelta(String),
    /// A piece of a tool call.
    ToolCallDelta {
        /// The call's position in the answer.
        index: u32,
        /// Its id, on its first piece.
        id: Option<String>,
        /// The tool's name, on its first piece.
        name: Option<String>,
        /// A fragment of its JSON arguments.
        arguments: String,
    },
    /// The answer is complete and billed.
    Finished(Box<Completion>),
    /// No model could answer, or the answering one broke after its first
    /// token (a stream cannot take back what it sent: it ends here).
    Failed(CompletionFailure),
}

/// Why a completion failed, after the router's retries and fallbacks.
#[derive(Debug, Clone)]
pub struct CompletionFailure {
    /// The error of the model that decided the outcome.
    pub error: LlmError,
    /// The request's ledger id.
    pub request_id: String,
}

/// The models `project_id` can route to: every catalog model (earlier
/// generations included: a project may still use one) whose provider the
/// project has a key for (its own or Cover's managed key), and the Llama
/// models when it has a Llama server. `/v1/models` lists exactly these and
/// the endpoints accept exactly these.
pub async fn routable_models(state: &AppState, project_id: &str) -> Result<Vec<ModelInfo>> {
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let mut models = Vec::new();
    for provider in ProviderId::ALL {
        if can_route(state, project_id, &draft, provider).await? {
            models.extend(state.catalog.models_of(provider).cloned());
        }
    }
    Ok(models)
}

async fn can_route(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    provider: ProviderId,
) -> Result<bool> {
    if provider == ProviderId::Llama {
        return Ok(draft.provider == ProviderId::Llama || draft.base_url.is_some());
    }
    let draft = draft_for_provider(draft, provider);
    Ok(
        llm_settings::project_key(state, project_id, &draft, provider)
            .await?
            .is_some(),
    )
}

/// The project's configuration with `provider` as the one in use: a provider
/// other than the configured one uses the project's own key when it stored
/// one (else Cover's managed key), as a fallback to it would.
fn draft_for_provider(draft: &Draft, provider: ProviderId) -> Draft {
    let mut draft = draft.clone();
    if provider != draft.provider {
        draft.provider = provider;
        draft.key_source = KeySource::Byok;
    }
    draft
}

/// Runs a completion and waits for the whole answer.
pub async fn complete(
    state: &AppState,
    project_id: &str,
    request: CompletionRequest,
) -> std::result::Result<Completion, CompletionError> {
    let prepared = prepare(state, project_id, request).await?;
    let router = state.router.clone();
    let (route, mut run) = prepared.into_parts();
    // Its own task: a client that leaves does not stop the answer or its billing.
    let handle = state.background.tracker.spawn(
        async move {
            let outcome = router.generate(route, run.sink.as_ref()).await;
            let (answered, switches) = match outcome {
                Ok(routed) => (Ok((routed.target_index, routed.response)), routed.switches),
                Err(failure) => (Err(failure.error), failure.switches),
            };
            run.finish(answered, &switches).await
        }
        .instrument(tracing::info_span!("completion", project = %project_id, streamed = false)),
    );
    handle
        .await
        .map_err(|_| CompletionError::App(Error::internal("a completion task ended early")))?
}

/// Starts a completion as a stream of events. Dropping the receiver (the
/// client left) cancels it; what it produced is billed.
pub async fn complete_stream(
    state: &AppState,
    project_id: &str,
    request: CompletionRequest,
) -> Result<mpsc::Receiver<CompletionEvent>> {
    let prepared = prepare(state, project_id, request).await?;
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let state = state.clone();
    state.background.tracker.clone().spawn(
        async move { prepared.run_streamed(&state, events).await }
            .instrument(tracing::info_span!("completion", project = %project_id, streamed = true)),
    );
    Ok(receiver)
}

/// Why a completion did not produce an answer.
#[derive(Debug)]
pub enum CompletionError {
    /// Refused before any model was asked (bad input, budget, overload).
    App(Error),
    /// Every model the route could go to failed.
    Failed(CompletionFailure),
}

impl From<Error> for CompletionError {
    fn from(error: Error) -> Self {
        CompletionError::App(error)
    }
}

/// A completion admitted and ready to run.
struct Prepared {
    route: Route,
    run: Run,
}

/// What a running completion keeps to settle and report itself.
struct Run {
    state: AppState,
    targets: Vec<Target>,
    asked_for: String,
    sink: Arc<MeteredSink>,
    budget: Admission,
    _slot: AnswerSlot,
    started: Instant,
}

impl Prepared {
    fn into_parts(self) -> (Route, Run) {
        (self.route, self.run)
    }

    async fn run_streamed(self, state: &AppState, events: mpsc::Sender<CompletionEvent>) {
        let (route, mut run) = self.into_parts();
        let mut stream = state.router.stream(route, run.sink.clone());
        let stopping = state.background.stopping.clone();
        let mut switches: Vec<Switch> = Vec::new();
        let answered = loop {
            let event = match stream.next_for(&events, &stopping).await {
                Next::Abandoned => {
                    stream.cancel().await;
                    break Err(LlmError::new(
                        run.provider_of(0),
                        ErrorKind::Cancelled,
                        "the client went away",
                    ));
                }
                Next::Ended => None,
                Next::Event(event) => Some(event),
            };
            let forward = match event {
                None => {
                    break Err(LlmError::new(
                        run.provider_of(0),
                        ErrorKind::Transient,
                        "the answer ended without a result",
                    ))
                }
                Some(RouterEvent::Switched(switch)) => {
                    switches.push(switch);
                    None
                }
                Some(RouterEvent::Started { target_index, .. }) => Some(CompletionEvent::Started {
                    answerer: run.answerer(target_index),
                    fallback: run.fallback(target_index, &switches),
                    request_id: run.sink.context().request_id.clone(),
                }),
                Some(RouterEvent::TextDelta(text)) => Some(CompletionEvent::TextDelta(text)),
                Some(RouterEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                }) => Some(CompletionEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                }),
                // The client already has this model's first tokens, so the
                // route does not restart on another model (see
                // `restart_after_output`): its `Failed` follows.
                Some(RouterEvent::Interrupted { .. }) => None,
                Some(RouterEvent::Finished {
                    target_index,
                    response,
                    ..
                }) => break Ok((target_index, response)),
                Some(RouterEvent::Failed {
                    error,
                    switches: all,
                }) => {
                    switches = all;
                    break Err(error);
                }
            };
            if let Some(event) = forward {
                let _ = events.send(event).await;
            }
        };
        let last = match run.finish(answered, &switches).await {
            Ok(completion) => CompletionEvent::Finished(Box::new(completion)),
            Err(CompletionError::Failed(failure)) => CompletionEvent::Failed(failure),
            Err(CompletionError::App(error)) => CompletionEvent::Failed(CompletionFailure {
                error: LlmError::new(run.provider_of(0), ErrorKind::Transient, error.to_string()),
                request_id: run.sink.context().request_id.clone(),
            }),
        };
        let _ = events.send(last).await;
    }
}

impl Run {
    fn provider_of(&self, index: usize) -> ProviderId {
        self.targets
            .get(index)
            .or(self.targets.first())
            .map_or(ProviderId::Claude, |t| t.provider_id)
    }

    fn answerer(&self, index: usize) -> Answerer {
        let target = self.targets.get(index);
        Answerer {
            provider: self.provider_of(index),
            model: target.map_or_else(String::new, |t| t.model.clone()),
        }
    }

    fn fallback(&self, index: usize, switches: &[Switch]) -> Option<FallbackUsed> {
        let model = self.targets.get(index)?.model.clone();
        if model == self.asked_for {
            return None;
        }
        let reason = switches.iter().find(|s| s.from_index == 0).map_or_else(
            || "budget".to_owned(),
            |s| s.error.class().as_str().to_owned(),
        );
        Some(FallbackUsed {
            from: self.asked_for.clone(),
            reason,
        })
    }

    /// Settles the budget hold with the attempts' rows (one commit, awaited:
    /// a cost the client is told is stored) and builds the outcome.
    async fn finish(
        &mut self,
        answered: std::result::Result<(usize, GenerateResponse), LlmError>,
        switches: &[Switch],
    ) -> std::result::Result<Completion, CompletionError> {
        match self
            .state
            .ledger
            .settle(self.budget.settlement(&self.sink))
            .await
        {
            Ok(month) => budgets::after_settlement(&self.state, &self.budget, month).await,
            Err(error) => {
                tracing::error!(%error, "settling a completion's hold failed");
                return Err(CompletionError::App(Error::App(AppError::Unavailable)));
            }
        }
        let totals: Totals = self.sink.totals();
        let request_id = self.sink.context().request_id.clone();
        match answered {
            Ok((index, response)) => Ok(Completion {
                response,
                answerer: self.answerer(index),
                fallback: self.fallback(index, switches),
                cost_nanos: totals.cost(),
                request_id,
                overhead: self.started.elapsed().saturating_sub(totals.upstream),
            }),
            Err(error) => Err(CompletionError::Failed(CompletionFailure {
                error,
                request_id,
            })),
        }
    }
}

/// Checks the request, builds its route and has the budget admit it; holds
/// one of the server's answer slots until the completion ends.
async fn prepare(
    state: &AppState,
    project_id: &str,
    request: CompletionRequest,
) -> Result<Prepared> {
    let started = Instant::now();
    let slot = state
        .answer_slots
        .take(project_id)
        .await
        .map_err(Error::App)?;
    if request.messages.is_empty() {
        return Err(Error::App(AppError::invalid(
            "messages",
            "send at least one message",
        )));
    }
    let (config, project_draft) = llm_settings::current(state, project_id).await?;
    // `cover/default` is the project's configuration, or the arm of a running
    // experiment the end user (or, without one, this request) falls on.
    let assigned = if request.model == PROJECT_MODEL {
        let unit = request
            .end_user
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        experiments::assignment(state, project_id, &unit).await?
    } else {
        None
    };
    let (config_version, project_draft) = match assigned {
        Some(arm) => (
            arm.config_version,
            llm_settings::pinned_draft(state, project_id, arm.config_version)
                .await?
                .as_ref()
                .clone(),
        ),
        None => (config.version, project_draft),
    };
    let model = if request.model == PROJECT_MODEL {
        state.catalog.chat_model(&project_draft.model)
    } else {
        state.catalog.chat_model(&request.model)
    }
    .ok_or_else(|| unknown_model(&request.model))?;
    if !can_route(state, project_id, &project_draft, model.provider).await? {
        return Err(Error::App(AppError::invalid(
            "model",
            format!(
                "this project cannot route to `{}`: it has no {} key (add one in the project's LLM settings)",
                request.model,
                model.provider.label()
            ),
        )));
    }
    let draft = requested_draft(&project_draft, model, &request.overrides)?;
    let needs_vision = request.messages.iter().any(|m| {
        m.content
            .iter()
            .any(|p| matches!(p, ContentPart::Image { .. }))
    });
    if needs_vision && !model.capabilities.vision {
        return Err(Error::App(AppError::invalid(
            "messages",
            format!("{} does not read images", model.name),
        )));
    }
    // JSON output: the model asked for must offer it; fallbacks that cannot
    // are left out of the chain rather than answer free text.
    let needs_json = request.response_format.needs();
    if model.capabilities.json_output < needs_json {
        return Err(Error::App(AppError::invalid(
            "response_format",
            format!(
                "{} cannot be held to this response_format; models that can: {}",
                model.name,
                json_models(state, needs_json)
            ),
        )));
    }
    let mut targets = routing::targets(state, project_id, &draft, needs_vision).await?;
    targets.retain(|target| {
        state
            .catalog
            .chat_model(&target.model)
            .is_some_and(|m| m.capabilities.json_output >= needs_json)
    });
    let mut route = Route {
        targets,
        messages: request.messages,
        tools: request.tools,
        tool_choice: request.tool_choice,
        response_format: request.response_format,
        restart_after_output: false,
    };
    // The one budget gate: the most this can cost is held before any call.
    let budget = budgets::admit(state, project_id, &mut route, None).await?;
    let sink = Arc::new(MeteredSink::new(
        state,
        UsageContext::new(project_id, Some(config_version)),
    ));
    Ok(Prepared {
        run: Run {
            state: state.clone(),
            targets: route.targets.clone(),
            asked_for: model.id.clone(),
            sink,
            budget,
            _slot: slot,
            started,
        },
        route,
    })
}

fn unknown_model(model: &str) -> Error {
    Error::App(AppError::invalid(
        "model",
        format!("the model `{model}` does not exist; GET /v1/models lists the ones this project can use"),
    ))
}

/// The project's configuration with `model` as its model and the request's
/// parameters on top, checked against that model's provider and limits (a
/// 422 naming the parameter, in its camelCase name, when one is out of range).
fn requested_draft(project: &Draft, model: &ModelInfo, overrides: &Overrides) -> Result<Draft> {
    let mut draft = draft_for_provider(project, model.provider);
    let limits = ModelLimits::from(model);
    if model.id != project.model {
        draft.parameters = parameters_for(model.provider, limits, &project.parameters);
        draft.model = model.id.clone();
    }
    overrides.apply_to(&mut draft.parameters);
    if let Err(errors) = validate_parameters(model.provider, &draft.parameters, Some(&limits)) {
        let first = errors.into_iter().next();
        return Err(Error::App(first.map_or(AppError::Internal, |e| {
            AppError::invalid(&e.field, e.message)
        })));
    }
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_the_request_sets() {
        let mut parameters = Parameters {
            temperature: Some(0.7),
            top_p: Some(1.0),
            max_tokens: Some(1024),
            stop: vec!["END".into()],
            ..Parameters::default()
        };
        Overrides {
            temperature: Some(0.1),
            stop: Some(Vec::new()),
            ..Overrides::default()
        }
        .apply_to(&mut parameters);
        assert_eq!(parameters.temperature, Some(0.1));
        assert_eq!(parameters.top_p, Some(1.0));
        assert_eq!(parameters.max_tokens, Some(1024));
        assert!(parameters.stop.is_empty(), "an empty list clears them");
    }
}
