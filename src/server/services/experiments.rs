//! A/B experiments between providers (FR-008): an owner creates 2–4 arms,
//! each a configuration version of its own; new conversations (and gateway
//! calls to `cover/default`) are assigned to an arm stickily, and run that
//! version through the unchanged answer path; the results come from the
//! ledger and the ratings, tested against the control (see [`stats`]).
//!
//! ```text
//! create ─► arms' configurations checked like a settings save ─► versions stored (never current)
//! new conversation ─► hash(seed, conversation id) onto the weights ─► pins the arm's version
//! results ─► ledger rows of the arms' versions + ratings ─► per arm, then tests vs A (Holm)
//! promote ─► the arm's provider, model and parameters saved through the settings service
//! ```

pub mod stats;

use crate::error::{AppError, FieldError};
use crate::model::catalog::ProviderId;
use crate::model::experiments::{
    ArmResult, Comparison, ExperimentList, ExperimentMetric, ExperimentState, ExperimentView,
    ExperimentWeights, NewExperiment, ALPHA, ARM_LABELS, MAX_ARMS, MIN_ARMS, SRM_ALPHA,
};
use crate::model::llm_config::{LlmConfig, LlmConfigPatch};
use crate::model::money::rounded_div;
use crate::model::parameters::{Param, ParametersPatch};
use crate::model::performance::{Percentiles, Satisfaction};
use crate::server::db::experiments::{self as db, ArmAttempt, ArmRow, ExperimentRow};
use crate::server::db::llm_configs;
use crate::server::db::{now_ms, rfc3339};
use crate::server::error::{Error, Result};
use crate::server::services::llm_settings::{self, Draft};
use crate::server::state::AppState;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Fewest answers an arm may plan for (a percentile needs 20).
const MIN_PLANNED: u64 = 20;
/// Most answers an arm may plan for.
const MAX_PLANNED: u64 = 1_000_000;
/// Largest weight of an arm.
const MAX_WEIGHT: u32 = 100;
/// Longest experiment name.
const MAX_NAME_CHARS: usize = 100;
/// Days of recent traffic a projection is made from.
const RECENT_DAYS: i64 = 14;

/// The arm a unit (a conversation, a gateway end user) is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The experiment.
    pub experiment_id: String,
    /// `A`–`D`.
    pub arm: String,
    /// The arm's configuration version, which the unit pins.
    pub config_version: i64,
    /// Its provider.
    pub provider: String,
    /// Its model.
    pub model: String,
}

/// The arm of `arms` a unit falls on: SHA-256 of the seed and the unit,
/// mapped onto the weights. Deterministic, so the same unit always gets the
/// same arm while the weights stand; a stored assignment outlives them.
pub fn pick<'a>(seed: &str, unit: &str, arms: &'a [ArmRow]) -> Option<&'a ArmRow> {
    let total: u64 = arms.iter().map(|a| a.weight.max(0) as u64).sum();
    if total == 0 {
        return None;
    }
    let digest = Sha256::digest(format!("{seed}:{unit}").as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    let mut point = u64::from_be_bytes(first) % total;
    arms.iter().find(|arm| {
        let weight = arm.weight.max(0) as u64;
        if point < weight {
            true
        } else {
            point -= weight;
            false
        }
    })
}

/// The arm a new unit of the project is assigned to, when an experiment runs.
pub async fn assignment(
    state: &AppState,
    project_id: &str,
    unit: &str,
) -> Result<Option<Assigned>> {
    let running = state
        .hot
        .experiments
        .get_or_load(&project_id.to_owned(), || async {
            let Some(experiment) = db::running(&state.db.pool, project_id).await? else {
                return Ok(None);
            };
            let arms = db::arms(&state.db.pool, &experiment.experiment_id).await?;
            Ok(Some((experiment, Arc::new(arms))))
        })
        .await?;
    let Some((experiment, arms)) = running else {
        return Ok(None);
    };
    let Some(arm) = pick(&experiment.seed, unit, &arms) else {
        return Ok(None);
    };
    let config = llm_configs::version(&state.db.pool, project_id, arm.config_version)
        .await?
        .ok_or_else(|| Error::internal("an experiment arm's configuration went missing"))?;
    Ok(Some(Assigned {
        experiment_id: experiment.experiment_id.clone(),
        arm: arm.arm.clone(),
        config_version: arm.config_version,
        provider: config.provider,
        model: config.model,
    }))
}

