//! `/projects/:id/costs`: cost analysis (spec mockup 3, FR-007, AC-005). For a
//! period (the URL query; default the last 30 days): the current model, total
//! spend, conversations and average cost; unpriced usage called out; "If you
//! had used …" for every other model; the recommendation with Switch Model;
//! spend over time; spend by model and provider; token analytics and
//! suggestions; the month-end projection against the budget; the budget form;
//! budget notifications; CSV export.
//!
//! Everything renders on the server and works as plain forms before
//! hydration: the period picker is a GET form, Switch Model, Save and "Mark all
//! read" post and come back to this page. After hydration they run in place
//! (Switch Model asks for confirmation first) and the report reloads after a
//! successful change.

use crate::components::error_notice::{action_error, ErrorNotice};
use crate::components::period::{use_period, PeriodPicker};
use crate::components::spend::{format_count, spend_text, SpendBars, UnpricedWarning};
use crate::components::spend_chart::SpendChart;
use crate::error::AppError;
use crate::model::costs::{
    BudgetState, BudgetStatus, CostRecommendation, CostReport, Granularity, Notification,
    Projection, SpendLine, Suggestion, WhatIf,
};
use crate::model::money::{format_decimal, format_usd, percent, permille};
use crate::pages::project::use_project_id;
use crate::server_fns::budgets::{list_notifications, MarkNotificationsRead, SaveBudget};
use crate::server_fns::costs::get_cost_report;
use crate::server_fns::settings::SelectModel;
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// The page's changes, shared by its parts (and kept across report reloads, so
/// their confirmations and errors stay on screen).
#[derive(Clone, Copy)]
struct Actions {
    switch: ServerAction<SelectModel>,
    budget: ServerAction<SaveBudget>,
    read: ServerAction<MarkNotificationsRead>,
}

/// The cost analysis as a lazily loaded route: its code is a separate wasm chunk,
/// fetched when the route is first shown (see `scripts/build`).
pub struct CostsRoute;

#[lazy_route]
impl LazyRoute for CostsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <CostsPage/> }.into_any()
    }
}

/// The cost analysis of the project in the URL.
#[component]
pub fn CostsPage() -> impl IntoView {
    let project_id = use_project_id();
    let period = use_period();
    let actions = Actions {
        switch: ServerAction::new(),
        budget: ServerAction::new(),
        read: ServerAction::new(),
    };
    // Counts successful changes: the report and notifications reload after
    // each (not after a refused one, so a refused form keeps what was typed).
    let changes = RwSignal::new(0_u64);
    Effect::new(move |_| {
        if let Some(Ok(_)) = actions.switch.value().get() {
            changes.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = actions.budget.value().get() {
            changes.update(|n| *n += 1);
        }
    });
    // Set once the browser side runs (tests wait for it before clicking).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let report = Resource::new(
        move || (project_id.get(), period.get().filter(), changes.get()),
        |(project_id, filter, _)| get_cost_report(project_id, filter),
    );
    let notifications = Resource::new(
        move || {
            (
                project_id.get(),
                actions.read.version().get(),
                changes.get(),
            )
        },
        |(project_id, _, _)| list_notifications(project_id),
    );

    let body = move || {
        Suspend::new(async move {
            match report.await {
                Ok(report) => {
                    let granularity = period.get_untracked().granularity;
                    view! { <ReportView report=report granularity=granularity actions=actions/> }
                        .into_any()
                }
                // The project frame already says so.
                Err(AppError::Unauthenticated { .. } | AppError::NotFound) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="cost-error"/>
                }
                .into_any(),
            }
        })
    };
    let alerts = move || {
        Suspend::new(async move {
            match notifications.await {
                Ok(list) => view! { <NotificationList list=list read=actions.read/> }.into_any(),
                Err(AppError::Unauthenticated { .. } | AppError::NotFound) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="notifications-load-error"/>
                }
                .into_any(),
            }
        })
    };

    view! {
        <section class="card costs" data-test="costs" data-hydrated=move || hydrated.get().then_some("true")>
            <div class="cost-head">
                <h2>
                    "Provider Cost Analysis "
                    <span class="muted" data-test="cost-period">{move || format!("({})", period.get().label())}</span>
                </h2>
                <PeriodPicker period=period with_granularity=true/>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading the cost report…"</p> }>
                {body}
            </Transition>
        </section>
        <section class="card" data-test="notifications-card">
            <h2>"Budget notifications"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading notifications…"</p> }>
                {alerts}
            </Transition>
        </section>
    }
}

