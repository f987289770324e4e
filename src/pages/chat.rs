//! `/projects/:id/chat?c=<conversation>`: the chat playground. Conversations on
//! the left (newest first, with their pinned model and cost so far), the chosen
//! one on the right: its messages, each answer with its facts (provider, model,
//! tokens, cost, latency), fallback notices, interrupted and failed answers,
//! thumbs up / down, and the composer.
//!
//! Before hydration every control is a plain form: New conversation, Send (the
//! server waits for the whole answer and redirects back with it in place) and
//! the thumbs. After hydration Send streams the answer token by token from the
//! JSON API (see `components::chat_stream`), Stop aborts it, and images can be
//! attached when the pinned model has vision. In a GPT conversation "Generate
//! image" draws the message as a picture (a form post before hydration, a
//! server function call after), shown in the answer; other providers say the
//! feature is unavailable. When an answer settles the page reloads the
//! conversation, so it always ends up showing what was stored.

use crate::components::chat_stream::{self, messages_url, StreamHandle, StreamUpdate};
use crate::components::error_notice::{action_error, ErrorNotice, SignInNeeded};
use crate::components::image_attach::{ImageAttach, Thumbnails};
use crate::error::AppError;
use crate::model::catalog::ProviderId;
use crate::model::chat::{
    AnswerFacts, ChatEvent, ChatMessage, ChatRole, ConversationDetail, ConversationSummary,
    ImageAttachment, ImageGeneration, MessageStatus, NewMessage, Rating, TokenUsage,
    MAX_MESSAGE_CHARS,
};
use crate::model::knowledge::Citation;
use crate::model::money::format_usd;
use crate::pages::project::use_project_id;
use crate::server_fns::chat::{
    conversation_path, generate_image, get_conversation, list_conversations, GenerateImage,
    NewConversation, RateAnswer, SendMessage,
};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};
use std::time::Duration;

/// How often the page asks again for an answer the server has not settled yet
/// (just after Stop, the server is still storing the partial answer).
const RELOAD_ATTEMPTS: u32 = 10;
/// The pause between those asks.
const RELOAD_PAUSE: Duration = Duration::from_millis(300);

/// The chat playground as a lazily loaded route: its code is a separate wasm chunk,
/// fetched when the route is first shown (see `scripts/build`).
pub struct ChatRoute;

#[lazy_route]
impl LazyRoute for ChatRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ChatPage/> }.into_any()
    }
}

/// The conversation list and the chosen conversation (`?c=`, else the newest).
#[component]
pub fn ChatPage() -> impl IntoView {
    let project_id = use_project_id();
    let query = use_query_map();
    let selected = Memo::new(move |_| query.read().get("c"));
    let create = ServerAction::<NewConversation>::new();
    // Bumped when an answer settles, so counts and costs in the list follow.
    let list_version = RwSignal::new(0_u64);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let list = Resource::new(
        move || (project_id.get(), create.version().get(), list_version.get()),
        |(project_id, _, _)| list_conversations(project_id),
    );
    let conversation = Resource::new(
        move || (project_id.get(), selected.get()),
        |(project_id, selected)| load_conversation(project_id, selected),
    );

    let conversations = move || {
        Suspend::new(async move {
            match list.await {
                Ok(list) if list.is_empty() => view! {
                    <p class="muted" data-test="no-conversations">"No conversations yet."</p>
                }
                .into_any(),
                Ok(list) => view! { <ConversationList list=list selected=selected/> }.into_any(),
                Err(AppError::Unauthenticated { .. }) => view! { <SignInNeeded/> }.into_any(),
                Err(AppError::NotFound) => ().into_any(),
                Err(error) => view! { <ErrorNotice error=Signal::stored(Some(error)) test_id="conversations-error"/> }.into_any(),
            }
        })
    };
    let main = move || {
        Suspend::new(async move {
            match conversation.await {
                Ok(Some(detail)) => {
                    view! { <ConversationView detail=detail hydrated=hydrated list_version=list_version/> }.into_any()
                }
                Ok(None) => view! {
                    <section class="card chat-empty" data-test="chat-empty">
                        <h2>"No conversations yet"</h2>
                        <p>
                            "Start one with " <strong>"New conversation"</strong>
                            ". It uses the project's current model and keeps it, even if the project switches later."
                        </p>
                    </section>
                }
                .into_any(),
                Err(AppError::Unauthenticated { .. }) => ().into_any(),
                Err(AppError::NotFound) if selected.get_untracked().is_none() => ().into_any(),
                Err(error) => view! {
                    <section class="card">
                        <h2>"This conversation cannot be shown"</h2>
                        <ErrorNotice error=Signal::stored(Some(error)) test_id="conversation-error"/>
                        <p class="muted">"Pick a conversation from the list or start a new one."</p>
                    </section>
                }
                .into_any(),
            }
        })
    };

    view! {
        <div class="chat" data-test="chat" data-hydrated=move || hydrated.get().then_some("true")>
            <aside class="card chat-list" aria-label="Conversations">
                <div class="chat-list-head">
                    <h2>"Conversations"</h2>
                    <ActionForm action=create>
                        <input type="hidden" name="project_id" value=move || project_id.get()/>
                        <button type="submit" data-test="new-conversation">"New conversation"</button>
                    </ActionForm>
                </div>
                <ErrorNotice error=action_error(create) test_id="new-conversation-error"/>
                <Transition fallback=|| view! { <p class="muted">"Loading conversations…"</p> }>
                    {conversations}
                </Transition>
            </aside>
            <div class="chat-main">
                <Transition fallback=|| view! { <p class="muted">"Loading the conversation…"</p> }>
                    {main}
                </Transition>
            </div>
        </div>
    }
}

