//! `/projects/:id/knowledge`: the project's knowledge base (AC-004) — its
//! documents, an upload form, and where the index stands (a progress bar
//! that is live after hydration). Everything works before hydration: the
//! upload is a plain multipart form post answered with a redirect back here,
//! deletion a server function's plain form.

use crate::components::error_notice::ErrorNotice;
use crate::components::knowledge_progress::{use_live_status, KnowledgeProgress};
use crate::error::AppError;
use crate::model::knowledge::{
    DocumentDetail, DocumentView, KnowledgeOverview, MAX_DOCUMENT_BYTES,
};
use crate::pages::project::use_project_id;
use crate::server_fns::knowledge::{get_document, get_knowledge, DeleteDocument};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};

/// The Knowledge tab as a lazily loaded route (its own wasm chunk).
pub struct KnowledgeRoute;

#[lazy_route]
impl LazyRoute for KnowledgeRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <KnowledgePage/> }.into_any()
    }
}

/// What the file picker offers.
const ACCEPTED: &str =
    ".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf";

/// The knowledge base of the project in the URL.
#[component]
pub fn KnowledgePage() -> impl IntoView {
    let project_id = use_project_id();
    let query = use_query_map();
    let delete = ServerAction::<DeleteDocument>::new();
    let overview = Resource::new(
        move || (project_id.get(), delete.version().get()),
        |(project_id, _)| get_knowledge(project_id),
    );
    let uploaded = move || query.read().get("uploaded");
    let upload_error = Signal::derive(move || {
        query
            .read()
            .get("error")
            .map(|message| AppError::BadRequest { message })
    });
    let body = move || {
        Suspend::new(async move {
            match overview.await {
                Ok(overview) => view! { <Overview overview=overview delete=delete/> }.into_any(),
                Err(AppError::Unauthenticated { .. } | AppError::NotFound) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="knowledge-error"/>
                }
                .into_any(),
            }
        })
    };
    view! {
        <section class="card knowledge" data-test="knowledge">
            <h2>"Knowledge base"</h2>
            <p class="muted">
                "Answers in this project's chat draw on these documents. They are embedded with the \
                 project's embedding model; switching providers embeds them again in the background \
                 while the current index keeps answering."
            </p>
            <form class="upload-form" method="post" enctype="multipart/form-data"
                action=move || format!("/projects/{}/knowledge/upload", project_id.get())
                data-test="knowledge-upload-form">
                <div class="field">
                    <label for="knowledge-file">"Document (text, Markdown, HTML or PDF)"</label>
                    <input id="knowledge-file" name="file" type="file" accept=ACCEPTED required
                        aria-describedby="knowledge-file-hint" data-test="knowledge-file"/>
                    <span class="muted" id="knowledge-file-hint">
                        {format!("At most {} MB.", MAX_DOCUMENT_BYTES / (1024 * 1024))}
                    </span>
                </div>
                <button type="submit" data-test="knowledge-upload">"Upload"</button>
            </form>
            {move || uploaded().map(|name| view! {
                <p class="notice" role="status" data-test="knowledge-uploaded">
                    {format!("{name} was added; its chunks are being embedded.")}
                </p>
            })}
            <ErrorNotice error=upload_error test_id="knowledge-upload-error"/>
            <Transition fallback=|| view! { <p class="muted">"Loading the knowledge base…"</p> }>
                {body}
            </Transition>
        </section>
        <ShownDocument/>
    }
}

