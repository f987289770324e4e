//! The catalog endpoints of the spec: providers and their models.

use crate::helpers::{error_of, Engine, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_lists_the_four_spec_providers_with_their_models_and_prices() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let body: Value = app.get("/api/llm/providers").await.json().await.unwrap();
    assert_eq!(body["defaultModel"], "claude-3-5-sonnet-20241022");
    let providers = body["providers"].as_array().unwrap();
    let ids: Vec<&str> = providers
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude", "openai", "gemini", "llama"]);
    let counts: Vec<usize> = providers
        .iter()
        .map(|p| p["models"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [5, 4, 3, 5]);
    let sonnet = &providers[0]["models"][0];
    assert_eq!(sonnet["contextWindow"], 200_000);
    assert_eq!(sonnet["pricing"]["inputPerMTok"], "3.00");
    assert_eq!(sonnet["pricing"]["outputPerMTok"], "15.00");
    assert_eq!(sonnet["capabilities"]["tools"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_of_one_provider_are_served_and_unknown_providers_are_named() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let body: Value = app
        .get("/api/llm/providers/gemini/models")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["gemini-1.5-pro", "gemini-1.5-flash", "gemini-1.0-pro"]
    );
    assert_eq!(
        body["models"][0]["pricing"]["longContext"]["inputPerMTok"],
        "2.50"
    );

    let llama: Value = app
        .get("/api/llm/providers/llama/models")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(llama["models"][0]["ollamaTag"], "llama3.1:8b");
    assert!(llama["models"][0]["pricing"].is_null());

    let (status, field, message) =
        error_of(app.get("/api/llm/providers/mistral/models").await).await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id"))
    );
    assert!(message.contains("mistral"), "{message}");
}