/// Every problem of a new experiment, each naming its field.
fn problems_of(asked: &NewExperiment) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let mut add = |field: String, message: String| problems.push(FieldError { field, message });
    let name = asked.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        add(
            "name".into(),
            format!("give the experiment a name of 1 to {MAX_NAME_CHARS} characters"),
        );
    }
    if !(MIN_PLANNED..=MAX_PLANNED).contains(&asked.planned_answers_per_arm) {
        add(
            "plannedAnswersPerArm".into(),
            format!("plan {MIN_PLANNED} to {MAX_PLANNED} answers per arm"),
        );
    }
    if !(MIN_ARMS..=MAX_ARMS).contains(&asked.arms.len()) {
        add(
            "arms".into(),
            format!("an experiment has {MIN_ARMS} to {MAX_ARMS} arms"),
        );
    }
    for (i, arm) in asked.arms.iter().enumerate() {
        if !(1..=MAX_WEIGHT).contains(&arm.weight) {
            add(
                format!("arms[{i}].weight"),
                format!("a weight is 1 to {MAX_WEIGHT}"),
            );
        }
    }
    problems
}

/// Creates and starts an experiment (one may run per project at a time):
/// every arm's configuration is the project's current one with the arm's
/// provider, model and parameters, checked like a settings save and stored
/// as a version of its own. 422 naming every invalid field, 409 while
/// another experiment runs.
pub async fn create(
    state: &AppState,
    project_id: &str,
    actor: Option<&str>,
    asked: NewExperiment,
) -> Result<ExperimentView> {
    let mut problems = problems_of(&asked);
    let (_, current) = llm_settings::current(state, project_id).await?;
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, arm) in asked.arms.iter().enumerate().take(MAX_ARMS) {
        let patch = LlmConfigPatch {
            provider: Some(arm.provider),
            model: Some(arm.model.clone()),
            parameters: arm.parameters.clone(),
            ..LlmConfigPatch::default()
        };
        match llm_settings::apply(&state.catalog, &current, &patch) {
            Err(errors) => problems.extend(errors.into_iter().map(|e| FieldError {
                field: format!("arms[{i}].{}", e.field),
                message: e.message,
            })),
            Ok(draft) => {
                let key =
                    llm_settings::project_key(state, project_id, &draft, draft.provider).await?;
                if key.is_none() && draft.provider != ProviderId::Llama {
                    problems.push(FieldError {
                        field: format!("arms[{i}].provider"),
                        message: format!(
                            "the project has no {} key, its own or Cover's",
                            draft.provider.label()
                        ),
                    });
                }
                drafts.push(draft);
            }
        }
    }
    if !problems.is_empty() {
        return Err(AppError::InvalidFields { errors: problems }.into());
    }
    if db::running(&state.db.pool, project_id).await?.is_some() {
        return Err(another_runs());
    }
    let now = now_ms();
    let experiment = ExperimentRow {
        experiment_id: uuid::Uuid::new_v4().to_string(),
        project_id: project_id.to_owned(),
        name: asked.name.trim().to_owned(),
        seed: uuid::Uuid::new_v4().to_string(),
        primary_metric: asked.primary_metric.as_str().to_owned(),
        planned_answers: i64::try_from(asked.planned_answers_per_arm).unwrap_or(i64::MAX),
        state: ExperimentState::Running.as_str().to_owned(),
        promoted_arm: None,
        created_by: actor.map(str::to_owned),
        created_at: now,
        stopped_at: None,
    };
    let mut tx = state.db.writer.begin().await?;
    let first = llm_configs::next_version(&mut *tx, project_id).await?;
    let mut arms = Vec::with_capacity(drafts.len());
    for (i, (draft, arm)) in drafts.iter().zip(&asked.arms).enumerate() {
        let version = first + i as i64;
        let row = draft.to_row(project_id, version, actor);
        if !llm_configs::insert_arm(&mut *tx, &row, &experiment.experiment_id).await? {
            return Err(AppError::Conflict {
                field: "version".into(),
                message: "the configuration was changed at the same time; try again".into(),
            }
            .into());
        }
        let name = arm
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map_or_else(|| default_arm_name(state, draft), str::to_owned);
        arms.push(ArmRow {
            experiment_id: experiment.experiment_id.clone(),
            arm: ARM_LABELS[i].to_owned(),
            name,
            config_version: version,
            weight: i64::from(arm.weight),
        });
    }
    if !db::insert(&mut tx, &experiment, &arms).await? {
        // Another started since the check above: nothing of this one stays.
        return Err(another_runs());
    }
    tx.commit().await?;
    changed(state, project_id);
    get(state, project_id, &experiment.experiment_id).await
}