/// The document named by `?document=` in the URL, with its chunks as they
/// are embedded (section, tokens, text).
#[component]
fn ShownDocument() -> impl IntoView {
    let project_id = use_project_id();
    let query = use_query_map();
    let shown = Resource::new(
        move || (project_id.get(), query.read().get("document")),
        |(project_id, document)| async move {
            match document {
                Some(document_id) => get_document(project_id, document_id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match shown.await {
                    Ok(Some(detail)) => view! { <DocumentChunks detail=detail/> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(error) => view! {
                        <ErrorNotice error=Signal::stored(Some(error)) test_id="document-error"/>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DocumentChunks(detail: DocumentDetail) -> impl IntoView {
    let project_id = use_project_id();
    let count = detail.chunks.len();
    view! {
        <section class="card document-detail" data-test="document-detail">
            <div class="row">
                <h2>{detail.document.name.clone()}</h2>
                <a href=move || format!("/projects/{}/knowledge", project_id.get()) data-test="document-close">"Close"</a>
            </div>
            <p class="muted">{format!("{count} chunks, {} tokens", detail.document.tokens)}</p>
            <ol class="chunks">
                {detail.chunks.into_iter().map(|chunk| view! {
                    <li data-test="chunk">
                        <p class="muted">
                            {chunk.heading.unwrap_or_else(|| "(no section)".into())}
                            {format!(" · {} tokens", chunk.tokens)}
                        </p>
                        <pre class="chunk-text">{chunk.text}</pre>
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}

/// The status bar and the document list.
#[component]
fn Overview(overview: KnowledgeOverview, delete: ServerAction<DeleteDocument>) -> impl IntoView {
    let project_id = use_project_id();
    let status = use_live_status(project_id, overview.status);
    let documents = overview.documents;
    let list = if documents.is_empty() {
        view! { <p class="muted" data-test="knowledge-empty">"No documents yet."</p> }.into_any()
    } else {
        view! {
            <table class="documents" data-test="documents">
                <thead>
                    <tr>
                        <th scope="col">"Document"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col">"Size"</th>
                        <th scope="col">"Chunks"</th>
                        <th scope="col">"Tokens"</th>
                        <th scope="col">"Uploaded"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {documents
                        .into_iter()
                        .map(|document| view! { <DocumentRow document=document delete=delete/> })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <KnowledgeProgress status=status/>
        <ErrorNotice
            error=Signal::derive(move || delete.value().get().and_then(Result::err))
            test_id="knowledge-delete-error"/>
        {list}
    }
}

/// "12.5 KB", "3.1 MB".
fn size_text(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    if bytes < 1024.0 {
        format!("{bytes} B")
    } else if bytes < 1024.0 * 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{:.1} MB", bytes / (1024.0 * 1024.0))
    }
}

#[component]
fn DocumentRow(document: DocumentView, delete: ServerAction<DeleteDocument>) -> impl IntoView {
    let project_id = use_project_id();
    let label = format!("Delete {}", document.name);
    let id = document.id.clone();
    let link_id = document.id.clone();
    let confirm = move |event: leptos::ev::MouseEvent| {
        if !window()
            .confirm_with_message("Delete this document and its embeddings?")
            .unwrap_or(false)
        {
            event.prevent_default();
        }
    };
    view! {
        <tr data-test="document" data-document=document.id.clone()>
            <td data-test="document-name">
                <a href=move || format!("/projects/{}/knowledge?document={}", project_id.get(), link_id)
                    data-test="document-show">{document.name.clone()}</a>
            </td>
            <td>{document.kind.clone()}</td>
            <td>{size_text(document.size_bytes)}</td>
            <td data-test="document-chunks">{document.chunks}</td>
            <td>{document.tokens}</td>
            <td>{document.created_at.get(..10).unwrap_or_default().to_owned()}</td>
            <td>
                <ActionForm action=delete attr:class="inline">
                    <input type="hidden" name="project_id" value=move || project_id.get()/>
                    <input type="hidden" name="document_id" value=id/>
                    <button type="submit" class="secondary" aria-label=label on:click=confirm
                        data-test="document-delete">
                        "Delete"
                    </button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_expect() {
        assert_eq!(size_text(900), "900 B");
        assert_eq!(size_text(12_800), "12.5 KB");
        assert_eq!(size_text(3_250_000), "3.1 MB");
    }
}