/// The chosen conversation, or the newest when none is chosen (`None`: the
/// project has none yet).
async fn load_conversation(
    project_id: String,
    selected: Option<String>,
) -> Result<Option<ConversationDetail>, AppError> {
    let id = match selected {
        Some(id) => id,
        None => match list_conversations(project_id.clone())
            .await?
            .into_iter()
            .next()
        {
            Some(newest) => newest.id,
            None => return Ok(None),
        },
    };
    get_conversation(project_id, id).await.map(Some)
}

/// The conversations as links; the chosen one is marked.
#[component]
fn ConversationList(
    list: Vec<ConversationSummary>,
    /// The `?c=` of the page (`None`: the newest is shown).
    selected: Memo<Option<String>>,
) -> impl IntoView {
    let project_id = use_project_id();
    let items = list
        .into_iter()
        .enumerate()
        .map(|(i, summary)| {
            let id = summary.id.clone();
            let current = Signal::derive(move || {
                selected.with(|s| s.as_ref().map_or(i == 0, |s| *s == id))
            });
            view! {
                <li>
                    <a href=conversation_path(&project_id.get_untracked(), &summary.id)
                        class="conversation" class:selected=current
                        aria-current=move || current.get().then_some("page")
                        data-test="conversation-item" data-id=summary.id.clone()>
                        <span class="title">{summary.title.clone()}</span>
                        <span class="meta">
                            {summary.model_name.clone()} " · " {plural(summary.message_count, "message")}
                            " · " {conversation_cost(&summary)}
                        </span>
                    </a>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="conversation-list" data-test="conversation-list">{items}</ul> }
}

/// The state of one open conversation: what was stored, the turn being
/// streamed, and the composer. Copied into every handler.
#[derive(Clone, Copy)]
struct Chat {
    project_id: StoredValue<String>,
    /// The conversation as last loaded.
    detail: RwSignal<ConversationDetail>,
    /// The question being answered live (until the stored conversation has it).
    question: RwSignal<Option<ChatMessage>>,
    /// Its answer, as it streams in.
    answer: RwSignal<ChatMessage>,
    /// True from Send until the answer settles.
    streaming: RwSignal<bool>,
    /// Counts streams, so a finished stream's late news is ignored.
    turn: StoredValue<u64>,
    stream: StoredValue<Option<StreamHandle>>,
    draft: RwSignal<String>,
    images: RwSignal<Vec<ImageAttachment>>,
    send_error: RwSignal<Option<AppError>>,
    list_version: RwSignal<u64>,
}

impl Chat {
    /// A conversation as loaded, nothing streaming.
    fn new(project_id: String, detail: ConversationDetail, list_version: RwSignal<u64>) -> Chat {
        Chat {
            project_id: StoredValue::new(project_id),
            detail: RwSignal::new(detail),
            question: RwSignal::new(None),
            answer: RwSignal::new(blank_message(ChatRole::Assistant, MessageStatus::Pending)),
            streaming: RwSignal::new(false),
            turn: StoredValue::new(0),
            stream: StoredValue::new(None),
            draft: RwSignal::new(String::new()),
            images: RwSignal::new(Vec::new()),
            send_error: RwSignal::new(None),
            list_version,
        }
    }

    /// The project and conversation ids (`None` once the view is gone).
    fn ids(self) -> Option<(String, String)> {
        Some((
            self.project_id.try_get_value()?,
            self.detail.try_with_untracked(|d| d.summary.id.clone())?,
        ))
    }

    /// The display name of a model id, as far as this conversation knows it.
    fn model_name(self, id: &str) -> String {
        self.detail.with_untracked(|d| {
            if d.summary.model == id {
                d.summary.model_name.clone()
            } else {
                id.to_owned()
            }
        })
    }

    /// Sends the draft and streams the answer.
    fn send(self) {
        let content = self.draft.get_untracked();
        if self.streaming.get_untracked() || content.trim().is_empty() {
            return;
        }
        let Some((project_id, conversation_id)) = self.ids() else {
            return;
        };
        let message = NewMessage {
            content,
            images: self.images.get_untracked(),
        };
        let mut question = blank_message(ChatRole::User, MessageStatus::Complete);
        question.content = message.content.clone();
        question.images = message.images.clone();
        self.send_error.set(None);
        self.question.set(Some(question));
        self.answer
            .set(blank_message(ChatRole::Assistant, MessageStatus::Pending));
        self.draft.set(String::new());
        self.images.set(Vec::new());
        self.streaming.set(true);
        self.turn.update_value(|t| *t += 1);
        let turn = self.turn.get_value();
        let handle = chat_stream::start(
            messages_url(&project_id, &conversation_id),
            &message,
            move |update| self.apply(turn, update),
        );
        self.stream.set_value(Some(handle));
    }

    /// Draws the draft as a picture with the conversation's image model; the
    /// answer shows it once stored. A refusal puts the prompt back.
    fn draw(self, size: String, quality: String) {
        let content = self.draft.get_untracked();
        if self.streaming.get_untracked() || content.trim().is_empty() {
            return;
        }
        let Some((project_id, conversation_id)) = self.ids() else {
            return;
        };
        let mut question = blank_message(ChatRole::User, MessageStatus::Complete);
        question.content = content.clone();
        self.send_error.set(None);
        self.question.set(Some(question));
        self.answer
            .set(blank_message(ChatRole::Assistant, MessageStatus::Pending));
        self.draft.set(String::new());
        self.streaming.set(true);
        self.turn.update_value(|t| *t += 1);
        leptos::task::spawn_local(async move {
            let drawn = generate_image(
                project_id,
                conversation_id,
                content.clone(),
                Some(size),
                Some(quality),
            )
            .await;
            self.streaming.try_set(false);
            match drawn {
                Ok(_) => self.reload(RELOAD_ATTEMPTS),
                // The question and its failed answer are stored: show them.
                Err(error @ AppError::ProviderFailed { .. }) => {
                    self.reload(RELOAD_ATTEMPTS);
                    self.send_error.try_set(Some(error));
                }
                Err(error) => {
                    self.question.try_set(None);
                    if self.draft.with_untracked(String::is_empty) {
                        self.draft.try_set(content);
                    }
                    self.send_error.try_set(Some(error));
                }
            }
        });
    }

    /// Stops the stream; the server stores the partial answer as stopped.
    fn stop(self) {
        self.stream.try_with_value(|stream| {
            if let Some(stream) = stream {
                stream.stop();
            }
        });
        self.answer.try_update(|a| {
            if a.status == MessageStatus::Pending {
                a.status = MessageStatus::Stopped;
            }
        });
    }

    /// Takes in news from the stream of `turn`.
    fn apply(self, turn: u64, update: StreamUpdate) {
        if self.turn.try_get_value() != Some(turn) {
            return;
        }
        match update {
            StreamUpdate::Event(event) => {
                let settled = matches!(*event, ChatEvent::Done(_) | ChatEvent::Error { .. });
                self.answer.try_update(|a| apply_event(a, *event));
                if settled {
                    self.settle();
                }
            }
            StreamUpdate::Refused(error) => {
                self.streaming.try_set(false);
                self.stream.try_set_value(None);
                // Nothing was stored: the question goes back to the composer.
                if let Some(Some(question)) = self.question.try_update(Option::take) {
                    if self.draft.with_untracked(String::is_empty) {
                        self.draft.set(question.content);
                        self.images.set(question.images);
                    }
                }
                self.send_error.try_set(Some(error));
            }
            StreamUpdate::Finished(result) => {
                if let Err(error) = result {
                    self.answer.try_update(|a| {
                        a.status = MessageStatus::Error;
                        a.error = Some(error.to_string());
                    });
                }
                self.settle();
            }
        }
    }

    /// The answer is over (once per turn): show what the server stored.
    fn settle(self) {
        if self.streaming.try_get_untracked() == Some(true) {
            self.streaming.set(false);
            self.stream.set_value(None);
            self.reload(RELOAD_ATTEMPTS);
        }
    }

    /// Loads the stored conversation in place of the live turn, asking again
    /// while its last answer is still pending.
    fn reload(self, attempts: u32) {
        let Some((project_id, conversation_id)) = self.ids() else {
            return;
        };
        leptos::task::spawn_local(async move {
            match get_conversation(project_id, conversation_id).await {
                Ok(fresh) => {
                    let unsettled = fresh
                        .messages
                        .last()
                        .is_some_and(|m| m.status == MessageStatus::Pending);
                    if unsettled && attempts > 1 {
                        set_timeout(move || self.reload(attempts - 1), RELOAD_PAUSE);
                        return;
                    }
                    self.detail.try_set(fresh);
                    self.question.try_set(None);
                    self.list_version.try_update(|v| *v += 1);
                }
                Err(error) => {
                    self.send_error.try_set(Some(error));
                }
            }
        });
    }
}

/// A message with nothing in it yet.
fn blank_message(role: ChatRole, status: MessageStatus) -> ChatMessage {
    ChatMessage {
        id: String::new(),
        role,
        content: String::new(),
        images: Vec::new(),
        status,
        facts: None,
        fallback: None,
        interrupted: None,
        error: None,
        rating: None,
        citations: Vec::new(),
        created_at: String::new(),
    }
}

/// Applies one event of a streamed answer to the answer shown.
fn apply_event(answer: &mut ChatMessage, event: ChatEvent) {
    match event {
        ChatEvent::Started { message_id, .. } => answer.id = message_id,
        ChatEvent::Delta { text } => answer.content.push_str(&text),
        ChatEvent::Fallback(notice) => answer.fallback = Some(notice),
        ChatEvent::Interrupted(broken) => {
            // What follows comes from the fallback, from its first token.
            answer.content.clear();
            answer.interrupted = Some(broken);
        }
        ChatEvent::Done(done) => {
            answer.id = done.message_id;
            answer.status = MessageStatus::Complete;
            answer.content = done.content;
            answer.fallback = done.fallback.or(answer.fallback.take());
            answer.interrupted = done.interrupted.or(answer.interrupted.take());
            answer.citations = done.citations;
        }
        ChatEvent::Error {
            message_id,
            message,
            ..
        } => {
            answer.id = message_id;
            answer.status = MessageStatus::Error;
            answer.error = Some(message);
        }
    }
}

/// One conversation: header, messages, the live turn and the composer.
#[component]
fn ConversationView(
    detail: ConversationDetail,
    /// True once the page has hydrated.
    hydrated: RwSignal<bool>,
    /// Bumped when an answer settles.
    list_version: RwSignal<u64>,
) -> impl IntoView {
    let chat = Chat::new(use_project_id().get_untracked(), detail, list_version);
    on_cleanup(move || chat.stop());
    let summary = Memo::new(move |_| chat.detail.with(|d| d.summary.clone()));
    let messages = move || {
        chat.detail
            .with(|d| d.messages.clone())
            .into_iter()
            .map(|message| match message.role {
                ChatRole::User => view! { <QuestionView message=message/> }.into_any(),
                ChatRole::Assistant => {
                    view! { <AnswerView message=Signal::stored(message) chat=chat/> }.into_any()
                }
            })
            .collect_view()
    };
    let live = move || {
        chat.question.get().map(|question| {
            view! {
                <QuestionView message=question/>
                <AnswerView message=chat.answer.into() chat=chat/>
            }
        })
    };
    view! {
        <section class="card conversation" data-test="conversation" data-id=move || summary.with(|s| s.id.clone())>
            <header class="chat-head">
                <h2 data-test="conversation-title">{move || summary.with(|s| s.title.clone())}</h2>
                <p class="muted">
                    "Model: "
                    <strong data-test="conversation-model">{move || summary.with(|s| s.model_name.clone())}</strong>
                    " (" {move || summary.with(|s| provider_label(s.provider))} ")"
                    " · configuration version " {move || summary.with(|s| s.config_version)}
                    " · cost so far "
                    <span data-test="conversation-cost">{move || summary.with(conversation_cost)}</span>
                </p>
            </header>
            <div class="messages" data-test="messages">
                {messages}
                {live}
            </div>
            <Composer chat=chat hydrated=hydrated/>
        </section>
    }
}

/// A question as sent.
#[component]
fn QuestionView(message: ChatMessage) -> impl IntoView {
    view! {
        <article class="message question" data-test="message" data-role="user"
            data-status=status_name(message.status)>
            <p class="who">"You"</p>
            <div class="text" data-test="question-text">{message.content}</div>
            <Thumbnails images=message.images/>
        </article>
    }
}

/// An answer, stored or streaming: fallback notice, interrupted attempt, text,
/// stopped tag, error, facts and the thumbs.
#[component]
fn AnswerView(message: Signal<ChatMessage>, chat: Chat) -> impl IntoView {
    let status = Memo::new(move |_| message.with(|m| m.status));
    let text = Memo::new(move |_| message.with(|m| m.content.clone()));
    let facts = Memo::new(move |_| message.with(|m| m.facts.clone()));
    let fallback = Memo::new(move |_| message.with(|m| m.fallback.clone()));
    let interrupted = Memo::new(move |_| message.with(|m| m.interrupted.clone()));
    let error = Memo::new(move |_| message.with(|m| m.error.clone()));
    let id = Memo::new(move |_| message.with(|m| m.id.clone()));
    let citations = Memo::new(move |_| message.with(|m| m.citations.clone()));
    let pictures = Memo::new(move |_| message.with(|m| m.images.clone()));
    let waiting = move || status.get() == MessageStatus::Pending && text.with(String::is_empty);
    let rated = move || status.get() != MessageStatus::Pending && id.with(|id| !id.is_empty());
    let continued_by = move || {
        facts
            .with(|f| f.as_ref().map(|f| f.model_name.clone()))
            .unwrap_or_else(|| "the fallback model".into())
    };
    view! {
        <article class="message answer" data-test="message" data-role="assistant"
            data-status=move || status_name(status.get())>
            {move || fallback.get().map(|notice| view! {
                <p class="notice fallback" role="status" data-test="fallback-notice">{notice.message}</p>
            })}
            {move || interrupted.get().map(|broken| view! {
                <div class="interrupted" data-test="interrupted">
                    <p class="muted">
                        {format!("{} broke off: {}", chat.model_name(&broken.model), broken.error)}
                    </p>
                    <del>{broken.text}</del>
                    <p class="continued">"continued by " {continued_by}</p>
                </div>
            })}
            <Show when=waiting>
                <p class="typing" role="status" data-test="answer-pending">
                    <span class="spinner" aria-hidden="true"></span>
                    " Waiting for the answer…"
                </p>
            </Show>
            <div class="text" data-test="answer-text">{move || text.get()}</div>
            {move || {
                let pictures = pictures.get();
                (!pictures.is_empty()).then(|| view! { <Pictures pictures=pictures/> })
            }}
            <Show when=move || status.get() == MessageStatus::Stopped>
                <span class="tag" data-test="stopped">"stopped"</span>
            </Show>
            {move || error.get().map(|error| view! {
                <p class="notice error" role="alert" data-test="answer-error">{error}</p>
            })}
            {move || {
                let citations = citations.get();
                (!citations.is_empty()).then(|| view! { <Citations citations=citations/> })
            }}
            {move || facts.get().map(|facts| view! { <Facts facts=facts/> })}
            <Show when=rated>
                <RateButtons chat=chat message_id=id.get_untracked()
                    initial=message.with_untracked(|m| m.rating)/>
            </Show>
        </article>
    }
}

/// The pictures an image answer drew, each with a link to save it.
#[component]
fn Pictures(pictures: Vec<ImageAttachment>) -> impl IntoView {
    let items = pictures
        .into_iter()
        .enumerate()
        .map(|(index, picture)| {
            let url = format!("data:{};base64,{}", picture.media_type, picture.data);
            view! {
                <figure class="generated" data-test="generated-image">
                    <img src=url.clone() alt=format!("Generated picture {}", index + 1)/>
                    <figcaption>
                        <a href=url download=format!("cover-picture-{}.png", index + 1)
                            data-test="download-picture">"Save picture"</a>
                    </figcaption>
                </figure>
            }
        })
        .collect_view();
    view! { <div class="pictures" data-test="pictures">{items}</div> }
}

/// The knowledge base excerpts an answer was given: document, section and
/// how close each was to the question.
#[component]
fn Citations(citations: Vec<Citation>) -> impl IntoView {
    view! {
        <details class="citations" data-test="answer-citations">
            <summary>{format!("{} {} from the knowledge base", citations.len(), plural(citations.len() as i64, "source"))}</summary>
            <ol>
                {citations.into_iter().map(|citation| view! {
                    <li data-test="citation" data-document=citation.document_id.clone()>
                        <span class="citation-document" data-test="citation-document">{citation.document_name}</span>
                        {citation.heading.map(|heading| view! { <span class="muted">{format!(" · {heading}")}</span> })}
                        <span class="muted" data-test="citation-score">
                            {format!(" · chunk {} · similarity {:.2}", citation.chunk + 1, citation.score)}
                        </span>
                    </li>
                }).collect_view()}
            </ol>
        </details>
    }
}

/// Who answered, what it cost and how long it took.
#[component]
fn Facts(facts: AnswerFacts) -> impl IntoView {
    let trimmed = facts.trimmed_messages;
    view! {
        <p class="facts" data-test="answer-facts">
            <span data-test="answer-provider">{provider_label(facts.provider)}</span>
            <span data-test="answer-model">{facts.model_name}</span>
            <span data-test="answer-tokens">{format_usage(&facts.usage)}</span>
            <span data-test="answer-cost">{format_cost(facts.cost_nanos)}</span>
            <span data-test="answer-latency">{format_latency(facts.latency_ms, facts.ttft_ms)}</span>
            {(trimmed > 0).then(|| view! {
                <span data-test="answer-trimmed">
                    {format!("{trimmed} older {} left out to fit the context window", plural(trimmed.into(), "message"))}
                </span>
            })}
        </p>
    }
}

/// Thumbs up / down: a toggle (pressing the pressed one clears it). A form
/// before hydration, a call in place after it.
#[component]
fn RateButtons(chat: Chat, message_id: String, initial: Option<Rating>) -> impl IntoView {
    let rate = ServerAction::<RateAnswer>::new();
    let rating = RwSignal::new(initial);
    let before = StoredValue::new(initial);
    Effect::new(move |_| {
        if let Some(Err(_)) = rate.value().get() {
            rating.set(before.get_value());
        }
    });
    let (project_id, conversation_id) = chat.ids().unwrap_or_default();
    let request = StoredValue::new((
        project_id.clone(),
        conversation_id.clone(),
        message_id.clone(),
    ));
    let button = move |choice: Rating,
                       text: &'static str,
                       label: &'static str,
                       test: &'static str,
                       icon: &'static str| {
        let pressed = move || rating.get() == Some(choice);
        let click = move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            let next = (rating.get_untracked() != Some(choice)).then_some(choice);
            before.set_value(rating.get_untracked());
            rating.set(next);
            let (project_id, conversation_id, message_id) = request.get_value();
            rate.dispatch(RateAnswer {
                project_id,
                conversation_id,
                message_id,
                rating: next,
            });
        };
        view! {
            <button type="submit" class="rate" name=move || (!pressed()).then_some("rating")
                value=rating_value(choice) aria-label=label aria-pressed=move || pressed().to_string()
                data-test=test on:click=click>
                <span aria-hidden="true">{icon}</span>
                " "
                {text}
            </button>
        }
    };
    view! {
        <form class="rating" method="post" action=RateAnswer::url()>
            <input type="hidden" name="project_id" value=project_id/>
            <input type="hidden" name="conversation_id" value=conversation_id/>
            <input type="hidden" name="message_id" value=message_id/>
            {button(Rating::Up, "Good", "Good answer (thumbs up)", "rate-up", "▲")}
            {button(Rating::Down, "Bad", "Bad answer (thumbs down)", "rate-down", "▼")}
        </form>
        <ErrorNotice error=action_error(rate) test_id="rate-error"/>
    }
}

