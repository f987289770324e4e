//! The knowledge base (AC-004): documents uploaded to a project, their chunks
//! embedded with the project's embedding model, retrieval for every answer,
//! and the re-embedding a provider switch needs, without losing anything.
//!
//! ```text
//! upload ─► extract ─► chunk ─► one transaction (document + chunks) ─► kick the builder
//! builder (one task per project): target index = the project's embedding model
//!   serving index of that model ─► embed chunks it lacks (new uploads)
//!   else a new version builds beside the serving one ─► batches through the
//!   budget gate, retried, in the ledger ─► vectors stored per batch ─► one
//!   transaction swaps it in (the old keeps serving until then)
//! answer ─► embed the question with the serving index's model ─► top-k by
//!   cosine ─► the chunks go into the system prompt ─► citations stored with it
//! ```
//!
//! A newer switch cancels an unfinished build (in the transaction that starts
//! the next one, and its requests in flight at once); a failure marks the
//! build failed and leaves the old index serving; a crash leaves it
//! `building`. Either way the next change or start goes on from the vectors
//! already stored. Vectors of two models never mix: each index
//! version records its model and dimensions, and retrieval embeds the
//! question with the serving index's own model.

pub mod work;

use work::{Build, LoadedIndex, Pace};

use crate::error::AppError;
use crate::model::catalog::{EmbeddingService, ModelInfo, ProviderId};
use crate::model::costs::UsageOperation;
use crate::model::knowledge::{
    ChunkView, Citation, DocumentDetail, DocumentView, KnowledgeState, KnowledgeStatus,
    MAX_DOCUMENT_BYTES,
};
use crate::model::llm_config::{KeySource, LlamaFlavour};
use crate::server::db::knowledge::{self as db, ChunkRow, DocumentRow, IndexRow, IndexState};
use crate::server::db::{now_ms, rfc3339};
use crate::server::error::{Error, Result};
use crate::server::knowledge::chunking::{self, ChunkingOptions};
use crate::server::knowledge::extract::{self, ExtractError};
use crate::server::knowledge::vectors;
use crate::server::ledger::pricing::UsageContext;
use crate::server::llm::embeddings::{
    build_embedder, Embedder, EmbeddingPurpose, EmbeddingRequest, EmbeddingResponse,
};
use crate::server::llm::tokens::count_text_tokens;
use crate::server::llm::{LlmError, TokenCount, Usage};
use crate::server::services::budgets;
use crate::server::services::llm_settings::{self, base_url_for, embedding_model_of, Draft};
use crate::server::services::metering::{call_with_retries, Billed, CallTarget, MeteredSink};
use crate::server::state::AppState;
use futures::StreamExt;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Chunks retrieved for an answer at most.
const TOP_K: usize = 4;
/// The least cosine similarity a chunk needs to be given to an answer.
pub const MIN_SCORE: f32 = 0.15;
/// Knowledge tokens an answer is given at most (and never more than a
/// quarter of the smallest context window of its chain).
const KNOWLEDGE_TOKEN_BUDGET: u64 = 3_000;
/// Inputs of one embedding request at most, whatever the provider takes:
/// small batches keep progress live and a failed batch cheap to redo.
const BATCH_INPUTS: usize = 64;
/// Embedding requests of one build in flight at once.
const BATCH_CONCURRENCY: usize = 4;
/// Indexes kept in memory for retrieval at once.
const CACHED_INDEXES: usize = 64;
/// How long a cached index is used without asking the database whether it
/// changed (on another server; this server's changes drop it at once).
const CACHE_TRUST: Duration = Duration::from_secs(2);

