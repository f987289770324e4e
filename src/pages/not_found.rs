//! The page for unknown addresses.

use leptos::prelude::*;

/// 404 page (the server answers with status 404).
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card narrow" data-test="not-found">
            <h1>"Page not found"</h1>
            <p><a href="/projects">"Back to your projects"</a></p>
        </section>
    }
}
