//! The HTML shell and the routes of every screen.

use crate::pages::{
    admin::AdminRoute, auth::LogInPage, auth::SignUpPage, chat::ChatRoute, compare::CompareRoute,
    costs::CostsRoute, knowledge::KnowledgeRoute, not_found::NotFoundPage,
    performance::PerformanceRoute, project::ProjectLayout, projects::ProjectsPage,
    settings::SettingsRoute,
};
use crate::server_fns::auth::{current_user, LogOut};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes, A};
use leptos_router::hooks::use_location;
use leptos_router::{path, Lazy, SsrMode};

/// The document around every page (rendered on the server only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: header and routes.
///
/// The heavy screens (LLM settings, Compare, Chat, Knowledge, Costs, Performance,
/// Admin) are lazy
/// routes: the browser bundle a first visit downloads holds only the shell,
/// the header and the light screens; each heavy screen's code is its own wasm
/// chunk, fetched the first time that screen is shown (on the server they
/// render as before). The hydrate entry point must be `hydrate_lazy` for this.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/cover.css"/>
        <Title text="Cover — LLM providers"/>
        <Router>
            <Header/>
            <main class="page">
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=LogInPage/>
                    <Route path=path!("/signup") view=SignUpPage/>
                    <Route path=path!("/projects") view=ProjectsPage/>
                    <ParentRoute path=path!("/projects/:id") view=ProjectLayout>
                        <Route path=path!("") view={Lazy::<SettingsRoute>::new()}/>
                        <Route path=path!("settings") view={Lazy::<SettingsRoute>::new()}/>
                        <Route path=path!("compare") view={Lazy::<CompareRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("chat") view={Lazy::<ChatRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("knowledge") view={Lazy::<KnowledgeRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("costs") view={Lazy::<CostsRoute>::new()} ssr=SsrMode::Async/>
                        <Route path=path!("performance") view={Lazy::<PerformanceRoute>::new()} ssr=SsrMode::Async/>
                    </ParentRoute>
                    <Route path=path!("/admin") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// The top bar: brand, the signed-in user, admin link and log out.
#[component]
fn Header() -> impl IntoView {
    let location = use_location();
    let log_out = ServerAction::<LogOut>::new();
    let user = Resource::new(
        move || (location.pathname.get(), log_out.version().get()),
        |_| current_user(),
    );
    view! {
        <header class="topbar">
            <A href="/projects" attr:class="brand" attr:data-test="nav-home">"Cover"</A>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(user)) => {
                            let is_admin = user.role == crate::model::account::WorkspaceRole::Admin;
                            view! {
                                <nav class="topnav">
                                    <A href="/projects" attr:data-test="nav-projects">"Projects"</A>
                                    <Show when=move || is_admin>
                                        <A href="/admin" attr:data-test="nav-admin">"Admin"</A>
                                    </Show>
                                    <span class="who" data-test="current-user">{user.email.clone()}</span>
                                    <ActionForm action=log_out>
                                        <button type="submit" class="link" data-test="logout">"Log out"</button>
                                    </ActionForm>
                                </nav>
                            }
                                .into_any()
                        }
                        _ => {
                            view! {
                                <nav class="topnav">
                                    <A href="/" attr:data-test="nav-login">"Log in"</A>
                                    <A href="/signup" attr:data-test="nav-signup">"Sign up"</A>
                                </nav>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </header>
    }
}