fn document_view(row: &DocumentRow) -> DocumentView {
    DocumentView {
        id: row.document_id.clone(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        size_bytes: row.size_bytes,
        chunks: row.chunk_count,
        tokens: row.token_count,
        created_at: rfc3339(row.created_at),
    }
}

fn extract_refusal(error: ExtractError) -> Error {
    AppError::invalid("file", error.to_string()).into()
}

/// Stores an uploaded file: its text extracted, split into chunks (counted
/// with the project's embedding model's tokenizer), all in one transaction;
/// then the builder embeds its chunks. 413 over [`MAX_DOCUMENT_BYTES`], 422
/// naming `file` for an unsupported type or an empty or unreadable file;
/// nothing is stored then.
pub async fn upload(
    state: &AppState,
    project_id: &str,
    actor: Option<&str>,
    file_name: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<DocumentView> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(AppError::TooLarge {
            message: format!(
                "file: {} bytes; files of at most {} MB are accepted",
                bytes.len(),
                MAX_DOCUMENT_BYTES / (1024 * 1024)
            ),
        }
        .into());
    }
    let name = file_name.trim();
    if name.is_empty() {
        return Err(AppError::invalid("file", "the file has no name").into());
    }
    let kind = extract::detect(name, content_type, bytes).map_err(extract_refusal)?;
    let owned = bytes.to_vec();
    let text = tokio::task::spawn_blocking(move || extract::extract_text(kind, &owned))
        .await
        .map_err(Error::internal)?
        .map_err(extract_refusal)?;
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let model_id = embedding_model_of(&state.catalog, &draft)
        .map_or_else(String::new, |model| model.id.clone());
    let split_text = text.clone();
    let chunks = tokio::task::spawn_blocking(move || {
        chunking::split(&split_text, ChunkingOptions::default(), &|piece| {
            count_text_tokens(&model_id, piece).tokens
        })
    })
    .await
    .map_err(Error::internal)?;
    if chunks.is_empty() {
        return Err(extract_refusal(ExtractError::Empty));
    }
    let new_chunks: Vec<db::NewChunk> = chunks
        .into_iter()
        .map(|chunk| db::NewChunk {
            ordinal: i64::from(chunk.ordinal),
            heading: chunk.heading,
            tokens: i64::try_from(chunk.tokens).unwrap_or(i64::MAX),
            content: chunk.text,
        })
        .collect();
    let document = DocumentRow {
        document_id: uuid::Uuid::new_v4().to_string(),
        project_id: project_id.to_owned(),
        name: name.chars().take(255).collect(),
        kind: kind.as_str().to_owned(),
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        chunk_count: i64::try_from(new_chunks.len()).unwrap_or(i64::MAX),
        token_count: new_chunks.iter().map(|c| c.tokens).sum(),
        created_at: now_ms(),
    };
    db::insert_document(&state.db.writer, &document, &text, actor, &new_chunks).await?;
    state.knowledge.announce(project_id);
    kick(state, project_id);
    Ok(document_view(&document))
}

/// The project's documents, newest first.
pub async fn documents(state: &AppState, project_id: &str) -> Result<Vec<DocumentView>> {
    Ok(db::documents(&state.db.pool, project_id)
        .await?
        .iter()
        .map(document_view)
        .collect())
}

/// One document with its chunks (404 for any other project's).
pub async fn document(
    state: &AppState,
    project_id: &str,
    document_id: &str,
) -> Result<DocumentDetail> {
    let row = db::document(&state.db.pool, project_id, document_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let chunks = db::chunks_of(&state.db.pool, document_id).await?;
    Ok(DocumentDetail {
        document: document_view(&row),
        chunks: chunks
            .into_iter()
            .map(|chunk| ChunkView {
                chunk: chunk.ordinal,
                heading: chunk.heading,
                text: chunk.content,
                tokens: chunk.tokens,
            })
            .collect(),
    })
}

/// Deletes a document with its chunks and vectors (404 when there is none).
/// A build in progress finishes without it.
pub async fn delete(state: &AppState, project_id: &str, document_id: &str) -> Result<()> {
    if !db::delete_document(&state.db.writer, project_id, document_id).await? {
        return Err(AppError::NotFound.into());
    }
    state.knowledge.forget_all();
    state.knowledge.announce(project_id);
    kick(state, project_id);
    Ok(())
}

/// Where the project's knowledge index stands: building (a new version, or
/// new documents into the serving one), ready, or failed (the serving index,
/// if any, still answers).
pub async fn status(state: &AppState, project_id: &str) -> Result<KnowledgeStatus> {
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let wanted = embedding_model_of(&state.catalog, &draft);
    let indexes = db::indexes(&state.db.pool, project_id).await?;
    let documents = db::document_count(&state.db.pool, project_id).await?;
    // What is being built, else the newest build if it failed, else what serves.
    let shown = indexes
        .building
        .as_ref()
        .or(indexes.failed.as_ref())
        .or(indexes.serving.as_ref());
    let (model, dimensions) = match (shown, wanted) {
        (Some(index), _) => (index.model.clone(), index.dimensions),
        (None, Some(model)) => (model.id.clone(), dimensions_of(model)),
        (None, None) => (String::new(), 0),
    };
    // No index yet: the chunks uploaded wait for the builder's first pass.
    let shown_id = shown.map_or("", |index| index.index_id.as_str());
    let (done, total) = db::progress(&state.db.pool, project_id, shown_id).await?;
    let newest_failed = indexes
        .failed
        .as_ref()
        .filter(|_| indexes.building.is_none());
    // The serving index's own error: chunks it could not embed yet.
    let serving_error = indexes
        .serving
        .as_ref()
        .filter(|_| indexes.building.is_none() && newest_failed.is_none() && done < total)
        .and_then(|index| index.error.clone());
    let state_now = if newest_failed.is_some() || serving_error.is_some() {
        KnowledgeState::Failed
    } else if indexes.building.is_some() || done < total {
        KnowledgeState::Building
    } else {
        KnowledgeState::Ready
    };
    let eta_seconds = shown
        .zip(state.knowledge.pace(project_id))
        .filter(|(index, pace)| pace.index_id == index.index_id)
        .and_then(|(_, pace)| eta(&pace, done, total));
    Ok(KnowledgeStatus {
        state: state_now,
        done,
        total,
        model_name: state
            .catalog
            .model(&model)
            .map_or_else(|| model.clone(), |m| m.name.clone()),
        model,
        dimensions,
        serving_model: indexes.serving.as_ref().map(|index| index.model.clone()),
        eta_seconds,
        error: newest_failed
            .and_then(|index| index.error.clone())
            .or(serving_error),
        documents,
    })
}

/// How often a live status looks again without being told: the status may
/// change on another app server sharing the database.
const STATUS_POLL: Duration = Duration::from_secs(2);

/// The project's status: `first`, then each different one, on every change
/// this server announces and every [`STATUS_POLL`], until dropped.
pub fn status_changes(
    state: AppState,
    project_id: String,
    first: KnowledgeStatus,
) -> impl futures::Stream<Item = KnowledgeStatus> + Send {
    let changes = state.knowledge.subscribe();
    let start = (
        state,
        project_id,
        changes,
        None::<KnowledgeStatus>,
        Some(first),
    );
    futures::stream::unfold(
        start,
        |(state, project_id, mut changes, mut last, mut next)| async move {
            loop {
                if let Some(status) = next.take() {
                    if last.as_ref() != Some(&status) {
                        last = Some(status.clone());
                        return Some((status, (state, project_id, changes, last, None)));
                    }
                }
                let told = tokio::time::timeout(STATUS_POLL, async {
                    loop {
                        match changes.recv().await {
                            Ok(changed) if changed == project_id => return true,
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Lagged(_)) => return true,
                            Err(broadcast::error::RecvError::Closed) => return false,
                        }
                    }
                })
                .await;
                if told == Ok(false) {
                    return None;
                }
                match status(&state, &project_id).await {
                    Ok(status) => next = Some(status),
                    // The project is gone, or the database away: the stream ends.
                    Err(_) => return None,
                }
            }
        },
    )
}