/// The 409 of a second experiment while one runs.
fn another_runs() -> Error {
    AppError::Conflict {
        field: "experiment".into(),
        message: "an experiment is running in this project; stop it first".into(),
    }
    .into()
}

/// "GPT-4o mini (OpenAI)".
fn default_arm_name(state: &AppState, draft: &Draft) -> String {
    let model = state
        .catalog
        .chat_model(&draft.model)
        .map_or_else(|| draft.model.clone(), |m| m.name.clone());
    format!("{model} ({})", draft.provider.label())
}

/// The project's experiments, newest first, with their results.
pub async fn list(state: &AppState, project_id: &str) -> Result<ExperimentList> {
    let recent = db::answers_per_day(&state.db.pool, project_id, now_ms(), RECENT_DAYS).await?;
    let mut experiments = Vec::new();
    for row in db::list(&state.db.pool, project_id).await? {
        experiments.push(view(state, row, recent).await?);
    }
    Ok(ExperimentList {
        experiments,
        recent_answers_per_day: recent,
    })
}

/// One experiment with its results (404 for another project's).
pub async fn get(
    state: &AppState,
    project_id: &str,
    experiment_id: &str,
) -> Result<ExperimentView> {
    let row = find(state, project_id, experiment_id).await?;
    let recent = db::answers_per_day(&state.db.pool, project_id, now_ms(), RECENT_DAYS).await?;
    view(state, row, recent).await
}

async fn find(state: &AppState, project_id: &str, experiment_id: &str) -> Result<ExperimentRow> {
    db::find(&state.db.pool, project_id, experiment_id)
        .await?
        .ok_or(Error::App(AppError::NotFound))
}

/// A running experiment of the project (409 once stopped).
async fn find_running(
    state: &AppState,
    project_id: &str,
    experiment_id: &str,
) -> Result<ExperimentRow> {
    let row = find(state, project_id, experiment_id).await?;
    if row.state != ExperimentState::Running.as_str() {
        return Err(AppError::Conflict {
            field: "experiment".into(),
            message: "this experiment has stopped".into(),
        }
        .into());
    }
    Ok(row)
}

