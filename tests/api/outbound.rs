//! Requests to URLs a user supplied go through the guarded client: a loopback
//! canary (the server's own network, from an attacker's point of view) must
//! receive nothing — not from Validate, not from a saved Llama base URL, not
//! from a budget webhook, not through a redirect — and nothing of an upstream
//! body comes back to the caller.

use crate::helpers::{captured_logs, Engine, TestApp, TestOptions};
use cover::server::outbound::AllowList;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an internal service would answer; it must never reach a caller.
const INTERNAL_BODY: &str = r#"{"secret":"internal-service-body-7f3a"}"#;

/// A loopback HTTP service that counts every request and answers
/// [`INTERNAL_BODY`] with a 401 (as a key check would see it); optionally it
/// redirects everything to `redirect_to` instead.
struct Canary {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    async fn start(redirect_to: Option<String>) -> Canary {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let (counter, redirect_to) = (counter.clone(), redirect_to.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match redirect_to {
                    Some(to) => axum::response::Response::builder()
                        .status(StatusCode::TEMPORARY_REDIRECT.as_u16())
                        .header("location", to)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                    None => axum::response::Response::builder()
                        .status(StatusCode::UNAUTHORIZED.as_u16())
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(INTERNAL_BODY))
                        .unwrap(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Canary { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An app whose guard allows only `allowed` (nothing private by default).
async fn guarded_app(allowed: &str) -> TestApp {
    let options = TestOptions {
        allowed_private_hosts: AllowList::parse(allowed).unwrap(),
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    app.sign_up("outbound@example.com").await;
    // Validate is for owners of some project.
    app.new_project("Outbound").await;
    app
}

async fn validate_llama(app: &TestApp, base_url: &str) -> (StatusCode, Value) {
    let response = app
        .post(
            "/api/llm/providers/llama/validate",
            json!({"apiKey": "any", "baseUrl": base_url, "llamaFlavour": "openAiCompatible"}),
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_never_reaches_the_servers_own_network_by_address_or_by_name() {
    let app = guarded_app("").await;
    let canary = Canary::start(None).await;
    for base_url in [
        format!("http://127.0.0.1:{}", canary.port),
        format!("http://localhost:{}", canary.port),
        format!("http://[::ffff:127.0.0.1]:{}", canary.port),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let (status, check) = validate_llama(&app, &base_url).await;
        assert_eq!(status, StatusCode::OK, "{base_url}: {check}");
        assert_eq!(check["valid"], false, "{base_url}: {check}");
        let message = check["message"].as_str().unwrap();
        assert!(
            message.contains("private"),
            "{base_url}: the refusal is said: {message}"
        );
        assert!(!message.contains("internal-service-body"), "{message}");
    }
    assert_eq!(canary.hits(), 0, "the canary received nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_private_server_is_reached_but_its_body_never_comes_back() {
    let canary = Canary::start(None).await;
    let app = guarded_app("127.0.0.1").await;
    let (_, check) = validate_llama(&app, &format!("http://127.0.0.1:{}", canary.port)).await;
    assert_eq!(
        canary.hits(),
        1,
        "the allow-list lets the operator's own server through"
    );
    assert_eq!(check["valid"], false);
    let message = check["message"].as_str().unwrap();
    assert!(!message.contains("internal-service-body"), "{message}");
    assert!(
        !captured_logs().contains("internal-service-body"),
        "nor is it logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admins_allow_list_opens_a_private_server_and_closes_it_again() {
    let canary = Canary::start(None).await;
    let options = TestOptions {
        allowed_private_hosts: AllowList::default(),
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    app.sign_up_admin("admin@example.com").await;
    app.new_project("Office Llama").await;
    let base_url = format!("http://127.0.0.1:{}", canary.port);
    let put = |hosts: Value| {
        app.client
            .put(app.url("/api/admin/private-hosts"))
            .json(&json!({ "hosts": hosts }))
            .send()
    };
    let listed: Value = app
        .get("/api/admin/private-hosts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!({"operator": [], "admin": []}));
    validate_llama(&app, &base_url).await;
    assert_eq!(canary.hits(), 0, "not allowed yet");

    let response = put(json!(["gpu.internal", "127.0.0.0/8"])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed["admin"], json!(["gpu.internal", "127.0.0.0/8"]));
    validate_llama(&app, &base_url).await;
    assert_eq!(
        canary.hits(),
        1,
        "the admin's entry lets the private server through"
    );

    for bad in [
        json!(["not a host"]),
        json!(["10.0.0.0/33"]),
        json!(["a, b"]),
    ] {
        let (status, field, message) =
            crate::helpers::error_of(put(bad.clone()).await.unwrap()).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("hosts")),
            "{bad}: {message}"
        );
    }
    let kept: Value = app
        .get("/api/admin/private-hosts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        kept["admin"],
        json!(["gpu.internal", "127.0.0.0/8"]),
        "nothing invalid was saved"
    );

    assert_eq!(put(json!([])).await.unwrap().status(), StatusCode::OK);
    let (_, check) = validate_llama(&app, &base_url).await;
    assert_eq!(canary.hits(), 1, "closed again");
    assert!(
        check["message"].as_str().unwrap().contains("private"),
        "{check}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let canary = Canary::start(None).await;
    let redirector =
        Canary::start(Some(format!("http://127.0.0.1:{}/v1/models", canary.port))).await;
    let app = guarded_app("127.0.0.1").await;
    let (_, check) = validate_llama(&app, &format!("http://127.0.0.1:{}", redirector.port)).await;
    assert_eq!(redirector.hits(), 1);
    assert_eq!(canary.hits(), 0, "the redirect was not followed: {check}");
    assert_eq!(check["valid"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_base_urls_and_webhooks_are_refused_when_saved_and_when_called() {
    let app = guarded_app("").await;
    let canary = Canary::start(None).await;
    let project = app.new_project("Outbound").await;
    let config = format!("/api/projects/{project}/llm-config");
    let budget = format!("/api/projects/{project}/budget");

    // An address on the server's network is refused when saved (422, field named).
    let saved = app
        .patch(
            &config,
            json!({"provider": "llama", "model": "llama-3.1-70b",
            "baseUrl": format!("http://127.0.0.1:{}", canary.port)}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(saved.json::<Value>().await.unwrap()["field"], "baseUrl");
    let webhook = app
        .client
        .put(app.url(&budget))
        .json(&json!({"limitUsd": "5", "webhookUrl": "http://169.254.169.254/latest/meta-data/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        webhook.json::<Value>().await.unwrap()["field"],
        "webhookUrl"
    );

    // A name is only known to be private when it resolves: saved, then
    // refused at connect time.
    let by_name = format!("http://localhost:{}", canary.port);
    app.configure(
        &project,
        json!({"provider": "llama", "model": "llama-3.1-70b", "baseUrl": by_name}),
    )
    .await;
    let conversation = app.conversation_id(&project).await;
    let answer = app.ask(&project, &conversation, "Hello?").await;
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let body = answer.text().await.unwrap();
    assert!(!body.contains("internal-service-body"), "{body}");

    let hook = format!("http://localhost:{}/hook", canary.port);
    let set = app
        .client
        .put(app.url(&budget))
        .json(&json!({"limitUsd": "0.0003", "webhookUrl": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    // Free Llama answers reach no threshold: short Claude answers (each in a
    // new conversation, so each fits) spend until an alert fires.
    app.configure(
        &project,
        json!({"provider": "claude", "model": "claude-3-5-sonnet-20241022", "parameters": {"maxTokens": 8}}),
    )
    .await;
    for _ in 0..20 {
        let notes: Value = app
            .get(&format!("/api/projects/{project}/notifications"))
            .await
            .json()
            .await
            .unwrap();
        if !notes["notifications"].as_array().unwrap().is_empty()
            || app
                .ask(&project, &app.conversation_id(&project).await, "Spend")
                .await
                .status()
                != StatusCode::OK
        {
            break;
        }
    }
    // The 50 % alert's delivery is refused when the name resolves: wait for its log line.
    let refused = || {
        captured_logs().lines().any(|line| {
            line.contains("budget webhook unreachable") && line.contains("host=localhost")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !refused() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused(), "the alert's delivery was attempted and refused");
    assert_eq!(
        canary.hits(),
        0,
        "neither the answer nor the webhook reached the canary"
    );
}
