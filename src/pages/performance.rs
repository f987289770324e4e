//! `/projects/:id/performance`: how each provider's model performs for this
//! project (FR-008), measured from its own traffic: the comparison table,
//! latency over time, errors by class, satisfaction with its interval and
//! fallback activity, for the period in the URL; and the project's A/B
//! experiments between providers, with each arm's results and its tests
//! against the control. Rendered on the server first; the period picker is a
//! plain GET form, the experiment forms post to server functions.

use crate::components::error_notice::{action_error, ErrorNotice};
use crate::components::period::{use_period, PeriodPicker};
use crate::error::AppError;
use crate::model::catalog::Catalog;
use crate::model::experiments::{
    ArmResult, Comparison, ExperimentMetric, ExperimentState, ExperimentView,
};
use crate::model::money::format_usd;
use crate::model::performance::{
    ModelPerformance, Percentiles, PerformancePoint, PerformanceReport, Satisfaction,
};
use crate::pages::project::use_project_id;
use crate::server_fns::catalog::get_catalog;
use crate::server_fns::costs::get_performance_report;
use crate::server_fns::experiments::{
    list_experiments, CreateExperiment, PromoteArm, StopExperiment,
};
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// The Performance screen as a lazily loaded route (its own wasm chunk).
pub struct PerformanceRoute;

#[lazy_route]
impl LazyRoute for PerformanceRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <PerformancePage/> }.into_any()
    }
}

/// The performance report of the project in the URL.
#[component]
pub fn PerformancePage() -> impl IntoView {
    let project_id = use_project_id();
    let period = use_period();
    let report = Resource::new(
        move || (project_id.get(), period.get().filter()),
        |(project_id, filter)| get_performance_report(project_id, filter),
    );
    let body = move || {
        Suspend::new(async move {
            match report.await {
                Ok(report) => view! { <ReportView report=report/> }.into_any(),
                Err(AppError::Unauthenticated { .. } | AppError::NotFound) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="performance-error"/>
                }
                .into_any(),
            }
        })
    };
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <section class="card performance" data-test="performance"
            data-hydrated=move || hydrated.get().then_some("true")>
            <div class="cost-head">
                <h2>
                    "Performance "
                    <span class="muted" data-test="performance-period">{move || format!("({})", period.get().label())}</span>
                </h2>
                <PeriodPicker period=period with_granularity=true/>
            </div>
            <p class="muted">
                "Measured from this project's own traffic. Latency runs from sending the request to \
                 the answer's last byte; percentiles over fewer than 20 answers are marked."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading the performance report…"</p> }>
                {body}
            </Transition>
            <Experiments/>
        </section>
    }
}

/// Seconds as shown: "0.84 s".
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2} s"))
}

/// A share as shown: "97.5 %".
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

/// One percentile cell: the value, and its `n` when the sample is small.
#[component]
fn PercentileCell(
    percentiles: Percentiles,
    value: Option<f64>,
    test_id: &'static str,
) -> impl IntoView {
    let small = percentiles.low_sample && percentiles.n > 0;
    view! {
        <td data-test=test_id data-low-sample=small.then_some("true")
            title=small.then(|| format!("only {} values: a rough figure", percentiles.n))>
            {seconds(value)}
            {small.then(|| view! { <span class="muted">{format!(" (n={})", percentiles.n)}</span> })}
        </td>
    }
}

fn satisfaction_text(s: &Satisfaction) -> String {
    match (s.share, s.low, s.high) {
        (Some(share), Some(low), Some(high)) => format!(
            "{:.0} % (95 % CI {:.0}–{:.0} %, {} rated)",
            share * 100.0,
            low * 100.0,
            high * 100.0,
            s.up + s.down
        ),
        _ => "no ratings yet".to_owned(),
    }
}