/// New weights for a running experiment; conversations already assigned
/// keep their arm.
pub async fn set_weights(
    state: &AppState,
    project_id: &str,
    experiment_id: &str,
    asked: ExperimentWeights,
) -> Result<ExperimentView> {
    let row = find_running(state, project_id, experiment_id).await?;
    let arms = db::arms(&state.db.pool, experiment_id).await?;
    let mut problems = Vec::new();
    let mut weights = Vec::new();
    for (label, weight) in &asked.weights {
        if !arms.iter().any(|a| &a.arm == label) {
            problems.push(FieldError {
                field: format!("weights.{label}"),
                message: "no such arm".into(),
            });
        } else if !(1..=MAX_WEIGHT).contains(weight) {
            problems.push(FieldError {
                field: format!("weights.{label}"),
                message: format!("a weight is 1 to {MAX_WEIGHT}"),
            });
        } else {
            weights.push((label.as_str(), i64::from(*weight)));
        }
    }
    if !problems.is_empty() {
        return Err(AppError::InvalidFields { errors: problems }.into());
    }
    let mut tx = state.db.writer.begin().await?;
    db::set_weights(&mut tx, experiment_id, &weights).await?;
    tx.commit().await?;
    changed(state, project_id);
    let recent = db::answers_per_day(&state.db.pool, project_id, now_ms(), RECENT_DAYS).await?;
    view(state, row, recent).await
}

/// Stops a running experiment: new conversations use the project's
/// configuration again; those assigned keep their arm.
pub async fn stop(
    state: &AppState,
    project_id: &str,
    experiment_id: &str,
) -> Result<ExperimentView> {
    find_running(state, project_id, experiment_id).await?;
    db::stop(&state.db.writer, experiment_id, None, now_ms()).await?;
    changed(state, project_id);
    get(state, project_id, experiment_id).await
}

/// Promotes an arm: its provider, model and parameters become the project's
/// configuration through the settings service (a new version, checked like
/// any save), and the experiment stops.
pub async fn promote(
    state: &AppState,
    project_id: &str,
    experiment_id: &str,
    actor: Option<&str>,
    arm: &str,
) -> Result<(ExperimentView, LlmConfig)> {
    find_running(state, project_id, experiment_id).await?;
    let arms = db::arms(&state.db.pool, experiment_id).await?;
    let chosen = arms.iter().find(|a| a.arm == arm).ok_or_else(|| {
        AppError::invalid("arm", format!("{arm} is not an arm of this experiment"))
    })?;
    let row = llm_configs::version(&state.db.pool, project_id, chosen.config_version)
        .await?
        .ok_or_else(|| Error::internal("an experiment arm's configuration went missing"))?;
    let draft = Draft::from_row(&row)?;
    let patch = LlmConfigPatch {
        provider: Some(draft.provider),
        model: Some(draft.model.clone()),
        parameters: Some(every_parameter(&draft)),
        ..LlmConfigPatch::default()
    };
    let config = llm_settings::update(state, project_id, actor, patch).await?;
    db::stop(&state.db.writer, experiment_id, Some(arm), now_ms()).await?;
    changed(state, project_id);
    Ok((get(state, project_id, experiment_id).await?, config))
}

/// New assignments follow a change to the project's experiments at once.
fn changed(state: &AppState, project_id: &str) {
    state.hot.experiments.forget(&project_id.to_owned());
}

/// A patch setting every parameter to the draft's value (clearing those it
/// leaves unset), so a promoted arm's parameters arrive whole.
fn every_parameter(draft: &Draft) -> ParametersPatch {
    let values = serde_json::to_value(&draft.parameters).unwrap_or_default();
    let object: serde_json::Map<String, serde_json::Value> = Param::ALL
        .iter()
        .map(|param| {
            let value = values
                .get(param.as_str())
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            (param.as_str().to_owned(), value)
        })
        .collect();
    ParametersPatch::from_json(&object)
}

/// One answer of an arm, from its ledger rows.
#[derive(Debug, Default)]
struct Answer {
    answered_by: Option<String>,
    first_start: i64,
    last_end: i64,
    cost_nanos: Option<i64>,
    rating: Option<String>,
    conversation_id: Option<String>,
}

