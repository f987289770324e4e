//! The `experiment` and `experiment_arm` tables, and what an experiment's
//! results are read from: its conversations and its arms' ledger rows.

use crate::server::db::col;
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use std::collections::HashMap;

/// Most ledger rows one experiment's results read (the latest): a bound on
/// their memory and time whatever the traffic.
pub const MAX_ATTEMPTS: usize = 200_000;

/// A stored experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRow {
    /// Id.
    pub experiment_id: String,
    /// Its project.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// Hashed with the unit for sticky assignment.
    pub seed: String,
    /// `satisfaction`, `latency` or `cost`.
    pub primary_metric: String,
    /// Answers each arm needs.
    pub planned_answers: i64,
    /// `running` or `stopped`.
    pub state: String,
    /// The arm promoted when it stopped.
    pub promoted_arm: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub stopped_at: Option<i64>,
}

/// A stored arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRow {
    /// Its experiment.
    pub experiment_id: String,
    /// `A`–`D`.
    pub arm: String,
    /// Name.
    pub name: String,
    /// Its configuration version.
    pub config_version: i64,
    /// Its weight.
    pub weight: i64,
}

/// One ledger row of an arm's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmAttempt {
    /// The answer it belongs to.
    pub request_id: String,
    /// Which arm (by configuration version).
    pub config_version: i64,
    /// The model tried.
    pub model: String,
    /// Whether it answered.
    pub success: bool,
    /// When it started (Unix ms).
    pub created_at: i64,
    /// How long it took.
    pub latency_ms: i64,
    /// Its cost (`None`: unpriced).
    pub cost_nanos: Option<i64>,
    /// The conversation, for chat answers.
    pub conversation_id: Option<String>,
    /// The answer's thumbs, `up` or `down`.
    pub rating: Option<String>,
}

const EXPERIMENT_COLUMNS: &str = "experiment_id, project_id, name, seed, primary_metric, \
     planned_answers, state, promoted_arm, created_by, created_at, stopped_at";

fn experiment_from(row: &AnyRow) -> Result<ExperimentRow> {
    Ok(ExperimentRow {
        experiment_id: col(row, "experiment_id")?,
        project_id: col(row, "project_id")?,
        name: col(row, "name")?,
        seed: col(row, "seed")?,
        primary_metric: col(row, "primary_metric")?,
        planned_answers: col(row, "planned_answers")?,
        state: col(row, "state")?,
        promoted_arm: col(row, "promoted_arm")?,
        created_by: col(row, "created_by")?,
        created_at: col(row, "created_at")?,
        stopped_at: col(row, "stopped_at")?,
    })
}

fn arm_from(row: &AnyRow) -> Result<ArmRow> {
    Ok(ArmRow {
        experiment_id: col(row, "experiment_id")?,
        arm: col(row, "arm")?,
        name: col(row, "name")?,
        config_version: col(row, "config_version")?,
        weight: col(row, "weight")?,
    })
}

