//! The knowledge base as the Knowledge tab, the settings page, the chat and
//! programs see it (AC-004): documents, where the index stands, and the
//! chunks an answer was given. Shared with the browser.

use crate::model::catalog::{Catalog, ProviderId};
use serde::{Deserialize, Serialize};

/// The largest file accepted for upload.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// One uploaded document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    /// Document id.
    pub id: String,
    /// The uploaded file's name.
    pub name: String,
    /// `text`, `markdown`, `html` or `pdf`.
    pub kind: String,
    /// The file's size in bytes.
    pub size_bytes: i64,
    /// How many chunks it was split into.
    pub chunks: i64,
    /// Tokens of its chunks together.
    pub tokens: i64,
    /// When it was uploaded (RFC 3339).
    pub created_at: String,
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChunkView {
    /// Its place in the document (0, 1, …).
    pub chunk: i64,
    /// The section it sits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// Its text.
    pub text: String,
    /// Its tokens.
    pub tokens: i64,
}

/// A document with its chunks (`GET /api/projects/:id/documents/:documentId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DocumentDetail {
    /// The document.
    pub document: DocumentView,
    /// Its chunks in order.
    pub chunks: Vec<ChunkView>,
}

/// Where a project's knowledge index stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeState {
    /// Chunks are being embedded: a new index beside the serving one, or new
    /// documents into it.
    Building,
    /// Every chunk is embedded with the project's embedding model.
    Ready,
    /// The latest build stopped on an error; the previous index (if any) serves.
    Failed,
}

/// `GET /api/projects/:id/knowledge/status`, and each live progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeStatus {
    /// Building, ready (nothing building) or failed.
    pub state: KnowledgeState,
    /// Chunks embedded with `model`.
    pub done: i64,
    /// Chunks of the project.
    pub total: i64,
    /// The embedding model being built or served (catalog id).
    pub model: String,
    /// Its display name.
    pub model_name: String,
    /// Its vector length.
    pub dimensions: i64,
    /// The model of the index answers retrieve from now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_model: Option<String>,
    /// Seconds left at the build's pace so far, when it can be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Why the latest build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Documents in the project.
    pub documents: i64,
}

impl KnowledgeStatus {
    /// Done as a whole percentage (100 when there is nothing to embed).
    pub fn percent(&self) -> u32 {
        if self.total <= 0 {
            return 100;
        }
        let done = self.done.clamp(0, self.total);
        u32::try_from(done * 100 / self.total).unwrap_or(100)
    }
}

/// What the settings page tells before Save about a change's embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingChange {
    /// The embedding model answers retrieve with now (catalog id).
    pub current_model: String,
    /// The one the change would use.
    pub next_model: String,
    /// True when the knowledge base must be embedded again.
    pub reembedding_required: bool,
    /// Chunks of the knowledge base (embedded again when required).
    pub chunks: i64,
}

impl EmbeddingChange {
    /// What answering with `provider` and the `fixed` embedding model (empty
    /// or `None`: the provider's) would do to the index `status` describes.
    pub fn of(
        catalog: &Catalog,
        status: &KnowledgeStatus,
        provider: ProviderId,
        fixed: Option<&str>,
    ) -> EmbeddingChange {
        let next_model = catalog
            .embedding_model_for(provider, fixed)
            .map_or_else(String::new, |model| model.id.clone());
        let current_model = status
            .serving_model
            .clone()
            .unwrap_or_else(|| status.model.clone());
        EmbeddingChange {
            reembedding_required: status.total > 0 && next_model != current_model,
            current_model,
            next_model,
            chunks: status.total,
        }
    }
}

/// A knowledge chunk an answer was given, as shown with the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// The document it comes from.
    pub document_id: String,
    /// That document's name.
    pub document_name: String,
    /// The chunk's place in the document.
    pub chunk: i64,
    /// Cosine similarity to the question (0–1).
    pub score: f32,
    /// The chunk's section, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

/// What the Knowledge tab shows: the documents and the index's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeOverview {
    /// Newest first.
    pub documents: Vec<DocumentView>,
    /// Where the index stands.
    pub status: KnowledgeStatus,
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn status(serving: Option<&str>, total: i64) -> KnowledgeStatus {
        KnowledgeStatus {
            state: KnowledgeState::Ready,
            done: total,
            total,
            model: serving.unwrap_or("text-embedding-3-small").into(),
            model_name: String::new(),
            dimensions: 0,
            serving_model: serving.map(str::to_owned),
            eta_seconds: None,
            error: None,
            documents: 1,
        }
    }

    #[test]
    fn a_switch_reembeds_only_when_the_embedding_model_changes() {
        let catalog = crate::server::catalog::load().expect("the bundled catalog");
        let voyage = status(Some("voyage-3.5"), 40);
        let to_gpt = EmbeddingChange::of(&catalog, &voyage, ProviderId::OpenAi, None);
        assert_eq!(to_gpt.next_model, "text-embedding-3-small");
        assert!(to_gpt.reembedding_required);
        assert_eq!(to_gpt.chunks, 40);
        let fixed = EmbeddingChange::of(&catalog, &voyage, ProviderId::OpenAi, Some("voyage-3.5"));
        assert!(!fixed.reembedding_required, "{fixed:?}");
        let same = EmbeddingChange::of(&catalog, &voyage, ProviderId::Claude, Some(""));
        assert!(!same.reembedding_required);
        let empty = EmbeddingChange::of(&catalog, &status(None, 0), ProviderId::Gemini, None);
        assert_eq!(empty.next_model, "gemini-embedding-001");
        assert!(!empty.reembedding_required);
    }
}
