//! Shows a failed call's error where it happened.

use crate::error::AppError;
use leptos::prelude::*;

/// The last error of an action or resource, in an alert box (nothing when `None`).
#[component]
pub fn ErrorNotice(
    /// The error to show.
    #[prop(into)]
    error: Signal<Option<AppError>>,
    /// The `data-test` hook for this notice.
    #[prop(default = "error")]
    test_id: &'static str,
) -> impl IntoView {
    move || {
        error.get().map(|error| {
            view! { <p class="notice error" role="alert" data-test=test_id>{error.to_string()}</p> }
        })
    }
}

/// The error of a server action's last run, as a signal for [`ErrorNotice`].
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}

/// Shown where a page needs a signed-in user and there is none.
#[component]
pub fn SignInNeeded() -> impl IntoView {
    view! {
        <p class="notice" data-test="signin-needed">
            "Please " <a href="/" data-test="signin-link">"log in"</a> " to see this page."
        </p>
    }
}
