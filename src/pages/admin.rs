//! `/admin`: the workspace admin area.

use crate::api::admin::workspace_projects;
use crate::components::error_notice::SignInNeeded;
use crate::error::AppError;
use crate::pages::planned::PlannedScreen;
use leptos::prelude::*;

/// Every project of the workspace, and the spend dashboard to come.
#[component]
pub fn AdminPage() -> impl IntoView {
    let projects = Resource::new(|| (), |_| workspace_projects());
    view! {
        <section class="card" data-test="admin-projects">
            <h1>"Workspace"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match projects.await {
                        Ok(list) => view! {
                            <table class="data">
                                <caption>"All projects"</caption>
                                <thead><tr><th scope="col">"Project"</th><th scope="col">"Use case"</th><th scope="col">"Created"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| view! {
                                        <tr data-test="admin-project-row">
                                            <td><a href=format!("/projects/{}/compare", p.id)>{p.name}</a></td>
                                            <td>{p.use_case.label()}</td>
                                            <td>{p.created_at}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(AppError::Unauthenticated { .. }) => view! { <SignInNeeded/> }.into_any(),
                        Err(error) => view! { <p class="notice error" data-test="admin-error">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <PlannedScreen
            title="Workspace spend"
            purpose="Spend across every project, once conversations record usage."
            items=&[
                "Spend by provider, model and project",
                "The most expensive conversations",
                "CSV export",
            ]
            test_id="admin-spend-planned"
        />
    }
}
