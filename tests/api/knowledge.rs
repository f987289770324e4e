//! The knowledge base over the JSON API against the provider simulator's
//! embedding APIs: uploads of every kind and every bad one, retrieval with
//! citations and its cost in the ledger, and the provider switch — the new
//! index built in the background while the old one serves, a failure that
//! leaves it serving and resumes, a newer switch that cancels, and a fixed
//! embedding model that survives a switch untouched.

use crate::both_engines;
use crate::documents::{policy_pdf, HANDBOOK_HTML, HANDBOOK_MD};
use crate::durability::{admin_project, assert_intact};
use crate::helpers::{
    clear_faults, create_admin, error_of, fail_model, spawn_simulator, Engine, ServerProcess,
    TestApp, TestDatabase, GOOD_KEY,
};
use cover::server::db::Db;
use cover::server::simulator::SimulatorOptions;
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Longest a build of a few chunks may take here, on a busy machine.
const BUILD_LIMIT: Duration = Duration::from_secs(30);

async fn project(app: &TestApp) -> String {
    app.sign_up("knowledge@example.com").await;
    app.new_project("Support bot").await
}

fn documents_path(project: &str) -> String {
    format!("/api/projects/{project}/documents")
}

/// Uploads `bytes` as the multipart field `file`.
async fn upload(
    app: &TestApp,
    project: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(content_type)
        .unwrap();
    app.client
        .post(app.url(&documents_path(project)))
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("the upload is answered")
}

