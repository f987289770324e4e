//! `/admin`: the workspace admin area — every project, and workspace spend for
//! a period (the URL query; default the last 30 days): totals, spend by
//! provider, model and project, monthly spend by provider, the most expensive
//! conversations, and CSV export; and how each provider's models perform
//! across the workspace. Renders fully on the server; the period picker is a
//! GET form.

use crate::components::error_notice::{ErrorNotice, SignInNeeded};
use crate::components::period::{use_period, PeriodPicker};
use crate::components::spend::{format_count, spend_text, SpendBars, UnpricedWarning};
use crate::error::AppError;
use crate::model::costs::{ConversationCost, ManagedKeyLimits, SpendLine, WorkspaceCosts};
use crate::model::money::format_usd;
use crate::pages::performance::ReportView;
use crate::server_fns::admin::{
    list_internal_rates, managed_budget, private_hosts, workspace_projects, InviteToWorkspace,
    SetInternalRate, SetManagedBudget, SetPrivateHosts,
};
use crate::server_fns::chat::conversation_path;
use crate::server_fns::costs::{get_workspace_costs, get_workspace_performance};
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};
use std::collections::BTreeMap;

/// The admin area as a lazily loaded route: its code is a separate wasm chunk,
/// fetched when the route is first shown (see `scripts/build`).
pub struct AdminRoute;

#[lazy_route]
impl LazyRoute for AdminRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <AdminPage/> }.into_any()
    }
}

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
        <WorkspacePerformance/>
        <ManagedKeyBudget/>
        <PrivateHostList/>
        <WorkspaceInvitation/>
        <SelfHostedRates/>
    }
}

/// How each provider's models perform across the workspace, for the period
/// in the URL: the Performance screen's report over every project.
#[component]
fn WorkspacePerformance() -> impl IntoView {
    let period = use_period();
    let report = Resource::new(move || period.get().filter(), get_workspace_performance);
    let body = move || {
        Suspend::new(async move {
            match report.await {
                Ok(report) => view! { <ReportView report=report/> }.into_any(),
                // The projects section already asks to sign in or says why not.
                Err(AppError::Unauthenticated { .. } | AppError::Forbidden { .. }) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="admin-performance-error"/>
                }
                .into_any(),
            }
        })
    };
    view! {
        <section class="card performance" data-test="admin-performance">
            <h2>
                "Workspace performance "
                <span class="muted">{move || format!("({})", period.get().label())}</span>
            </h2>
            <Transition fallback=|| view! { <p class="muted">"Loading workspace performance…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// The limits on Cover's managed keys: the monthly budget every project on
/// them has unless it sets its own, and the workspace-wide monthly cap on
/// all of them together, with this month's spend (a plain form post before
/// hydration).
#[component]
fn ManagedKeyBudget() -> impl IntoView {
    let save = ServerAction::<SetManagedBudget>::new();
    let current = Resource::new(move || save.version().get(), |_| managed_budget());
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    view! {
        <section class="card" data-test="managed-budget">
            <h2>"Limits on Cover's managed keys"</h2>
            <p class="muted">"Every project that answers with Cover's own provider keys is held to the monthly budget unless its owner sets one, and all of them together to the workspace's cap."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    current.await.ok().map(|limits| view! {
                        <p data-test="managed-spend">{managed_spend_text(&limits)}</p>
                        <ActionForm action=save attr:class="inline" attr:data-test="managed-budget-form">
                            <label for="managed-budget">"Monthly budget per project (USD)"</label>
                            <input id="managed-budget" name="managed_budget_usd" type="text" inputmode="decimal"
                                value=limits.managed_budget_usd required data-test="managed-budget-usd"/>
                            <label for="managed-cap">"Workspace cap per month (USD, empty for none)"</label>
                            <input id="managed-cap" name="cap_usd" type="text" inputmode="decimal"
                                value=limits.cap_usd.unwrap_or_default() data-test="managed-cap-usd"/>
                            <button type="submit" data-test="managed-budget-save">"Save"</button>
                        </ActionForm>
                    })
                })}
            </Transition>
            <ErrorNotice error=error test_id="managed-budget-error"/>
        </section>
    }
}

/// This month's managed-key spend against the cap, in words.
fn managed_spend_text(limits: &ManagedKeyLimits) -> String {
    let cap = match &limits.cap_usd {
        Some(cap) => format!("of the ${cap} cap"),
        None => "(no workspace cap is set)".to_owned(),
    };
    format!(
        "Spent with managed keys in {}: ${} {cap}; ${} held by running answers.",
        limits.month, limits.spent_usd, limits.held_usd
    )
}

