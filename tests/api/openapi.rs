//! The OpenAPI document (`GET /api/openapi.json`) against the API itself: every
//! route is documented and answers, and the real requests and answers of every
//! documented body match the document's schemas, so the document cannot drift
//! from the types the handlers read and write.

use crate::helpers::{new_client, Engine, TestApp, GOOD_KEY};
use cover::server::rest::openapi::{RequestBody, ENDPOINTS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_json_endpoint_and_each_answers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for endpoint in ENDPOINTS {
        assert!(
            doc["paths"][endpoint.path][endpoint.method].is_object(),
            "{} {}",
            endpoint.method,
            endpoint.path
        );
        let path = endpoint
            .path
            .replace("{id}", "missing")
            .replace("{tokenId}", "missing")
            .replace("{documentId}", "missing");
        let method = Method::from_bytes(endpoint.method.to_uppercase().as_bytes()).unwrap();
        let response = new_client()
            .request(method, app.url(&path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        assert!(
            json || response.status() == StatusCode::NO_CONTENT,
            "{} {} is not routed: {}",
            endpoint.method,
            path,
            response.status()
        );
    }
}

/// The schema at `pointer` in the document's operation for `method path`,
/// made self-contained (the components it refers to travel with it).
fn schema_at(doc: &Value, method: &str, path: &str, pointer: &str) -> Option<Value> {
    let operation = &doc["paths"][path][method];
    let mut schema = operation.pointer(pointer)?.clone();
    schema
        .as_object_mut()
        .expect("a body schema is an object")
        .insert("components".into(), doc["components"].clone());
    Some(schema)
}

fn check(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema)
        .unwrap_or_else(|error| panic!("{what}: the document's schema is invalid: {error}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its documented schema: {errors:?}\n{instance:#}"
    );
}

/// Sends one documented request and checks the request body, the status and
/// the answer against the document; answers the answer's JSON.
async fn exchange(
    app: &TestApp,
    doc: &Value,
    covered: &mut BTreeSet<(&'static str, &'static str)>,
    (method, template): (&'static str, &'static str),
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> Value {
    let endpoint = ENDPOINTS
        .iter()
        .find(|e| e.method == method && e.path == template)
        .unwrap_or_else(|| panic!("{method} {template} is not documented"));
    let what = format!("{method} {path}");
    if let Some(body) = &body {
        let schema = schema_at(
            doc,
            method,
            template,
            "/requestBody/content/application~1json/schema",
        )
        .unwrap_or_else(|| panic!("{what}: the document has no request body"));
        check(&schema, body, &format!("the request of {what}"));
    }
    let method_of = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = match bearer {
        Some(token) => new_client()
            .request(method_of, app.url(path))
            .bearer_auth(token),
        None => app.client.request(method_of, app.url(path)),
    };
    if let Some(RequestBody::MultipartFile) = endpoint.request {
        let part =
            reqwest::multipart::Part::text("# Hours\n\nOpen from 9 to 5.").file_name("hours.md");
        request = request.multipart(reqwest::multipart::Form::new().part("file", part));
    } else if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, endpoint.response.0, "{what}: {text}");
    covered.insert((method, template));
    let answer: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what} answered no JSON: {text}"))
    };
    match schema_at(
        doc,
        method,
        template,
        &format!("/responses/{status}/content/application~1json/schema"),
    ) {
        Some(schema) => check(&schema, &answer, &format!("the answer of {what}")),
        None => assert!(answer.is_null(), "{what} answered an undocumented body"),
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_request_and_answer_matches_its_schema() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut covered = BTreeSet::new();
    // The account signs up as the workspace admin (the admin routes are documented too).
    let setup = cover::server::services::accounts::fresh_setup_token(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let credentials = json!({"email": "schema@example.com", "password": "correct horse battery"});
    let sign_up = json!({"email": "schema@example.com", "password": "correct horse battery", "setupToken": setup});
    macro_rules! call {
        ($method:literal, $template:literal, $path:expr, $body:expr) => {
            exchange(
                &app,
                &doc,
                &mut covered,
                ($method, $template),
                &$path,
                $body,
                None,
            )
            .await
        };
        ($token:expr => $method:literal, $template:literal, $path:expr, $body:expr) => {
            exchange(
                &app,
                &doc,
                &mut covered,
                ($method, $template),
                &$path,
                $body,
                Some($token),
            )
            .await
        };
    }
    call!(
        "post",
        "/api/auth/signup",
        "/api/auth/signup",
        Some(sign_up)
    );
    call!("post", "/api/auth/logout", "/api/auth/logout", None);
    call!(
        "post",
        "/api/auth/login",
        "/api/auth/login",
        Some(credentials)
    );
    call!("get", "/api/auth/me", "/api/auth/me", None);
    let project = call!(
        "post",
        "/api/projects",
        "/api/projects",
        Some(json!({"name": "Schemas", "useCase": "sales"}))
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = format!("/api/projects/{project}");
    // The gateway, with a project token (before the budget below is set tight).
    let program = app.token(&project).await;
    call!(&program => "get", "/v1/models", "/v1/models", None);
    call!(
        &program => "post",
        "/v1/embeddings",
        "/v1/embeddings",
        Some(json!({"model": "cover/default", "input": ["Opening hours", "Refunds"]}))
    );
    call!(
        &program => "post",
        "/v1/images/generations",
        "/v1/images/generations",
        Some(json!({"model": "gpt-image-1", "prompt": "A lighthouse", "quality": "low"}))
    );
    call!(
        &program => "post",
        "/v1/chat/completions",
        "/v1/chat/completions",
        Some(json!({"model": "cover/default", "messages": [{"role": "user", "content": "Hello"}]}))
    );
    call!(
        &program => "post",
        "/v1/messages",
        "/v1/messages",
        Some(json!({"model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}))
    );
    call!("get", "/api/projects", "/api/projects", None);
    call!("get", "/api/projects/{id}", p, None);
    call!(
        "patch",
        "/api/projects/{id}",
        p,
        Some(json!({"name": "Schemas 2"}))
    );
    app.other_user("member@example.com").await;
    call!(
        "post",
        "/api/projects/{id}/members",
        format!("{p}/members"),
        Some(json!({"email": "member@example.com"}))
    );
    call!(
        "get",
        "/api/projects/{id}/members",
        format!("{p}/members"),
        None
    );
    let invitation = call!(
        "post",
        "/api/invitations",
        "/api/invitations",
        Some(json!({"email": "schema@example.com"}))
    );
    let secret = invitation["link"]
        .as_str()
        .unwrap()
        .split_once("invitation=")
        .unwrap()
        .1
        .to_owned();
    call!(
        "post",
        "/api/invitations/accept",
        "/api/invitations/accept",
        Some(json!({ "invitation": secret }))
    );
    call!(
        "put",
        "/api/admin/managed-budget",
        "/api/admin/managed-budget",
        Some(json!({"managedBudgetUsd": "40.50"}))
    );
    call!(
        "get",
        "/api/admin/managed-budget",
        "/api/admin/managed-budget",
        None
    );
    call!(
        "put",
        "/api/admin/private-hosts",
        "/api/admin/private-hosts",
        Some(json!({"hosts": ["10.0.0.0/8", "gpu.internal"]}))
    );
    call!(
        "get",
        "/api/admin/private-hosts",
        "/api/admin/private-hosts",
        None
    );
    call!("get", "/api/llm/providers", "/api/llm/providers", None);
    call!(
        "get",
        "/api/llm/providers/{id}/models",
        "/api/llm/providers/gemini/models",
        None
    );
    call!(
        "post",
        "/api/llm/providers/{id}/validate",
        "/api/llm/providers/claude/validate",
        Some(json!({"apiKey": GOOD_KEY}))
    );
    call!(
        "put",
        "/api/admin/internal-rates/{model}",
        "/api/admin/internal-rates/llama-3.1-70b",
        Some(json!({"effectiveDate": "2020-01-01", "perHourUsd": "2.50", "perMTokUsd": "0.10"}))
    );
    call!(
        "get",
        "/api/admin/internal-rates",
        "/api/admin/internal-rates",
        None
    );
    call!(
        "post",
        "/api/llm/compare",
        "/api/llm/compare",
        Some(
            json!({"projectId": project, "prompt": "Hello?", "models": ["claude-3-5-sonnet-20241022", "llama-3.1-70b"]})
        )
    );
    call!(
        "get",
        "/api/projects/{id}/llm-config",
        format!("{p}/llm-config"),
        None
    );
    call!(
        "patch",
        "/api/projects/{id}/llm-config",
        format!("{p}/llm-config"),
        Some(json!({"parameters": {"temperature": 0.3}, "systemPrompt": "Be brief."}))
    );
    call!(
        "post",
        "/api/projects/{id}/llm-config/test",
        format!("{p}/llm-config/test"),
        Some(json!({}))
    );
    let conversation = call!(
        "post",
        "/api/projects/{id}/conversations",
        format!("{p}/conversations"),
        None
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("{p}/conversations/{conversation}");
    let answer = call!(
        "post",
        "/api/projects/{id}/conversations/{conversation_id}/messages",
        format!("{c}/messages"),
        Some(json!({"content": "How do I reset my password?"}))
    );
    let message = answer["messageId"].as_str().unwrap();
    call!(
        "put",
        "/api/projects/{id}/conversations/{conversation_id}/messages/{message_id}/rating",
        format!("{c}/messages/{message}/rating"),
        Some(json!({"rating": "up"}))
    );
    call!(
        "get",
        "/api/projects/{id}/conversations",
        format!("{p}/conversations"),
        None
    );
    call!(
        "get",
        "/api/projects/{id}/conversations/{conversation_id}",
        c,
        None
    );
    // A picture in a conversation started on GPT (the project then goes back to Claude).
    app.configure(
        &project,
        json!({"provider": "openai", "model": "gpt-4o-mini"}),
    )
    .await;
    let drawing = app.conversation_id(&project).await;
    app.configure(
        &project,
        json!({"provider": "claude", "model": "claude-3-5-sonnet-20241022"}),
    )
    .await;
    call!(
        "post",
        "/api/projects/{id}/conversations/{conversation_id}/images",
        format!("{p}/conversations/{drawing}/images"),
        Some(json!({"prompt": "A lighthouse at dusk", "quality": "low"}))
    );
    // An experiment: started, read, listed, reweighed, stopped; another promoted.
    let arms = json!([{"provider": "claude", "model": "claude-3-5-haiku-20241022", "weight": 50},
                      {"provider": "openai", "model": "gpt-4o-mini", "weight": 50}]);
    let started = call!(
        "post",
        "/api/projects/{id}/experiments",
        format!("{p}/experiments"),
        Some(
            json!({"name": "Schemas", "primaryMetric": "latency", "plannedAnswersPerArm": 50, "arms": arms})
        )
    );
    let e = format!("{p}/experiments/{}", started["id"].as_str().unwrap());
    app.ask(&project, &app.conversation_id(&project).await, "In an arm")
        .await;
    call!(
        "get",
        "/api/projects/{id}/experiments/{experiment_id}",
        e,
        None
    );
    call!(
        "get",
        "/api/projects/{id}/experiments",
        format!("{p}/experiments"),
        None
    );
    call!(
        "patch",
        "/api/projects/{id}/experiments/{experiment_id}",
        e,
        Some(json!({"weights": {"B": 70}}))
    );
    call!(
        "post",
        "/api/projects/{id}/experiments/{experiment_id}/stop",
        format!("{e}/stop"),
        None
    );
    let again = call!(
        "post",
        "/api/projects/{id}/experiments",
        format!("{p}/experiments"),
        Some(
            json!({"name": "Again", "primaryMetric": "cost", "plannedAnswersPerArm": 50, "arms": arms})
        )
    );
    call!(
        "post",
        "/api/projects/{id}/experiments/{experiment_id}/promote",
        format!("{p}/experiments/{}/promote", again["id"].as_str().unwrap()),
        Some(json!({"arm": "A"}))
    );
    call!(
        "put",
        "/api/projects/{id}/budget",
        format!("{p}/budget"),
        Some(json!({"limitUsd": "0.001", "webhookUrl": null}))
    );
    // Answers until the budget refuses one, so there are notifications to list.
    let mut answered = 0;
    while app
        .ask(&project, &conversation, "And my username?")
        .await
        .status()
        == StatusCode::OK
    {
        answered += 1;
        assert!(answered < 100, "the budget never ran out");
    }
    call!(
        "get",
        "/api/projects/{id}/budget",
        format!("{p}/budget"),
        None
    );
    call!(
        "get",
        "/api/projects/{id}/notifications",
        format!("{p}/notifications"),
        None
    );
    call!(
        "post",
        "/api/projects/{id}/notifications/read",
        format!("{p}/notifications/read"),
        None
    );
    let token = call!(
        "post",
        "/api/projects/{id}/tokens",
        format!("{p}/tokens"),
        Some(json!({"name": "ci"}))
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call!(
        "get",
        "/api/projects/{id}/tokens",
        format!("{p}/tokens"),
        None
    );
    call!(
        "delete",
        "/api/projects/{id}/tokens/{tokenId}",
        format!("{p}/tokens/{token}"),
        None
    );
    app.state.ledger.flush().await;
    call!(
        "get",
        "/api/projects/{id}/llm-usage",
        format!("{p}/llm-usage"),
        None
    );
    // The knowledge base: an upload (multipart), the list, one document, the status.
    let document = call!(
        "post",
        "/api/projects/{id}/documents",
        format!("{p}/documents"),
        None
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call!(
        "get",
        "/api/projects/{id}/documents",
        format!("{p}/documents"),
        None
    );
    call!(
        "get",
        "/api/projects/{id}/documents/{documentId}",
        format!("{p}/documents/{document}"),
        None
    );
    call!(
        "get",
        "/api/projects/{id}/knowledge/status",
        format!("{p}/knowledge/status"),
        None
    );
    call!("get", "/api/admin/llm-usage", "/api/admin/llm-usage", None);
    call!(
        "get",
        "/api/projects/{id}/llm-performance",
        format!("{p}/llm-performance"),
        None
    );
    call!(
        "get",
        "/api/admin/llm-performance",
        "/api/admin/llm-performance",
        None
    );

    let bodies: BTreeSet<_> = ENDPOINTS
        .iter()
        .filter(|e| e.request.is_some() || e.response.1.is_some())
        .map(|e| (e.method, e.path))
        .collect();
    let missing: Vec<_> = bodies.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "documented bodies never checked: {missing:?}"
    );

    // Errors answer the documented error body.
    for (path, status) in [
        (format!("/api/projects/{}", "missing"), 404),
        (format!("{p}/llm-usage?from=yesterday"), 422),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let answer: Value = response.json().await.unwrap();
        let template = if path.contains("llm-usage") {
            "/api/projects/{id}/llm-usage"
        } else {
            "/api/projects/{id}"
        };
        let schema = schema_at(
            &doc,
            "get",
            template,
            &format!("/responses/{status}/content/application~1json/schema"),
        )
        .unwrap_or_else(|| panic!("GET {template} documents no {status}"));
        check(&schema, &answer, &format!("the {status} of GET {path}"));
    }
}
