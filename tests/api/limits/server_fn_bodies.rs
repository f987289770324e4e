//! A server function whose body cannot be read as its arguments is the
//! caller's mistake: it answers 400 with what is wrong, never a 5xx.

use crate::helpers::{within_limit, Engine, TestApp};
use reqwest::StatusCode;

/// POSTs `body` as a form to the server function at `endpoint`; returns the
/// status and the error's code and message.
async fn post_form(app: &TestApp, endpoint: &str, body: Vec<u8>) -> (StatusCode, String, String) {
    let response = app
        .client
        .post(app.url(&format!("/sfn/{endpoint}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let error: serde_json::Value = response.json().await.expect("a JSON error");
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_function_body_missing_a_required_field_answers_400() {
    within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (status, code, message) =
            post_form(&app, "auth/login", b"email=ada%40example.com".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {message}");
        assert_eq!(code, "bad_request");
        assert!(
            message.contains("password"),
            "names the missing field: {message}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_function_body_that_is_not_text_answers_400() {
    within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (status, code, message) =
            post_form(&app, "auth/login", b"email=\xff\xfe&password=x".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {message}");
        assert_eq!(code, "bad_request");
        assert!(
            message.to_lowercase().contains("utf-8"),
            "says what is wrong: {message}"
        );
    })
    .await;
}
