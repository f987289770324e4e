//! The `llm_config` table: one row per saved version of a project's
//! configuration. Rows are never updated, so a conversation's pinned version
//! stays exactly as it was.

use crate::server::db::col;
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool};

/// A stored configuration version, with JSON columns still as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRow {
    /// The project.
    pub project_id: String,
    /// Version number (1, 2, …).
    pub version: i64,
    /// `claude`, `openai`, `gemini` or `llama`.
    pub provider: String,
    /// Catalog model id.
    pub model: String,
    /// Parameters as camelCase JSON.
    pub parameters: String,
    /// System prompt.
    pub system_prompt: String,
    /// `managed` or `byok`.
    pub key_source: String,
    /// Fallback settings as camelCase JSON.
    pub fallback: String,
    /// Self-hosted Llama server.
    pub base_url: Option<String>,
    /// `ollama` or `openAiCompatible`.
    pub llama_flavour: String,
    /// The knowledge base's embedding model; `None` follows the provider.
    pub embedding_model: Option<String>,
    /// Who saved it (none for API tokens).
    pub created_by: Option<String>,
    /// When (Unix ms).
    pub created_at: i64,
}

const COLUMNS: &str =
    "project_id, version, provider, model, parameters, system_prompt, key_source, \
                       fallback, base_url, llama_flavour, embedding_model, created_by, created_at";

fn from_row(row: &AnyRow) -> Result<ConfigRow> {
    Ok(ConfigRow {
        project_id: col(row, "project_id")?,
        version: col(row, "version")?,
        provider: col(row, "provider")?,
        model: col(row, "model")?,
        parameters: col(row, "parameters")?,
        system_prompt: col(row, "system_prompt")?,
        key_source: col(row, "key_source")?,
        fallback: col(row, "fallback")?,
        base_url: col(row, "base_url")?,
        llama_flavour: col(row, "llama_flavour")?,
        embedding_model: col(row, "embedding_model")?,
        created_by: col(row, "created_by")?,
        created_at: col(row, "created_at")?,
    })
}

/// Inserts a version; `false` when that version already exists (someone saved
/// concurrently).
pub async fn insert<'e, E>(executor: E, row: &ConfigRow) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    insert_with(executor, row, None).await
}

/// Inserts the configuration of an experiment's arm: a version of its own,
/// which conversations assigned to the arm pin, never the project's current
/// one. `false` when that version already exists.
pub async fn insert_arm<'e, E>(executor: E, row: &ConfigRow, experiment_id: &str) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    insert_with(executor, row, Some(experiment_id)).await
}

async fn insert_with<'e, E>(
    executor: E,
    row: &ConfigRow,
    experiment_id: Option<&str>,
) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!(
        "insert into llm_config (llm_config_id, {COLUMNS}, experiment_id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         on conflict (project_id, version) do nothing"
    );
    let done = sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&row.project_id)
        .bind(row.version)
        .bind(&row.provider)
        .bind(&row.model)
        .bind(&row.parameters)
        .bind(&row.system_prompt)
        .bind(&row.key_source)
        .bind(&row.fallback)
        .bind(&row.base_url)
        .bind(&row.llama_flavour)
        .bind(&row.embedding_model)
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(experiment_id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The number the next version of a project's configuration takes: after
/// every version, the project's own and its experiments' arms.
pub async fn next_version<'e, E>(executor: E, project_id: &str) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let highest: Option<i64> =
        sqlx::query_scalar("select max(version) from llm_config where project_id = $1")
            .bind(project_id)
            .fetch_one(executor)
            .await?;
    Ok(highest.unwrap_or(0) + 1)
}

/// The newest version of a project's configuration (never an experiment's
/// arm).
pub async fn latest(pool: &AnyPool, project_id: &str) -> Result<Option<ConfigRow>> {
    let sql = format!(
        "select {COLUMNS} from llm_config where project_id = $1 and experiment_id is null \
         order by version desc limit 1"
    );
    let row = sqlx::query(&sql)
        .bind(project_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// One version of a project's configuration (a conversation's pinned one).
pub async fn version(pool: &AnyPool, project_id: &str, version: i64) -> Result<Option<ConfigRow>> {
    let sql = format!("select {COLUMNS} from llm_config where project_id = $1 and version = $2");
    let row = sqlx::query(&sql)
        .bind(project_id)
        .bind(version)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}
