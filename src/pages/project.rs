//! `/projects/:id/*`: the project's frame — its name and navigation (LLM
//! settings, Compare, Chat, Knowledge, Costs, Performance) around the chosen
//! screen.

use crate::components::error_notice::SignInNeeded;
use crate::error::AppError;
use crate::server_fns::projects::get_project;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_params_map;

/// The id of the project in the URL, for the screens inside the frame.
pub fn use_project_id() -> Memo<String> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").unwrap_or_default())
}

/// Loads the project (404 for strangers) and shows the navigation above the
/// chosen screen; each screen checks access again through its own calls.
#[component]
pub fn ProjectLayout() -> impl IntoView {
    let id = use_project_id();
    let project = Resource::new(move || id.get(), get_project);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading project…"</p> }>
            {move || Suspend::new(async move {
                match project.await {
                    Ok(project) => {
                        let base = format!("/projects/{}", project.id);
                        let links = [
                            ("settings", "LLM settings"),
                            ("compare", "Compare"),
                            ("chat", "Chat"),
                            ("knowledge", "Knowledge"),
                            ("costs", "Costs"),
                            ("performance", "Performance"),
                        ];
                        view! {
                            <div class="project-head">
                                <h1 data-test="project-title">{project.name.clone()}</h1>
                                <nav class="tabs" aria-label="Project">
                                    {links
                                        .into_iter()
                                        .map(|(path, label)| {
                                            view! {
                                                <A href=format!("{base}/{path}") attr:data-test=format!("tab-{path}")>
                                                    {label}
                                                </A>
                                            }
                                        })
                                        .collect_view()}
                                </nav>
                            </div>
                        }
                            .into_any()
                    }
                    Err(AppError::Unauthenticated { .. }) => view! { <SignInNeeded/> }.into_any(),
                    Err(AppError::NotFound) => {
                        view! { <p class="notice error" data-test="project-not-found">"No such project."</p> }.into_any()
                    }
                    Err(error) => view! { <p class="notice error">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        <Outlet/>
    }
}