/// Every part of a loaded report.
#[component]
fn ReportView(
    report: CostReport,
    /// How the series is bucketed (as asked for).
    granularity: Granularity,
    actions: Actions,
) -> impl IntoView {
    let project_id = use_project_id().get_untracked();
    let csv = format!(
        "/api/projects/{project_id}/llm-usage.csv?from={}&to={}",
        report.from, report.to
    );
    // Display names of every model the report knows, for the switch confirmation.
    let names: Vec<(String, String)> = std::iter::once((
        report.current_model.clone(),
        report.current_model_name.clone(),
    ))
    .chain(
        report
            .what_if
            .iter()
            .map(|w| (w.model.clone(), w.name.clone())),
    )
    .collect();
    let chart_title = match granularity {
        Granularity::Day => "Spend per day",
        Granularity::Week => "Spend per week",
        Granularity::Month => "Spend per month",
    };
    view! {
        <dl class="cost-summary">
            <div>
                <dt>"Current model"</dt>
                <dd data-test="cost-current-model" data-model=report.current_model.clone()>
                    {report.current_model_name.clone()}
                </dd>
            </div>
            <div>
                <dt>"Total spend"</dt>
                <dd data-test="cost-total">{spend_text(&report.total)}</dd>
            </div>
            <div>
                <dt>"Conversations"</dt>
                <dd data-test="cost-conversations">{format_count(report.conversations)}</dd>
            </div>
            <div>
                <dt>"Avg cost/conversation"</dt>
                <dd data-test="cost-average">{average_text(&report)}</dd>
            </div>
        </dl>
        <UnpricedWarning attempts=report.total.unpriced_attempts/>
        <p class="row">
            <a class="button secondary" href=csv rel="external" download="" data-test="csv-export">
                "Export CSV"
            </a>
            <span class="muted">{format!("Usage from {} to {} (UTC), one row per provider attempt.", report.from, report.to)}</span>
        </p>

        <h3>"If you had used:"</h3>
        <WhatIfList items=report.what_if.clone()/>
        <RecommendationView recommendation=report.recommendation.clone() project_id=project_id.clone()
            names=names switch=actions.switch/>

        <h3>"Spend over time"</h3>
        <div class="chart-frame">
            <SpendChart title=chart_title series=report.series.clone() granularity=granularity test_id="spend-chart"/>
        </div>

        <div class="split">
            <SpendBars caption="Spend by model" name_header="Model" lines=report.by_model.clone() test_id="by-model"/>
            <SpendBars caption="Spend by provider" name_header="Provider" lines=report.by_provider.clone() test_id="by-provider"/>
        </div>

        <h3>"Token analytics"</h3>
        <TokenAnalytics by_model=report.by_model.clone() total=report.total.clone()/>
        <h4>"Suggestions"</h4>
        <SuggestionList suggestions=report.suggestions.clone()/>

        <h3>"Budget"</h3>
        <ProjectionView projection=report.projection.clone() budget=report.budget.clone()/>
        <BudgetForm budget=report.budget.clone() project_id=project_id save=actions.budget/>
    }
}

/// The average cost per conversation; never $0 for unpriced usage.
fn average_text(report: &CostReport) -> String {
    let total = &report.total;
    match report.avg_cost_per_conversation_nanos {
        None => "—".into(),
        Some(_) if total.unpriced_attempts > 0 && total.cost_nanos == 0 => "unpriced".into(),
        Some(average) if total.unpriced_attempts > 0 => {
            format!("{} (priced answers only)", format_usd(average))
        }
        Some(average) => format_usd(average),
    }
}

/// "+12% more expensive", "−25% cheaper", from per mille of the actual spend.
fn difference_text(permille: Option<i64>) -> String {
    match permille {
        None => "no comparison".into(),
        Some(0) => "same cost".into(),
        Some(p) if p > 0 => format!("+{} more expensive", percent(p)),
        Some(p) => format!("−{} cheaper", percent(-p)),
    }
}

