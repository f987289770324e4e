//! The knowledge base part of the JSON API: documents uploaded (multipart,
//! field `file`), listed, shown and deleted; where the index stands, as one
//! answer and as a live event stream; and the Knowledge tab's upload form,
//! which is the same upload answered with a redirect.

use crate::error::AppError;
use crate::model::knowledge::{DocumentDetail, DocumentView, KnowledgeStatus};
use crate::server::auth::needs::{Manage, Read};
use crate::server::auth::ProjectCaller;
use crate::server::error::{Error, Result};
use crate::server::services::knowledge;
use crate::server::state::AppState;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde::Serialize;
use std::convert::Infallible;

/// The knowledge base routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/projects/{id}/documents",
            get(list_documents).post(upload_document),
        )
        .route(
            "/api/projects/{id}/documents/{documentId}",
            get(show_document).delete(delete_document),
        )
        .route("/api/projects/{id}/knowledge/status", get(status))
        .route("/api/projects/{id}/knowledge/events", get(events))
        .route(
            "/projects/{id}/knowledge/upload",
            axum::routing::post(upload_form),
        )
}

/// `GET …/documents`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DocumentList {
    /// Every document of the project, newest first.
    documents: Vec<DocumentView>,
}

async fn list_documents(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<DocumentList>> {
    let documents = knowledge::documents(&state, &access.project_id).await?;
    Ok(Json(DocumentList { documents }))
}

/// One uploaded file: its name, declared type and bytes.
pub struct UploadedFile {
    /// The name the browser or program gave it.
    pub name: String,
    /// Its declared content type, if any.
    pub content_type: Option<String>,
    /// Its content.
    pub bytes: bytes::Bytes,
}

/// The `file` field of a multipart body (other fields are ignored); 422
/// naming `file` when there is none, 413 when the body is over its limit.
pub async fn file_field(mut multipart: Multipart) -> Result<UploadedFile> {
    let refusal = |error: MultipartError| -> Error {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            crate::server::protections::too_large().into()
        } else {
            AppError::BadRequest {
                message: format!(
                    "file: the multipart body could not be read: {}",
                    error.body_text()
                ),
            }
            .into()
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(refusal)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_owned();
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.map_err(refusal)?;
        return Ok(UploadedFile {
            name,
            content_type,
            bytes,
        });
    }
    Err(AppError::invalid("file", "send the document as the multipart field `file`").into())
}

async fn upload_document(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<DocumentView>)> {
    let multipart = multipart.map_err(|rejection| AppError::BadRequest {
        message: format!("file: {}", rejection.body_text()),
    })?;
    let file = file_field(multipart).await?;
    let document = knowledge::upload(
        &state,
        &access.project_id,
        access.caller.user_id(),
        &file.name,
        file.content_type.as_deref(),
        &file.bytes,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(document)))
}

async fn show_document(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
    Path((_, document_id)): Path<(String, String)>,
) -> Result<Json<DocumentDetail>> {
    Ok(Json(
        knowledge::document(&state, &access.project_id, &document_id).await?,
    ))
}

async fn delete_document(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    Path((_, document_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    knowledge::delete(&state, &access.project_id, &document_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn status(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<KnowledgeStatus>> {
    Ok(Json(knowledge::status(&state, &access.project_id).await?))
}

/// `GET …/knowledge/events`: a `status` event (a [`KnowledgeStatus`]) now
/// and after each change, as long as the client listens.
async fn events(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let first = knowledge::status(&state, &access.project_id).await?;
    let changes = knowledge::status_changes(state, access.project_id, first);
    Ok(Sse::new(futures::StreamExt::map(changes, |status| {
        Ok(Event::default()
            .event("status")
            .data(serde_json::to_string(&status).unwrap_or_default()))
    }))
    .keep_alive(KeepAlive::default()))
}

/// The Knowledge tab's upload form (`POST /projects/:id/knowledge/upload`,
/// `multipart/form-data`): the same upload as the API's, answered with a
/// redirect back to the tab saying what happened, so it works with or
/// without JavaScript.
pub async fn upload_form(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    access: std::result::Result<ProjectCaller<Manage>, Error>,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> axum::response::Redirect {
    let outcome = async {
        let access = access?;
        let multipart = multipart.map_err(|rejection| AppError::BadRequest {
            message: format!("file: {}", rejection.body_text()),
        })?;
        let file = file_field(multipart).await?;
        knowledge::upload(
            &state,
            &access.project_id,
            access.caller.user_id(),
            &file.name,
            file.content_type.as_deref(),
            &file.bytes,
        )
        .await
    }
    .await;
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let query = match outcome {
        Ok(document) => format!("uploaded={}", encode(&document.name)),
        Err(Error::App(refusal)) => format!("error={}", encode(&refusal.to_string())),
        Err(error) => {
            tracing::error!(%error, "document upload failed");
            format!(
                "error={}",
                encode("the document could not be stored; try again")
            )
        }
    };
    axum::response::Redirect::to(&format!(
        "/projects/{}/knowledge?{query}",
        encode(&project_id)
    ))
}