async fn upload_ok(
    app: &TestApp,
    project: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Value {
    let response = upload(app, project, name, content_type, bytes).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every chunk's text of an uploaded document (as `GET …/documents/:id` shows it), joined.
async fn document_text(app: &TestApp, project: &str, document: &Value) -> String {
    let id = document["id"].as_str().unwrap();
    let shown: Value = app
        .get(&format!("{}/{id}", documents_path(project)))
        .await
        .json()
        .await
        .unwrap();
    shown["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect()
}

async fn status(app: &TestApp, project: &str) -> Value {
    status_at(&app.client, &app.url(&status_path(project))).await
}

fn status_path(project: &str) -> String {
    format!("/api/projects/{project}/knowledge/status")
}

/// The status at `url`, as `client` is answered.
async fn status_at(client: &reqwest::Client, url: &str) -> Value {
    let response = client
        .get(url)
        .send()
        .await
        .expect("the status is answered");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("status JSON")
}

/// Polls the status at `url` until `done` says so; fails by name after [`BUILD_LIMIT`].
async fn poll_until(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let now = status_at(client, url).await;
        if done(&now) {
            return now;
        }
        assert!(started.elapsed() < BUILD_LIMIT, "never {what}: {now:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls this test app's status (see [`poll_until`]).
async fn status_until(
    app: &TestApp,
    project: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll_until(&app.client, &app.url(&status_path(project)), what, done).await
}

async fn ready_with(app: &TestApp, project: &str, model: &str) -> Value {
    status_until(app, project, &format!("ready with {model}"), |s| {
        s["state"] == "ready" && s["model"] == model && s["done"] == s["total"]
    })
    .await
}

/// Index versions of the project: (model, state), oldest first.
async fn index_states(app: &TestApp, project: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "select model, state from knowledge_index where project_id = $1 order by created_at, index_id",
    )
    .bind(project)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

const REFUND_QUESTION: &str = "When are refunds paid back?";

both_engines!(
    documents_of_every_kind_are_split_listed_shown_and_deleted,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let markdown = upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            HANDBOOK_MD.into(),
        )
        .await;
        assert_eq!(markdown["kind"], "markdown");
        assert_eq!(markdown["name"], "handbook.md");
        assert_eq!(markdown["sizeBytes"], HANDBOOK_MD.len());
        let html = upload_ok(
            &app,
            &project,
            "warranty.html",
            "text/html",
            HANDBOOK_HTML.into(),
        )
        .await;
        assert_eq!(html["kind"], "html");
        let pdf = upload_ok(
            &app,
            &project,
            "policy.pdf",
            "application/pdf",
            policy_pdf(),
        )
        .await;
        assert_eq!(pdf["kind"], "pdf");
        // A name without an extension is read by its declared type.
        let text = upload_ok(
            &app,
            &project,
            "notes",
            "text/plain",
            b"Opening hours are 9 to 5.".to_vec(),
        )
        .await;
        assert_eq!(text["kind"], "text");

        let list: Value = app
            .get(&documents_path(&project))
            .await
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = list["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["notes", "policy.pdf", "warranty.html", "handbook.md"]
        );

        // Structure-aware chunks: one per section, each led by its heading.
        let id = markdown["id"].as_str().unwrap();
        let shown: Value = app
            .get(&format!("{}/{id}", documents_path(&project)))
            .await
            .json()
            .await
            .unwrap();
        let chunks = shown["chunks"].as_array().unwrap();
        let headings: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["heading"].as_str())
            .collect();
        assert_eq!(headings, ["Refunds", "Shipping", "Privacy"], "{shown:#}");
        assert!(chunks[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("## Refunds\n\nRefunds are paid"));
        assert!(chunks.iter().all(|c| c["tokens"].as_i64().unwrap() > 0));
        assert_eq!(markdown["chunks"], chunks.len());
        // HTML loses its markup, scripts and styles; PDF keeps its text layer.
        let html_text = document_text(&app, &project, &html).await;
        assert!(
            html_text.contains("two-year") && html_text.contains("## Claims"),
            "{html_text}"
        );
        assert!(
            !html_text.contains("tracking") && !html_text.contains('<'),
            "{html_text}"
        );
        let pdf_text = document_text(&app, &project, &pdf).await;
        assert!(
            pdf_text.contains("returned within 60 days")
                && pdf_text.contains("Gift cards never expire"),
            "{pdf_text}"
        );

        ready_with(&app, &project, "voyage-3.5").await;
        let response = app
            .client
            .delete(app.url(&format!("{}/{id}", documents_path(&project))))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let again = app.get(&format!("{}/{id}", documents_path(&project))).await;
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
        let after = status(&app, &project).await;
        assert_eq!(after["documents"], 3);
        let vectors: i64 = sqlx::query_scalar(
            "select count(*) from knowledge_vector v join knowledge_chunk c on c.chunk_id = v.chunk_id where c.document_id = $1",
        )
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(vectors, 0, "the deleted document's vectors went with it");
        assert_eq!(after["total"], after["done"]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_naming_the_file_and_nothing_is_stored() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        let refusals: [(&str, &str, Vec<u8>, StatusCode, &str); 6] = [
            (
                "sheet.xlsx",
                "application/vnd.ms-excel",
                b"PK\x03\x04".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported file type .xlsx",
            ),
            (
                "empty.txt",
                "text/plain",
                Vec::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no text",
            ),
            (
                "fake.pdf",
                "application/pdf",
                b"just words".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "could not be read as pdf",
            ),
            (
                "latin1.txt",
                "text/plain",
                b"caf\xe9 au lait".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "not UTF-8",
            ),
            (
                "scan.pdf",
                "application/pdf",
                crate::documents::pdf_of(&[vec![]]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no text",
            ),
            (
                "huge.txt",
                "text/plain",
                vec![b'a'; 10 * 1024 * 1024 + 1],
                StatusCode::PAYLOAD_TOO_LARGE,
                "10 MB",
            ),
        ];
        for (name, content_type, bytes, expected, says) in refusals {
            let response = upload(&app, &project, name, content_type, bytes).await;
            let (status, field, message) = error_of(response).await;
            assert_eq!(status, expected, "{name}: {message}");
            if expected == StatusCode::UNPROCESSABLE_ENTITY {
                assert_eq!(field.as_deref(), Some("file"), "{name}");
            }
            assert!(message.contains(says), "{name}: {message}");
        }
        // (Far over the limit, the declared length is refused before the
        // body is read: tests/api/protections.rs.)
        // No multipart body, or no field `file`.
        let json_body = app
            .post(&documents_path(&project), json!({"file": "x"}))
            .await;
        let (status, _, message) = error_of(json_body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        let other_field = app
            .client
            .post(app.url(&documents_path(&project)))
            .multipart(Form::new().text("document", "hello"))
            .send()
            .await
            .unwrap();
        let (status, field, _) = error_of(other_field).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("file"))
        );

        for table in [
            "knowledge_document",
            "knowledge_chunk",
            "knowledge_index",
            "knowledge_vector",
        ] {
            assert_eq!(
                count(&app, table).await,
                0,
                "{table} holds a half-stored upload"
            );
        }
    })
    .await;
}

/// The ledger's embedding rows: (model, message id, cost).
async fn embedding_rows(app: &TestApp) -> Vec<(String, Option<String>, Option<i64>)> {
    app.state.ledger.flush().await;
    sqlx::query_as(
        "select model, message_id, cost_nanos from llm_usage where operation = 'embeddings' order by created_at, attempt",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

both_engines!(
    answers_cite_the_chunks_they_were_given_and_pay_for_finding_them,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let document = upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            HANDBOOK_MD.into(),
        )
        .await;
        ready_with(&app, &project, "voyage-3.5").await;
        // The build's embeddings are in the ledger, priced (no message).
        let built = embedding_rows(&app).await;
        assert!(!built.is_empty());
        assert!(
            built
                .iter()
                .all(|(model, message, cost)| model == "voyage-3.5"
                    && message.is_none()
                    && cost.is_some_and(|c| c > 0)),
            "{built:?}"
        );

        let conversation = app.conversation_id(&project).await;
        let answer = app.ask_ok(&project, &conversation, REFUND_QUESTION).await;
        let citations = answer["citations"].as_array().expect("citations");
        assert_eq!(citations[0]["documentId"], document["id"]);
        assert_eq!(citations[0]["documentName"], "handbook.md");
        assert_eq!(citations[0]["heading"], "Refunds");
        assert_eq!(
            citations[0]["chunk"], 0,
            "the Refunds section is the handbook's first chunk (its title alone is none)"
        );
        let score = citations[0]["score"].as_f64().unwrap();
        assert!(score > 0.15 && score <= 1.0, "{score}");
        assert!(
            citations.iter().all(|c| c["heading"] != "Shipping"),
            "an unrelated section was cited: {citations:?}"
        );

        // Stored with the answer.
        let detail: Value = app
            .get(&format!(
                "/api/projects/{project}/conversations/{conversation}"
            ))
            .await
            .json()
            .await
            .unwrap();
        let stored = detail["messages"].as_array().unwrap().last().unwrap();
        assert_eq!(stored["citations"], answer["citations"]);

        // The question's embedding is one of the answer's ledger rows, and the
        // answer's cost is every row of it, the retrieval included.
        let message_id = answer["messageId"].as_str().unwrap();
        app.state.ledger.flush().await;
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "select operation, cost_nanos from llm_usage where message_id = $1 order by operation",
        )
        .bind(message_id)
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        let operations: Vec<&str> = rows.iter().map(|(op, _)| op.as_str()).collect();
        assert_eq!(operations, ["chat", "embeddings"]);
        let total: i64 = rows.iter().map(|(_, cost)| cost.unwrap()).sum();
        assert_eq!(answer["costNanos"].as_i64(), Some(total));
        assert!(rows[1].1.unwrap() > 0);

        // A question the knowledge base knows nothing of cites nothing.
        let other = app
            .ask_ok(&project, &conversation, "Tell me a joke about penguins")
            .await;
        assert!(
            other
                .get("citations")
                .is_none_or(|c| c.as_array().unwrap().is_empty()),
            "{other:#}"
        );
    }
);

both_engines!(
    a_switch_builds_the_new_index_while_the_old_one_serves_and_a_failure_keeps_it,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            HANDBOOK_MD.into(),
        )
        .await;
        ready_with(&app, &project, "voyage-3.5").await;
        let conversation = app.conversation_id(&project).await;

        // OpenAI's embedding API is down: the build to its model fails.
        fail_model(&app, "text-embedding-3-small", "server_error").await;
        app.configure(
            &project,
            json!({"provider": "openai", "model": "gpt-4o-mini"}),
        )
        .await;
        let failed = status_until(&app, &project, "failed", |s| s["state"] == "failed").await;
        assert_eq!(failed["model"], "text-embedding-3-small");
        assert_eq!(failed["servingModel"], "voyage-3.5");
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains("500"), "{error}");

        // The old index still answers, the existing conversation too.
        let answer = app.ask_ok(&project, &conversation, REFUND_QUESTION).await;
        assert_eq!(answer["citations"][0]["heading"], "Refunds", "{answer:#}");
        let fresh = app.conversation_id(&project).await;
        let answer = app.ask_ok(&project, &fresh, REFUND_QUESTION).await;
        assert_eq!(answer["provider"], "openai");
        assert_eq!(answer["citations"][0]["heading"], "Refunds", "{answer:#}");

        // Back up: the next change resumes the build, which swaps in whole.
        clear_faults(&app).await;
        app.configure(&project, json!({"parameters": {"temperature": 0.5}}))
            .await;
        ready_with(&app, &project, "text-embedding-3-small").await;
        let states = index_states(&app, &project).await;
        assert_eq!(
            states,
            [
                ("voyage-3.5".to_owned(), "retired".to_owned()),
                ("text-embedding-3-small".to_owned(), "ready".to_owned())
            ]
        );
        let chunks = count(&app, "knowledge_chunk").await;
        assert_eq!(
            count(&app, "knowledge_vector").await,
            chunks,
            "the old index's vectors are gone, the new one's complete"
        );
        let answer = app.ask_ok(&project, &fresh, REFUND_QUESTION).await;
        assert_eq!(answer["citations"][0]["heading"], "Refunds");
        let question_rows = embedding_rows(&app).await;
        let last = question_rows.last().unwrap();
        assert_eq!(
            last.0, "text-embedding-3-small",
            "the question is embedded with the serving index's model"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_switch_cancels_the_unfinished_build_and_a_fixed_model_stays() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        upload_ok(&app, &project, "handbook.md", "text/markdown", HANDBOOK_MD.into()).await;
        ready_with(&app, &project, "voyage-3.5").await;

        // The OpenAI build never finishes (its API hangs) when Gemini is chosen.
        fail_model(&app, "text-embedding-3-small", "hang").await;
        app.configure(&project, json!({"provider": "openai", "model": "gpt-4o-mini"})).await;
        status_until(&app, &project, "building", |s| s["state"] == "building" && s["model"] == "text-embedding-3-small").await;
        app.configure(&project, json!({"provider": "gemini", "model": "gemini-1.5-flash", "apiKey": GOOD_KEY})).await;
        ready_with(&app, &project, "gemini-embedding-001").await;
        let states = index_states(&app, &project).await;
        assert_eq!(
            states,
            [
                ("voyage-3.5".to_owned(), "retired".to_owned()),
                ("text-embedding-3-small".to_owned(), "cancelled".to_owned()),
                ("gemini-embedding-001".to_owned(), "ready".to_owned())
            ]
        );
        clear_faults(&app).await;

        // A fixed embedding model: the provider changes, the index does not.
        app.configure(&project, json!({"embeddingModel": "gemini-embedding-001", "provider": "claude", "model": "claude-3-5-sonnet-20241022", "apiKeySource": "managed"})).await;
        let config: Value = app.get(&format!("/api/projects/{project}/llm-config")).await.json().await.unwrap();
        assert_eq!(config["embeddingModelInUse"], "gemini-embedding-001");
        let before = app.simulator_requests().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = status(&app, &project).await;
        assert_eq!((now["state"].as_str(), now["model"].as_str()), (Some("ready"), Some("gemini-embedding-001")));
        assert_eq!(index_states(&app, &project).await.len(), 3, "no new index was started");
        assert_eq!(app.simulator_requests().await, before, "nothing was embedded again");

        // An unknown embedding model is refused by name.
        let response = app
            .patch(&format!("/api/projects/{project}/llm-config"), json!({"embeddingModel": "gpt-4o"}))
            .await;
        let (status, field, _) = error_of(response).await;
        assert_eq!((status, field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("embeddingModel")));
    })
    .await;
}

