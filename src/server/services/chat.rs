//! Conversations: each pins the configuration version it started with (AC-002),
//! so a settings change applies to new conversations only and nothing already
//! said is lost (AC-004). A question is stored with a pending answer, the answer
//! runs through the router (retry, fallback, circuit breaker) in a task of its
//! own, so a client that goes away neither loses the answer nor its usage, and
//! every attempt lands in the usage ledger priced exactly. Before anything is
//! stored, the project's budget admits the answer (reserving its maximum cost,
//! or narrowing the route to a cheaper model or a shorter answer, or refusing
//! with 402); when it ends, the reservation is settled to the real cost.
//!
//! ```text
//! prepare ─► budget admits ─► question + pending answer stored ─► Route (targets: primary, fallback, cheaper model)
//!                                                   │
//!        answer_stream: router.stream ─► ChatEvents (SSE) ─┐
//!        answer:        router.generate ────────────────────┼─► finish: answer row, ChatAnswer, budget settled
//!                                  every attempt ─► MeteredSink ─► ledger (priced, batched)
//! ```

use crate::error::AppError;
use crate::model::catalog::{ModelInfo, ProviderId};
use crate::model::chat::{
    AnswerFacts, ChatAnswer, ChatEvent, ChatMessage, ChatRole, ConversationDetail,
    ConversationSummary, FallbackNotice, ImageAttachment, ImageGeneration, InterruptedAnswer,
    MessageStatus, NewMessage, Rating, IMAGE_MEDIA_TYPES, MAX_IMAGES, MAX_IMAGE_BYTES,
    MAX_MESSAGE_CHARS,
};
use crate::model::knowledge::Citation;
use crate::model::money::format_decimal;
use crate::server::db::conversations::{self, AnswerUpdate, ConversationRow, Exchange, MessageRow};
use crate::server::db::paging::Page;
use crate::server::db::{now_ms, rfc3339};
use crate::server::error::{Error, Result};
use crate::server::ledger::pricing::{token_usage, UsageContext};
use crate::server::ledger::{self, Settlement};
use crate::server::llm::router::{Next, Route, RouterEvent, Switch, Target};
use crate::server::llm::{
    ContentPart, ErrorKind, GenerateResponse, LlmError, Message, ResponseFormat, Role, ToolChoice,
};
use crate::server::services::budgets::{self, Admission};
use crate::server::services::capacity::AnswerSlot;
use crate::server::services::experiments;
use crate::server::services::knowledge;
use crate::server::services::llm_settings::{self, Draft};
use crate::server::services::metering::MeteredSink;
use crate::server::services::routing;
use crate::server::state::AppState;
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Title of a conversation before its first question.
const UNTITLED: &str = "New conversation";
/// Characters of the first question used as the title.
const TITLE_CHARS: usize = 60;
/// Events buffered between an answer's task and its HTTP response.
const EVENT_BUFFER: usize = 64;
/// Messages one conversation holds at most (500 questions and answers): a
/// bound on what reading it returns and what every question re-reads; the
/// user starts a new conversation past it.
pub const MAX_CONVERSATION_MESSAGES: usize = 1_000;

/// Starts a conversation on the project's current configuration, or on an
/// experiment arm's when one is running.
pub async fn create(
    state: &AppState,
    project_id: &str,
    actor: Option<&str>,
) -> Result<ConversationSummary> {
    let (config, _) = llm_settings::current(state, project_id).await?;
    let conversation_id = uuid::Uuid::new_v4().to_string();
    // A running experiment assigns the conversation to an arm, whose
    // configuration it pins like any version.
    let assigned = experiments::assignment(state, project_id, &conversation_id).await?;
    let (config_version, provider, model) = match &assigned {
        Some(arm) => (arm.config_version, arm.provider.clone(), arm.model.clone()),
        None => (config.version, config.provider, config.model),
    };
    let now = now_ms();
    let row = ConversationRow {
        conversation_id,
        project_id: project_id.to_owned(),
        title: UNTITLED.to_owned(),
        config_version,
        provider,
        model,
        message_count: 0,
        created_by: actor.map(str::to_owned),
        created_at: now,
        updated_at: now,
        cost_nanos: 0,
        unpriced: false,
    };
    let arm = assigned
        .as_ref()
        .map(|a| (a.experiment_id.as_str(), a.arm.as_str()));
    conversations::insert(&state.db.writer, &row, arm).await?;
    Ok(summary(state, &row))
}

