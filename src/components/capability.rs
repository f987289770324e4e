//! A yes/no capability cell: what a model lacks is shown as unavailable, not hidden.

use leptos::prelude::*;

/// "Yes" or "Not available" with a matching style.
#[component]
pub fn CapabilityMark(
    /// Whether the capability is there.
    available: bool,
) -> impl IntoView {
    let (class, text, title) = if available {
        ("cap yes", "Yes", "Available")
    } else {
        ("cap no", "No", "Not available for this model")
    };
    view! { <span class=class title=title>{text}</span> }
}
