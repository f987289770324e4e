//! The knowledge base's tables: documents with their extracted text, their
//! chunks, index versions (one embedding model and dimension each) and the
//! vectors of each version. A project serves from its one `ready` index; a
//! new version is `building` beside it until [`finish_build`] swaps the two
//! in one transaction.

use crate::server::db::{col, now_ms};
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

/// A stored document (its text is read apart, with [`document_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// Document id.
    pub document_id: String,
    /// Its project.
    pub project_id: String,
    /// The uploaded file's name.
    pub name: String,
    /// `text`, `markdown`, `html` or `pdf`.
    pub kind: String,
    /// The uploaded file's size.
    pub size_bytes: i64,
    /// How many chunks it was split into.
    pub chunk_count: i64,
    /// Tokens of its chunks together.
    pub token_count: i64,
    /// When it was uploaded (Unix ms).
    pub created_at: i64,
}

const DOCUMENT_COLUMNS: &str =
    "document_id, project_id, name, kind, size_bytes, chunk_count, token_count, created_at";

fn document_from(row: &AnyRow) -> Result<DocumentRow> {
    Ok(DocumentRow {
        document_id: col(row, "document_id")?,
        project_id: col(row, "project_id")?,
        name: col(row, "name")?,
        kind: col(row, "kind")?,
        size_bytes: col(row, "size_bytes")?,
        chunk_count: col(row, "chunk_count")?,
        token_count: col(row, "token_count")?,
        created_at: col(row, "created_at")?,
    })
}

/// One chunk to store with its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunk {
    /// Its place in the document (0, 1, …).
    pub ordinal: i64,
    /// The section it sits in.
    pub heading: Option<String>,
    /// Its text.
    pub content: String,
    /// Its tokens.
    pub tokens: i64,
}

