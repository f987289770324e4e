//! `/projects/:id/compare`: the provider comparison table of spec mockup 2, one
//! column per provider, built from the catalog. Each column's model can be
//! changed: instantly after hydration, or with the Show button before it (a
//! plain GET form: `?claude=…&openai=…`). Each column's Select button switches
//! the project to that model, after a confirmation, through the same update as
//! the settings page.
//!
//! "Avg response" is what this project measured: each model's median latency
//! over the last 30 days from the performance report, marked when it rests on
//! fewer than 20 answers; a model without answers says so, with its speed
//! class as the typical figure.
//!
//! Below the table, "Compare on a sample" sends one question to the chosen
//! models (by default each column's model) and shows their answers side by
//! side with latency, tokens and cost. It needs the browser side: its button
//! is enabled once the page has hydrated.

use crate::components::capability::CapabilityMark;
use crate::components::error_notice::{action_error, ErrorNotice};
use crate::components::spend::format_count;
use crate::model::catalog::{format_tokens, Catalog, ModelInfo, ProviderId};
use crate::model::costs::{CompareRequest, CompareResult, UsageFilter};
use crate::model::money::{format_usd, PricePerMTok};
use crate::model::performance::Percentiles;
use crate::pages::project::use_project_id;
use crate::server_fns::catalog::get_catalog;
use crate::server_fns::compare::CompareSample;
use crate::server_fns::costs::get_performance_report;
use crate::server_fns::settings::SelectModel;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};
use std::sync::Arc;

/// The comparison screen as a lazily loaded route: its code is a separate wasm chunk,
/// fetched when the route is first shown (see `scripts/build`).
pub struct CompareRoute;

#[lazy_route]
impl LazyRoute for CompareRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ComparePage/> }.into_any()
    }
}

/// Each model's measured latency in this project (catalog id → percentiles).
type Measured = Arc<std::collections::HashMap<String, Percentiles>>;

