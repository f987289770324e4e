//! The Knowledge tab's calls: the same service as
//! `GET /api/projects/:id/documents`, `…/knowledge/status`,
//! `GET …/documents/:documentId` and `DELETE …/documents/:documentId`. Uploads are a multipart form post to
//! `/projects/:id/knowledge/upload` (see `server::rest::knowledge`).

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::knowledge::{DocumentDetail, KnowledgeOverview};
use leptos::prelude::*;

/// The project's documents and where its index stands.
#[server(prefix = "/sfn", endpoint = "knowledge/get")]
pub async fn get_knowledge(project_id: String) -> Result<KnowledgeOverview, AppError> {
    use crate::server::services::knowledge;
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(KnowledgeOverview {
        documents: knowledge::documents(&state, &project_id).await?,
        status: knowledge::status(&state, &project_id).await?,
    })
}

/// One document with its chunks.
#[server(prefix = "/sfn", endpoint = "knowledge/document")]
pub async fn get_document(
    project_id: String,
    document_id: String,
) -> Result<DocumentDetail, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(crate::server::services::knowledge::document(&state, &project_id, &document_id).await?)
}

/// Deletes a document with its chunks and vectors.
#[server(prefix = "/sfn", endpoint = "knowledge/delete")]
pub async fn delete_document(project_id: String, document_id: String) -> Result<(), AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    Ok(crate::server::services::knowledge::delete(&state, &project_id, &document_id).await?)
}