/// The other models, cheapest first; unpriced ones last.
fn sorted_what_if(mut items: Vec<WhatIf>) -> Vec<WhatIf> {
    items.sort_by_key(|w| (w.cost_nanos.is_none(), w.cost_nanos.unwrap_or(0)));
    items
}

/// "If you had used: GPT-4o: $143.20 (+12% more expensive)".
#[component]
fn WhatIfList(items: Vec<WhatIf>) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="muted" data-test="what-if-list">"No other model to compare with."</p> }
            .into_any();
    }
    let rows = sorted_what_if(items)
        .into_iter()
        .map(|w| {
            let class = match w.difference_permille {
                Some(p) if p < 0 => "cheaper",
                Some(p) if p > 0 => "dearer",
                _ => "",
            };
            let amount = w.cost_nanos.map_or_else(|| "unpriced".into(), format_usd);
            view! {
                <li data-test="what-if-item" data-model=w.model.clone() data-provider=w.provider.as_str()>
                    <span class="name">{w.name.clone()}</span>
                    ": "
                    <span class="amount" data-test="what-if-amount">{amount}</span>
                    " ("
                    <span class=class data-test="what-if-difference">{difference_text(w.difference_permille)}</span>
                    ")"
                </li>
            }
        })
        .collect_view();
    view! { <ul class="what-if" data-test="what-if-list">{rows}</ul> }.into_any()
}

/// The recommendation sentence and Switch Model: a form post before
/// hydration, a confirmed call after it.
#[component]
fn RecommendationView(
    recommendation: Option<CostRecommendation>,
    project_id: String,
    /// Model ids and their names.
    names: Vec<(String, String)>,
    switch: ServerAction<SelectModel>,
) -> impl IntoView {
    let outcome = move || {
        switch.value().get().map(|outcome| match outcome {
            Ok(config) => {
                let name = names
                    .iter()
                    .find(|(id, _)| *id == config.model)
                    .map_or(config.model.clone(), |(_, name)| name.clone());
                view! {
                    <p class="notice ok" role="status" data-test="switch-confirmation">
                        {format!("Switched: new conversations use {name} (configuration version {}).", config.version)}
                    </p>
                }
                .into_any()
            }
            Err(error) => view! {
                <p class="notice error" role="alert" data-test="switch-error">{error.to_string()}</p>
            }
            .into_any(),
        })
    };
    let advice = match recommendation {
        Some(rec) => {
            let confirm_name = rec.name.clone();
            let confirm = move |ev: leptos::ev::MouseEvent| {
                let message =
                    format!("Switch this project to {confirm_name}? New conversations will use it.");
                if !window().confirm_with_message(&message).unwrap_or(false) {
                    ev.prevent_default();
                }
            };
            view! {
                <div class="recommendation">
                    <p data-test="recommendation" data-model=rec.model.clone()>
                        <strong>"Recommendation: "</strong>
                        {rec.reason.clone()}
                    </p>
                    <ActionForm action=switch attr:class="inline">
                        <input type="hidden" name="project_id" value=project_id/>
                        <input type="hidden" name="model" value=rec.model.clone()/>
                        <button type="submit" data-test="switch-model" data-model=rec.model.clone()
                            aria-label=format!("Switch Model to {}", rec.name) on:click=confirm>
                            "Switch Model"
                        </button>
                    </ActionForm>
                </div>
            }
            .into_any()
        }
        None => view! {
            <p class="recommendation muted" data-test="recommendation">
                "Recommendation: keep the current model; no other model suited to your use case costs less for this usage."
            </p>
        }
        .into_any(),
    };
    view! {
        {advice}
        {outcome}
    }
}

