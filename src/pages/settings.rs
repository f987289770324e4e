//! `/projects/:id/settings`: the project's LLM configuration (spec mockup 1).

use crate::pages::planned::PlannedScreen;
use leptos::prelude::*;

/// Provider, model, parameters, keys and fallback for the project.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <PlannedScreen
            title="LLM provider & model"
            purpose="Choose the provider and model this project's chatbot uses, and how it is called."
            items=&[
                "Active provider with its context window, prices, speed and capabilities",
                "Model selection with the recommended model for the project's use case",
                "Parameters: temperature, max tokens, top P, penalties (OpenAI), safety settings (Gemini), system prompt, presets",
                "API key management: Cover-managed or your own key, shown masked, with Test Connection",
                "Fallback configuration: fallback provider and model, retry attempts",
            ]
            test_id="settings-planned"
        />
    }
}