/// The private hosts and networks Cover may reach for a user-supplied URL (a
/// self-hosted Llama server on the office network, say): the admin's list,
/// one entry per line, and the operator's from the environment, read-only.
#[component]
fn PrivateHostList() -> impl IntoView {
    let save = ServerAction::<SetPrivateHosts>::new();
    let current = Resource::new(move || save.version().get(), |_| private_hosts());
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    view! {
        <section class="card" data-test="private-hosts">
            <h2>"Private hosts Cover may reach"</h2>
            <p class="muted">"Base URLs and webhooks that users enter may only reach the public internet, unless the host, address or network is listed here (for example gpu.internal, 10.0.0.7 or 10.0.0.0/8)."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    current.await.ok().map(|hosts| {
                        let operator = if hosts.operator.is_empty() {
                            "None set in COVER_ALLOWED_PRIVATE_HOSTS.".to_owned()
                        } else {
                            format!("Also allowed by the operator (COVER_ALLOWED_PRIVATE_HOSTS): {}.", hosts.operator.join(", "))
                        };
                        view! {
                            <ActionForm action=save attr:data-test="private-hosts-form">
                                <label for="private-hosts">"Allowed private hosts (one per line)"</label>
                                <textarea id="private-hosts" name="hosts" rows="4" data-test="private-hosts-list">
                                    {hosts.admin.join("\n")}
                                </textarea>
                                <button type="submit" data-test="private-hosts-save">"Save"</button>
                            </ActionForm>
                            <p class="muted" data-test="private-hosts-operator">{operator}</p>
                        }
                    })
                })}
            </Transition>
            <ErrorNotice error=error test_id="private-hosts-error"/>
        </section>
    }
}

/// Invites someone to the workspace (without a project): a one-time link.
#[component]
fn WorkspaceInvitation() -> impl IntoView {
    let invite = ServerAction::<InviteToWorkspace>::new();
    let error = Signal::derive(move || invite.value().get().and_then(Result::err));
    let link = move || {
        invite.value().get().and_then(Result::ok).map(|created| {
            view! {
                <p class="notice ok" data-test="workspace-invitation-link">
                    {format!("Send this link to {} (it works once, until {}): ", created.email, created.expires_at)}
                    <code>{created.link}</code>
                </p>
            }
        })
    };
    view! {
        <section class="card" data-test="workspace-invitation">
            <h2>"Invite someone"</h2>
            <ActionForm action=invite attr:class="inline" attr:data-test="workspace-invite-form">
                <label for="workspace-invite-email">"Email"</label>
                <input id="workspace-invite-email" type="email" name="email" required data-test="workspace-invite-email"/>
                <button type="submit" data-test="workspace-invite-submit">"Create invitation link"</button>
            </ActionForm>
            {link}
            <ErrorNotice error=error test_id="workspace-invite-error"/>
        </section>
    }
}

/// What self-hosted models cost: the rates set so far and a form to set one
/// (a plain form post before hydration).
#[component]
fn SelfHostedRates() -> impl IntoView {
    let save = ServerAction::<SetInternalRate>::new();
    let rates = Resource::new(move || save.version().get(), |_| list_internal_rates());
    // Set once the form runs in the browser (its errors then show in place).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    let list = move || {
        Suspend::new(async move {
            match rates.await {
                Ok(book) => view! {
                    <RateTable rates=book.rates/>
                    <RateForm models=book.models save=save/>
                }
                .into_any(),
                // The projects section already says why the admin area is closed.
                Err(_) => ().into_any(),
            }
        })
    };
    view! {
        <section class="card" data-test="self-hosted-rates" data-hydrated=move || hydrated.get().then_some("true")>
            <h2>"Self-hosted model costs"</h2>
            <p class="muted">"Llama runs on your own servers: without a rate its answers cost $0. Set what a GPU hour of answering or 1M tokens costs you, from a date; usage from that day on is priced with it."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>{list}</Transition>
            <ErrorNotice error=error test_id="rate-error"/>
        </section>
    }
}

/// The internal rates set so far.
#[component]
fn RateTable(rates: Vec<crate::model::pricing::InternalRate>) -> impl IntoView {
    if rates.is_empty() {
        return view! {
            <p class="muted" data-test="no-internal-rates">"No internal rates: self-hosted models cost $0."</p>
        }
        .into_any();
    }
    view! {
                    <table class="data" data-test="internal-rates">
                        <caption>"Internal rates"</caption>
                        <thead><tr><th scope="col">"Model"</th><th scope="col">"From"</th><th scope="col">"Per hour"</th><th scope="col">"Per 1M tokens"</th></tr></thead>
                        <tbody>
                            {rates.into_iter().map(|rate| view! {
                                <tr data-test="internal-rate" data-model=rate.model.clone()>
                                    <td>{rate.model.clone()}</td>
                                    <td>{rate.effective_date}</td>
                                    <td>{format_usd(rate.per_hour_nanos)}</td>
                                    <td>{format_usd(rate.per_m_tok_nanos)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
    }
    .into_any()
}

/// The form setting one model's rate from a date.
#[component]
fn RateForm(models: Vec<(String, String)>, save: ServerAction<SetInternalRate>) -> impl IntoView {
    view! {
            <ActionForm action=save attr:class="rate-form" attr:data-test="internal-rate-form">
                <div class="field">
                    <label for="rate-model">"Model"</label>
                    <select id="rate-model" name="model" data-test="rate-model">
                        {models.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="rate-date">"From"</label>
                    <input id="rate-date" name="effective_date" type="date" required data-test="rate-date"/>
                </div>
                <div class="field">
                    <label for="rate-hour">"USD per hour"</label>
                    <input id="rate-hour" name="per_hour_usd" type="text" inputmode="decimal" placeholder="e.g. 2.50" data-test="rate-per-hour"/>
                </div>
                <div class="field">
                    <label for="rate-mtok">"USD per 1M tokens"</label>
                    <input id="rate-mtok" name="per_m_tok_usd" type="text" inputmode="decimal" placeholder="e.g. 0.10" data-test="rate-per-mtok"/>
                </div>
                <button type="submit" data-test="rate-save">"Save rate"</button>
            </ActionForm>
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
