//! The chat page's calls. Streaming answers do not go through a server function:
//! after hydration the page posts to the JSON API
//! (`POST /api/projects/:id/conversations/:cid/messages`, `Accept:
//! text/event-stream`) with the session cookie and reads the events. Before
//! hydration the forms below post here and the server answers with a redirect
//! back to the conversation, the answer in place.

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::chat::{
    ChatAnswer, ConversationDetail, ConversationSummary, ImageExchange, Rating,
};
use leptos::prelude::*;

/// The URL of a conversation on the chat page.
pub fn conversation_path(project_id: &str, conversation_id: &str) -> String {
    format!("/projects/{project_id}/chat?c={conversation_id}")
}

/// The project's 100 most recently active conversations, newest first (the
/// API pages through all of them).
#[server(prefix = "/sfn", endpoint = "chat/list")]
pub async fn list_conversations(project_id: String) -> Result<Vec<ConversationSummary>, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    let first = crate::server::db::paging::Page::FIRST_FULL;
    let (conversations, _) =
        crate::server::services::chat::list(&state, &project_id, &first).await?;
    Ok(conversations)
}

/// One conversation with its messages.
#[server(prefix = "/sfn", endpoint = "chat/get")]
pub async fn get_conversation(
    project_id: String,
    conversation_id: String,
) -> Result<ConversationDetail, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    Ok(crate::server::services::chat::get(&state, &project_id, &conversation_id).await?)
}

/// Starts a conversation on the project's current configuration. As a form post
/// (before hydration) it redirects to the new conversation.
#[server(prefix = "/sfn", endpoint = "chat/new")]
pub async fn new_conversation(project_id: String) -> Result<ConversationSummary, AppError> {
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    let summary =
        crate::server::services::chat::create(&state, &project_id, Some(&user.user_id)).await?;
    leptos_axum::redirect(&conversation_path(&project_id, &summary.id));
    Ok(summary)
}

/// Sends a question and waits for the whole answer: the form path before
/// hydration (it redirects back to the conversation).
#[server(prefix = "/sfn", endpoint = "chat/send")]
pub async fn send_message(
    project_id: String,
    conversation_id: String,
    content: String,
) -> Result<ChatAnswer, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    let message = crate::model::chat::NewMessage {
        content,
        images: Vec::new(),
    };
    let answer =
        crate::server::services::chat::answer(&state, &project_id, &conversation_id, message).await;
    leptos_axum::redirect(&conversation_path(&project_id, &conversation_id));
    Ok(answer?)
}

/// Draws a picture in a GPT conversation ("Generate image"): the prompt and
/// the picture are stored as a question and its answer. As a form post
/// (before hydration) it redirects back to the conversation.
#[server(prefix = "/sfn", endpoint = "chat/image")]
pub async fn generate_image(
    project_id: String,
    conversation_id: String,
    content: String,
    size: Option<String>,
    quality: Option<String>,
) -> Result<ImageExchange, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    let asked = crate::model::chat::NewImage {
        prompt: content,
        size,
        quality,
    };
    let drawn = crate::server::services::images::draw_in_conversation(
        &state,
        &project_id,
        &conversation_id,
        asked,
    )
    .await;
    leptos_axum::redirect(&conversation_path(&project_id, &conversation_id));
    Ok(drawn?)
}

/// Thumbs up/down on an answer (`None` clears it).
#[server(prefix = "/sfn", endpoint = "chat/rate")]
pub async fn rate_answer(
    project_id: String,
    conversation_id: String,
    message_id: String,
    rating: Option<Rating>,
) -> Result<(), AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Chat).await?;
    Ok(crate::server::services::chat::rate(
        &state,
        &project_id,
        &conversation_id,
        &message_id,
        rating,
    )
    .await?)
}