/// One page of the project's conversations, most recently active first,
/// and the next page's cursor if there are more.
pub async fn list(
    state: &AppState,
    project_id: &str,
    page: &Page,
) -> Result<(Vec<ConversationSummary>, Option<String>)> {
    let (rows, next) = conversations::list(&state.db.pool, project_id, page).await?;
    Ok((rows.iter().map(|row| summary(state, row)).collect(), next))
}

/// One conversation with its messages.
pub async fn get(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
) -> Result<ConversationDetail> {
    let (row, stored) = with_messages(state, project_id, conversation_id).await?;
    let messages = stored
        .iter()
        .map(chat_message)
        .collect::<Result<Vec<_>>>()?;
    Ok(ConversationDetail {
        summary: summary(state, &row),
        vision: state
            .catalog
            .model(&row.model)
            .is_some_and(|m| m.capabilities.vision),
        image_generation: ProviderId::parse(&row.provider)
            .and_then(|provider| ImageGeneration::of_provider(&state.catalog, provider)),
        messages,
    })
}

/// Sets or clears the thumbs up/down of an answer.
pub async fn rate(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
    message_id: &str,
    rating: Option<Rating>,
) -> Result<()> {
    find(state, project_id, conversation_id).await?;
    let mut tx = state.db.writer.begin().await?;
    let Some(before) =
        conversations::swap_rating(&mut tx, conversation_id, message_id, rating).await?
    else {
        return Err(AppError::NotFound.into());
    };
    ledger::performance::rerate(&mut tx, message_id, before, rating).await?;
    tx.commit().await?;
    Ok(())
}

/// Asks a question and waits for the whole answer. The answer runs in its own
/// task: if the caller goes away it still completes, is stored and is billed.
pub async fn answer(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
    message: NewMessage,
) -> Result<ChatAnswer> {
    let slot = state.answer_slots.take(project_id).await?;
    let turn = prepare(state, slot, project_id, conversation_id, message).await?;
    let (done, result) = oneshot::channel();
    let span = answer_span(project_id, conversation_id, false);
    state.background.tracker.spawn(
        async move {
            let _ = done.send(turn.run_whole().await);
        }
        .instrument(span),
    );
    result
        .await
        .map_err(|_| Error::internal("answer task ended without a result"))?
}

/// Asks a question and streams the answer. The first event names the stored
/// question and answer; the last is `Done` or `Error`. Dropping the receiver
/// (the client left, or pressed Stop) stops the answer: its partial text is
/// stored as stopped and the tokens produced so far are billed.
pub async fn answer_stream(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
    message: NewMessage,
) -> Result<mpsc::Receiver<ChatEvent>> {
    let slot = state.answer_slots.take(project_id).await?;
    let turn = prepare(state, slot, project_id, conversation_id, message).await?;
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let span = answer_span(project_id, conversation_id, true);
    state
        .background
        .tracker
        .spawn(async move { turn.run_streamed(events).await }.instrument(span));
    Ok(receiver)
}

/// The span every event of one answer is logged in (its attempts, retries,
/// switches and circuit changes), so a log line names its project.
fn answer_span(project_id: &str, conversation_id: &str, streamed: bool) -> tracing::Span {
    tracing::info_span!("answer", project = %project_id, conversation = %conversation_id, streamed)
}

async fn find(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
) -> Result<ConversationRow> {
    conversations::find(&state.db.pool, project_id, conversation_id)
        .await?
        .ok_or_else(|| AppError::NotFound.into())
}

/// A conversation of the project with its messages (404 for any other).
async fn with_messages(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
) -> Result<(ConversationRow, Vec<MessageRow>)> {
    conversations::with_messages(&state.db.pool, project_id, conversation_id)
        .await?
        .ok_or_else(|| AppError::NotFound.into())
}

/// A conversation of the project with its messages, when it has room for
/// another question and answer (409 when it is full).
pub async fn with_room(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
) -> Result<(ConversationRow, Vec<MessageRow>)> {
    let (pinned, stored) = with_messages(state, project_id, conversation_id).await?;
    if stored.len() >= MAX_CONVERSATION_MESSAGES {
        return Err(AppError::Conflict {
            field: "conversationId".into(),
            message: format!(
                "this conversation holds {MAX_CONVERSATION_MESSAGES} messages, the most one may; \
                 start a new conversation"
            ),
        }
        .into());
    }
    Ok((pinned, stored))
}

