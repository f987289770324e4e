//! `cover serve --demo`: with no provider key and the providers' addresses
//! pointing nowhere, a newcomer still gets answers (streamed at a human pace),
//! costs and every provider's models: the simulator runs inside the server.

use crate::helpers::{
    create_admin, listed_models, new_client, post_with, Engine, ServerProcess, TestDatabase,
    PASSWORD,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_answers_with_no_provider_key() {
    crate::helpers::within_limit(async {
        let database = TestDatabase::create(Engine::Sqlite).await;
        create_admin(&database.url, "demo@example.com").await;
        // No key, and every provider address unreachable: only the demo's own
        // simulator can answer.
        let nowhere = "http://127.0.0.1:9";
        let server = ServerProcess::launch(
            &["serve", "--demo"],
            &database.url,
            nowhere,
            &[("ANTHROPIC_API_KEY", ""), ("OPENAI_API_KEY", "")],
        )
        .await;
        let client = new_client();
        let login = post_with(
            &client,
            &server.url("/api/auth/login"),
            json!({"email": "demo@example.com", "password": PASSWORD}),
        )
        .await;
        assert_eq!(login.status(), StatusCode::OK);
        let project: Value = post_with(
            &client,
            &server.url("/api/projects"),
            json!({"name": "Demo"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let id = project["id"].as_str().unwrap();
        let conversation: Value = post_with(
            &client,
            &server.url(&format!("/api/projects/{id}/conversations")),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
        let path = format!(
            "/api/projects/{id}/conversations/{}/messages",
            conversation["id"].as_str().unwrap()
        );
        let response = post_with(
            &client,
            &server.url(&path),
            json!({"content": "Hello demo"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["content"],
            "This is a simulated answer to: Hello demo"
        );
        assert!(answer["costNanos"].as_i64().unwrap() > 0, "{answer}");
        assert!(
            answer["latencyMs"].as_u64().unwrap() >= 300,
            "the demo streams at a human pace: {answer}"
        );

        let token: Value = post_with(
            &client,
            &server.url(&format!("/api/projects/{id}/tokens")),
            json!({"name": "demo"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let listed =
            listed_models(&server.url("/v1/models"), token["secret"].as_str().unwrap()).await;
        let owners: std::collections::BTreeSet<&str> =
            listed.iter().map(|(_, owner)| owner.as_str()).collect();
        assert_eq!(
            owners,
            ["claude", "gemini", "openai"].into(),
            "every keyed provider"
        );
    })
    .await;
}
