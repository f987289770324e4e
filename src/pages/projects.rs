//! `/projects`: the caller's projects and a form to create one.

use crate::components::error_notice::{action_error, ErrorNotice, SignInNeeded};
use crate::error::AppError;
use crate::model::account::UseCase;
use crate::server_fns::projects::{list_projects, CreateProject};
use leptos::prelude::*;

/// Lists projects; creating one refreshes the list.
#[component]
pub fn ProjectsPage() -> impl IntoView {
    let create = ServerAction::<CreateProject>::new();
    let projects = Resource::new(move || create.version().get(), |_| list_projects());
    view! {
        <section class="card">
            <h1>"Projects"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading projects…"</p> }>
                {move || Suspend::new(async move {
                    match projects.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="muted" data-test="no-projects">"No projects yet: create your first one below."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul class="project-list" data-test="project-list">
                                    {list
                                        .into_iter()
                                        .map(|project| {
                                            let href = format!("/projects/{}/compare", project.id);
                                            view! {
                                                <li data-test="project-item">
                                                    <a href=href data-test="project-link">{project.name}</a>
                                                    <span class="muted">" · " {project.use_case.label()}</span>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                        Err(AppError::Unauthenticated { .. }) => view! { <SignInNeeded/> }.into_any(),
                        Err(error) => view! { <p class="notice error">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card">
            <h2>"New project"</h2>
            <ActionForm action=create attr:data-test="create-project-form">
                <label for="project-name">"Project name"</label>
                <input id="project-name" name="name" required maxlength="80" data-test="project-name"/>
                <label for="project-use-case">"Use case"</label>
                <select id="project-use-case" name="use_case" data-test="project-use-case">
                    {UseCase::ALL
                        .into_iter()
                        .map(|u| view! { <option value=u.as_str()>{u.label()}</option> })
                        .collect_view()}
                </select>
                <button type="submit" data-test="create-project">"Create project"</button>
            </ActionForm>
            <ErrorNotice error=action_error(create) test_id="create-project-error"/>
        </section>
    }
}