/// The id of the project's newest document.
async fn status_doc_id(app: &TestApp, project: &str) -> String {
    let list: Value = app
        .get(&documents_path(project))
        .await
        .json()
        .await
        .unwrap();
    list["documents"][0]["id"].as_str().unwrap().to_owned()
}

/// Posts the Knowledge tab's upload form as a browser does before hydration
/// (same-origin, multipart); answers where it redirects to.
async fn post_upload_form(
    app: &TestApp,
    client: &reqwest::Client,
    project: &str,
    name: &str,
    text: &str,
) -> String {
    let part = Part::text(text.to_owned()).file_name(name.to_owned());
    let response = client
        .post(app.url(&format!("/projects/{project}/knowledge/upload")))
        .header("origin", &app.address)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("the form post is answered");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knowledge_tab_works_before_hydration_for_those_it_should() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        let tab = format!("/projects/{project}/knowledge");

        let location =
            post_upload_form(&app, &app.client, &project, "handbook.md", HANDBOOK_MD).await;
        assert_eq!(location, format!("{tab}?uploaded=handbook.md"));
        ready_with(&app, &project, "voyage-3.5").await;
        let html = app.get(&location).await.text().await.unwrap();
        for expected in [
            r#"data-test="knowledge-uploaded""#,
            "handbook.md was added",
            r#"data-test="document-show">handbook.md<"#,
            r#"data-test="knowledge-status" data-state="ready""#,
            "Ready: 3 chunks embedded with Voyage 3.5",
            r#"<progress id="knowledge-progress-bar""#,
            r#"enctype="multipart/form-data""#,
            r#"<label for="knowledge-file">"#,
        ] {
            assert!(html.contains(expected), "the tab lacks {expected}");
        }

        // A document is shown with its chunks.
        let id = status_doc_id(&app, &project).await;
        let html = app
            .get(&format!("{tab}?document={id}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains(r#"data-test="document-detail""#), "{html}");
        assert_eq!(html.matches(r#"data-test="chunk""#).count(), 3);
        assert!(html.contains("Refunds are paid back"));

        // A refusal comes back to the tab, said in words.
        let location = post_upload_form(&app, &app.client, &project, "empty.txt", "  ").await;
        assert!(location.starts_with(&format!("{tab}?error=")), "{location}");
        let html = app.get(&location).await.text().await.unwrap();
        assert!(html.contains("no text to index"), "the error is shown");

        // A member reads the tab but may not add to it; nobody else gets in.
        let member = app.invited_member(&project, "reader@example.com").await;
        let page = member
            .get(app.url(&tab))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("handbook.md"));
        let location =
            post_upload_form(&app, &member, &project, "mine.md", "# Mine\n\nText.").await;
        assert!(location.contains("error="), "{location}");
        let anonymous = crate::helpers::new_client();
        let location = post_upload_form(&app, &anonymous, &project, "x.md", "# X\n\nText.").await;
        assert!(location.contains("error="), "{location}");
        assert_eq!(status(&app, &project).await["documents"], 1);

        // From another site the form post is refused outright.
        let response = app
            .client
            .post(app.url(&format!("/projects/{project}/knowledge/upload")))
            .header("origin", "https://evil.example")
            .multipart(Form::new().part("file", Part::text("x").file_name("x.md")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    })
    .await;
}

/// A long handbook: `sections` sections of one paragraph each, a chunk each.
fn long_handbook(sections: usize) -> String {
    (0..sections)
        .map(|i| format!("## Topic {i}\n\nEverything about topic{i}: alpha{i} beta{i} gamma{i} and delta{i}.\n\n"))
        .collect()
}

/// Polls a server process's status (see [`poll_until`]).
async fn process_until(
    client: &reqwest::Client,
    server: &ServerProcess,
    project: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll_until(client, &server.url(&status_path(project)), what, done).await
}

both_engines!(
    a_build_killed_with_kill_9_resumes_where_it_stopped_while_the_old_index_serves,
    |engine| async move {
        let database = TestDatabase::create(engine).await;
        // 400 ms per embedding request: a build of 600 chunks (ten batches,
        // four at a time) takes about 1.2 s, time to kill it halfway.
        let simulator = spawn_simulator(SimulatorOptions {
            ttft: Duration::from_millis(400),
            ..SimulatorOptions::default()
        })
        .await;
        create_admin(&database.url, "ops@example.com").await;
        let mut server = ServerProcess::start(&database.url, &simulator, &[]).await;
        let (client, project, _) = admin_project(&server, "ops@example.com").await;
        let part = Part::text(long_handbook(600)).file_name("long.md");
        let uploaded = client
            .post(server.url(&documents_path(&project)))
            .multipart(Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), StatusCode::CREATED);
        process_until(&client, &server, &project, "ready with Voyage", |s| {
            s["state"] == "ready" && s["model"] == "voyage-3.5" && s["done"] == 600
        })
        .await;

        let switched = client
            .patch(server.url(&format!("/api/projects/{project}/llm-config")))
            .json(&json!({"provider": "openai", "model": "gpt-4o-mini"}))
            .send()
            .await
            .unwrap();
        assert_eq!(switched.status(), StatusCode::OK);
        let halfway = process_until(&client, &server, &project, "halfway", |s| {
            s["model"] == "text-embedding-3-small" && s["done"].as_i64().unwrap() > 0
        })
        .await;
        server.kill_9().await;
        assert!(halfway["done"].as_i64().unwrap() < 600, "{halfway}");

        let db = Db::connect(&database.url).await.unwrap();
        assert_intact(&db, engine).await;
        let states: Vec<(String, String, i64)> = sqlx::query_as(
            "select i.model, i.state, count(v.chunk_id) from knowledge_index i \
             left join knowledge_vector v on v.index_id = i.index_id \
             group by i.index_id, i.model, i.state order by min(i.created_at)",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(states.len(), 2, "{states:?}");
        assert_eq!(
            (states[0].0.as_str(), states[0].1.as_str(), states[0].2),
            ("voyage-3.5", "ready", 600),
            "the old index serves whole"
        );
        assert_eq!(
            (states[1].0.as_str(), states[1].1.as_str()),
            ("text-embedding-3-small", "building")
        );
        let kept = states[1].2;
        assert!(kept > 0 && kept < 600, "{states:?}");

        // Restarted, the build goes on from the vectors it kept and swaps in.
        let server = ServerProcess::start(&database.url, &simulator, &[]).await;
        let client = admin_project(&server, "ops@example.com").await.0;
        process_until(&client, &server, &project, "ready with OpenAI", |s| {
            s["state"] == "ready" && s["model"] == "text-embedding-3-small" && s["done"] == 600
        })
        .await;
        let states: Vec<(String, String)> =
            sqlx::query_as("select model, state from knowledge_index order by created_at")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(
            states,
            [
                ("voyage-3.5".to_owned(), "retired".to_owned()),
                ("text-embedding-3-small".to_owned(), "ready".to_owned())
            ]
        );
        let vectors: i64 = sqlx::query_scalar("select count(*) from knowledge_vector")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(vectors, 600);
        // What was kept was not embedded again: the OpenAI embedding inputs
        // of the ledger add up to the chunks once, plus at most the batches
        // in flight when it was killed.
        let embedded: i64 = sqlx::query_scalar(
            "select count(*) from llm_usage where operation = 'embeddings' and model = 'text-embedding-3-small'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert!(
            embedded <= 14,
            "{embedded} requests for 10 batches and at most 4 lost in flight"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedding_model_without_a_key_says_so_and_answers_go_on_without_it() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        // This server has no Gemini key, and the project none of its own.
        app.configure(&project, json!({"embeddingModel": "gemini-embedding-001"}))
            .await;
        upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            HANDBOOK_MD.into(),
        )
        .await;
        let failed = status_until(&app, &project, "failed", |s| s["state"] == "failed").await;
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("no gemini key") && error.contains("choose another embedding model"),
            "{error}"
        );
        assert_eq!(failed["done"], 0);
        let conversation = app.conversation_id(&project).await;
        let answer = app.ask_ok(&project, &conversation, REFUND_QUESTION).await;
        assert!(answer.get("citations").is_none(), "{answer:#}");

        // Following the provider again (Voyage, whose key Cover has) mends it.
        app.configure(&project, json!({"embeddingModel": ""})).await;
        ready_with(&app, &project, "voyage-3.5").await;
        let answer = app.ask_ok(&project, &conversation, REFUND_QUESTION).await;
        assert_eq!(answer["citations"][0]["heading"], "Refunds");
    })
    .await;
}

both_engines!(
    answers_asked_while_the_index_is_swapped_all_cite_and_never_mix_dimensions,
    |engine| async move {
        // 60 ms per provider request: the build of 150 chunks spans the chats.
        let app = TestApp::spawn_with(
            engine,
            crate::helpers::TestOptions {
                simulator: SimulatorOptions {
                    ttft: Duration::from_millis(60),
                    ..SimulatorOptions::default()
                },
                ..crate::helpers::TestOptions::default()
            },
        )
        .await;
        let project = project(&app).await;
        let text = format!("{HANDBOOK_MD}\n{}", long_handbook(150));
        upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            text.into_bytes(),
        )
        .await;
        ready_with(&app, &project, "voyage-3.5").await;
        let mut conversations = Vec::new();
        for _ in 0..4 {
            conversations.push(app.conversation_id(&project).await);
        }
        app.configure(
            &project,
            json!({"provider": "openai", "model": "gpt-4o-mini"}),
        )
        .await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut askers = Vec::new();
        for conversation in conversations {
            let (client, url, stop) = (
                app.client.clone(),
                app.url(&crate::helpers::messages_path(&project, &conversation)),
                stop.clone(),
            );
            askers.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let answer: Value = client
                        .post(&url)
                        .json(&json!({ "content": REFUND_QUESTION }))
                        .send()
                        .await
                        .expect("an answer")
                        .json()
                        .await
                        .expect("JSON");
                    answers.push(answer);
                }
                answers
            }));
        }
        ready_with(&app, &project, "text-embedding-3-small").await;
        // A few more answers after the swap, then stop.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut answered = 0;
        for asker in askers {
            for answer in asker.await.unwrap() {
                answered += 1;
                assert_eq!(
                    answer["citations"][0]["heading"], "Refunds",
                    "an answer went without its knowledge: {answer:#}"
                );
            }
        }
        assert!(answered >= 8, "only {answered} answers during the swap");
        // Each question was embedded with the model of the index it searched:
        // no Voyage question met OpenAI vectors or the other way round.
        app.state.ledger.flush().await;
        let models: Vec<(String,)> = sqlx::query_as(
            "select distinct model from llm_usage where operation = 'embeddings' and message_id is not null",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        assert!(
            models
                .iter()
                .all(|(m,)| m == "voyage-3.5" || m == "text-embedding-3-small"),
            "{models:?}"
        );
        let errors: i64 = sqlx::query_scalar(
            "select count(*) from llm_usage where operation = 'embeddings' and success = 0",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(errors, 0, "a question met vectors of other dimensions");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llama_projects_knowledge_never_leaves_its_own_server() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        // The project's own Llama server (a second simulator, speaking Ollama).
        let own_server = spawn_simulator(SimulatorOptions::default()).await;
        app.configure(
            &project,
            json!({"provider": "llama", "model": "llama-3.1-70b", "baseUrl": own_server, "llamaFlavour": "ollama"}),
        )
        .await;
        let elsewhere = app.simulator_requests().await;
        upload_ok(&app, &project, "handbook.md", "text/markdown", HANDBOOK_MD.into()).await;
        ready_with(&app, &project, "nomic-embed-text").await;
        let conversation = app.conversation_id(&project).await;
        let answer = app.ask_ok(&project, &conversation, REFUND_QUESTION).await;
        assert_eq!(answer["provider"], "llama");
        assert_eq!(answer["citations"][0]["heading"], "Refunds");
        assert_eq!(
            app.simulator_requests().await,
            elsewhere,
            "a request left the project's own server"
        );
        let stats: Value = crate::helpers::new_client()
            .get(format!("{own_server}/_sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(stats["requests"].as_i64().unwrap() >= 3, "{stats}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_embeddings_like_answers() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let project = project(&app).await;
        let response = app
            .client
            .put(app.url(&format!("/api/projects/{project}/budget")))
            .json(&json!({"limitUsd": "0.000000001"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        upload_ok(
            &app,
            &project,
            "handbook.md",
            "text/markdown",
            HANDBOOK_MD.into(),
        )
        .await;
        let failed = status_until(&app, &project, "failed", |s| s["state"] == "failed").await;
        assert!(
            failed["error"].as_str().unwrap().contains("budget"),
            "{failed}"
        );
        assert_eq!(
            app.simulator_requests().await,
            0,
            "nothing was sent past the gate"
        );
        app.state.ledger.flush().await;
        assert_eq!(count(&app, "llm_usage").await, 0);
    })
    .await;
}