/// Seconds left at the pace since the build (re)started on this server.
fn eta(pace: &Pace, done: i64, total: i64) -> Option<u64> {
    let gained = done - pace.done_then;
    let elapsed = pace.since.elapsed().as_secs_f64();
    if gained <= 0 || elapsed <= 0.0 || done >= total {
        return None;
    }
    let per_chunk = elapsed / gained as f64;
    Some((per_chunk * (total - done) as f64).ceil() as u64)
}

fn dimensions_of(model: &ModelInfo) -> i64 {
    model
        .embedding
        .as_ref()
        .map_or(0, |spec| i64::from(spec.dimensions))
}

/// Starts the project's builder, or tells the running one to look again.
/// Called after every upload, deletion and settings change, and for every
/// project at start-up ([`resume_all`]).
pub fn kick(state: &AppState, project_id: &str) {
    {
        let mut builds = state.knowledge.builds();
        if let Some(build) = builds.get_mut(project_id) {
            build.again = true;
            return;
        }
        builds.insert(project_id.to_owned(), Build::default());
    }
    let state = state.clone();
    let project_id = project_id.to_owned();
    let span = tracing::info_span!("knowledge", project = %project_id);
    state
        .background
        .tracker
        .clone()
        .spawn(tracing::Instrument::instrument(
            async move {
                loop {
                    if let Err(error) = build_pass(&state, &project_id).await {
                        tracing::error!(%error, "knowledge build pass failed");
                    }
                    state.knowledge.announce(&project_id);
                    let mut builds = state.knowledge.builds();
                    match builds.get_mut(&project_id) {
                        Some(build) if build.again && !state.background.stopping.is_cancelled() => {
                            build.again = false;
                        }
                        _ => {
                            builds.remove(&project_id);
                            break;
                        }
                    }
                }
            },
            span,
        ));
}