/// A performance report: the comparison table by model, latency and first
/// token over time, and errors by class (a project's, or the workspace's on
/// the admin page).
#[component]
pub fn ReportView(report: PerformanceReport) -> impl IntoView {
    if report.models.is_empty() {
        return view! {
            <p class="muted" data-test="performance-empty">"No answers in this period yet."</p>
        }
        .into_any();
    }
    let rows = report
        .models
        .iter()
        .map(|m| view! { <ModelRow line=m.clone()/> })
        .collect_view();
    let errors = report
        .models
        .iter()
        .filter(|m| !m.errors.is_empty())
        .flat_map(|m| {
            m.errors.iter().map(|(class, count)| {
                view! {
                    <tr data-test="performance-error-row" data-model=m.model.clone() data-class=class.clone()>
                        <td>{m.name.clone()}</td>
                        <td>{class.clone()}</td>
                        <td>{*count}</td>
                    </tr>
                }
            })
        })
        .collect::<Vec<_>>();
    let error_table = if errors.is_empty() {
        view! { <p class="muted" data-test="performance-no-errors">"No failed attempts in this period."</p> }.into_any()
    } else {
        view! {
            <table class="data" data-test="performance-errors">
                <thead><tr><th scope="col">"Model"</th><th scope="col">"Error class"</th><th scope="col">"Attempts"</th></tr></thead>
                <tbody>{errors}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <h3>"By model"</h3>
        <div class="chart-frame">
            <table class="data" data-test="performance-table">
                <thead>
                    <tr>
                        <th scope="col">"Model"</th>
                        <th scope="col">"Attempts"</th>
                        <th scope="col">"Success"</th>
                        <th scope="col">"Latency p50"</th>
                        <th scope="col">"p95"</th>
                        <th scope="col">"p99"</th>
                        <th scope="col">"First token p50"</th>
                        <th scope="col">"Output"</th>
                        <th scope="col">"Fallback used"</th>
                        <th scope="col">"Fallback answered"</th>
                        <th scope="col">"Satisfaction"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <h3>"Latency over time"</h3>
        <PercentileChart points=report.series.clone() measure=Measure::Latency/>
        <h3>"Time to first token over time"</h3>
        <PercentileChart points=report.series.clone() measure=Measure::FirstToken/>
        <h3>"Errors by class"</h3>
        {error_table}
    }
    .into_any()
}

#[component]
fn ModelRow(line: ModelPerformance) -> impl IntoView {
    let provider = line.provider.map(|p| p.label()).unwrap_or("?");
    view! {
        <tr data-test="performance-row" data-model=line.model.clone()>
            <th scope="row">{line.name.clone()} <span class="muted">{format!(" {provider}")}</span></th>
            <td data-test="performance-attempts">{line.attempts}</td>
            <td data-test="performance-success">{percent(line.success_rate)}</td>
            <PercentileCell percentiles=line.latency value=line.latency.p50 test_id="performance-p50"/>
            <PercentileCell percentiles=line.latency value=line.latency.p95 test_id="performance-p95"/>
            <PercentileCell percentiles=line.latency value=line.latency.p99 test_id="performance-p99"/>
            <PercentileCell percentiles=line.ttft value=line.ttft.p50 test_id="performance-ttft"/>
            <td>{line.output_tokens_per_second.map_or_else(|| "—".to_owned(), |v| format!("{v:.0} tok/s"))}</td>
            <td data-test="performance-fallback">{percent(line.fallback_activation_rate)}</td>
            <td>{percent(line.fallback_success_rate)}</td>
            <td data-test="performance-satisfaction">{satisfaction_text(&line.satisfaction)}</td>
        </tr>
    }
}

/// The project's A/B experiments: each with its arms' results, Stop and
/// Promote; and, when none runs, the form that starts one.
#[component]
fn Experiments() -> impl IntoView {
    let project_id = use_project_id();
    let create = ServerAction::<CreateExperiment>::new();
    let stop = ServerAction::<StopExperiment>::new();
    let promote = ServerAction::<PromoteArm>::new();
    let experiments = Resource::new(
        move || {
            (
                project_id.get(),
                create.version().get() + stop.version().get() + promote.version().get(),
            )
        },
        |(project_id, _)| list_experiments(project_id),
    );
    let catalog = Resource::new(|| (), |_| get_catalog());
    let body = move || {
        Suspend::new(async move {
            let (list, catalog) = (experiments.await, catalog.await);
            match (list, catalog) {
                (Ok(list), Ok(catalog)) => {
                    let running = list
                        .experiments
                        .iter()
                        .any(|e| e.state == ExperimentState::Running);
                    let cards = list
                        .experiments
                        .into_iter()
                        .map(|experiment| view! { <ExperimentCard experiment=experiment stop=stop promote=promote/> })
                        .collect_view();
                    let form = (!running).then(|| view! {
                        <NewExperimentForm catalog=catalog per_day=list.recent_answers_per_day create=create/>
                    });
                    view! { {cards} {form} }.into_any()
                }
                (Err(error), _) | (_, Err(error)) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="experiments-error"/>
                }
                .into_any(),
            }
        })
    };
    view! {
        <section class="experiments" data-test="experiments">
            <h3>"A/B experiments"</h3>
            <p class="muted">
                "New conversations are assigned to an arm by a hash of the conversation, weighted, and keep \
                 it. Results stay provisional until every arm has its planned answers; each arm is tested \
                 against A (two-proportion z for satisfaction and errors, Mann-Whitney U for latency and \
                 cost, Holm-corrected)."
            </p>
            <ErrorNotice error=action_error(stop) test_id="experiment-stop-error"/>
            <ErrorNotice error=action_error(promote) test_id="experiment-promote-error"/>
            <Transition fallback=|| view! { <p class="muted">"Loading experiments…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// "GPT-4o mini (OpenAI)" for an arm.
fn arm_configuration(arm: &ArmResult) -> String {
    format!("{} ({})", arm.model_name, arm.provider.label())
}

/// A comparison as shown: the difference, the corrected p and the verdict.
fn comparison_text(comparison: &Comparison) -> String {
    let difference = match (comparison.metric.as_str(), comparison.difference) {
        (_, None) => "—".to_owned(),
        ("satisfaction" | "errorRate", Some(d)) => format!("{:+.1} pts", d * 100.0),
        ("latency", Some(d)) => format!("{d:+.3} s"),
        (_, Some(d)) => format!("{:+} n$", d.round() as i64),
    };
    let verdict = match (comparison.significant, comparison.better) {
        (true, Some(true)) => " — better",
        (true, Some(false)) => " — worse",
        _ => "",
    };
    match comparison.adjusted_p {
        Some(p) => format!("{difference} (p = {p:.3}){verdict}"),
        None => format!("{difference} (not enough data)"),
    }
}

#[component]
fn ExperimentCard(
    experiment: ExperimentView,
    stop: ServerAction<StopExperiment>,
    promote: ServerAction<PromoteArm>,
) -> impl IntoView {
    let project_id = use_project_id().get_untracked();
    let running = experiment.state == ExperimentState::Running;
    let least = experiment.arms.iter().map(|a| a.answers).min().unwrap_or(0);
    let status = if experiment.provisional {
        format!(
            "Provisional: {least} of {} planned answers in the smallest arm.",
            experiment.planned_answers_per_arm
        )
    } else {
        "Every arm has its planned answers: the tests below are final.".to_owned()
    };
    let projection = experiment.projected_days.filter(|_| experiment.provisional).map(|days| {
        view! { <span data-test="experiment-projection">{format!(" About {days:.1} more days at recent traffic.")}</span> }
    });
    let mismatch = experiment.sample_ratio_mismatch.then(|| view! {
        <p class="notice error" role="alert" data-test="experiment-srm">
            {format!(
                "Sample-ratio mismatch: the conversations do not match the weights (χ² p = {:.2e}); the assignment is suspect.",
                experiment.sample_ratio_p.unwrap_or(0.0)
            )}
        </p>
    });
    let promoted = experiment.promoted_arm.clone();
    let experiment_id = experiment.id.clone();
    let rows = experiment
        .arms
        .iter()
        .map(|arm| {
            let versus = if arm.comparisons.is_empty() {
                view! { <td class="muted">"control"</td> }.into_any()
            } else {
                let items = arm
                    .comparisons
                    .iter()
                    .map(|c| view! {
                        <li data-test="experiment-comparison" data-metric=c.metric.clone()
                            data-significant=c.significant.then_some("true")>
                            {format!("{}: {}", c.metric, comparison_text(c))}
                        </li>
                    })
                    .collect_view();
                view! { <td><ul class="comparisons">{items}</ul></td> }.into_any()
            };
            let promote_form = running.then(|| {
                let label = format!(
                    "Promote arm {}: make {} the project's configuration",
                    arm.arm,
                    arm_configuration(arm)
                );
                let (project_id, experiment_id, arm_label) =
                    (project_id.clone(), experiment_id.clone(), arm.arm.clone());
                let test_arm = arm_label.clone();
                view! {
                    <ActionForm action=promote attr:class="inline">
                        <input type="hidden" name="project_id" value=project_id/>
                        <input type="hidden" name="experiment_id" value=experiment_id/>
                        <input type="hidden" name="arm" value=arm_label/>
                        <button type="submit" class="secondary" aria-label=label
                            data-test="experiment-promote" data-arm=test_arm>"Promote"</button>
                    </ActionForm>
                }
            });
            let is_promoted = promoted.as_deref() == Some(arm.arm.as_str());
            view! {
                <tr data-test="experiment-arm" data-arm=arm.arm.clone()>
                    <th scope="row">{arm.arm.clone()} " " {arm.name.clone()}
                        {is_promoted.then(|| view! { <span class="tag" data-test="experiment-promoted">"promoted"</span> })}
                    </th>
                    <td>{arm_configuration(arm)}</td>
                    <td data-test="experiment-weight">{arm.weight}</td>
                    <td data-test="experiment-conversations">{arm.conversations}</td>
                    <td data-test="experiment-answers">{arm.answers}</td>
                    <td data-test="experiment-satisfaction">{satisfaction_text(&arm.satisfaction)}</td>
                    <PercentileCell percentiles=arm.latency value=arm.latency.p50 test_id="experiment-p50"/>
                    <PercentileCell percentiles=arm.latency value=arm.latency.p95 test_id="experiment-p95"/>
                    <td data-test="experiment-cost">{arm.cost_per_answer_nanos.map_or_else(|| "—".to_owned(), format_usd)}</td>
                    <td data-test="experiment-errors">{percent(arm.error_rate)}</td>
                    <td data-test="experiment-fallbacks">{arm.fallbacks}</td>
                    {versus}
                    <td>{promote_form}</td>
                </tr>
            }
        })
        .collect_view();
    let stop_form = running.then(|| {
        let (project_id, experiment_id) = (project_id.clone(), experiment.id.clone());
        view! {
            <ActionForm action=stop attr:class="inline">
                <input type="hidden" name="project_id" value=project_id/>
                <input type="hidden" name="experiment_id" value=experiment_id/>
                <button type="submit" class="secondary" data-test="experiment-stop">"Stop experiment"</button>
            </ActionForm>
        }
    });
    view! {
        <article class="experiment" data-test="experiment" data-id=experiment.id.clone()
            data-state=experiment.state.as_str() data-provisional=experiment.provisional.then_some("true")>
            <h4>{experiment.name.clone()} " "
                <span class="tag">{if running { "running" } else { "stopped" }}</span>
            </h4>
            <p class="muted" data-test="experiment-status">
                {format!("Decided on {}. ", metric_label(experiment.primary_metric))}
                {status}
                {projection}
            </p>
            {mismatch}
            <div class="chart-frame">
                <table class="data" data-test="experiment-arms">
                    <thead>
                        <tr>
                            <th scope="col">"Arm"</th>
                            <th scope="col">"Configuration"</th>
                            <th scope="col">"Weight"</th>
                            <th scope="col">"Conversations"</th>
                            <th scope="col">"Answers"</th>
                            <th scope="col">"Satisfaction"</th>
                            <th scope="col">"Latency p50"</th>
                            <th scope="col">"p95"</th>
                            <th scope="col">"Cost / answer"</th>
                            <th scope="col">"Errors"</th>
                            <th scope="col">"Fallbacks"</th>
                            <th scope="col">"Against A (Holm-corrected)"</th>
                            <th scope="col"><span class="visually-hidden">"Promote"</span></th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {stop_form}
        </article>
    }
}

fn metric_label(metric: ExperimentMetric) -> &'static str {
    match metric {
        ExperimentMetric::Satisfaction => "satisfaction",
        ExperimentMetric::Latency => "latency",
        ExperimentMetric::Cost => "cost per answer",
    }
}

/// Days until each of two arms has `planned` answers at `per_day` answers
/// split by the weights (the slower arm decides).
fn days_to_plan(planned: u64, weights: [u32; 2], per_day: f64) -> Option<f64> {
    let total = f64::from(weights[0] + weights[1]);
    let smallest = f64::from(weights[0].min(weights[1]));
    (per_day > 0.0 && smallest > 0.0).then(|| planned as f64 / (per_day * smallest / total))
}

/// The form that starts an experiment: a name, the deciding metric, the
/// planned answers per arm (with how long they take at recent traffic) and
/// two arms, each a model and a weight.
#[component]
fn NewExperimentForm(
    catalog: Catalog,
    per_day: f64,
    create: ServerAction<CreateExperiment>,
) -> impl IntoView {
    let project_id = use_project_id().get_untracked();
    let planned = RwSignal::new(100_u64);
    let weights = RwSignal::new([50_u32, 50_u32]);
    let options = move |selected: usize| {
        catalog
            .models
            .iter()
            .filter(|m| !m.legacy)
            .enumerate()
            .map(|(i, m)| {
                view! {
                    <option value=m.id.clone() selected=i == selected>
                        {format!("{} ({})", m.name, m.provider.label())}
                    </option>
                }
            })
            .collect_view()
    };
    let projection = move || {
        match days_to_plan(planned.get(), weights.get(), per_day) {
        Some(days) => format!(
            "At this project's {per_day:.1} answers a day (last 14 days), {} answers per arm take about {days:.1} days.",
            planned.get()
        ),
        None => "This project had no answers in the last 14 days: the time to reach the plan cannot be projected.".to_owned(),
    }
    };
    let weight_input = move |index: usize, id: &'static str, test: &'static str| {
        view! {
            <input id=id name=if index == 0 { "form[weight_a]" } else { "form[weight_b]" } type="number" min="1" max="100"
                value=weights.get_untracked()[index].to_string() data-test=test
                on:input=move |ev| {
                    let value = event_target_value(&ev).parse().unwrap_or(0);
                    weights.update(|w| w[index] = value);
                }/>
        }
    };
    view! {
        <ActionForm action=create attr:class="experiment-form" attr:data-test="experiment-form">
            <h4>"Start an experiment"</h4>
            <input type="hidden" name="project_id" value=project_id/>
            <div class="field">
                <label for="experiment-name">"Name"</label>
                <input id="experiment-name" name="form[name]" type="text" required maxlength="100"
                    placeholder="e.g. Claude against GPT-4o mini" data-test="experiment-name"/>
            </div>
            <div class="field">
                <label for="experiment-metric">"Decided on"</label>
                <select id="experiment-metric" name="form[primary_metric]" data-test="experiment-metric">
                    <option value="satisfaction">"Satisfaction (thumbs up share)"</option>
                    <option value="latency">"Latency"</option>
                    <option value="cost">"Cost per answer"</option>
                </select>
            </div>
            <div class="field">
                <label for="experiment-planned">"Planned answers per arm"</label>
                <input id="experiment-planned" name="form[planned_answers_per_arm]" type="number" min="20"
                    value="100" data-test="experiment-planned"
                    on:input=move |ev| planned.set(event_target_value(&ev).parse().unwrap_or(0))/>
                <span class="muted" data-test="experiment-plan-projection">{projection}</span>
            </div>
            <fieldset>
                <legend>"Arm A (control)"</legend>
                <label for="experiment-model-a">"Model"</label>
                <select id="experiment-model-a" name="form[model_a]" data-test="experiment-model-a">{options(0)}</select>
                <label for="experiment-weight-a">"Weight"</label>
                {weight_input(0, "experiment-weight-a", "experiment-weight-a")}
            </fieldset>
            <fieldset>
                <legend>"Arm B"</legend>
                <label for="experiment-model-b">"Model"</label>
                <select id="experiment-model-b" name="form[model_b]" data-test="experiment-model-b">{options(1)}</select>
                <label for="experiment-weight-b">"Weight"</label>
                {weight_input(1, "experiment-weight-b", "experiment-weight-b")}
            </fieldset>
            <button type="submit" data-test="experiment-start">"Start experiment"</button>
            <ErrorNotice error=action_error(create) test_id="experiment-create-error"/>
        </ActionForm>
    }
}

/// Chart size, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 28.0;
/// The shortest latency axis, in seconds: the ledger's resolution.
const MIN_AXIS_SECONDS: f64 = 0.001;

/// What a chart draws: the answers' latency, or their time to first token.
#[derive(Clone, Copy)]
enum Measure {
    Latency,
    FirstToken,
}

impl Measure {
    fn of(self, point: &PerformancePoint) -> &Percentiles {
        match self {
            Measure::Latency => &point.latency,
            Measure::FirstToken => &point.ttft,
        }
    }

    /// The `data-test` prefix of its chart.
    fn key(self) -> &'static str {
        match self {
            Measure::Latency => "latency",
            Measure::FirstToken => "ttft",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Measure::Latency => "Latency",
            Measure::FirstToken => "Time to first token",
        }
    }

    fn nothing(self) -> &'static str {
        match self {
            Measure::Latency => "No answered requests to chart.",
            Measure::FirstToken => "No streamed answers to chart.",
        }
    }
}