/// Loads the catalog and the project's measured latencies, and shows the table.
#[component]
pub fn ComparePage() -> impl IntoView {
    let catalog = Resource::new(|| (), |_| get_catalog());
    let project_id = use_project_id();
    let measured = Resource::new(
        move || project_id.get(),
        |project_id| async move {
            // Without a report (no access to it, no answers) nothing is measured.
            let report = get_performance_report(project_id, UsageFilter::default()).await;
            let latencies = report
                .map(|r| r.models.into_iter().map(|m| (m.model, m.latency)).collect())
                .unwrap_or_default();
            Arc::new(latencies)
        },
    );
    view! {
        <section class="card">
            <h2>"Compare LLM providers"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading the catalog…"</p> }>
                {move || Suspend::new(async move {
                    let measured = measured.await;
                    match catalog.await {
                        Ok(catalog) => view! { <CompareTable catalog=Arc::new(catalog) measured=measured/> }.into_any(),
                        Err(error) => view! { <p class="notice error">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// What one table cell shows.
enum Cell {
    Text(String),
    Capability(bool),
    /// The model's latency as this project measured it.
    Measured,
}

/// One row of the table: label, `data-test` key, and the cell for a model.
type Row = (&'static str, &'static str, fn(&ModelInfo) -> Cell);

/// The rows of the table.
const ROWS: &[Row] = &[
    ("Context", "context", |m| {
        Cell::Text(format_tokens(m.context_window))
    }),
    ("Max output", "max-output", |m| {
        Cell::Text(format_tokens(m.max_output))
    }),
    ("Input cost", "input", |m| {
        Cell::Text(price(m, |p| Some(p.input_per_m_tok)))
    }),
    ("Output cost", "output", |m| {
        Cell::Text(price(m, |p| Some(p.output_per_m_tok)))
    }),
    ("Cached input", "cached", |m| {
        Cell::Text(price(m, |p| p.cache_read_per_m_tok))
    }),
    ("Long prompts", "long-context", |m| {
        Cell::Text(
            m.pricing
                .as_ref()
                .and_then(|p| p.long_context.as_ref())
                .map(|t| {
                    format!(
                        "Above {}: {} in / {} out",
                        format_tokens(t.threshold_tokens),
                        per_m(t.input_per_m_tok),
                        per_m(t.output_per_m_tok)
                    )
                })
                .unwrap_or_else(|| "Same price".into()),
        )
    }),
    ("Avg response", "avg-response", |_| Cell::Measured),
    ("Speed", "speed", |m| {
        let hosted = if m.capabilities.self_hosted { "**" } else { "" };
        Cell::Text(format!("{}{hosted}", m.speed.label()))
    }),
    ("Vision", "vision", |m| {
        Cell::Capability(m.capabilities.vision)
    }),
    ("Tool use", "tools", |m| {
        Cell::Capability(m.capabilities.tools)
    }),
    ("Streaming", "streaming", |m| {
        Cell::Capability(m.capabilities.streaming)
    }),
    ("Search grounding", "grounding", |m| {
        Cell::Capability(m.capabilities.grounding)
    }),
    ("Full privacy", "privacy", |m| {
        Cell::Capability(m.capabilities.self_hosted)
    }),
    ("Rate limits", "rate-limits", |m| {
        Cell::Text(match &m.rate_limits {
            Some(limits) => {
                let tokens = match (
                    limits.input_tokens_per_minute,
                    limits.output_tokens_per_minute,
                    limits.tokens_per_minute,
                ) {
                    (Some(i), Some(o), _) => {
                        format!("{} in / {} out TPM", format_tokens(i), format_tokens(o))
                    }
                    (_, _, Some(t)) => format!("{} TPM", format_tokens(t)),
                    _ => String::new(),
                };
                format!("{} RPM · {tokens}", limits.requests_per_minute)
            }
            None => "Your hardware".into(),
        })
    }),
    ("Prices as of", "price-date", |m| {
        Cell::Text(
            m.pricing
                .as_ref()
                .map(|p| p.effective_date.clone())
                .unwrap_or_else(|| "—".into()),
        )
    }),
];

/// The "Avg response" cell: the measured median, marked below 20 answers;
/// without answers, the catalog's speed class as the typical figure.
fn measured_text(model: &ModelInfo, measured: &Measured) -> String {
    match measured.get(&model.id).and_then(|l| Some((l.p50?, l))) {
        Some((p50, latency)) if latency.low_sample => {
            format!("{p50:.2} s median, measured (only {} answers)", latency.n)
        }
        Some((p50, latency)) => format!("{p50:.2} s median, measured ({} answers)", latency.n),
        None => format!(
            "Not measured in this project yet (typically {})",
            model.speed.label().to_lowercase()
        ),
    }
}

fn per_m(price: PricePerMTok) -> String {
    format!("{price}/1M")
}

/// A price cell: the price, "$0*" for self-hosted models, "—" where the model
/// has no such price (e.g. no prompt cache).
fn price(
    model: &ModelInfo,
    pick: fn(&crate::model::catalog::Pricing) -> Option<PricePerMTok>,
) -> String {
    match &model.pricing {
        Some(pricing) => pick(pricing).map(per_m).unwrap_or_else(|| "—".into()),
        None => "$0*".into(),
    }
}

#[component]
fn CompareTable(catalog: Arc<Catalog>, measured: Measured) -> impl IntoView {
    let query = use_query_map();
    let columns: Vec<(ProviderId, RwSignal<String>)> = ProviderId::ALL
        .into_iter()
        .filter_map(|kind| {
            let provider = catalog.provider(kind)?;
            let requested = query.with_untracked(|q| q.get(kind.as_str()));
            let initial = requested
                .filter(|id| catalog.model(id).is_some_and(|m| m.provider == kind))
                .unwrap_or_else(|| provider.default_model.clone());
            Some((kind, RwSignal::new(initial)))
        })
        .collect();

    let pickers = columns
        .iter()
        .map(|&(kind, selected)| {
            let catalog = catalog.clone();
            let name = catalog.provider(kind).map(|p| p.name.clone()).unwrap_or_default();
            let options = catalog
                .models_of(kind)
                .map(|m| {
                    let id = m.id.clone();
                    let is_selected = move || selected.get() == id;
                    view! { <option value=m.id.clone() selected=is_selected>{m.name.clone()}</option> }
                })
                .collect_view();
            view! {
                <div class="picker">
                    <label for=format!("pick-{}", kind.as_str())>{name}</label>
                    <select
                        id=format!("pick-{}", kind.as_str())
                        name=kind.as_str()
                        data-test=format!("pick-{}", kind.as_str())
                        on:change=move |ev| selected.set(event_target_value(&ev))
                    >
                        {options}
                    </select>
                </div>
            }
        })
        .collect_view();

    let header = columns
        .iter()
        .map(|&(kind, selected)| {
            let catalog = catalog.clone();
            let provider = catalog.provider(kind).map(|p| p.name.clone()).unwrap_or_default();
            let model_name = move || catalog.model(&selected.get()).map(|m| m.name.clone()).unwrap_or_default();
            view! {
                <th scope="col" data-test=format!("col-{}", kind.as_str())>
                    <span class="provider">{provider}</span>
                    <br/>
                    <span class="model" data-test=format!("col-model-{}", kind.as_str())>{model_name}</span>
                </th>
            }
        })
        .collect_view();

    let body = ROWS
        .iter()
        .map(|&(label, key, cell)| {
            let cells = columns
                .iter()
                .map(|&(kind, selected)| {
                    let catalog = catalog.clone();
                    let measured = measured.clone();
                    let content = move || {
                        let model = catalog.model(&selected.get());
                        match model.map(|m| (m, cell(m))) {
                            Some((_, Cell::Text(text))) => view! { <span>{text}</span> }.into_any(),
                            Some((_, Cell::Capability(yes))) => {
                                view! { <CapabilityMark available=yes/> }.into_any()
                            }
                            Some((m, Cell::Measured)) => {
                                view! { <span>{measured_text(m, &measured)}</span> }.into_any()
                            }
                            None => view! { <span>"—"</span> }.into_any(),
                        }
                    };
                    view! { <td data-test=format!("cell-{key}-{}", kind.as_str())>{content}</td> }
                })
                .collect_view();
            view! { <tr><th scope="row">{label}</th>{cells}</tr> }
        })
        .collect_view();

    let select = ServerAction::<SelectModel>::new();
    let project_id = use_project_id();
    let select_row = columns
        .iter()
        .map(|&(kind, selected)| {
            let name_catalog = catalog.clone();
            let confirm = move |ev: leptos::ev::MouseEvent| {
                let name = name_catalog
                    .model(&selected.get_untracked())
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let message = format!("Switch this project to {name}? New conversations will use it.");
                if !window().confirm_with_message(&message).unwrap_or(false) {
                    ev.prevent_default();
                }
            };
            view! {
                <td>
                    <ActionForm action=select>
                        <input type="hidden" name="project_id" prop:value=move || project_id.get()/>
                        <input type="hidden" name="model" prop:value=move || selected.get()/>
                        <button type="submit" data-test=format!("select-{}", kind.as_str()) on:click=confirm>
                            "Select"
                        </button>
                    </ActionForm>
                </td>
            }
        })
        .collect_view();
    let switched = move || {
        select.value().get().map(|outcome| match outcome {
            Ok(config) => view! {
                <p class="notice ok" role="status" data-test="select-confirmation">
                    {format!("The project now uses {} (configuration version {}).", config.model, config.version)}
                </p>
            }
            .into_any(),
            Err(error) => view! { <p class="notice error" data-test="select-error">{error.to_string()}</p> }.into_any(),
        })
    };

    view! {
        {switched}
        <form method="get" class="pickers" data-test="compare-form">
            {pickers}
            <button type="submit" class="secondary" data-test="compare-apply">"Show"</button>
        </form>
        <div class="table-scroll">
            <table class="data compare" data-test="compare-table">
                <thead><tr><th scope="col">"Feature"</th>{header}</tr></thead>
                <tbody>
                    {body}
                    <tr><th scope="row"></th>{select_row}</tr>
                </tbody>
            </table>
        </div>
        <p class="footnote">"* Self-hosted: no per-token price; infrastructure costs apply. ** Depends on hosting."</p>
        <p class="footnote">"Prices are USD per 1M tokens from each provider's pricing page; rate limits are the lowest paid tier."</p>
        <SampleComparison catalog=catalog.clone() columns=columns.clone()/>
    }
}

/// "Compare on a sample": a question, a checkbox per column's model (all
/// checked at first; each follows its column's pick), Compare, and the answers
/// side by side. The models run in parallel on the server with the project's
/// keys; a model that fails shows its error in its own place.
#[component]
fn SampleComparison(
    catalog: Arc<Catalog>,
    columns: Vec<(ProviderId, RwSignal<String>)>,
) -> impl IntoView {
    let project_id = use_project_id();
    let run = ServerAction::<CompareSample>::new();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let prompt = RwSignal::new(String::new());
    let chosen: Vec<(ProviderId, RwSignal<String>, RwSignal<bool>)> = columns
        .into_iter()
        .map(|(kind, model)| (kind, model, RwSignal::new(true)))
        .collect();
    let models = StoredValue::new(chosen.clone());
    let selected_models = move || {
        models.with_value(|chosen| {
            chosen
                .iter()
                .filter(|(_, _, on)| on.get())
                .map(|(_, model, _)| model.get())
                .collect::<Vec<_>>()
        })
    };
    let ready = move || {
        hydrated.get()
            && !run.pending().get()
            && !prompt.with(|p| p.trim().is_empty())
            && !selected_models().is_empty()
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        run.dispatch(CompareSample {
            request: CompareRequest {
                project_id: project_id.get_untracked(),
                prompt: prompt.get_untracked(),
                system_prompt: None,
                models: selected_models(),
            },
        });
    };
    let boxes = chosen
        .into_iter()
        .map(|(kind, model, on)| {
            let catalog = catalog.clone();
            let provider = catalog
                .provider(kind)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let name = move || {
                catalog
                    .model(&model.get())
                    .map(|m| m.name.clone())
                    .unwrap_or_default()
            };
            view! {
                <label class="check">
                    <input type="checkbox"
                        prop:checked=move || on.get() checked=true
                        on:change=move |ev| on.set(event_target_checked(&ev))
                        data-test=format!("compare-sample-model-{}", kind.as_str())/>
                    {format!(" {provider}: ")} {name}
                </label>
            }
        })
        .collect_view();
    let answers = move || {
        if run.pending().get() {
            return None;
        }
        let results = run.value().get()?.ok()?;
        let answers = results
            .into_iter()
            .map(|result| view! { <SampleAnswer result=result/> })
            .collect_view();
        Some(
            view! { <div class="sample-results" data-test="compare-sample-results">{answers}</div> },
        )
    };
    view! {
        <section class="sample" data-test="compare-sample">
            <h2>"Compare on a sample"</h2>
            <form on:submit=on_submit data-test="compare-sample-form">
                <label for="compare-sample-prompt">"Sample question"</label>
                <textarea id="compare-sample-prompt" rows="3" required
                    prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev))
                    data-test="compare-sample-prompt"></textarea>
                <fieldset class="sample-models">
                    <legend>"Models to compare"</legend>
                    {boxes}
                </fieldset>
                <button type="submit" data-test="compare-sample-run" disabled=move || !ready()
                    title=move || (!hydrated.get()).then_some("Available once the page has loaded")>
                    "Compare"
                </button>
            </form>
            <Show when=move || run.pending().get()>
                <p class="typing" role="status" data-test="compare-sample-spinner">
                    <span class="spinner" aria-hidden="true"></span>
                    " Asking each model…"
                </p>
            </Show>
            <ErrorNotice error=action_error(run) test_id="compare-sample-failed"/>
            {answers}
        </section>
    }
}

/// One model's answer to the sample, or why it failed.
#[component]
fn SampleAnswer(result: CompareResult) -> impl IntoView {
    let body = match &result.error {
        Some(error) => view! { <p class="notice error" role="alert" data-test="compare-sample-error">{error.clone()}</p> }.into_any(),
        None => view! { <div class="text" data-test="compare-sample-answer">{result.content.clone()}</div> }.into_any(),
    };
    let cost = result
        .cost_nanos
        .map_or_else(|| "unpriced".into(), format_usd);
    view! {
        <article class="sample-result" data-test="compare-sample-result" data-model=result.model.clone()
            data-status=if result.error.is_some() { "error" } else { "ok" }>
            <h3>{result.name.clone()}</h3>
            {body}
            <p class="facts">
                <span data-test="compare-sample-latency">{format!("{} ms", result.latency_ms)}</span>
                <span data-test="compare-sample-tokens">
                    {format!("{} in / {} out tokens", format_count(result.input_tokens as i64), format_count(result.output_tokens as i64))}
                </span>
                <span data-test="compare-sample-cost">{cost}</span>
            </p>
        </article>
    }
}
