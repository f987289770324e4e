//! Log-in and sign-up screens. Plain forms: they work before hydration (a
//! normal POST and redirect) and after it (fetch, errors shown in place).
//! Sign-up follows the server's mode (invitation, open, closed).

use crate::components::error_notice::{action_error, ErrorNotice};
use crate::model::account::SignupMode;
use crate::server_fns::auth::{current_user, signup_info, AcceptInvitation, LogIn, SignUp};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

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

/// `/signup`: create an account with an invitation link
/// (`?invitation=inv_…`), the setup token the server printed (`?setup=…`,
/// makes the workspace admin) or, when the operator opened sign-up, without.
/// Someone already signed in who opens an invitation link accepts it here.
#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let accept = ServerAction::<AcceptInvitation>::new();
    let query = use_query_map();
    let invitation = move || query.read().get("invitation").unwrap_or_default();
    let setup = move || query.read().get("setup").unwrap_or_default();
    let info = Resource::new(invitation, signup_info);
    let user = Resource::new(|| (), |_| current_user());
    view! {
        <section class="card narrow">
            <h1>"Create your Cover account"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let signed_in = user.await.ok().flatten();
                    match info.await {
                        Err(error) => view! {
                            <p class="notice error" role="alert" data-test="invitation-error">{error.to_string()}</p>
                        }.into_any(),
                        Ok((_, Some(invited))) if signed_in.is_some() => {
                            let place = invited.project_name.clone().map_or_else(
                                || "this workspace".to_owned(),
                                |name| format!("the project {name}"),
                            );
                            view! {
                                <p data-test="invitation-summary">{format!("You are invited to {place}.")}</p>
                                <ActionForm action=accept attr:data-test="accept-form">
                                    <input type="hidden" name="invitation" value=invitation()/>
                                    <button type="submit" data-test="accept-invitation">"Accept invitation"</button>
                                </ActionForm>
                                <ErrorNotice error=action_error(accept) test_id="accept-error"/>
                            }.into_any()
                        }
                        Ok((mode, invited)) => {
                            let setting_up = !setup().is_empty();
                            let summary = match (&invited, setting_up) {
                                (Some(invited), _) => Some(invited.project_name.clone().map_or_else(
                                    || format!("Invitation for {}.", invited.email),
                                    |name| format!("Invitation for {} to the project {name}.", invited.email),
                                )),
                                (None, true) => Some("This account becomes the workspace's admin.".to_owned()),
                                (None, false) => None,
                            };
                            let closed = invited.is_none() && !setting_up && mode != SignupMode::Open;
                            let email = invited.map(|i| i.email).unwrap_or_default();
                            if closed {
                                let message = match mode {
                                    SignupMode::Closed => "Sign-up is closed on this server; ask its operator for an account.",
                                    _ => "Sign-up is by invitation: ask a project owner or the workspace admin for a link.",
                                };
                                return view! { <p class="notice" data-test="signup-closed">{message}</p> }.into_any();
                            }
                            view! {
                                {summary.map(|text| view! { <p data-test="invitation-summary">{text}</p> })}
                                <ActionForm action=action attr:data-test="signup-form">
                                    <input type="hidden" name="invitation" value=invitation()/>
                                    <input type="hidden" name="setup_token" value=setup()/>
                                    <CredentialFields autocomplete="new-password" email=email/>
                                    <button type="submit" data-test="signup-submit">"Sign up"</button>
                                </ActionForm>
                                <ErrorNotice error=action_error(action) test_id="signup-error"/>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
            <p>"Already have an account? " <a href="/" data-test="goto-login">"Log in"</a></p>
        </section>
    }
}

#[component]
fn CredentialFields(
    autocomplete: &'static str,
    /// A known email (from an invitation), filled in.
    #[prop(optional)]
    email: String,
) -> impl IntoView {
    view! {
        <label for="email">"Email"</label>
        <input id="email" type="email" name="email" required autocomplete="email" data-test="email" value=email/>
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