/// Kicks the project's builder after each saved configuration (its
/// embedding model may have changed), until the server stops.
pub fn spawn_config_follower(state: &AppState) {
    let mut saved = state.config_saved.subscribe();
    let follower = state.clone();
    state.background.tracker.spawn(async move {
        loop {
            let project_id = tokio::select! {
                () = follower.background.stopping.cancelled() => return,
                next = saved.recv() => match next {
                    Ok(project_id) => project_id,
                    // Missed some: every project with an index looks again.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Err(error) = resume_all(&follower).await {
                            tracing::error!(%error, "could not look at the knowledge builds");
                        }
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            kick(&follower, &project_id);
        }
    });
}

/// Resumes every project's unfinished work after a start (a build a crash
/// interrupted, chunks uploaded but not yet embedded).
pub async fn resume_all(state: &AppState) -> Result<()> {
    for project_id in db::projects_with_indexes(&state.db.pool).await? {
        kick(state, &project_id);
    }
    Ok(())
}

/// One pass of a project's builder: picks the index to fill (see the module
/// doc), embeds what it lacks, and swaps a complete new version in.
async fn build_pass(state: &AppState, project_id: &str) -> Result<()> {
    let (config, draft) = match llm_settings::current(state, project_id).await {
        Ok(current) => current,
        // The project was deleted meanwhile: nothing to build.
        Err(Error::App(AppError::NotFound)) => return Ok(()),
        Err(error) => return Err(error),
    };
    let Some(model) = embedding_model_of(&state.catalog, &draft) else {
        return Ok(());
    };
    let indexes = db::indexes(&state.db.pool, project_id).await?;
    let target = match (&indexes.building, &indexes.serving) {
        (Some(building), _) if building.model == model.id => building.clone(),
        (_, Some(serving)) if serving.model == model.id => {
            if indexes.building.is_some() {
                // Switched back before the other build was done.
                db::cancel_build(&state.db.writer, project_id).await?;
            }
            serving.clone()
        }
        (None, _)
            if indexes
                .failed
                .as_ref()
                .is_some_and(|failed| failed.model == model.id) =>
        {
            // A failed build of the same model goes on from what it has.
            let failed = indexes.failed.clone().expect("checked just above");
            if !db::reopen_build(&state.db.writer, &failed.index_id).await? {
                return Ok(());
            }
            IndexRow {
                state: IndexState::Building,
                error: None,
                ..failed
            }
        }
        _ => {
            if indexes.serving.is_none() && !db::has_chunks(&state.db.pool, project_id).await? {
                return Ok(());
            }
            db::start_index(
                &state.db.writer,
                project_id,
                &model.id,
                dimensions_of(model),
            )
            .await?
        }
    };
    state.hot.serving_indexes.forget(&project_id.to_owned());
    state.knowledge.announce(project_id);
    let embedder = match embedder_for(state, project_id, &draft, model).await {
        Ok(embedder) => embedder,
        Err(error) => {
            stopped(state, &target, &error.to_string()).await?;
            return Ok(());
        }
    };
    if target.error.is_some() {
        db::set_index_error(&state.db.writer, &target.index_id, None).await?;
    }
    let (done, _) = db::progress(&state.db.pool, project_id, &target.index_id).await?;
    if let Some(build) = state.knowledge.builds().get_mut(project_id) {
        build.pace = Some(Pace {
            index_id: target.index_id.clone(),
            since: Instant::now(),
            done_then: done,
        });
    }
    match fill(state, project_id, config.version, model, &embedder, &target).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(failure) => {
            stopped(state, &target, &failure.to_string()).await?;
            return Ok(());
        }
    }
    if target.state == IndexState::Building
        && db::finish_build(&state.db.writer, project_id, &target.index_id).await?
    {
        state.hot.serving_indexes.forget(&project_id.to_owned());
        tracing::info!(index = %target.index_id, model = %target.model, "knowledge index swapped in");
    }
    Ok(())
}

/// Records why filling `index` stopped: a new version is failed (the old
/// one serves on); the serving index keeps serving, with the error shown
/// until a later pass gets through.
async fn stopped(state: &AppState, index: &IndexRow, message: &str) -> Result<()> {
    tracing::warn!(error = %message, index = %index.index_id, "knowledge build stopped");
    if index.state == IndexState::Building {
        db::fail_build(&state.db.writer, &index.index_id, message).await
    } else {
        db::set_index_error(&state.db.writer, &index.index_id, Some(message)).await
    }
}

/// Why a build stopped.
#[derive(Debug, thiserror::Error)]
enum BuildFailure {
    #[error("{0}")]
    Provider(LlmError),
    #[error("{0}")]
    Refused(AppError),
    #[error("{0}")]
    Storage(Error),
    #[error("{model} answered vectors of {got} dimensions; the index holds {expected}")]
    Dimensions {
        model: String,
        got: usize,
        expected: i64,
    },
}

impl From<Error> for BuildFailure {
    fn from(error: Error) -> Self {
        match error {
            Error::App(refusal) => BuildFailure::Refused(refusal),
            other => BuildFailure::Storage(other),
        }
    }
}