/// Input, cache and output tokens by model, with the share read from cache.
#[component]
fn TokenAnalytics(by_model: Vec<SpendLine>, total: SpendLine) -> impl IntoView {
    let cells = |line: &SpendLine| {
        let t = line.tokens;
        view! {
            <td class="num">{format_count(t.input_tokens)}</td>
            <td class="num">{format_count(t.cache_read_tokens)}</td>
            <td class="num">{format_count(t.cache_write_tokens)}</td>
            <td class="num">{format_count(t.output_tokens)}</td>
            <td class="num">{format_count(t.reasoning_tokens)}</td>
        }
    };
    let rows = by_model
        .iter()
        .map(|line| {
            view! {
                <tr data-test="token-row" data-model=line.key.clone()>
                    <th scope="row">{line.label.clone()}</th>
                    {cells(line)}
                </tr>
            }
        })
        .collect_view();
    let t = total.tokens;
    let all_input = t.input_tokens + t.cache_read_tokens + t.cache_write_tokens;
    let cache_share = (all_input > 0).then(|| {
        view! {
            <p class="muted" data-test="token-cache-share">
                {format!(
                    "{} of input tokens were read from a prompt cache.",
                    percent(permille(t.cache_read_tokens, all_input).unwrap_or(0))
                )}
            </p>
        }
    });
    view! {
        <div class="table-scroll" data-test="token-analytics">
            <table class="data">
                <caption>"Tokens by model"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Model"</th>
                        <th scope="col" class="num">"Input"</th>
                        <th scope="col" class="num">"Cache read"</th>
                        <th scope="col" class="num">"Cache write"</th>
                        <th scope="col" class="num">"Output"</th>
                        <th scope="col" class="num">"of which reasoning"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
                <tfoot>
                    <tr data-test="token-total">
                        <th scope="row">"Total"</th>
                        {cells(&total)}
                    </tr>
                </tfoot>
            </table>
        </div>
        {cache_share}
    }
}