/// The ledger rows grouped into answers, by configuration version.
fn answers_of(attempts: Vec<ArmAttempt>) -> HashMap<i64, Vec<Answer>> {
    let mut by_request: HashMap<String, (i64, Answer)> = HashMap::new();
    for attempt in attempts {
        let (_, answer) = by_request
            .entry(attempt.request_id.clone())
            .or_insert_with(|| {
                (
                    attempt.config_version,
                    Answer {
                        first_start: attempt.created_at,
                        last_end: attempt.created_at,
                        cost_nanos: Some(0),
                        ..Answer::default()
                    },
                )
            });
        answer.first_start = answer.first_start.min(attempt.created_at);
        answer.last_end = answer.last_end.max(attempt.created_at + attempt.latency_ms);
        answer.cost_nanos = match (answer.cost_nanos, attempt.cost_nanos) {
            (Some(sum), Some(cost)) => Some(sum + cost),
            _ => None,
        };
        if attempt.success {
            answer.answered_by = Some(attempt.model.clone());
        }
        answer.rating = answer.rating.take().or(attempt.rating);
        answer.conversation_id = answer.conversation_id.take().or(attempt.conversation_id);
    }
    let mut grouped: HashMap<i64, Vec<Answer>> = HashMap::new();
    for (_, (version, answer)) in by_request {
        grouped.entry(version).or_default().push(answer);
    }
    grouped
}

/// What one arm measured, before it is compared.
struct Measured {
    result: ArmResult,
    rated: u64,
    latencies: Vec<f64>,
    costs: Vec<f64>,
}