/// Embeds every chunk `index` lacks, a few batches at a time. `Ok(false)`
/// when the index was cancelled meanwhile (a newer switch).
async fn fill(
    state: &AppState,
    project_id: &str,
    config_version: i64,
    model: &ModelInfo,
    embedder: &EmbeddingTarget,
    index: &IndexRow,
) -> std::result::Result<bool, BuildFailure> {
    let spec = model.embedding.as_ref();
    let batch_inputs = spec.map_or(BATCH_INPUTS, |s| {
        usize::try_from(s.max_batch_inputs)
            .unwrap_or(BATCH_INPUTS)
            .clamp(1, BATCH_INPUTS)
    });
    let batch_tokens = spec.map_or(u64::MAX, |s| s.max_batch_tokens.max(1));
    let window = i64::try_from(batch_inputs * BATCH_CONCURRENCY).unwrap_or(i64::MAX);
    let mut saved = state.config_saved.subscribe();
    loop {
        let pending =
            db::missing_chunks(&state.db.pool, project_id, &index.index_id, window).await?;
        if pending.is_empty() {
            return Ok(true);
        }
        let batches = batches(pending, batch_inputs, batch_tokens);
        let work = async {
            let mut results = futures::stream::iter(batches.into_iter().map(|batch| async move {
                let context = UsageContext::new(project_id, Some(config_version));
                let sink = MeteredSink::new(state, context);
                let texts: Vec<String> = batch.iter().map(|chunk| chunk.content.clone()).collect();
                let response = embed(
                    state,
                    project_id,
                    embedder,
                    texts,
                    EmbeddingPurpose::Document,
                    &sink,
                )
                .await;
                (batch, response)
            }))
            .buffer_unordered(BATCH_CONCURRENCY);
            while let Some((batch, response)) = results.next().await {
                let response = response?;
                let mut stored = Vec::with_capacity(batch.len());
                for (chunk, mut vector) in batch.into_iter().zip(response.vectors) {
                    if i64::try_from(vector.len()).ok() != Some(index.dimensions) {
                        return Err(BuildFailure::Dimensions {
                            model: model.name.clone(),
                            got: vector.len(),
                            expected: index.dimensions,
                        });
                    }
                    vectors::normalize(&mut vector);
                    stored.push((chunk.chunk_id, vectors::encode(&vector)));
                }
                let kept = db::store_vectors(&state.db.writer, &index.index_id, &stored).await?;
                state.knowledge.forget(&index.index_id);
                if !kept {
                    // Cancelled or failed meanwhile (by another server).
                    return Ok(false);
                }
                state.knowledge.announce(project_id);
            }
            Ok(true)
        };
        tokio::select! {
            outcome = work => {
                if !outcome? {
                    return Ok(false);
                }
            }
            // A newer switch: this build's requests in flight are dropped
            // (what they cost is in the ledger); the builder goes round again.
            () = superseded(state, project_id, &index.model, &mut saved) => return Ok(false),
            // The server is stopping: the next start resumes from here.
            () = state.background.stopping.cancelled() => return Ok(false),
        }
    }
}