/// Stores a document with its text and every chunk, in one transaction:
/// all of it or nothing.
pub async fn insert_document(
    writer: &AnyPool,
    document: &DocumentRow,
    text: &str,
    created_by: Option<&str>,
    chunks: &[NewChunk],
) -> Result<()> {
    let mut tx = writer.begin().await?;
    sqlx::query(
        "insert into knowledge_document (document_id, project_id, name, kind, size_bytes, content, \
         chunk_count, token_count, created_by, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&document.document_id)
    .bind(&document.project_id)
    .bind(&document.name)
    .bind(&document.kind)
    .bind(document.size_bytes)
    .bind(text)
    .bind(document.chunk_count)
    .bind(document.token_count)
    .bind(created_by)
    .bind(document.created_at)
    .execute(&mut *tx)
    .await?;
    for chunk in chunks {
        sqlx::query(
            "insert into knowledge_chunk (chunk_id, document_id, project_id, ordinal, heading, \
             content, tokens) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&document.document_id)
        .bind(&document.project_id)
        .bind(chunk.ordinal)
        .bind(&chunk.heading)
        .bind(&chunk.content)
        .bind(chunk.tokens)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A project's documents, newest first.
pub async fn documents(pool: &AnyPool, project_id: &str) -> Result<Vec<DocumentRow>> {
    let sql = format!(
        "select {DOCUMENT_COLUMNS} from knowledge_document where project_id = $1 \
         order by created_at desc, document_id"
    );
    let rows = sqlx::query(&sql).bind(project_id).fetch_all(pool).await?;
    rows.iter().map(document_from).collect()
}

/// One document of a project.
pub async fn document(
    pool: &AnyPool,
    project_id: &str,
    document_id: &str,
) -> Result<Option<DocumentRow>> {
    let sql = format!(
        "select {DOCUMENT_COLUMNS} from knowledge_document where project_id = $1 and document_id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(project_id)
        .bind(document_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(document_from).transpose()
}

/// A stored chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    /// Chunk id.
    pub chunk_id: String,
    /// Its document.
    pub document_id: String,
    /// Its place in the document.
    pub ordinal: i64,
    /// Its section.
    pub heading: Option<String>,
    /// Its text.
    pub content: String,
    /// Its tokens.
    pub tokens: i64,
}

fn chunk_from(row: &AnyRow) -> Result<ChunkRow> {
    Ok(ChunkRow {
        chunk_id: col(row, "chunk_id")?,
        document_id: col(row, "document_id")?,
        ordinal: col(row, "ordinal")?,
        heading: col(row, "heading")?,
        content: col(row, "content")?,
        tokens: col(row, "tokens")?,
    })
}

const CHUNK_COLUMNS: &str = "c.chunk_id, c.document_id, c.ordinal, c.heading, c.content, c.tokens";

/// A document's chunks in order.
pub async fn chunks_of(pool: &AnyPool, document_id: &str) -> Result<Vec<ChunkRow>> {
    let sql = format!(
        "select {CHUNK_COLUMNS} from knowledge_chunk c where c.document_id = $1 order by c.ordinal"
    );
    let rows = sqlx::query(&sql).bind(document_id).fetch_all(pool).await?;
    rows.iter().map(chunk_from).collect()
}

/// Deletes a document with its chunks and their vectors; `false` when the
/// project has no such document.
pub async fn delete_document(
    writer: &AnyPool,
    project_id: &str,
    document_id: &str,
) -> Result<bool> {
    let mut tx = writer.begin().await?;
    // Explicit, not only by cascade: SQLite connections opened without
    // foreign keys would leave orphans behind.
    sqlx::query(
        "delete from knowledge_vector where chunk_id in \
         (select chunk_id from knowledge_chunk where document_id = $1 and project_id = $2)",
    )
    .bind(document_id)
    .bind(project_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from knowledge_chunk where document_id = $1 and project_id = $2")
        .bind(document_id)
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
    let done =
        sqlx::query("delete from knowledge_document where document_id = $1 and project_id = $2")
            .bind(document_id)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

crate::model::text_enum! {
    /// Where an index version stands.
    pub enum IndexState {
        /// Being built beside the serving index.
        Building = "building",
        /// The one the project retrieves from.
        Ready = "ready",
        /// Replaced by a newer ready index; its vectors are gone.
        Retired = "retired",
        /// Its build stopped on an error it could not get past.
        Failed = "failed",
        /// A newer switch replaced it before it was complete.
        Cancelled = "cancelled",
    }
}

/// One index version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// Index id.
    pub index_id: String,
    /// Its project.
    pub project_id: String,
    /// The embedding model (catalog id) of every vector in it.
    pub model: String,
    /// The length of every vector in it.
    pub dimensions: i64,
    /// Where it stands.
    pub state: IndexState,
    /// Why its build failed.
    pub error: Option<String>,
    /// When it was started (Unix ms).
    pub created_at: i64,
    /// When it was complete (Unix ms).
    pub completed_at: Option<i64>,
}

const INDEX_COLUMNS: &str =
    "index_id, project_id, model, dimensions, state, error, created_at, completed_at";

fn index_from(row: &AnyRow) -> Result<IndexRow> {
    Ok(IndexRow {
        index_id: col(row, "index_id")?,
        project_id: col(row, "project_id")?,
        model: col(row, "model")?,
        dimensions: col(row, "dimensions")?,
        state: crate::server::db::parsed(row, "state", IndexState::parse)?,
        error: col(row, "error")?,
        created_at: col(row, "created_at")?,
        completed_at: col(row, "completed_at")?,
    })
}

/// The project's serving index, its build in progress, and its latest
/// failed build (if newer than both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes {
    /// The one retrieval reads.
    pub serving: Option<IndexRow>,
    /// The one being built.
    pub building: Option<IndexRow>,
    /// The newest version, when its build failed.
    pub failed: Option<IndexRow>,
}

/// The project's indexes as [`Indexes`] says.
pub async fn indexes(pool: &AnyPool, project_id: &str) -> Result<Indexes> {
    let sql = format!(
        "select {INDEX_COLUMNS} from knowledge_index where project_id = $1 \
         and state in ('ready', 'building', 'failed') order by created_at desc, index_id"
    );
    let rows = sqlx::query(&sql).bind(project_id).fetch_all(pool).await?;
    let mut indexes = Indexes::default();
    for (position, row) in rows.iter().enumerate() {
        let index = index_from(row)?;
        match index.state {
            IndexState::Ready => indexes.serving = Some(index),
            IndexState::Building => indexes.building = Some(index),
            IndexState::Failed if position == 0 => indexes.failed = Some(index),
            _ => {}
        }
    }
    Ok(indexes)
}

/// Starts a new index version for `model`: a `ready` one at once when the
/// project has no serving index (there is nothing to keep serving), else a
/// `building` one beside it. An unfinished build is cancelled in the same
/// transaction, so at most one builds.
pub async fn start_index(
    writer: &AnyPool,
    project_id: &str,
    model: &str,
    dimensions: i64,
) -> Result<IndexRow> {
    let mut tx = writer.begin().await?;
    cancel_building(&mut tx, project_id).await?;
    let serving: Option<String> = sqlx::query_scalar(
        "select index_id from knowledge_index where project_id = $1 and state = 'ready'",
    )
    .bind(project_id)
    .fetch_optional(&mut *tx)
    .await?;
    let state = if serving.is_some() {
        IndexState::Building
    } else {
        IndexState::Ready
    };
    let index = IndexRow {
        index_id: uuid::Uuid::new_v4().to_string(),
        project_id: project_id.to_owned(),
        model: model.to_owned(),
        dimensions,
        state,
        error: None,
        created_at: now_ms(),
        completed_at: None,
    };
    sqlx::query(
        "insert into knowledge_index (index_id, project_id, model, dimensions, state, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&index.index_id)
    .bind(project_id)
    .bind(model)
    .bind(dimensions)
    .bind(state.as_str())
    .bind(index.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(index)
}

/// Cancels the project's build in progress, if any, and drops its vectors.
async fn cancel_building(conn: &mut AnyConnection, project_id: &str) -> Result<()> {
    sqlx::query(
        "delete from knowledge_vector where index_id in \
         (select index_id from knowledge_index where project_id = $1 and state = 'building')",
    )
    .bind(project_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update knowledge_index set state = 'cancelled', completed_at = $2 \
         where project_id = $1 and state = 'building'",
    )
    .bind(project_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the project's unfinished build (the project switched back to
/// the serving index's model); its vectors go with it.
pub async fn cancel_build(writer: &AnyPool, project_id: &str) -> Result<()> {
    let mut tx = writer.begin().await?;
    cancel_building(&mut tx, project_id).await?;
    tx.commit().await?;
    Ok(())
}

/// How many documents the project has.
pub async fn document_count(pool: &AnyPool, project_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from knowledge_document where project_id = $1")
            .bind(project_id)
            .fetch_one(pool)
            .await?,
    )
}

/// Whether the project has any chunk to embed.
pub async fn has_chunks(pool: &AnyPool, project_id: &str) -> Result<bool> {
    let found: Option<String> =
        sqlx::query_scalar("select chunk_id from knowledge_chunk where project_id = $1 limit 1")
            .bind(project_id)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Up to `limit` of the project's chunks that `index_id` has no vector for,
/// in document order.
pub async fn missing_chunks(
    pool: &AnyPool,
    project_id: &str,
    index_id: &str,
    limit: i64,
) -> Result<Vec<ChunkRow>> {
    let sql = format!(
        "select {CHUNK_COLUMNS} from knowledge_chunk c where c.project_id = $1 \
         and not exists (select 1 from knowledge_vector v where v.index_id = $2 and v.chunk_id = c.chunk_id) \
         order by c.document_id, c.ordinal limit $3"
    );
    let rows = sqlx::query(&sql)
        .bind(project_id)
        .bind(index_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(chunk_from).collect()
}

/// Vectors one insert statement carries.
const VECTORS_PER_STATEMENT: usize = 100;

/// Stores vectors of `index_id` while it is building or serving; a vector
/// of a chunk deleted meanwhile is skipped. Answers `false` when the index
/// was cancelled or failed meanwhile (nothing stored): its build stops.
pub async fn store_vectors(
    writer: &AnyPool,
    index_id: &str,
    vectors: &[(String, Vec<u8>)],
) -> Result<bool> {
    let mut tx = writer.begin().await?;
    let state: Option<String> =
        sqlx::query_scalar("select state from knowledge_index where index_id = $1")
            .bind(index_id)
            .fetch_optional(&mut *tx)
            .await?;
    if !matches!(state.as_deref(), Some("building" | "ready")) {
        return Ok(false);
    }
    // Many rows a statement (one round trip each, not one a vector); a
    // chunk deleted meanwhile is skipped by the join, one stored already
    // (another server's) by the conflict clause.
    for rows in vectors.chunks(VECTORS_PER_STATEMENT) {
        let values: Vec<String> = (0..rows.len())
            .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!(
            "insert into knowledge_vector (index_id, chunk_id, vector) \
             select $1, c.chunk_id, v.column2 from (values {}) v \
             join knowledge_chunk c on c.chunk_id = v.column1 where true \
             on conflict (index_id, chunk_id) do nothing",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(index_id);
        for (chunk_id, vector) in rows {
            query = query.bind(chunk_id).bind(vector.as_slice());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// How far an index is: its vectors and the project's chunks.
pub async fn progress(pool: &AnyPool, project_id: &str, index_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "select (select count(*) from knowledge_vector v join knowledge_chunk c \
                 on c.chunk_id = v.chunk_id where v.index_id = $2) as done, \
                (select count(*) from knowledge_chunk where project_id = $1) as total",
    )
    .bind(project_id)
    .bind(index_id)
    .fetch_one(pool)
    .await?;
    Ok((col(&row, "done")?, col(&row, "total")?))
}

/// Makes a complete building index the serving one, in one transaction:
/// the old serving index is retired and its vectors deleted. `false` (and
/// nothing changed) when it is no longer building or a chunk still lacks
/// its vector (one was uploaded meanwhile).
pub async fn finish_build(writer: &AnyPool, project_id: &str, index_id: &str) -> Result<bool> {
    let mut tx = writer.begin().await?;
    let missing: i64 = sqlx::query_scalar(
        "select count(*) from knowledge_chunk c where c.project_id = $1 and not exists \
         (select 1 from knowledge_vector v where v.index_id = $2 and v.chunk_id = c.chunk_id)",
    )
    .bind(project_id)
    .bind(index_id)
    .fetch_one(&mut *tx)
    .await?;
    let state: Option<String> =
        sqlx::query_scalar("select state from knowledge_index where index_id = $1")
            .bind(index_id)
            .fetch_optional(&mut *tx)
            .await?;
    if missing > 0 || state.as_deref() != Some("building") {
        return Ok(false);
    }
    let now = now_ms();
    sqlx::query(
        "delete from knowledge_vector where index_id in \
         (select index_id from knowledge_index where project_id = $1 and state = 'ready')",
    )
    .bind(project_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update knowledge_index set state = 'retired', completed_at = $2 \
         where project_id = $1 and state = 'ready'",
    )
    .bind(project_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update knowledge_index set state = 'ready', completed_at = $2 where index_id = $1",
    )
    .bind(index_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks a building index failed with why; the serving index is untouched.
pub async fn fail_build(writer: &AnyPool, index_id: &str, error: &str) -> Result<()> {
    sqlx::query(
        "update knowledge_index set state = 'failed', error = $2, completed_at = $3 \
         where index_id = $1 and state = 'building'",
    )
    .bind(index_id)
    .bind(error)
    .bind(now_ms())
    .execute(writer)
    .await?;
    Ok(())
}

/// Notes (or with `None` clears) why the chunks of an index could not all
/// be embedded, without changing its state.
pub async fn set_index_error(writer: &AnyPool, index_id: &str, error: Option<&str>) -> Result<()> {
    sqlx::query("update knowledge_index set error = $2 where index_id = $1")
        .bind(index_id)
        .bind(error)
        .execute(writer)
        .await?;
    Ok(())
}

/// Makes a failed build building again, keeping the vectors it had; false
/// when it is no longer failed (another server reopened it, or a newer
/// build replaced it).
pub async fn reopen_build(writer: &AnyPool, index_id: &str) -> Result<bool> {
    let reopened = sqlx::query(
        "update knowledge_index set state = 'building', error = null, completed_at = null \
         where index_id = $1 and state = 'failed'",
    )
    .bind(index_id)
    .execute(writer)
    .await?;
    Ok(reopened.rows_affected() == 1)
}

/// Projects with an index that may have work left (building, or serving
/// with chunks uploaded since): what a restart resumes.
pub async fn projects_with_indexes(pool: &AnyPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select distinct project_id from knowledge_index where state in ('building', 'ready')",
    )
    .fetch_all(pool)
    .await?)
}

/// How many vectors an index holds (tells a cached copy it is stale).
pub async fn vector_count(pool: &AnyPool, index_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from knowledge_vector where index_id = $1")
            .bind(index_id)
            .fetch_one(pool)
            .await?,
    )
}

/// A vector with what retrieval shows of its chunk.
#[derive(Debug, Clone)]
pub struct StoredVector {
    /// The chunk.
    pub chunk: ChunkRow,
    /// Its document's name.
    pub document_name: String,
    /// The vector's bytes (little-endian f32s).
    pub vector: Vec<u8>,
}

/// Every vector of an index with its chunk.
pub async fn vectors(pool: &AnyPool, index_id: &str) -> Result<Vec<StoredVector>> {
    let sql = format!(
        "select {CHUNK_COLUMNS}, d.name, v.vector from knowledge_vector v \
         join knowledge_chunk c on c.chunk_id = v.chunk_id \
         join knowledge_document d on d.document_id = c.document_id \
         where v.index_id = $1"
    );
    let rows = sqlx::query(&sql).bind(index_id).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(StoredVector {
                chunk: chunk_from(row)?,
                document_name: col(row, "name")?,
                vector: col(row, "vector")?,
            })
        })
        .collect()
}
