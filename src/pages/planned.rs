//! A screen whose features are not built yet says what it will hold, instead of
//! showing invented data.

use leptos::prelude::*;

/// Title, one-line purpose and the list of what is coming.
#[component]
pub fn PlannedScreen(
    /// Screen title.
    title: &'static str,
    /// What the screen is for.
    purpose: &'static str,
    /// What it will show, one item per line.
    items: &'static [&'static str],
    /// The `data-test` hook of the section.
    test_id: &'static str,
) -> impl IntoView {
    view! {
        <section class="card" data-test=test_id>
            <h2>{title}</h2>
            <p>{purpose}</p>
            <p class="muted">"Not available yet. This screen will show:"</p>
            <ul>{items.iter().map(|item| view! { <li>{*item}</li> }).collect_view()}</ul>
        </section>
    }
}