/// The question box: a form posting to `send_message` before hydration,
/// streaming after it.
#[component]
fn Composer(chat: Chat, hydrated: RwSignal<bool>) -> impl IntoView {
    let (project_id, conversation_id) = chat.ids().unwrap_or_default();
    let (vision, model, drawing, provider) = chat.detail.with_untracked(|d| {
        (
            d.vision,
            d.summary.model_name.clone(),
            d.image_generation.clone(),
            d.summary.provider,
        )
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        chat.send();
    };
    // Enter sends; Shift+Enter starts a new line.
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            chat.send();
        }
    };
    view! {
        <form class="composer" method="post" action=SendMessage::url() on:submit=on_submit data-test="composer">
            <input type="hidden" name="project_id" value=project_id/>
            <input type="hidden" name="conversation_id" value=conversation_id/>
            <label for="composer-input">"Your message"</label>
            <textarea id="composer-input" name="content" rows="3" required
                maxlength=MAX_MESSAGE_CHARS.to_string()
                prop:value=move || chat.draft.get()
                on:input=move |ev| chat.draft.set(event_target_value(&ev))
                on:keydown=on_keydown
                data-test="composer-input"></textarea>
            {if vision {
                view! { <Show when=move || hydrated.get()><ImageAttach images=chat.images/></Show> }.into_any()
            } else {
                view! { <p class="muted" data-test="no-vision">{format!("{model} does not accept images.")}</p> }.into_any()
            }}
            {match drawing {
                Some(drawing) => view! { <ImageControls chat=chat drawing=drawing/> }.into_any(),
                None => view! {
                    <p class="muted" data-test="no-image-generation">
                        {format!(
                            "Image generation is not available with {}: it needs a GPT (OpenAI) project.",
                            provider.label()
                        )}
                    </p>
                }.into_any(),
            }}
            <div class="row">
                <button type="submit" data-test="send" disabled=move || chat.streaming.get()>"Send"</button>
                <Show when=move || chat.streaming.get()>
                    <button type="button" class="secondary" data-test="stop" on:click=move |_| chat.stop()>
                        "Stop"
                    </button>
                </Show>
            </div>
            <ErrorNotice error=chat.send_error test_id="send-error"/>
        </form>
    }
}

