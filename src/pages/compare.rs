//! `/projects/:id/compare`: the provider comparison table of spec mockup 2, one
//! column per provider, built from the catalog. Each column's model can be
//! changed: instantly after hydration, or with the Show button before it (a
//! plain GET form: `?claude=…&openai=…`). Each column's Select button switches
//! the project to that model, after a confirmation, through the same update as
//! the settings page.

use crate::api::catalog::get_catalog;
use crate::api::settings::SelectModel;
use crate::components::capability::CapabilityMark;
use crate::model::catalog::{format_tokens, Catalog, ModelInfo, ProviderId};
use crate::model::money::PricePerMTok;
use crate::pages::project::use_project_id;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::sync::Arc;

/// Loads the catalog and shows the table.
#[component]
pub fn ComparePage() -> impl IntoView {
    let catalog = Resource::new(|| (), |_| get_catalog());
    view! {
        <section class="card">
            <h2>"Compare LLM providers"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading the catalog…"</p> }>
                {move || Suspend::new(async move {
                    match catalog.await {
                        Ok(catalog) => view! { <CompareTable catalog=Arc::new(catalog)/> }.into_any(),
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
    ("Avg response", "avg-response", |_| {
        Cell::Text("Not measured yet".into())
    }),
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
fn CompareTable(catalog: Arc<Catalog>) -> impl IntoView {
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
                    let content = move || match catalog.model(&selected.get()).map(cell) {
                        Some(Cell::Text(text)) => view! { <span>{text}</span> }.into_any(),
                        Some(Cell::Capability(yes)) => {
                            view! { <CapabilityMark available=yes/> }.into_any()
                        }
                        None => view! { <span>"—"</span> }.into_any(),
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
    }
}
