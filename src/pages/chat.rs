//! `/projects/:id/chat`: the chat playground.

use crate::pages::planned::PlannedScreen;
use leptos::prelude::*;

/// Conversations with the project's configured model.
#[component]
pub fn ChatPage() -> impl IntoView {
    view! {
        <PlannedScreen
            title="Chat"
            purpose="Talk to the project's chatbot through its configured provider."
            items=&[
                "Conversations that keep the model they started with",
                "Answers streamed token by token, with a Stop button",
                "Provider, model, tokens, cost and latency on every answer",
                "A notice whenever a fallback provider answered",
                "Thumbs up / down on answers",
            ]
            test_id="chat-planned"
        />
    }
}
