//! `/admin`: the workspace admin area — every project, and workspace spend for
//! a period (the URL query; default the last 30 days): totals, spend by
//! provider, model and project, monthly spend by provider, the most expensive
//! conversations, and CSV export. Renders fully on the server; the period
//! picker is a GET form.

use crate::api::admin::workspace_projects;
use crate::api::chat::conversation_path;
use crate::api::costs::get_workspace_costs;
use crate::components::error_notice::{ErrorNotice, SignInNeeded};
use crate::components::period::{use_period, PeriodPicker};
use crate::components::spend::{format_count, spend_text, SpendBars, UnpricedWarning};
use crate::error::AppError;
use crate::model::costs::{ConversationCost, SpendLine, WorkspaceCosts};
use crate::model::money::format_usd;
use leptos::prelude::*;
use std::collections::BTreeMap;

/// Every project of the workspace and the workspace's spend.
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
        <WorkspaceSpend/>
    }
}

/// The spend dashboard with its period picker.
#[component]
fn WorkspaceSpend() -> impl IntoView {
    let period = use_period();
    let costs = Resource::new(move || period.get().filter(), get_workspace_costs);
    let body = move || {
        Suspend::new(async move {
            match costs.await {
                Ok(costs) => view! { <SpendDashboard costs=costs/> }.into_any(),
                // The projects section already asks to sign in or says why not.
                Err(AppError::Unauthenticated { .. } | AppError::Forbidden { .. }) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="admin-spend-error"/>
                }
                .into_any(),
            }
        })
    };
    view! {
        <section class="card costs" data-test="admin-spend">
            <div class="cost-head">
                <h2>
                    "Workspace spend "
                    <span class="muted" data-test="admin-period">{move || format!("({})", period.get().label())}</span>
                </h2>
                <PeriodPicker period=period/>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading workspace spend…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// The cost page of a project (the by-project bars link there).
fn project_costs_path(project_id: &str) -> String {
    format!("/projects/{project_id}/costs")
}

/// Everything of a loaded workspace report.
#[component]
fn SpendDashboard(costs: WorkspaceCosts) -> impl IntoView {
    let csv = format!(
        "/api/admin/llm-usage.csv?from={}&to={}",
        costs.from, costs.to
    );
    let total = &costs.total;
    view! {
        <dl class="cost-summary">
            <div>
                <dt>"Total spend"</dt>
                <dd data-test="admin-spend-total">{spend_text(total)}</dd>
            </div>
            <div>
                <dt>"Provider attempts"</dt>
                <dd data-test="admin-attempts">{format_count(total.attempts)}</dd>
            </div>
            <div>
                <dt>"Answered by a fallback"</dt>
                <dd data-test="admin-fallbacks">{format_count(total.fallback_attempts)}</dd>
            </div>
            <div>
                <dt>"Failed attempts"</dt>
                <dd data-test="admin-failed">{format_count(total.failed_attempts)}</dd>
            </div>
        </dl>
        <UnpricedWarning attempts=total.unpriced_attempts/>
        <p class="row">
            <a class="button secondary" href=csv rel="external" download="" data-test="admin-csv-export">
                "Export CSV"
            </a>
            <span class="muted">{format!("Usage of every project from {} to {} (UTC).", costs.from, costs.to)}</span>
        </p>
        <div class="split">
            <SpendBars caption="Spend by provider" name_header="Provider" lines=costs.by_provider.clone() test_id="admin-by-provider"/>
            <SpendBars caption="Spend by model" name_header="Model" lines=costs.by_model.clone() test_id="admin-by-model"/>
        </div>
        <SpendBars caption="Spend by project" name_header="Project" lines=costs.by_project.clone()
            test_id="admin-by-project" link=project_costs_path/>
        <MonthlyByProvider lines=costs.monthly_by_provider.clone() providers=costs.by_provider.clone()/>
        <TopConversations conversations=costs.top_conversations.clone()/>
    }
}

/// Spend per calendar month (rows) and provider (columns), from lines keyed
/// `YYYY-MM|provider`.
#[component]
fn MonthlyByProvider(
    lines: Vec<SpendLine>,
    /// The providers' lines of the period, for their names.
    providers: Vec<SpendLine>,
) -> impl IntoView {
    let mut columns: Vec<String> = Vec::new();
    let mut months: BTreeMap<String, BTreeMap<String, SpendLine>> = BTreeMap::new();
    for line in lines {
        let (month, provider) = line.key.split_once('|').unwrap_or((&line.key, ""));
        let (month, provider) = (month.to_owned(), provider.to_owned());
        if !columns.contains(&provider) {
            columns.push(provider.clone());
        }
        months.entry(month).or_default().insert(provider, line);
    }
    if months.is_empty() {
        return view! {
            <div data-test="admin-monthly">
                <h3>"Monthly spend by provider"</h3>
                <p class="muted">"No usage in this period."</p>
            </div>
        }
        .into_any();
    }
    let name = |key: &str| {
        providers
            .iter()
            .find(|p| p.key == key)
            .map_or_else(|| key.to_owned(), |p| p.label.clone())
    };
    let header = columns
        .iter()
        .map(|c| view! { <th scope="col" class="num">{name(c)}</th> })
        .collect_view();
    let rows = months
        .into_iter()
        .map(|(month, by_provider)| {
            let sum = SpendLine {
                cost_nanos: by_provider.values().map(|l| l.cost_nanos).sum(),
                attempts: by_provider.values().map(|l| l.attempts).sum(),
                unpriced_attempts: by_provider.values().map(|l| l.unpriced_attempts).sum(),
                ..SpendLine::default()
            };
            let cells = columns
                .iter()
                .map(|c| {
                    let text = by_provider.get(c).map_or_else(|| "—".into(), spend_text);
                    view! { <td class="num" data-provider=c.clone()>{text}</td> }
                })
                .collect_view();
            view! {
                <tr data-test="admin-monthly-row" data-month=month.clone()>
                    <th scope="row">{month.clone()}</th>
                    {cells}
                    <td class="num">{spend_text(&sum)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll" data-test="admin-monthly">
            <table class="data">
                <caption>"Monthly spend by provider"</caption>
                <thead>
                    <tr><th scope="col">"Month"</th>{header}<th scope="col" class="num">"Total"</th></tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The most expensive conversations, each linking to its chat.
#[component]
fn TopConversations(conversations: Vec<ConversationCost>) -> impl IntoView {
    if conversations.is_empty() {
        return view! {
            <div data-test="admin-top-conversations">
                <h3>"Most expensive conversations"</h3>
                <p class="muted">"No conversations with usage in this period."</p>
            </div>
        }
        .into_any();
    }
    let rows = conversations
        .into_iter()
        .map(|c| {
            view! {
                <tr data-test="admin-top-conversation" data-id=c.conversation_id.clone()>
                    <th scope="row">
                        <a href=conversation_path(&c.project_id, &c.conversation_id)>{c.title}</a>
                    </th>
                    <td><a href=project_costs_path(&c.project_id)>{c.project_name}</a></td>
                    <td class="num">{format_usd(c.cost_nanos)}</td>
                    <td class="num">{format_count(c.attempts)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll" data-test="admin-top-conversations">
            <table class="data">
                <caption>"Most expensive conversations"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Conversation"</th>
                        <th scope="col">"Project"</th>
                        <th scope="col" class="num">"Cost"</th>
                        <th scope="col" class="num">"Attempts"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