/// Stores a running experiment with its arms (inside the caller's
/// transaction, with the arms' configuration versions); `false`, storing
/// nothing, when another experiment of the project already runs.
pub async fn insert(
    conn: &mut AnyConnection,
    row: &ExperimentRow,
    arms: &[ArmRow],
) -> Result<bool> {
    let stored = sqlx::query(&format!(
        "insert into experiment ({EXPERIMENT_COLUMNS}) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         on conflict (project_id) where state = 'running' do nothing"
    ))
    .bind(&row.experiment_id)
    .bind(&row.project_id)
    .bind(&row.name)
    .bind(&row.seed)
    .bind(&row.primary_metric)
    .bind(row.planned_answers)
    .bind(&row.state)
    .bind(&row.promoted_arm)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.stopped_at)
    .execute(&mut *conn)
    .await?;
    if stored.rows_affected() == 0 {
        return Ok(false);
    }
    for arm in arms {
        sqlx::query(
            "insert into experiment_arm (experiment_id, arm, name, config_version, weight) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&arm.experiment_id)
        .bind(&arm.arm)
        .bind(&arm.name)
        .bind(arm.config_version)
        .bind(arm.weight)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// A project's experiments, newest first.
pub async fn list(pool: &AnyPool, project_id: &str) -> Result<Vec<ExperimentRow>> {
    let rows = sqlx::query(&format!(
        "select {EXPERIMENT_COLUMNS} from experiment where project_id = $1 \
         order by created_at desc, experiment_id"
    ))
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(experiment_from).collect()
}

/// One experiment of a project.
pub async fn find(
    pool: &AnyPool,
    project_id: &str,
    experiment_id: &str,
) -> Result<Option<ExperimentRow>> {
    let row = sqlx::query(&format!(
        "select {EXPERIMENT_COLUMNS} from experiment where project_id = $1 and experiment_id = $2"
    ))
    .bind(project_id)
    .bind(experiment_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(experiment_from).transpose()
}

/// The project's running experiment, if any (there is at most one).
pub async fn running(pool: &AnyPool, project_id: &str) -> Result<Option<ExperimentRow>> {
    let row = sqlx::query(&format!(
        "select {EXPERIMENT_COLUMNS} from experiment where project_id = $1 and state = 'running' \
         order by created_at desc limit 1"
    ))
    .bind(project_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(experiment_from).transpose()
}

/// An experiment's arms, in label order.
pub async fn arms(pool: &AnyPool, experiment_id: &str) -> Result<Vec<ArmRow>> {
    let rows = sqlx::query(
        "select experiment_id, arm, name, config_version, weight from experiment_arm \
         where experiment_id = $1 order by arm",
    )
    .bind(experiment_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(arm_from).collect()
}

/// Sets arms' weights (running conversations keep their arm).
pub async fn set_weights(
    conn: &mut AnyConnection,
    experiment_id: &str,
    weights: &[(&str, i64)],
) -> Result<()> {
    for (arm, weight) in weights {
        sqlx::query("update experiment_arm set weight = $3 where experiment_id = $1 and arm = $2")
            .bind(experiment_id)
            .bind(*arm)
            .bind(*weight)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stops a running experiment (and records the arm promoted); `false` when
/// it was not running.
pub async fn stop<'e, E>(
    executor: E,
    experiment_id: &str,
    promoted_arm: Option<&str>,
    now: i64,
) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "update experiment set state = 'stopped', promoted_arm = $2, stopped_at = $3 \
         where experiment_id = $1 and state = 'running'",
    )
    .bind(experiment_id)
    .bind(promoted_arm)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Conversations assigned to each arm.
pub async fn conversations_per_arm(
    pool: &AnyPool,
    experiment_id: &str,
) -> Result<HashMap<String, u64>> {
    let rows = sqlx::query(
        "select arm, count(*) as assigned from conversation where experiment_id = $1 group by arm",
    )
    .bind(experiment_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let assigned: i64 = col(row, "assigned")?;
            Ok((col(row, "arm")?, u64::try_from(assigned).unwrap_or(0)))
        })
        .collect()
}

/// The chat ledger rows of the arms' configuration versions (the latest
/// [`MAX_ATTEMPTS`]), with the answers' ratings.
pub async fn attempts(
    pool: &AnyPool,
    project_id: &str,
    versions: &[i64],
) -> Result<Vec<ArmAttempt>> {
    if versions.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..versions.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "select u.request_id, u.config_version, u.model, u.success, u.created_at, u.latency_ms, \
           u.cost_nanos, u.conversation_id, m.rating \
         from llm_usage u left join message m on m.message_id = u.message_id \
         where u.project_id = $1 and u.operation = 'chat' and u.config_version in ({}) \
         order by u.created_at desc limit {MAX_ATTEMPTS}",
        list.join(", ")
    );
    let query = versions
        .iter()
        .fold(sqlx::query(&sql).bind(project_id), |q, v| q.bind(*v));
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(ArmAttempt {
                request_id: col(row, "request_id")?,
                config_version: col(row, "config_version")?,
                model: col(row, "model")?,
                success: row.try_get::<i64, _>("success")? == 1,
                created_at: col(row, "created_at")?,
                latency_ms: col(row, "latency_ms")?,
                cost_nanos: col(row, "cost_nanos")?,
                conversation_id: col(row, "conversation_id")?,
                rating: col(row, "rating")?,
            })
        })
        .collect()
}

/// The project's chat answers a day over the last `days` days.
pub async fn answers_per_day(pool: &AnyPool, project_id: &str, now: i64, days: i64) -> Result<f64> {
    let since = now - days * 86_400_000;
    let answers: i64 = sqlx::query_scalar(
        "select count(distinct request_id) from llm_usage \
         where project_id = $1 and operation = 'chat' and created_at >= $2",
    )
    .bind(project_id)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok(answers as f64 / days as f64)
}