/// "Generate image": the size and quality of the picture, and the button
/// that draws the message instead of sending it (its own form action before
/// hydration, a server function call after).
#[component]
fn ImageControls(chat: Chat, drawing: ImageGeneration) -> impl IntoView {
    let size = RwSignal::new(drawing.sizes.first().cloned().unwrap_or_default());
    let quality = RwSignal::new(drawing.qualities.first().cloned().unwrap_or_default());
    let options = |values: Vec<String>| {
        values
            .into_iter()
            .map(|value| view! { <option value=value.clone()>{value.clone()}</option> })
            .collect_view()
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        chat.draw(size.get_untracked(), quality.get_untracked());
    };
    view! {
        <fieldset class="image-controls" data-test="image-controls">
            <legend>{format!("Generate image with {}", drawing.model_name)}</legend>
            <label>
                "Size "
                <select name="size" data-test="image-size"
                    on:change=move |ev| size.set(event_target_value(&ev))>
                    {options(drawing.sizes.clone())}
                </select>
            </label>
            <label>
                "Quality "
                <select name="quality" data-test="image-quality"
                    on:change=move |ev| quality.set(event_target_value(&ev))>
                    {options(drawing.qualities.clone())}
                </select>
            </label>
            <button type="submit" class="secondary" formaction=GenerateImage::url()
                data-test="generate-image" on:click=on_click
                disabled=move || chat.streaming.get()>
                "Generate image"
            </button>
        </fieldset>
    }
}

