//! Log-in and sign-up screens. Plain forms: they work before hydration (a
//! normal POST and redirect) and after it (fetch, errors shown in place).

use crate::components::error_notice::{action_error, ErrorNotice};
use crate::server_fns::auth::{LogIn, SignUp};
use leptos::prelude::*;

/// `/`: log in.
#[component]
pub fn LogInPage() -> impl IntoView {
    let action = ServerAction::<LogIn>::new();
    view! {
        <section class="card narrow">
            <h1>"Log in to Cover"</h1>
            <ActionForm action=action attr:data-test="login-form">
                <CredentialFields autocomplete="current-password"/>
                <button type="submit" data-test="login-submit">"Log in"</button>
            </ActionForm>
            <ErrorNotice error=action_error(action) test_id="login-error"/>
            <p>"No account yet? " <a href="/signup" data-test="goto-signup">"Sign up"</a></p>
        </section>
    }
}

/// `/signup`: create an account (the first one becomes the workspace admin).
#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    view! {
        <section class="card narrow">
            <h1>"Create your Cover account"</h1>
            <ActionForm action=action attr:data-test="signup-form">
                <CredentialFields autocomplete="new-password"/>
                <button type="submit" data-test="signup-submit">"Sign up"</button>
            </ActionForm>
            <ErrorNotice error=action_error(action) test_id="signup-error"/>
            <p>"Already have an account? " <a href="/" data-test="goto-login">"Log in"</a></p>
        </section>
    }
}

#[component]
fn CredentialFields(autocomplete: &'static str) -> impl IntoView {
    view! {
        <label for="email">"Email"</label>
        <input id="email" type="email" name="email" required autocomplete="email" data-test="email"/>
        <label for="password">"Password"</label>
        <input
            id="password"
            type="password"
            name="password"
            required
            minlength="8"
            autocomplete=autocomplete
            data-test="password"
        />
    }
}