/// Ends when a saved configuration of the project no longer embeds with
/// `model`: the build for it is not wanted any more.
async fn superseded(
    state: &AppState,
    project_id: &str,
    model: &str,
    saved: &mut broadcast::Receiver<String>,
) {
    loop {
        match saved.recv().await {
            Ok(changed) if changed == project_id => {}
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
        if let Ok((_, draft)) = llm_settings::current(state, project_id).await {
            if embedding_model_of(&state.catalog, &draft).map(|m| m.id.as_str()) != Some(model) {
                return;
            }
        }
    }
}

/// Chunks in provider-sized batches: at most `inputs` chunks and (unless a
/// single chunk is larger) `tokens` tokens each.
fn batches(chunks: Vec<ChunkRow>, inputs: usize, tokens: u64) -> Vec<Vec<ChunkRow>> {
    let mut batches: Vec<Vec<ChunkRow>> = Vec::new();
    let mut current: Vec<ChunkRow> = Vec::new();
    let mut current_tokens = 0_u64;
    for chunk in chunks {
        let chunk_tokens = u64::try_from(chunk.tokens).unwrap_or(0);
        if !current.is_empty()
            && (current.len() >= inputs || current_tokens + chunk_tokens > tokens)
        {
            batches.push(std::mem::take(&mut current));
            current_tokens = 0;
        }
        current_tokens += chunk_tokens;
        current.push(chunk);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// An embedding model ready to call with the project's credentials.
struct EmbeddingTarget {
    model: ModelInfo,
    api_model: String,
    embedder: Arc<dyn Embedder>,
    managed_key: bool,
}

/// The embedder for `model` under the project's configuration: Voyage with
/// Cover's managed key; OpenAI and Gemini with the project's own key for
/// that provider, else Cover's; Llama on the project's server (through the
/// guarded client when a user supplied its URL), in its API style.
async fn embedder_for(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    model: &ModelInfo,
) -> Result<EmbeddingTarget> {
    let service = model
        .embedding
        .as_ref()
        .map(|spec| spec.service)
        .ok_or_else(|| Error::internal(format!("{} is not an embedding model", model.id)))?;
    let (service, base_url, key, managed_key): (
        EmbeddingService,
        String,
        Option<SecretString>,
        bool,
    ) = match service {
        EmbeddingService::Voyage => (
            service,
            state.base_urls.voyage_base_url.clone(),
            state.managed_keys.voyage.clone(),
            true,
        ),
        _ => {
            let key = llm_settings::project_key(state, project_id, draft, model.provider).await?;
            let managed = matches!(key, Some((_, KeySource::Managed)));
            let service = match (model.provider, draft.llama_flavour) {
                (ProviderId::Llama, LlamaFlavour::OpenAiCompatible) => EmbeddingService::OpenAi,
                _ => service,
            };
            (
                service,
                base_url_for(state, draft, model.provider),
                key.map(|(key, _)| key),
                managed,
            )
        }
    };
    if key.is_none() && model.provider != ProviderId::Llama {
        let whose = match service {
            EmbeddingService::Voyage => "Cover has no Voyage AI key (VOYAGE_API_KEY)".to_owned(),
            _ => format!(
                "the project has no {} key, its own or Cover's",
                model.provider
            ),
        };
        return Err(AppError::invalid(
            "embeddingModel",
            format!(
                "{} cannot embed: {whose}; choose another embedding model in the settings",
                model.name
            ),
        )
        .into());
    }
    let executor = if service == EmbeddingService::Voyage {
        &state.executor
    } else {
        state.executor_for(model.provider, &base_url)
    };
    Ok(EmbeddingTarget {
        model: model.clone(),
        api_model: model.ollama_tag.clone().unwrap_or_else(|| model.id.clone()),
        embedder: build_embedder(executor, service, model.provider, &base_url, key),
        managed_key,
    })
}

/// Embeds `inputs` through the one budget gate, retrying what passes with
/// time (the provider's advised wait honoured), every try a ledger row of
/// `sink`'s request; settles the hold before answering.
async fn embed(
    state: &AppState,
    project_id: &str,
    target: &EmbeddingTarget,
    inputs: Vec<String>,
    purpose: EmbeddingPurpose,
    sink: &MeteredSink,
) -> std::result::Result<EmbeddingResponse, BuildFailure> {
    let counted = inputs
        .iter()
        .map(|text| count_text_tokens(&target.model.id, text))
        .fold(
            TokenCount {
                tokens: 0,
                exact: true,
            },
            |sum, count| TokenCount {
                tokens: sum.tokens + count.tokens,
                exact: sum.exact && count.exact,
            },
        );
    let mut admission = budgets::admit_whole_call(
        state,
        project_id,
        &target.model,
        counted,
        0,
        target.managed_key,
        None,
    )
    .await?;
    let request = EmbeddingRequest {
        model: target.api_model.clone(),
        inputs,
        purpose,
        dimensions: target.model.embedding.as_ref().map(|spec| spec.dimensions),
    };
    let target_of_call = CallTarget {
        provider: target.model.provider,
        model: target.model.id.clone(),
        managed_key: target.managed_key,
    };
    let result = call_with_retries(
        sink,
        UsageOperation::Embeddings,
        &target_of_call,
        || async {
            let response = target.embedder.embed(&request).await?;
            Ok(Billed {
                usage: response.usage.clone(),
                usage_estimated: response.usage_estimated,
                value: response,
            })
        },
    )
    .await
    .map_err(BuildFailure::Provider);
    let month = state.ledger.settle(admission.settlement(sink)).await?;
    budgets::after_settlement(state, &admission, month).await;
    result
}

/// Embeddings a program asked for (`POST /v1/embeddings`).
#[derive(Debug)]
pub struct ProgramEmbeddings {
    /// The model that embedded them.
    pub model: ModelInfo,
    /// One vector per input, in order.
    pub vectors: Vec<Vec<f32>>,
    /// The provider's usage (or our count when it said none).
    pub usage: Usage,
    /// What they cost; `None` for a model without a known price.
    pub cost_nanos: Option<i64>,
    /// Time spent in provider calls.
    pub upstream: Duration,
}

/// Embeds a program's texts with `model` (a catalog embedding model; `None`
/// is the project's own) through the same keys, budget gate, retries and
/// ledger as the knowledge base. 422 naming `model` for an unknown one or
/// `input` for an empty or over-long text.
pub async fn embed_for_program(
    state: &AppState,
    project_id: &str,
    model: Option<&str>,
    inputs: Vec<String>,
) -> Result<ProgramEmbeddings> {
    let (config, draft) = llm_settings::current(state, project_id).await?;
    let model = match model {
        Some(id) => state.catalog.embedding_model(id).ok_or_else(|| {
            AppError::invalid(
                "model",
                format!("{id} is not an embedding model Cover knows"),
            )
        })?,
        None => embedding_model_of(&state.catalog, &draft)
            .ok_or_else(|| AppError::invalid("model", "this project has no embedding model"))?,
    };
    if inputs.is_empty() || inputs.iter().any(|text| text.trim().is_empty()) {
        return Err(AppError::invalid("input", "every input must be a non-empty text").into());
    }
    if let Some(spec) = model.embedding.as_ref() {
        if inputs.len() > usize::try_from(spec.max_batch_inputs).unwrap_or(usize::MAX) {
            return Err(AppError::invalid(
                "input",
                format!(
                    "{} takes at most {} inputs a request",
                    model.name, spec.max_batch_inputs
                ),
            )
            .into());
        }
        if let Some(long) = inputs
            .iter()
            .position(|text| count_text_tokens(&model.id, text).tokens > spec.max_input_tokens)
        {
            return Err(AppError::invalid(
                "input",
                format!(
                    "input {long} is longer than the {} tokens {} takes",
                    spec.max_input_tokens, model.name
                ),
            )
            .into());
        }
    }
    let target = embedder_for(state, project_id, &draft, model).await?;
    let sink = MeteredSink::new(state, UsageContext::new(project_id, Some(config.version)));
    let response = embed(
        state,
        project_id,
        &target,
        inputs,
        EmbeddingPurpose::Query,
        &sink,
    )
    .await
    .map_err(|failure| match failure {
        BuildFailure::Refused(refusal) => Error::App(refusal),
        BuildFailure::Storage(error) => error,
        BuildFailure::Provider(error) => Error::App(AppError::ProviderFailed {
            class: error.class().as_str().to_owned(),
            message: error.to_string(),
            message_id: String::new(),
        }),
        other => Error::internal(other.to_string()),
    })?;
    let totals = sink.totals();
    Ok(ProgramEmbeddings {
        model: model.clone(),
        vectors: response.vectors,
        usage: response.usage,
        cost_nanos: totals.cost(),
        upstream: totals.upstream,
    })
}

/// A chunk given to an answer: what it says and where it comes from.
#[derive(Debug, Clone)]
pub struct Retrieved {
    /// Where it comes from, as shown with the answer.
    pub citation: Citation,
    /// Its text.
    pub text: String,
}

/// The chunks of the project's serving index most like `question` (at most
/// [`TOP_K`], each scoring at least [`MIN_SCORE`], together within
/// `token_budget` and [`KNOWLEDGE_TOKEN_BUDGET`]). The question is embedded
/// with the serving index's own model, billed to `sink`'s request. A project
/// without a knowledge base costs one small query and no provider call.
pub async fn retrieve(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    question: &str,
    token_budget: u64,
    sink: &MeteredSink,
) -> Result<Vec<Retrieved>> {
    let serving = state
        .hot
        .serving_indexes
        .get_or_load(&project_id.to_owned(), || async {
            Ok(db::indexes(&state.db.pool, project_id).await?.serving)
        })
        .await?;
    let Some(serving) = serving else {
        return Ok(Vec::new());
    };
    let Some(loaded) = loaded_index(state, &serving).await? else {
        return Ok(Vec::new());
    };
    let model = state
        .catalog
        .embedding_model(&serving.model)
        .ok_or_else(|| {
            Error::internal(format!(
                "index {} has unknown model {}",
                serving.index_id, serving.model
            ))
        })?;
    let target = embedder_for(state, project_id, draft, model).await?;
    let response = embed(
        state,
        project_id,
        &target,
        vec![question.to_owned()],
        EmbeddingPurpose::Query,
        sink,
    )
    .await
    .map_err(|failure| match failure {
        BuildFailure::Refused(refusal) => Error::App(refusal),
        BuildFailure::Storage(error) => error,
        other => Error::internal(other.to_string()),
    })?;
    let Some(mut query) = response.vectors.into_iter().next() else {
        return Ok(Vec::new());
    };
    vectors::normalize(&mut query);
    let best = vectors::top_k_rows(&query, &loaded.flat, loaded.dimensions, TOP_K, MIN_SCORE);
    let mut left = token_budget.min(KNOWLEDGE_TOKEN_BUDGET);
    let mut chosen = Vec::new();
    for scored in best {
        let stored = &loaded.chunks[scored.item];
        let chunk = &stored.chunk;
        let tokens = u64::try_from(chunk.tokens).unwrap_or(u64::MAX);
        if tokens > left {
            continue;
        }
        left -= tokens;
        chosen.push(Retrieved {
            citation: Citation {
                document_id: chunk.document_id.clone(),
                document_name: stored.document_name.clone(),
                chunk: chunk.ordinal,
                score: scored.score,
                heading: chunk.heading.clone(),
            },
            text: chunk.content.clone(),
        });
    }
    Ok(chosen)
}

/// The serving index's vectors, from memory: trusted for [`CACHE_TRUST`]
/// after loading or checking (changes made on this server drop them at
/// once), then checked against the stored count (another server may have
/// added or deleted some); `None` when empty.
async fn loaded_index(state: &AppState, index: &IndexRow) -> Result<Option<Arc<LoadedIndex>>> {
    let cached = state
        .knowledge
        .cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&index.index_id)
        .cloned();
    if let Some(loaded) = &cached {
        let checked = *loaded.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.elapsed() < CACHE_TRUST {
            return Ok(Some(loaded.clone()));
        }
    }
    let count = db::vector_count(&state.db.pool, &index.index_id).await?;
    if count == 0 {
        return Ok(None);
    }
    if let Some(loaded) = cached.filter(|loaded| loaded.count == count) {
        *loaded.checked.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        return Ok(Some(loaded));
    }
    let dimensions = usize::try_from(index.dimensions).unwrap_or(0);
    let stored = db::vectors(&state.db.pool, &index.index_id).await?;
    let mut flat = Vec::with_capacity(stored.len() * dimensions);
    let mut chunks = Vec::with_capacity(stored.len());
    for mut vector in stored {
        match vectors::decode(&vector.vector) {
            Some(values) if values.len() == dimensions => flat.extend(values),
            _ => continue,
        }
        vector.vector = Vec::new();
        chunks.push(vector);
    }
    let loaded = Arc::new(LoadedIndex {
        count,
        checked: std::sync::Mutex::new(Instant::now()),
        chunks,
        flat,
        dimensions,
    });
    let mut cache = state
        .knowledge
        .cache
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHED_INDEXES {
        cache.clear();
    }
    cache.insert(index.index_id.clone(), loaded.clone());
    Ok(Some(loaded))
}

/// The system prompt with the retrieved knowledge appended, each chunk
/// numbered and named so the model can say where an answer comes from.
pub fn with_knowledge(system_prompt: &str, chunks: &[Retrieved]) -> String {
    if chunks.is_empty() {
        return system_prompt.to_owned();
    }
    let mut prompt = String::from(system_prompt.trim_end());
    if !prompt.is_empty() {
        prompt.push_str("\n\n");
    }
    prompt.push_str(
        "Answer from the knowledge base excerpts below when they are relevant. \
         If they do not contain the answer, say so rather than guess.\n",
    );
    for (number, chunk) in chunks.iter().enumerate() {
        let source = match &chunk.citation.heading {
            Some(heading) => format!("{} › {heading}", chunk.citation.document_name),
            None => chunk.citation.document_name.clone(),
        };
        prompt.push_str(&format!(
            "\n[{}] {source}\n{}\n",
            number + 1,
            chunk.text.trim()
        ));
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &str, tokens: i64) -> ChunkRow {
        ChunkRow {
            chunk_id: id.into(),
            document_id: "d".into(),
            ordinal: 0,
            heading: None,
            content: id.into(),
            tokens,
        }
    }

    #[test]
    fn batches_keep_to_the_provider_s_input_and_token_limits() {
        let chunks = vec![
            chunk("a", 300),
            chunk("b", 300),
            chunk("c", 300),
            chunk("d", 50),
        ];
        let by_tokens = batches(chunks.clone(), 10, 700);
        let sizes: Vec<usize> = by_tokens.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2]);
        let by_inputs = batches(chunks, 3, u64::MAX);
        assert_eq!(
            by_inputs.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 1]
        );
        // A chunk larger than the token limit still goes, alone.
        let alone = batches(vec![chunk("big", 5_000), chunk("e", 10)], 10, 1_000);
        assert_eq!(alone.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
    }

    #[test]
    fn the_knowledge_goes_after_the_system_prompt_with_its_sources() {
        let retrieved = Retrieved {
            citation: Citation {
                document_id: "d".into(),
                document_name: "handbook.md".into(),
                chunk: 2,
                score: 0.8,
                heading: Some("Billing › Refunds".into()),
            },
            text: "Refunds are issued within 14 days.".into(),
        };
        let prompt = with_knowledge("Be brief.", &[retrieved]);
        assert!(prompt.starts_with("Be brief.\n\n"), "{prompt}");
        assert!(
            prompt.contains(
                "[1] handbook.md › Billing › Refunds\nRefunds are issued within 14 days."
            ),
            "{prompt}"
        );
        assert_eq!(with_knowledge("Be brief.", &[]), "Be brief.");
    }

    #[test]
    fn the_eta_follows_the_pace_so_far() {
        let pace = Pace {
            index_id: "i".into(),
            since: Instant::now() - Duration::from_secs(10),
            done_then: 0,
        };
        let eta = eta(&pace, 50, 100).expect("an ETA");
        assert!((10..=11).contains(&eta), "{eta}");
        assert_eq!(super::eta(&pace, 0, 100), None);
        assert_eq!(super::eta(&pace, 100, 100), None);
    }
}