fn measure(
    arm: &ArmRow,
    provider: ProviderId,
    model: &str,
    model_name: String,
    conversations: u64,
    answers: &[Answer],
) -> Measured {
    let total = answers.len() as u64;
    let errors = answers.iter().filter(|a| a.answered_by.is_none()).count() as u64;
    let fallbacks = answers
        .iter()
        .filter(|a| a.answered_by.as_deref().is_some_and(|m| m != model))
        .count() as u64;
    let up = answers
        .iter()
        .filter(|a| a.rating.as_deref() == Some("up"))
        .count() as u64;
    let down = answers
        .iter()
        .filter(|a| a.rating.as_deref() == Some("down"))
        .count() as u64;
    let latency_ms: Vec<i64> = answers
        .iter()
        .filter(|a| a.answered_by.is_some())
        .map(|a| a.last_end - a.first_start)
        .collect();
    let costs: Vec<i64> = answers.iter().filter_map(|a| a.cost_nanos).collect();
    let cost_sum: i64 = costs.iter().sum();
    let talked: HashSet<&str> = answers
        .iter()
        .filter_map(|a| a.conversation_id.as_deref())
        .collect();
    let conversation_cost: i64 = answers
        .iter()
        .filter(|a| a.conversation_id.is_some())
        .filter_map(|a| a.cost_nanos)
        .sum();
    Measured {
        rated: up + down,
        latencies: latency_ms.iter().map(|ms| *ms as f64 / 1000.0).collect(),
        costs: costs.iter().map(|c| *c as f64).collect(),
        result: ArmResult {
            arm: arm.arm.clone(),
            name: arm.name.clone(),
            config_version: arm.config_version,
            provider,
            model: model.to_owned(),
            model_name,
            weight: u32::try_from(arm.weight).unwrap_or(0),
            conversations,
            answers: total,
            errors,
            error_rate: (total > 0).then(|| errors as f64 / total as f64),
            fallbacks,
            satisfaction: Satisfaction::new(up, down),
            latency: Percentiles::of_millis(latency_ms),
            cost_per_answer_nanos: rounded_div(cost_sum, costs.len() as i64),
            cost_per_conversation_nanos: rounded_div(conversation_cost, talked.len() as i64),
            comparisons: Vec::new(),
        },
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The arm against the control on every metric, Holm-corrected together;
/// nothing is significant while the results are provisional.
fn compare(arm: &Measured, control: &Measured, provisional: bool) -> Vec<Comparison> {
    let (a, c) = (&arm.result, &control.result);
    let share = |m: &Measured| m.result.satisfaction.share;
    let difference = |x: Option<f64>, y: Option<f64>| Some(x? - y?);
    let tests = [
        Test {
            metric: "satisfaction",
            test: "two-proportion z",
            difference: difference(share(arm), share(control)),
            p_value: stats::two_proportion_p(
                a.satisfaction.up,
                arm.rated,
                c.satisfaction.up,
                control.rated,
            ),
            higher_wins: true,
        },
        Test {
            metric: "errorRate",
            test: "two-proportion z",
            difference: difference(a.error_rate, c.error_rate),
            p_value: stats::two_proportion_p(a.errors, a.answers, c.errors, c.answers),
            higher_wins: false,
        },
        Test {
            metric: "latency",
            test: "Mann-Whitney U",
            difference: difference(a.latency.p50, c.latency.p50),
            p_value: stats::mann_whitney_p(&arm.latencies, &control.latencies),
            higher_wins: false,
        },
        Test {
            metric: "cost",
            test: "Mann-Whitney U",
            difference: difference(mean(&arm.costs), mean(&control.costs)),
            p_value: stats::mann_whitney_p(&arm.costs, &control.costs),
            higher_wins: false,
        },
    ];
    let adjusted = stats::holm(&tests.iter().map(|t| t.p_value).collect::<Vec<_>>());
    tests
        .into_iter()
        .zip(adjusted)
        .map(|(t, adjusted_p)| Comparison {
            metric: t.metric.to_owned(),
            test: t.test.to_owned(),
            difference: t.difference,
            p_value: t.p_value,
            adjusted_p,
            significant: !provisional && adjusted_p.is_some_and(|p| p < ALPHA),
            better: t
                .difference
                .filter(|d| *d != 0.0)
                .map(|d| (d > 0.0) == t.higher_wins),
        })
        .collect()
}

/// One metric's test of an arm against the control, before correction.
struct Test {
    metric: &'static str,
    test: &'static str,
    difference: Option<f64>,
    p_value: Option<f64>,
    higher_wins: bool,
}

/// An experiment with its arms' results and statistics.
async fn view(state: &AppState, row: ExperimentRow, recent_per_day: f64) -> Result<ExperimentView> {
    let pool = &state.db.pool;
    let arms = db::arms(pool, &row.experiment_id).await?;
    let assigned = db::conversations_per_arm(pool, &row.experiment_id).await?;
    let versions: Vec<i64> = arms.iter().map(|a| a.config_version).collect();
    let mut answers = answers_of(db::attempts(pool, &row.project_id, &versions).await?);
    let planned = u64::try_from(row.planned_answers).unwrap_or(0);
    let mut measured = Vec::with_capacity(arms.len());
    for arm in &arms {
        let config = llm_configs::version(pool, &row.project_id, arm.config_version)
            .await?
            .ok_or_else(|| Error::internal("an experiment arm's configuration went missing"))?;
        let provider = ProviderId::parse(&config.provider).unwrap_or(ProviderId::Claude);
        let name = state
            .catalog
            .chat_model(&config.model)
            .map_or_else(|| config.model.clone(), |m| m.name.clone());
        let conversations = assigned.get(&arm.arm).copied().unwrap_or(0);
        let of_arm = answers.remove(&arm.config_version).unwrap_or_default();
        measured.push(measure(
            arm,
            provider,
            &config.model,
            name,
            conversations,
            &of_arm,
        ));
    }
    let provisional = measured.iter().any(|m| m.result.answers < planned);
    let mut results: Vec<ArmResult> = Vec::with_capacity(measured.len());
    if let Some((control, rest)) = measured.split_first() {
        results.push(control.result.clone());
        for arm in rest {
            let mut result = arm.result.clone();
            result.comparisons = compare(arm, control, provisional);
            results.push(result);
        }
    }
    let counts: Vec<u64> = results.iter().map(|r| r.conversations).collect();
    let weights: Vec<u32> = results.iter().map(|r| r.weight).collect();
    let sample_ratio_p = stats::sample_ratio_p(&counts, &weights);
    let running = row.state == ExperimentState::Running.as_str();
    Ok(ExperimentView {
        projected_days: running
            .then(|| {
                let arms: Vec<(u32, u64)> = results.iter().map(|r| (r.weight, r.answers)).collect();
                projected_days(&arms, planned, recent_per_day)
            })
            .flatten(),
        id: row.experiment_id,
        name: row.name,
        state: ExperimentState::parse(&row.state).unwrap_or(ExperimentState::Stopped),
        primary_metric: ExperimentMetric::parse(&row.primary_metric)
            .unwrap_or(ExperimentMetric::Satisfaction),
        planned_answers_per_arm: planned,
        provisional,
        sample_ratio_mismatch: sample_ratio_p.is_some_and(|p| p < SRM_ALPHA),
        sample_ratio_p,
        promoted_arm: row.promoted_arm,
        arms: results,
        created_at: rfc3339(row.created_at),
        stopped_at: row.stopped_at.map(rfc3339),
    })
}

/// Days until every arm has `planned` answers, at `per_day` answers split
/// by the weights; each arm given as its weight and the answers it has.
/// `None` without recent traffic. Before an experiment starts, every arm has
/// none: what the create form shows.
pub fn projected_days(arms: &[(u32, u64)], planned: u64, per_day: f64) -> Option<f64> {
    let total: f64 = arms.iter().map(|(weight, _)| f64::from(*weight)).sum();
    if per_day <= 0.0 || total <= 0.0 {
        return None;
    }
    arms.iter()
        .map(|(weight, answers)| {
            let missing = planned.saturating_sub(*answers) as f64;
            let rate = per_day * f64::from(*weight) / total;
            if missing == 0.0 {
                0.0
            } else if rate > 0.0 {
                missing / rate
            } else {
                f64::INFINITY
            }
        })
        .reduce(f64::max)
        .filter(|days| days.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn arms(weights: &[i64]) -> Vec<ArmRow> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| ArmRow {
                experiment_id: "e".into(),
                arm: ARM_LABELS[i].into(),
                name: String::new(),
                config_version: i as i64 + 1,
                weight: *w,
            })
            .collect()
    }

    #[test]
    fn assignment_is_sticky_and_follows_the_weights() {
        let even = arms(&[50, 50]);
        let first = pick("seed", "conversation-1", &even).unwrap().arm.clone();
        for _ in 0..10 {
            assert_eq!(pick("seed", "conversation-1", &even).unwrap().arm, first);
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let skewed = arms(&[80, 20]);
        for unit in 0..10_000 {
            let arm = pick("seed", &unit.to_string(), &skewed).unwrap();
            *counts.entry(arm.arm.clone()).or_default() += 1;
        }
        let a = counts["A"];
        assert!((7_700..=8_300).contains(&a), "{counts:?}");
        // The counts pass their own sample-ratio check.
        assert!(stats::sample_ratio_p(&[a, counts["B"]], &[80, 20]).unwrap() > SRM_ALPHA);
        assert!(pick("seed", "x", &arms(&[0, 0])).is_none());
    }

    #[test]
    fn the_projection_waits_for_the_slowest_arm() {
        // 100 answers a day split 3:1; 300 planned each: B needs 300 / 25 = 12 days.
        assert_eq!(projected_days(&[(75, 0), (25, 0)], 300, 100.0), Some(12.0));
        assert_eq!(
            projected_days(&[(75, 300), (25, 150)], 300, 100.0),
            Some(6.0)
        );
        assert_eq!(projected_days(&[(50, 0), (50, 0)], 300, 0.0), None);
    }
}