/// The company behind a provider's models.
fn provider_label(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Claude => "Anthropic",
        ProviderId::OpenAi => "OpenAI",
        ProviderId::Gemini => "Google",
        ProviderId::Llama => "Meta (self-hosted)",
    }
}

/// The `data-status` of a message.
fn status_name(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Pending => "pending",
        MessageStatus::Complete => "complete",
        MessageStatus::Stopped => "stopped",
        MessageStatus::Error => "error",
    }
}

/// The form value of a rating.
fn rating_value(rating: Rating) -> &'static str {
    match rating {
        Rating::Up => "up",
        Rating::Down => "down",
    }
}

/// "1 message", "3 messages".
fn plural(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What a conversation cost so far; a lower bound when some answer was unpriced.
fn conversation_cost(summary: &ConversationSummary) -> String {
    let cost = format_usd(summary.cost_nanos);
    if summary.has_unpriced {
        format!("≥ {cost} (some unpriced)")
    } else {
        cost
    }
}

/// An answer's cost; never $0 for an unknown price.
fn format_cost(cost_nanos: Option<i64>) -> String {
    cost_nanos.map_or_else(|| "unpriced".into(), format_usd)
}

/// "120 in / 45 out tokens", "≈" before estimated figures.
fn format_usage(usage: &TokenUsage) -> String {
    let about = if usage.estimated { "≈" } else { "" };
    let input = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
    let mut text = format!(
        "{about}{input} in / {about}{} out tokens",
        usage.output_tokens
    );
    if usage.cache_read_tokens > 0 {
        text.push_str(&format!(" ({} cached)", usage.cache_read_tokens));
    }
    text
}

/// "840 ms, first token 120 ms".
fn format_latency(latency_ms: u64, ttft_ms: Option<u64>) -> String {
    match ttft_ms {
        Some(ttft) => format!("{latency_ms} ms, first token {ttft} ms"),
        None => format!("{latency_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::chat::{ChatAnswer, FallbackNotice, InterruptedAnswer};

    fn summary(cost_nanos: i64, has_unpriced: bool) -> ConversationSummary {
        ConversationSummary {
            id: "c1".into(),
            title: "Hello".into(),
            provider: ProviderId::Claude,
            model: "claude-3-5-sonnet-20241022".into(),
            model_name: "Claude 3.5 Sonnet".into(),
            config_version: 1,
            message_count: 2,
            cost_nanos,
            has_unpriced,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn costs_are_exact_and_unknown_prices_are_never_zero() {
        assert_eq!(conversation_cost(&summary(12_345_000, false)), "$0.012345");
        assert_eq!(
            conversation_cost(&summary(0, true)),
            "≥ $0.00 (some unpriced)"
        );
        assert_eq!(format_cost(None), "unpriced");
        assert_eq!(format_cost(Some(3_000_000_000)), "$3.00");
    }

    #[test]
    fn facts_read_as_people_expect() {
        let mut usage = TokenUsage {
            input_tokens: 100,
            cache_read_tokens: 20,
            output_tokens: 45,
            ..TokenUsage::default()
        };
        assert_eq!(format_usage(&usage), "120 in / 45 out tokens (20 cached)");
        usage.estimated = true;
        usage.cache_read_tokens = 0;
        assert_eq!(format_usage(&usage), "≈100 in / ≈45 out tokens");
        assert_eq!(format_latency(840, Some(120)), "840 ms, first token 120 ms");
        assert_eq!(format_latency(840, None), "840 ms");
        assert_eq!(plural(1, "message"), "1 message");
        assert_eq!(plural(0, "message"), "0 messages");
    }

    #[test]
    fn a_stream_builds_the_answer_it_shows() {
        let mut answer = blank_message(ChatRole::Assistant, MessageStatus::Pending);
        let notice = FallbackNotice {
            from: "claude-3-5-sonnet-20241022".into(),
            from_provider: ProviderId::Claude,
            to: "gpt-4o-mini".into(),
            to_provider: ProviderId::OpenAi,
            reason: "rateLimited".into(),
            message: "Claude 3.5 Sonnet was rate-limited — answered by GPT-4o mini".into(),
        };
        let broken = InterruptedAnswer {
            model: "gpt-4o-mini".into(),
            provider: ProviderId::OpenAi,
            text: "Half".into(),
            error: "the stream broke".into(),
        };
        for event in [
            ChatEvent::Started {
                question_id: "q".into(),
                message_id: "a".into(),
            },
            ChatEvent::Fallback(notice.clone()),
            ChatEvent::Delta {
                text: "Half".into(),
            },
            ChatEvent::Interrupted(broken.clone()),
            ChatEvent::Delta {
                text: "Whole ".into(),
            },
        ] {
            apply_event(&mut answer, event);
        }
        assert_eq!(answer.id, "a");
        assert_eq!(answer.content, "Whole ");
        assert_eq!(answer.fallback, Some(notice.clone()));
        assert_eq!(answer.interrupted, Some(broken.clone()));
        assert_eq!(answer.status, MessageStatus::Pending);

        apply_event(
            &mut answer,
            ChatEvent::Done(Box::new(ChatAnswer {
                message_id: "a".into(),
                question_id: "q".into(),
                content: "Whole answer".into(),
                provider: ProviderId::OpenAi,
                model: "gpt-4o-mini".into(),
                usage: TokenUsage::default(),
                cost_usd: None,
                cost_nanos: None,
                latency_ms: 10,
                ttft_ms: Some(5),
                fallback: None,
                interrupted: None,
                trimmed_messages: 0,
                citations: Vec::new(),
            })),
        );
        assert_eq!(answer.status, MessageStatus::Complete);
        assert_eq!(answer.content, "Whole answer");
        assert_eq!(answer.fallback, Some(notice));
        assert_eq!(answer.interrupted, Some(broken));

        let mut failed = blank_message(ChatRole::Assistant, MessageStatus::Pending);
        apply_event(
            &mut failed,
            ChatEvent::Error {
                message_id: "b".into(),
                error: "budget".into(),
                message: "The monthly budget is spent".into(),
            },
        );
        assert_eq!(failed.status, MessageStatus::Error);
        assert_eq!(failed.error.as_deref(), Some("The monthly budget is spent"));
    }
}
