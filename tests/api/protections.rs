//! What guards every request and response: unsafe requests from another site
//! are refused, whatever they authenticate with; every answer carries the
//! security headers; bodies over a route's limit get a JSON `413`.

use crate::helpers::{new_client, post_with, Engine, TestApp, TestOptions, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An error answer's status, `error.code` and message.
async fn error_of(response: reqwest::Response) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (
        status,
        code,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_requests_from_another_site_are_refused_with_or_without_a_session() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("csrf@example.com").await;
    let project = app.new_project("Guarded").await;
    let credentials = json!({"email": "csrf@example.com", "password": PASSWORD});
    let cross_site = [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "https://sub.example"),
        ],
    ];
    for headers in &cross_site {
        for (method, path, body) in [
            ("POST", "/api/auth/login".to_owned(), credentials.clone()),
            (
                "PUT",
                format!("/api/projects/{project}/budget"),
                json!({"limitUsd": null}),
            ),
            ("POST", "/sfn/auth/logout".to_owned(), json!({})),
        ] {
            let mut request = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .json(&body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let (status, code, message) = error_of(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} {headers:?}");
            assert_eq!(code.as_deref(), Some("forbidden"));
            assert!(message.contains("cross-site"), "{message}");
        }
    }
    // The same requests from the site itself (or from a program) pass.
    let same_site = app
        .client
        .post(app.url("/api/auth/login"))
        .header("sec-fetch-site", "same-origin")
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), StatusCode::OK);
    let own_origin = app
        .client
        .put(app.url(&format!("/api/projects/{project}/budget")))
        .header("origin", app.address.clone())
        .json(&json!({"limitUsd": "5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(own_origin.status(), StatusCode::OK);
    let budget: Value = app
        .get(&format!("/api/projects/{project}/budget"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        budget["limitNanos"], 5_000_000_000i64,
        "the refused removals removed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for path in [
        "/",
        "/login",
        "/api/llm/providers",
        "/api/openapi.json",
        "/no-such-page",
        "/api/projects",
    ] {
        let response = new_client().get(app.url(path)).send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path} has no {name}"))
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "default-src 'self'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "no HSTS over plain HTTP"
        );
    }
}

/// Sends a POST to `path` that announces a body of `length` bytes without
/// sending it, and answers the whole response.
async fn announce_body(app: &TestApp, path: &str, cookie: &str, length: usize) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{cookie}Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer),
    )
    .await
    .expect("the server answers without waiting for the body")
    .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_routes_limit_is_a_json_413_and_a_question_may_carry_its_images() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("limits@example.com").await;
    let project = app.new_project("Limits").await;
    // Refused on the declared length, before the body is read: a raw
    // request that only announces its body is enough (a client still sending
    // it would see the connection close under it).
    let signed_up = post_with(
        &new_client(),
        &app.url("/api/auth/signup"),
        json!({"email": "big@example.com", "password": PASSWORD}),
    )
    .await;
    let cookie = signed_up.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let answer = announce_body(&app, "/api/projects", &session, 1024 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"too_large""#), "{answer}");
    let answer = announce_body(
        &app,
        "/sfn/auth/login",
        "",
        cover::server::protections::MESSAGE_BODY_LIMIT + 1,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"too_large""#), "{answer}");
    let upload = format!("/api/projects/{project}/documents");
    let answer = announce_body(
        &app,
        &upload,
        &session,
        cover::server::protections::UPLOAD_BODY_LIMIT + 1,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A document over the general limit is stored.
    let words = "refunds shipping warranty invoices ".repeat(10_000);
    assert!(words.len() > cover::server::protections::BODY_LIMIT);
    let part = reqwest::multipart::Part::text(words).file_name("long.txt");
    let response = app
        .client
        .post(app.url(&upload))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // A question with a 4 MiB image (over the general limit) reaches the route.
    let conversation = app.conversation_id(&project).await;
    let image = "A".repeat(4 * 1024 * 1024 / 3 * 4);
    let response = app
        .post(
            &crate::helpers::messages_path(&project, &conversation),
            json!({"content": "What is this?", "images": [{"mediaType": "image/png", "data": image}]}),
        )
        .await;
    assert_ne!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_tls_the_session_cookie_is_host_only_secure_and_sent_with_hsts() {
    let options = TestOptions {
        secure_cookies: true,
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    let signed_up = post_with(
        &new_client(),
        &app.url("/api/auth/signup"),
        json!({"email": "tls@example.com", "password": PASSWORD}),
    )
    .await;
    let cookie = signed_up.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-cover_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert!(signed_up
        .headers()
        .contains_key("strict-transport-security"));
}