/// p50 and p95 of `measure` per bucket as two lines, seconds on the vertical
/// axis, the buckets' first days on the horizontal one (server-rendered).
#[component]
fn PercentileChart(points: Vec<PerformancePoint>, measure: Measure) -> impl IntoView {
    let key = measure.key();
    let measured: Vec<f64> = points.iter().filter_map(|p| measure.of(p).p95).collect();
    if measured.is_empty() {
        return view! { <p class="muted" data-test=format!("{key}-chart-empty")>{measure.nothing()}</p> }.into_any();
    }
    // Answers faster than the ledger's millisecond still chart, on the smallest axis.
    let most = measured.into_iter().fold(MIN_AXIS_SECONDS, f64::max);
    let top = nice_ceiling(most);
    let step = (WIDTH - LEFT - 8.0) / points.len().max(2).saturating_sub(1) as f64;
    let x = |i: usize| LEFT + step * i as f64;
    let y = |v: f64| (HEIGHT - BOTTOM) - (v / top) * (HEIGHT - BOTTOM - 8.0);
    let line = |pick: fn(&Percentiles) -> Option<f64>| -> String {
        points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| pick(measure.of(p)).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let p50 = line(|p| p.p50);
    let p95 = line(|p| p.p95);
    let ticks = (0..=4)
        .map(|k| {
            let value = top * f64::from(k) / 4.0;
            view! {
                <line x1=LEFT x2=WIDTH - 8.0 y1=y(value) y2=y(value) class="grid"/>
                <text x=LEFT - 6.0 y=y(value) + 4.0 text-anchor="end" class="tick">{tick_label(value, top)}</text>
            }
        })
        .collect_view();
    let first = points.first().map(|p| p.start.clone()).unwrap_or_default();
    let last = points.last().map(|p| p.start.clone()).unwrap_or_default();
    let name = measure.name();
    view! {
        <figure class="chart" data-test=format!("{key}-chart")>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img"
                aria-label=format!("{name} p50 and p95 over the period, in seconds")>
                {ticks}
                <polyline points=p95 class="series p95" fill="none" data-test=format!("{key}-p95-line")/>
                <polyline points=p50 class="series p50" fill="none" data-test=format!("{key}-p50-line")/>
                <text x=LEFT y=HEIGHT - 6.0 class="tick">{first}</text>
                <text x=WIDTH - 8.0 y=HEIGHT - 6.0 text-anchor="end" class="tick">{last}</text>
                <text x=12.0 y=14.0 class="tick">"seconds"</text>
            </svg>
            <figcaption class="muted">{format!("{name} per bucket: p50 (solid) and p95 (dashed), seconds")}</figcaption>
        </figure>
    }
    .into_any()
}

/// An axis label in seconds, with as many decimals as a quarter of the
/// axis needs (at least two).
fn tick_label(value: f64, top: f64) -> String {
    let decimals = (-(top / 4.0).log10()).ceil().max(2.0) as usize;
    format!("{value:.decimals$} s")
}

/// The smallest of 1, 2 or 5 × 10ⁿ that is at least `value`, for the axis.
fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_data() {
        assert_eq!(nice_ceiling(MIN_AXIS_SECONDS), 0.001);
        assert_eq!(nice_ceiling(0.84), 1.0);
        assert_eq!(tick_label(0.0005, 0.001), "0.0005 s");
        assert_eq!(tick_label(0.5, 1.0), "0.50 s");
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(0.042), 0.05);
    }
}