/// Some stored messages of a conversation, by id, in the order asked.
pub async fn messages(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
    ids: &[&str],
) -> Result<Vec<ChatMessage>> {
    let (_, stored) = with_messages(state, project_id, conversation_id).await?;
    ids.iter()
        .map(|id| {
            let row = stored
                .iter()
                .find(|row| row.message_id == *id)
                .ok_or(Error::App(AppError::NotFound))?;
            chat_message(row)
        })
        .collect()
}

fn model_name(state: &AppState, model: &str) -> String {
    state
        .catalog
        .model(model)
        .map_or_else(|| model.to_owned(), |m| m.name.clone())
}

fn summary(state: &AppState, row: &ConversationRow) -> ConversationSummary {
    ConversationSummary {
        id: row.conversation_id.clone(),
        title: row.title.clone(),
        provider: ProviderId::parse(&row.provider).unwrap_or(ProviderId::Claude),
        model: row.model.clone(),
        model_name: model_name(state, &row.model),
        config_version: row.config_version,
        message_count: row.message_count,
        cost_nanos: row.cost_nanos,
        has_unpriced: row.unpriced,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

fn json_column<T: serde::de::DeserializeOwned>(
    column: &Option<String>,
    what: &str,
) -> Result<Option<T>> {
    column
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| Error::internal(format!("message {what}: {e}")))
}

fn chat_message(row: &MessageRow) -> Result<ChatMessage> {
    Ok(ChatMessage {
        id: row.message_id.clone(),
        role: row.role,
        content: row.content.clone(),
        images: json_column(&row.images, "images")?.unwrap_or_default(),
        status: row.status,
        facts: json_column(&row.facts, "facts")?,
        fallback: json_column(&row.fallback, "fallback")?,
        interrupted: json_column(&row.interrupted, "interrupted")?,
        error: row.error.clone(),
        rating: row.rating,
        citations: json_column(&row.citations, "citations")?.unwrap_or_default(),
        created_at: rfc3339(row.created_at),
    })
}

/// Checks a question; every problem names its field.
fn validate(message: &NewMessage, model: Option<&ModelInfo>) -> Result<()> {
    let invalid = |field: String, text: String| {
        Err(AppError::Invalid {
            field,
            message: text,
        }
        .into())
    };
    if message.content.trim().is_empty() {
        return invalid("content".into(), "write a message".into());
    }
    let chars = message.content.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return invalid(
            "content".into(),
            format!("{chars} characters; at most {MAX_MESSAGE_CHARS} are accepted"),
        );
    }
    if message.images.is_empty() {
        return Ok(());
    }
    if let Some(model) = model.filter(|m| !m.capabilities.vision) {
        return invalid(
            "images".into(),
            format!("{} does not accept images", model.name),
        );
    }
    if message.images.len() > MAX_IMAGES {
        return invalid(
            "images".into(),
            format!("at most {MAX_IMAGES} images per message"),
        );
    }
    for (i, image) in message.images.iter().enumerate() {
        if !IMAGE_MEDIA_TYPES.contains(&image.media_type.as_str()) {
            return invalid(
                format!("images[{i}].mediaType"),
                format!(
                    "`{}` is not accepted; use one of {}",
                    image.media_type,
                    IMAGE_MEDIA_TYPES.join(", ")
                ),
            );
        }
        match base64::engine::general_purpose::STANDARD.decode(image.data.as_bytes()) {
            Err(_) => return invalid(format!("images[{i}].data"), "not valid base64".into()),
            Ok(bytes) if bytes.len() > MAX_IMAGE_BYTES => {
                return invalid(
                    format!("images[{i}].data"),
                    format!(
                        "{} bytes; images of at most {MAX_IMAGE_BYTES} bytes are accepted",
                        bytes.len()
                    ),
                )
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// A conversation's title from its first question.
pub fn title_of(content: &str) -> String {
    let line = content.trim().lines().next().unwrap_or_default().trim();
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}

fn user_message(content: &str, images: &[ImageAttachment]) -> Message {
    let mut parts: Vec<ContentPart> = images
        .iter()
        .map(|image| ContentPart::Image {
            media_type: image.media_type.clone(),
            data: image.data.clone(),
        })
        .collect();
    parts.push(ContentPart::text(content));
    Message::parts(Role::User, parts)
}

/// The history sent with a question, in the unified format: the system prompt,
/// then every exchange whose answer completed (a failed or stopped exchange is
/// left out, so roles still alternate), oldest first.
fn history(system_prompt: &str, stored: &[MessageRow]) -> Result<Vec<Message>> {
    let mut messages = Vec::with_capacity(stored.len() + 2);
    if !system_prompt.trim().is_empty() {
        messages.push(Message::text(Role::System, system_prompt));
    }
    for pair in stored.windows(2) {
        let (question, answer) = (&pair[0], &pair[1]);
        if question.role == ChatRole::User
            && answer.role == ChatRole::Assistant
            && answer.status == MessageStatus::Complete
        {
            let images: Vec<ImageAttachment> =
                json_column(&question.images, "images")?.unwrap_or_default();
            messages.push(user_message(&question.content, &images));
            messages.push(Message::text(Role::Assistant, &answer.content));
        }
    }
    Ok(messages)
}

/// Everything one answer needs, prepared before it runs.
struct Turn {
    state: AppState,
    question_id: String,
    answer_id: String,
    /// The chain, kept for notices after the route has been handed to the router.
    targets: Vec<Target>,
    route: Route,
    sink: Arc<MeteredSink>,
    /// The budget's reservation, settled when the answer ends.
    budget: Admission,
    /// The knowledge base chunks the answer was given.
    citations: Vec<Citation>,
    /// The same as stored with the answer (JSON), `None` when there are none.
    stored_citations: Option<String>,
    /// The answer's place among those running (freed when the turn ends).
    _slot: AnswerSlot,
    started: Instant,
}

async fn prepare(
    state: &AppState,
    slot: AnswerSlot,
    project_id: &str,
    conversation_id: &str,
    message: NewMessage,
) -> Result<Turn> {
    let started = Instant::now();
    let (pinned, stored) = with_room(state, project_id, conversation_id).await?;
    validate(&message, state.catalog.model(&pinned.model))?;
    let draft = llm_settings::pinned_draft(state, project_id, pinned.config_version).await?;
    let mut messages = history(&draft.system_prompt, &stored)?;
    messages.push(user_message(&message.content, &message.images));
    let mut route = Route {
        targets: routing::targets(state, project_id, &draft, !message.images.is_empty()).await?,
        messages,
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        response_format: ResponseFormat::Text,
        restart_after_output: true,
    };
    let images = if message.images.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&message.images).map_err(Error::internal)?)
    };
    let exchange = Exchange::asked(
        conversation_id,
        message.content.clone(),
        images,
        title_of(&message.content),
    );
    let (question_id, answer_id) = (
        exchange.question.message_id.clone(),
        exchange.answer_id.clone(),
    );
    let sink = Arc::new(MeteredSink::new(
        state,
        UsageContext {
            conversation_id: Some(conversation_id.to_owned()),
            message_id: Some(answer_id.clone()),
            ..UsageContext::new(project_id, Some(pinned.config_version))
        },
    ));
    // The knowledge goes into the prompt before the budget counts it.
    let knowledge = knowledge_for(state, project_id, &draft, &message.content, &route, &sink).await;
    if !knowledge.is_empty() {
        set_system_prompt(
            &mut route.messages,
            knowledge::with_knowledge(&draft.system_prompt, &knowledge),
        );
    }
    let citations: Vec<Citation> = knowledge.into_iter().map(|k| k.citation).collect();
    let stored_citations = (!citations.is_empty())
        .then(|| serde_json::to_string(&citations))
        .transpose()
        .map_err(Error::internal)?;
    // The budget admits the answer and the question is stored in one
    // commit, before anything is sent: a refusal leaves no trace.
    let budget = budgets::admit(state, project_id, &mut route, Some(exchange)).await?;
    Ok(Turn {
        state: state.clone(),
        question_id,
        answer_id,
        targets: route.targets.clone(),
        route,
        sink,
        budget,
        citations,
        stored_citations,
        _slot: slot,
        started,
    })
}

/// The knowledge base chunks for a question, within a quarter of the
/// smallest context window of the answer's chain. A knowledge base that
/// cannot be read (its embedding provider down, its budget spent) leaves
/// the answer without it, never without an answer: the failure is logged.
async fn knowledge_for(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    question: &str,
    route: &Route,
    sink: &MeteredSink,
) -> Vec<knowledge::Retrieved> {
    let budget = route
        .targets
        .iter()
        .map(|target| u64::from(target.limits.context_window) / 4)
        .min()
        .unwrap_or(0);
    match knowledge::retrieve(state, project_id, draft, question, budget, sink).await {
        Ok(chunks) => chunks,
        Err(error) => {
            tracing::warn!(%error, "answering without the knowledge base");
            Vec::new()
        }
    }
}

/// Puts `prompt` as the conversation's system message (first), replacing
/// the one there.
fn set_system_prompt(messages: &mut Vec<Message>, prompt: String) {
    let system = Message::text(Role::System, &prompt);
    match messages.first_mut() {
        Some(first) if first.role == Role::System => *first = system,
        _ => messages.insert(0, system),
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The sentence telling the user another model answered, and why.
fn switch_sentence(from: &str, error: &LlmError, to: &str) -> String {
    let why = match error.kind {
        ErrorKind::RateLimited { .. } => format!("{from} was rate-limited"),
        ErrorKind::Overloaded { .. } => format!("{from} was overloaded"),
        ErrorKind::QuotaExhausted => format!("{from} is out of quota"),
        ErrorKind::Auth => format!("{from} rejected the API key"),
        ErrorKind::ContextTooLong => format!("The conversation is too long for {from}"),
        _ => format!("{from} was unavailable"),
    };
    format!("{why} — answered by {to}")
}

/// How an answer ended, whichever way it ran.
enum Ending {
    Answered {
        target: usize,
        response: GenerateResponse,
        latency: Duration,
        ttft: Option<Duration>,
        trimmed: u32,
    },
    Failed(LlmError),
    Stopped,
}

/// What the user saw of an answer while it ran.
#[derive(Default)]
struct Progress {
    text: String,
    switches: Vec<Switch>,
    interrupted: Option<(usize, LlmError, String)>,
    trimmed: u32,
}

impl Turn {
    fn target(&self, index: usize) -> Option<&Target> {
        self.targets.get(index)
    }

    /// Hands the route to the router (once).
    fn take_route(&mut self) -> Route {
        std::mem::replace(
            &mut self.route,
            Route {
                targets: Vec::new(),
                messages: Vec::new(),
                tools: Vec::new(),
                tool_choice: ToolChoice::Auto,
                response_format: ResponseFormat::Text,
                restart_after_output: true,
            },
        )
    }

    /// The notice for an answer that came from another model than the pinned
    /// one, or that the budget shortened.
    fn notice(&self, answered_by: usize, progress: &Progress) -> Option<FallbackNotice> {
        if answered_by == 0 {
            return self.budget.notice().cloned();
        }
        let primary = self.target(0)?;
        let to = self.target(answered_by)?;
        let error = progress
            .switches
            .iter()
            .find(|s| s.from_index == 0)
            .map(|s| &s.error)
            .or_else(|| progress.interrupted.as_ref().map(|(_, e, _)| e))?;
        Some(FallbackNotice {
            from: primary.model.clone(),
            from_provider: primary.provider_id,
            to: to.model.clone(),
            to_provider: to.provider_id,
            reason: error.class().as_str().to_owned(),
            message: switch_sentence(&primary.name, error, &to.name),
        })
    }

    fn interrupted(&self, progress: &Progress) -> Option<InterruptedAnswer> {
        let (index, error, text) = progress.interrupted.as_ref()?;
        let target = self.target(*index)?;
        Some(InterruptedAnswer {
            model: target.model.clone(),
            provider: target.provider_id,
            text: text.clone(),
            error: error.to_string(),
        })
    }

    /// The facts of an answer that did not complete: its latest attempt's
    /// tokens (estimated when cut or stopped) and what every attempt cost.
    fn partial_facts(&self, cost: Option<i64>, trimmed: u32) -> Option<String> {
        let last = self.sink.last_attempt()?;
        let facts = AnswerFacts {
            provider: last.provider,
            model_name: model_name(&self.state, &last.model),
            model: last.model,
            usage: last.usage,
            cost_nanos: cost,
            latency_ms: duration_ms(self.started.elapsed()),
            ttft_ms: last.ttft.map(duration_ms),
            trimmed_messages: trimmed,
        };
        serde_json::to_string(&facts).ok()
    }

    /// Stores how the answer ended and builds what the caller gets.
    async fn finish(
        &mut self,
        ending: Ending,
        progress: &Progress,
    ) -> std::result::Result<ChatAnswer, (String, String)> {
        let totals = self.sink.totals();
        let cost = totals.cost();
        let interrupted = self.interrupted(progress);
        let (update, result) = match ending {
            Ending::Answered {
                target,
                response,
                latency,
                ttft,
                trimmed,
            } => {
                let answering = self.target(target);
                let facts = AnswerFacts {
                    provider: answering.map_or(ProviderId::Claude, |t| t.provider_id),
                    model: answering.map_or_else(String::new, |t| t.model.clone()),
                    model_name: answering.map_or_else(String::new, |t| t.name.clone()),
                    usage: token_usage(&response.usage, false),
                    cost_nanos: cost,
                    latency_ms: duration_ms(latency),
                    ttft_ms: ttft.map(duration_ms),
                    trimmed_messages: trimmed,
                };
                let fallback = self.notice(target, progress);
                let content = response.text();
                let answer = ChatAnswer {
                    message_id: self.answer_id.clone(),
                    question_id: self.question_id.clone(),
                    content: content.clone(),
                    provider: facts.provider,
                    model: facts.model.clone(),
                    usage: facts.usage,
                    cost_usd: cost.map(format_decimal),
                    cost_nanos: cost,
                    latency_ms: facts.latency_ms,
                    ttft_ms: facts.ttft_ms,
                    fallback: fallback.clone(),
                    interrupted: interrupted.clone(),
                    trimmed_messages: trimmed,
                    citations: self.citations.clone(),
                };
                let update = AnswerUpdate {
                    status: MessageStatus::Complete,
                    content,
                    facts: serde_json::to_string(&facts).ok(),
                    fallback: fallback.and_then(|f| serde_json::to_string(&f).ok()),
                    interrupted: interrupted.and_then(|i| serde_json::to_string(&i).ok()),
                    error: None,
                    cost_nanos: totals.cost_nanos,
                    unpriced: totals.unpriced,
                    citations: self.stored_citations.clone(),
                    images: None,
                };
                (update, Ok(answer))
            }
            Ending::Failed(error) => {
                let message = failure_message(self, &error);
                let update = AnswerUpdate {
                    status: MessageStatus::Error,
                    content: progress.text.clone(),
                    facts: self.partial_facts(cost, progress.trimmed),
                    fallback: None,
                    interrupted: interrupted.and_then(|i| serde_json::to_string(&i).ok()),
                    error: Some(message.clone()),
                    cost_nanos: totals.cost_nanos,
                    unpriced: totals.unpriced,
                    citations: self.stored_citations.clone(),
                    images: None,
                };
                (update, Err((error.class().as_str().to_owned(), message)))
            }
            Ending::Stopped => {
                let update = AnswerUpdate {
                    status: MessageStatus::Stopped,
                    content: progress.text.clone(),
                    facts: self.partial_facts(cost, progress.trimmed),
                    fallback: None,
                    interrupted: interrupted.and_then(|i| serde_json::to_string(&i).ok()),
                    error: None,
                    cost_nanos: totals.cost_nanos,
                    unpriced: totals.unpriced,
                    citations: self.stored_citations.clone(),
                    images: None,
                };
                (
                    update,
                    Err(("cancelled".to_owned(), "the answer was stopped".to_owned())),
                )
            }
        };
        // The answer is reported only once its ending, its rows and its
        // spend are committed: a cost a client was told is never lost.
        let settlement = Settlement {
            answer: Some((self.answer_id.clone(), update)),
            ..self.budget.settlement(&self.sink)
        };
        match self.state.ledger.settle(settlement).await {
            Ok(month) => budgets::after_settlement(&self.state, &self.budget, month).await,
            Err(error) => {
                tracing::error!(%error, message = %self.answer_id, "storing an answer failed");
                return Err((
                    "unavailable".to_owned(),
                    "the answer could not be stored; please ask again".to_owned(),
                ));
            }
        }
        result
    }

    /// Runs the answer without streaming.
    async fn run_whole(mut self) -> Result<ChatAnswer> {
        let router = self.state.router.clone();
        let route = self.take_route();
        let mut progress = Progress::default();
        let ending = match router.generate(route, self.sink.as_ref()).await {
            Ok(routed) => {
                progress.switches = routed.switches;
                Ending::Answered {
                    target: routed.target_index,
                    response: routed.response,
                    latency: self.started.elapsed(),
                    ttft: None,
                    trimmed: routed.trimmed_messages,
                }
            }
            Err(failure) => {
                progress.switches = failure.switches;
                Ending::Failed(failure.error)
            }
        };
        self.finish(ending, &progress)
            .await
            .map_err(|(class, message)| {
                AppError::ProviderFailed {
                    class,
                    message,
                    message_id: self.answer_id.clone(),
                }
                .into()
            })
    }

    /// Runs the answer as a stream of events to `events`.
    async fn run_streamed(mut self, events: mpsc::Sender<ChatEvent>) {
        let started = ChatEvent::Started {
            question_id: self.question_id.clone(),
            message_id: self.answer_id.clone(),
        };
        let _ = events.send(started).await;
        let route = self.take_route();
        let mut stream = self.state.router.stream(route, self.sink.clone());
        let stopping = self.state.background.stopping.clone();
        let mut progress = Progress::default();
        let mut notice_sent = false;
        let ending = loop {
            let event = match stream.next_for(&events, &stopping).await {
                Next::Abandoned => {
                    stream.cancel().await;
                    break Ending::Stopped;
                }
                Next::Ended => None,
                Next::Event(event) => Some(event),
            };
            let forward = match event {
                None => {
                    break Ending::Failed(LlmError::new(
                        self.target(0).map_or(ProviderId::Claude, |t| t.provider_id),
                        ErrorKind::Transient,
                        "the answer ended without a result",
                    ))
                }
                Some(RouterEvent::Switched(switch)) => {
                    progress.switches.push(switch);
                    None
                }
                Some(RouterEvent::Started {
                    target_index,
                    trimmed_messages,
                }) => {
                    progress.trimmed = trimmed_messages;
                    if !notice_sent {
                        notice_sent = true;
                        self.notice(target_index, &progress)
                            .map(ChatEvent::Fallback)
                    } else {
                        None
                    }
                }
                Some(RouterEvent::TextDelta(text)) => {
                    progress.text.push_str(&text);
                    Some(ChatEvent::Delta { text })
                }
                Some(RouterEvent::ToolCallDelta { .. }) => None,
                Some(RouterEvent::Interrupted {
                    target_index,
                    error,
                    partial_text,
                }) => {
                    progress.text.clear();
                    progress.interrupted = Some((target_index, error, partial_text));
                    notice_sent = false;
                    self.interrupted(&progress).map(ChatEvent::Interrupted)
                }
                Some(RouterEvent::Finished {
                    target_index,
                    response,
                    latency,
                    ttft,
                }) => {
                    break Ending::Answered {
                        target: target_index,
                        response,
                        latency,
                        ttft,
                        trimmed: progress.trimmed,
                    }
                }
                Some(RouterEvent::Failed { error, switches }) => {
                    progress.switches = switches;
                    break Ending::Failed(error);
                }
            };
            if let Some(event) = forward {
                // A closed channel is noticed by the select above.
                let _ = events.send(event).await;
            }
        };
        let last = match self.finish(ending, &progress).await {
            Ok(answer) => ChatEvent::Done(Box::new(answer)),
            Err((error, message)) => ChatEvent::Error {
                message_id: self.answer_id.clone(),
                error,
                message,
            },
        };
        let _ = events.send(last).await;
    }
}

/// Why an answer failed, in words the user can act on (never a raw context error).
fn failure_message(turn: &Turn, error: &LlmError) -> String {
    let name = turn
        .target(0)
        .map_or_else(|| error.provider.to_string(), |t| t.name.clone());
    match error.kind {
        ErrorKind::ContextTooLong => format!(
            "This conversation is too long for {name}, even without its oldest messages; start a new conversation"
        ),
        ErrorKind::Auth => format!(
            "{name} rejected the API key: check the key in the project's LLM settings ({})",
            error.message
        ),
        _ => format!("{name} could not answer: {}", error),
    }
}