/// The optimisation suggestions computed from the data.
#[component]
fn SuggestionList(suggestions: Vec<Suggestion>) -> impl IntoView {
    if suggestions.is_empty() {
        return view! { <p class="muted" data-test="no-suggestions">"Nothing to optimise in this period."</p> }
            .into_any();
    }
    view! {
        <ul class="suggestions" data-test="suggestions">
            {suggestions
                .into_iter()
                .map(|s| view! { <li data-test="suggestion" data-kind=s.kind.as_str()>{s.message}</li> })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// Month-end projection next to the budget: spent / limit with the projected
/// month-end spend marked.
#[component]
fn ProjectionView(projection: Projection, budget: BudgetStatus) -> impl IntoView {
    let summary = format!(
        "{} spent in the first {:.1} of {} days of {}.",
        format_usd(projection.spent_nanos),
        projection.days_elapsed,
        projection.days_in_month,
        projection.month
    );
    let meter = match budget.limit_nanos {
        Some(limit) if limit > 0 => {
            let spent = permille(budget.spent_nanos, limit).unwrap_or(0);
            let projected = permille(projection.projected_nanos, limit).unwrap_or(0);
            let width = |permille: i64| {
                let p = permille.clamp(0, 1000);
                format!("{}.{}%", p / 10, p % 10)
            };
            let text = format!(
                "{} of the {} budget spent ({}); projected {} ({}).",
                format_usd(budget.spent_nanos),
                format_usd(limit),
                percent(spent),
                format_usd(projection.projected_nanos),
                percent(projected)
            );
            let over = (projection.projected_nanos > limit).then(|| {
                view! {
                    <p class="notice warn" role="status" data-test="projection-over">
                        "At this pace the month ends over budget."
                    </p>
                }
            });
            view! {
                <div class="budget-meter" role="progressbar" aria-label="Budget spent this month"
                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=(spent.clamp(0, 1000) / 10).to_string()
                    aria-valuetext=text.clone() data-test="budget-progress">
                    <span class="spent" style=format!("width: {}", width(spent))></span>
                    <span class="projected" style=format!("left: {}", width(projected))
                        title=format!("Projected month-end: {}", format_usd(projection.projected_nanos))></span>
                </div>
                <p class="legend">{text}</p>
                {over}
            }
            .into_any()
        }
        _ => ().into_any(),
    };
    view! {
        <div class="projection" data-test="projection">
            <p>
                "Projected month-end spend: "
                <strong data-test="projection-amount">{format_usd(projection.projected_nanos)}</strong>
                " — " {summary}
            </p>
            {meter}
        </div>
    }
}

/// Where the budget stands, in words.
fn budget_text(budget: &BudgetStatus) -> String {
    let Some(limit) = budget.limit_nanos else {
        return "No monthly budget is set: set one to get alerts at 50%, 80% and 100%.".into();
    };
    let state = match budget.state {
        BudgetState::Ok => "within budget",
        BudgetState::Downgraded => "budget reached: a cheaper model answers new questions",
        BudgetState::Capped => "near the limit: answers are shortened (max tokens capped)",
        BudgetState::Blocked => "budget spent: paid models are refused until next month",
    };
    let whose = if budget.workspace_default {
        " (the workspace's default for projects on Cover's managed keys)"
    } else {
        ""
    };
    let mut text = format!(
        "Monthly budget {}{whose}: {} spent this month ({}) — {state}.",
        format_usd(limit),
        format_usd(budget.spent_nanos),
        percent(permille(budget.spent_nanos, limit).unwrap_or(0))
    );
    if !budget.alerts_fired.is_empty() {
        let fired: Vec<String> = budget
            .alerts_fired
            .iter()
            .map(|a| format!("{a}%"))
            .collect();
        text.push_str(&format!(" Alerts sent: {}.", fired.join(", ")));
    }
    if let Some(url) = &budget.webhook_url {
        text.push_str(&format!(" Alerts also go to {url}."));
    }
    if let Some(left) = budget.workspace_cap_left_nanos {
        text.push_str(&format!(
            " The workspace's monthly cap on Cover's managed keys leaves {} for all projects.",
            format_usd(left.max(0))
        ));
    }
    text
}

/// The message of the server's complaint about a field whose name contains
/// `key` (`limit`, `webhook`).
fn field_message(error: &AppError, key: &str) -> Option<String> {
    error
        .field_errors()
        .into_iter()
        .find(|e| e.field.to_ascii_lowercase().contains(key))
        .map(|e| e.message)
}

/// The budget form: monthly limit and alert webhook; the server's validation
/// errors next to their fields.
#[component]
fn BudgetForm(
    budget: BudgetStatus,
    project_id: String,
    save: ServerAction<SaveBudget>,
) -> impl IntoView {
    let error = action_error(save);
    let problem = move |key: &'static str| {
        move || {
            let message = error.get().and_then(|e| field_message(&e, key))?;
            Some(view! {
                <span class="field-error" id=format!("budget-{key}-error") data-test=format!("budget-{key}-error")>
                    {message}
                </span>
            })
        }
    };
    // Errors that are not about either field (e.g. not allowed).
    let other = Signal::derive(move || {
        error.get().filter(|e| {
            field_message(e, "limit").is_none() && field_message(e, "webhook").is_none()
        })
    });
    let invalid = move |key: &'static str| {
        move || {
            error
                .get()
                .is_some_and(|e| field_message(&e, key).is_some())
                .then_some("true")
        }
    };
    let saved = move || {
        save.value().get().and_then(Result::ok).map(|_| {
            view! { <p class="notice ok" role="status" data-test="budget-saved">"Budget saved."</p> }
        })
    };
    view! {
        <p data-test="budget-status" data-state=budget.state.as_str()>{budget_text(&budget)}</p>
        <ActionForm action=save attr:class="budget-form" attr:data-test="budget-form">
            <input type="hidden" name="project_id" value=project_id/>
            <div class="field">
                <label for="budget-limit">"Monthly limit (USD)"</label>
                <input id="budget-limit" name="limit_usd" type="text" inputmode="decimal"
                    value=budget.limit_nanos.filter(|_| !budget.workspace_default).map(format_decimal).unwrap_or_default()
                    placeholder="e.g. 250" aria-describedby="budget-limit-hint budget-limit-error"
                    aria-invalid=invalid("limit") data-test="budget-limit"/>
                <span class="muted" id="budget-limit-hint">{if budget.workspace_default {
                    "Empty: the workspace's default applies while this project uses Cover's managed keys."
                } else {
                    "Leave empty for no budget (a project on Cover's managed keys keeps the workspace's default)."
                }}</span>
                {problem("limit")}
            </div>
            <div class="field">
                <label for="budget-webhook">"Alert webhook URL (optional)"</label>
                <input id="budget-webhook" name="webhook_url" type="url"
                    value=budget.webhook_url.clone().unwrap_or_default()
                    placeholder="https://example.com/hooks/budget" aria-describedby="budget-webhook-error"
                    aria-invalid=invalid("webhook") data-test="budget-webhook"/>
                {problem("webhook")}
            </div>
            <button type="submit" data-test="budget-save">"Save"</button>
        </ActionForm>
        <ErrorNotice error=other test_id="budget-error"/>
        {saved}
    }
}

/// Budget alerts, unread ones highlighted, with "Mark all read".
#[component]
fn NotificationList(
    list: Vec<Notification>,
    read: ServerAction<MarkNotificationsRead>,
) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted" data-test="no-notifications">"No budget alerts yet."</p> }
            .into_any();
    }
    let project_id = use_project_id().get_untracked();
    let unread = list.iter().filter(|n| !n.read).count();
    let items = list
        .into_iter()
        .map(|n| {
            view! {
                <li data-test="notification" data-kind=n.kind.as_str() data-read=n.read.to_string() class:unread=!n.read>
                    <time datetime=n.created_at.clone()>{n.created_at.clone()}</time>
                    " "
                    {n.message}
                    {(!n.read).then(|| view! { <span class="tag new">"new"</span> })}
                </li>
            }
        })
        .collect_view();
    let mark_read = (unread > 0).then(|| {
        view! {
            <ActionForm action=read attr:class="inline">
                <input type="hidden" name="project_id" value=project_id/>
                <button type="submit" class="secondary" data-test="notifications-read">"Mark all read"</button>
            </ActionForm>
        }
    });
    view! {
        <p class="muted" data-test="notifications-unread">{format!("{unread} unread")}</p>
        <ul class="notifications" data-test="notifications">{items}</ul>
        {mark_read}
        <ErrorNotice error=action_error(read) test_id="notifications-error"/>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::ProviderId;

    fn what_if(model: &str, cost_nanos: Option<i64>) -> WhatIf {
        WhatIf {
            model: model.into(),
            name: model.into(),
            provider: ProviderId::OpenAi,
            cost_nanos,
            difference_permille: None,
        }
    }

    #[test]
    fn differences_read_like_the_mockup() {
        assert_eq!(difference_text(Some(120)), "+12% more expensive");
        assert_eq!(difference_text(Some(-250)), "−25% cheaper");
        assert_eq!(difference_text(Some(-701)), "−70.1% cheaper");
        assert_eq!(difference_text(Some(0)), "same cost");
        assert_eq!(difference_text(None), "no comparison");
    }

    #[test]
    fn the_cheapest_alternative_comes_first_and_unpriced_last() {
        let sorted = sorted_what_if(vec![
            what_if("dear", Some(9)),
            what_if("unknown", None),
            what_if("cheap", Some(1)),
        ]);
        let order: Vec<&str> = sorted.iter().map(|w| w.model.as_str()).collect();
        assert_eq!(order, ["cheap", "dear", "unknown"]);
    }

    #[test]
    fn the_budget_is_described_with_its_state() {
        let mut budget = BudgetStatus {
            limit_nanos: None,
            workspace_default: false,
            spent_nanos: 1_000_000_000,
            workspace_cap_left_nanos: None,
            webhook_url: None,
            alerts_fired: Vec::new(),
            state: BudgetState::Ok,
        };
        assert!(budget_text(&budget).starts_with("No monthly budget is set"));
        budget.limit_nanos = Some(25_000_000_000);
        budget.workspace_default = true;
        assert!(budget_text(&budget).starts_with(
            "Monthly budget $25.00 (the workspace's default for projects on Cover's managed keys):"
        ));
        budget.workspace_default = false;
        budget.limit_nanos = Some(4_000_000_000);
        budget.alerts_fired = vec![50];
        assert_eq!(
            budget_text(&budget),
            "Monthly budget $4.00: $1.00 spent this month (25%) — within budget. Alerts sent: 50%."
        );
        budget.workspace_cap_left_nanos = Some(-5);
        assert!(budget_text(&budget).ends_with(
            " The workspace's monthly cap on Cover's managed keys leaves $0.00 for all projects."
        ));
    }

    #[test]
    fn field_errors_are_found_by_the_field_they_name() {
        let error = AppError::invalid("limitUsd", "must be a dollar amount");
        assert_eq!(
            field_message(&error, "limit").as_deref(),
            Some("must be a dollar amount")
        );
        assert_eq!(field_message(&error, "webhook"), None);
        assert_eq!(field_message(&AppError::NotFound, "limit"), None);
    }
}
