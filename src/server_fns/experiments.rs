//! The Performance screen's A/B experiments: the same service as
//! `/api/projects/:id/experiments`. The forms work before hydration: each
//! posts here and the server answers with a redirect back to the screen.

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::experiments::{ExperimentForm, ExperimentList};
use leptos::prelude::*;

/// The Performance screen of a project.
pub fn performance_path(project_id: &str) -> String {
    format!("/projects/{project_id}/performance")
}

/// The project's experiments with their results.
#[server(prefix = "/sfn", endpoint = "experiments/list")]
pub async fn list_experiments(project_id: String) -> Result<ExperimentList, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(crate::server::services::experiments::list(&state, &project_id).await?)
}

/// Starts an experiment from the screen's form: two arms (the API takes up
/// to four), each a catalog model (its provider follows) and a weight; the
/// project's other settings are kept in both.
#[server(prefix = "/sfn", endpoint = "experiments/create")]
pub async fn create_experiment(project_id: String, form: ExperimentForm) -> Result<(), AppError> {
    use crate::error::FieldError;
    use crate::model::experiments::{ExperimentMetric, NewArm, NewExperiment};
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    let mut problems = Vec::new();
    let metric = ExperimentMetric::parse(&form.primary_metric).unwrap_or_else(|| {
        problems.push(FieldError {
            field: "primaryMetric".into(),
            message: "choose satisfaction, latency or cost".into(),
        });
        ExperimentMetric::Satisfaction
    });
    let planned = form
        .planned_answers_per_arm
        .trim()
        .parse::<u64>()
        .unwrap_or_else(|_| {
            problems.push(FieldError {
                field: "plannedAnswersPerArm".into(),
                message: "a whole number of answers".into(),
            });
            0
        });
    let mut arms = Vec::new();
    let asked_arms = [
        (&form.model_a, &form.weight_a),
        (&form.model_b, &form.weight_b),
    ];
    for (i, (model, weight)) in asked_arms.into_iter().enumerate() {
        let Some(known) = state.catalog.chat_model(model.trim()) else {
            problems.push(FieldError {
                field: format!("arms[{i}].model"),
                message: "choose a model".into(),
            });
            continue;
        };
        let weight = weight.trim().parse::<u32>().unwrap_or_else(|_| {
            problems.push(FieldError {
                field: format!("arms[{i}].weight"),
                message: "a whole number from 1 to 100".into(),
            });
            0
        });
        arms.push(NewArm {
            name: None,
            provider: known.provider,
            model: known.id.clone(),
            parameters: None,
            weight,
        });
    }
    if !problems.is_empty() {
        return Err(AppError::InvalidFields { errors: problems });
    }
    let asked = NewExperiment {
        name: form.name,
        primary_metric: metric,
        planned_answers_per_arm: planned,
        arms,
    };
    crate::server::services::experiments::create(&state, &project_id, Some(&user.user_id), asked)
        .await?;
    leptos_axum::redirect(&performance_path(&project_id));
    Ok(())
}

/// Stops an experiment.
#[server(prefix = "/sfn", endpoint = "experiments/stop")]
pub async fn stop_experiment(project_id: String, experiment_id: String) -> Result<(), AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    crate::server::services::experiments::stop(&state, &project_id, &experiment_id).await?;
    leptos_axum::redirect(&performance_path(&project_id));
    Ok(())
}

/// Promotes an arm: its configuration becomes the project's, the experiment stops.
#[server(prefix = "/sfn", endpoint = "experiments/promote")]
pub async fn promote_arm(
    project_id: String,
    experiment_id: String,
    arm: String,
) -> Result<(), AppError> {
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    crate::server::services::experiments::promote(
        &state,
        &project_id,
        &experiment_id,
        Some(&user.user_id),
        &arm,
    )
    .await?;
    leptos_axum::redirect(&performance_path(&project_id));
    Ok(())
}
