//! A yes/no capability cell: what a model lacks is shown as unavailable, not hidden.

use leptos::prelude::*;

/// "Yes" or "Not available" with a matching style.
#[component]
pub fn CapabilityMark(
    /// Whether the capability is there.
    available: bool,
) -> impl IntoView {
    if available {
        view! { <span class="cap yes">"Yes"</span> }
    } else {
        view! { <span class="cap no" title="Not available for this model">"No"</span> }
    }
}
