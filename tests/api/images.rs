//! Image generation (FR-005) over real HTTP with the simulator as OpenAI's Images
//! API: `POST /v1/images/generations` in OpenAI's shape and "Generate image" in a
//! GPT conversation, each picture a real PNG of the asked size, priced per token
//! from the catalog (prompt at the input price, the picture's fixed output tokens
//! at the output price), held whole by the budget gate and in the ledger as
//! operation `images`.

use crate::both_engines;
use crate::helpers::{error_of, fail_model, new_client, TestApp};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Nano-dollars per token: $5 per 1M prompt tokens (both GPT Image models).
const PROMPT_NANOS: i64 = 5_000;
/// Nano-dollars per output token of gpt-image-1 ($40 per 1M).
const GPT_IMAGE_1_OUTPUT_NANOS: i64 = 40_000;
/// Nano-dollars per output token of gpt-image-2 ($30 per 1M).
const GPT_IMAGE_2_OUTPUT_NANOS: i64 = 30_000;

async fn generate(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    new_client()
        .post(app.url("/v1/images/generations"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers")
}

/// The width and height a PNG's header gives (and that it is one).
fn png_size(encoded: &str) -> (u32, u32) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert_eq!(&bytes[12..16], b"IHDR");
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// The ledger's image rows: (model, input, output, cost, conversation, message).
async fn image_rows(
    app: &TestApp,
) -> Vec<(
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
)> {
    app.state.ledger.flush().await;
    sqlx::query_as(
        "select model, input_tokens, output_tokens, cost_nanos, conversation_id, message_id \
         from llm_usage where operation = 'images' order by created_at",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

both_engines!(
    pictures_come_in_openai_shape_priced_per_token_and_in_the_ledger,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("pictures@example.com").await;
        let project = app.new_project("Pictures").await;
        let token = app.token(&project).await;
        let response = generate(
            &app,
            &token,
            json!({"model": "gpt-image-1", "prompt": "A lighthouse at dusk", "n": 2,
                   "size": "1536x1024", "quality": "low"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-provider"], "openai");
        assert_eq!(response.headers()["x-cover-model"], "gpt-image-1");
        let cost_header = response.headers()["x-cover-cost-usd"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for picture in data {
            assert_eq!(
                png_size(picture["b64_json"].as_str().unwrap()),
                (1536, 1024)
            );
        }
        assert_ne!(data[0]["b64_json"], data[1]["b64_json"]);
        assert_eq!(
            (body["size"].as_str(), body["quality"].as_str()),
            (Some("1536x1024"), Some("low"))
        );
        // Two low 1536x1024 pictures bill 400 output tokens each.
        let input = body["usage"]["input_tokens"].as_i64().unwrap();
        assert!(input > 0);
        assert_eq!(body["usage"]["output_tokens"], 800);
        let cost = input * PROMPT_NANOS + 800 * GPT_IMAGE_1_OUTPUT_NANOS;
        assert_eq!(cost_header, cover::model::money::format_decimal(cost));
        assert_eq!(body["usage"]["cost_usd"], cost_header);
        let rows = image_rows(&app).await;
        assert_eq!(
            rows,
            vec![("gpt-image-1".to_owned(), input, 800, Some(cost), None, None)]
        );

        // cover/default in a Claude project names no image model: the error says which exist.
        let response = generate(&app, &token, json!({"prompt": "A lighthouse"})).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], "model");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("gpt-image-2"),
            "{error}"
        );
        // The defaults of gpt-image-2: one medium square picture, 1,756 output tokens.
        let response = generate(
            &app,
            &token,
            json!({"model": "gpt-image-2", "prompt": "A lighthouse"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            png_size(body["data"][0]["b64_json"].as_str().unwrap()),
            (1024, 1024)
        );
        assert_eq!(body["usage"]["output_tokens"], 1756);
        let input = body["usage"]["input_tokens"].as_i64().unwrap();
        assert_eq!(
            image_rows(&app).await[1].3,
            Some(input * PROMPT_NANOS + 1756 * GPT_IMAGE_2_OUTPUT_NANOS)
        );

        // Bad requests name their parameter; nothing is drawn or billed for them.
        let before = app.simulator_requests().await;
        for (body, param) in [
            (
                json!({"model": "gpt-image-1", "prompt": "x", "size": "999x999"}),
                "size",
            ),
            (
                json!({"model": "gpt-image-1", "prompt": "x", "quality": "ultra"}),
                "quality",
            ),
            (json!({"model": "gpt-image-1", "prompt": "x", "n": 11}), "n"),
            (json!({"model": "gpt-image-1", "prompt": " "}), "prompt"),
            (
                json!({"model": "gpt-image-1", "prompt": "x", "response_format": "url"}),
                "response_format",
            ),
            (json!({"model": "dall-e-3", "prompt": "x"}), "model"),
            (json!({"model": "gpt-4o", "prompt": "x"}), "model"),
        ] {
            let response = generate(&app, &token, body.clone()).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["param"], param, "{body}: {error}");
        }
        assert_eq!(app.simulator_requests().await, before);
        assert_eq!(image_rows(&app).await.len(), 2);
    }
);

both_engines!(
    a_budget_that_cannot_hold_the_whole_picture_refuses_it_before_it_is_drawn,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("thrifty@example.com").await;
        let project = app.new_project("Thrifty").await;
        let token = app.token(&project).await;
        let budget = app
            .client
            .put(app.url(&format!("/api/projects/{project}/budget")))
            .json(&json!({"limitUsd": "0.10", "webhookUrl": null}))
            .send()
            .await
            .unwrap();
        assert!(budget.status().is_success());
        let before = app.simulator_requests().await;
        // A high square gpt-image-1 picture bills 4,160 tokens: $0.1664 > $0.10.
        let response = generate(
            &app,
            &token,
            json!({"model": "gpt-image-1", "prompt": "A lighthouse", "quality": "high"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(app.simulator_requests().await, before);
        assert!(image_rows(&app).await.is_empty());
        // A low one ($0.01088 and the prompt) fits whole.
        let response = generate(
            &app,
            &token,
            json!({"model": "gpt-image-1", "prompt": "A lighthouse", "quality": "low"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(image_rows(&app).await.len(), 1);
    }
);

/// A project switched to GPT with one conversation.
async fn gpt_conversation(app: &TestApp) -> (String, String) {
    app.sign_up("drawer@example.com").await;
    let project = app.new_project("Drawing").await;
    app.configure(
        &project,
        json!({"provider": "openai", "model": "gpt-4o-mini"}),
    )
    .await;
    let conversation = app.conversation_id(&project).await;
    (project, conversation)
}

async fn draw(app: &TestApp, project: &str, conversation: &str, body: Value) -> reqwest::Response {
    app.post(
        &format!("/api/projects/{project}/conversations/{conversation}/images"),
        body,
    )
    .await
}

both_engines!(
    a_gpt_conversation_stores_a_drawn_picture_with_its_answer_and_cost,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (project, conversation) = gpt_conversation(&app).await;
        let detail: Value = app
            .get(&format!(
                "/api/projects/{project}/conversations/{conversation}"
            ))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(detail["imageGeneration"]["model"], "gpt-image-2");
        assert_eq!(detail["imageGeneration"]["sizes"][0], "1024x1024");
        assert_eq!(detail["imageGeneration"]["qualities"][0], "medium");

        let response = draw(
            &app,
            &project,
            &conversation,
            json!({"prompt": "A red bicycle", "size": "1024x1536", "quality": "low"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let drawn: Value = response.json().await.unwrap();
        assert_eq!(drawn["question"]["content"], "A red bicycle");
        let answer = &drawn["answer"];
        assert_eq!(answer["status"], "complete");
        assert_eq!(answer["images"][0]["mediaType"], "image/png");
        assert_eq!(
            png_size(answer["images"][0]["data"].as_str().unwrap()),
            (1024, 1536)
        );
        assert_eq!(answer["facts"]["model"], "gpt-image-2");
        assert_eq!(answer["facts"]["usage"]["outputTokens"], 158);
        let input = answer["facts"]["usage"]["inputTokens"].as_i64().unwrap();
        let cost = input * PROMPT_NANOS + 158 * GPT_IMAGE_2_OUTPUT_NANOS;
        assert_eq!(answer["facts"]["costNanos"], cost);

        // Stored: the conversation shows both, its cost counts the picture,
        // the ledger row belongs to the answer.
        let detail: Value = app
            .get(&format!(
                "/api/projects/{project}/conversations/{conversation}"
            ))
            .await
            .json()
            .await
            .unwrap();
        let messages = detail["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1]["images"], answer["images"]);
        assert_eq!(detail["costNanos"], cost);
        let rows = image_rows(&app).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].3, Some(cost));
        assert_eq!(rows[0].4.as_deref(), Some(conversation.as_str()));
        assert_eq!(rows[0].5.as_deref(), answer["id"].as_str());

        // The conversation goes on: the next question's history carries the drawing's line.
        let next = app.ask_ok(&project, &conversation, "Thanks!").await;
        assert!(
            next["content"].as_str().unwrap().contains("Thanks!"),
            "{next}"
        );

        // The chat page renders the picture before hydration.
        let page = app
            .get(&format!("/projects/{project}/chat?c={conversation}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains(r#"data-test="generate-image""#));
        assert!(page.contains(r#"data-test="generated-image""#));
        assert!(page.contains("src=\"data:image/png;base64,"));

        // A bad size names its field and stores nothing.
        let response = draw(
            &app,
            &project,
            &conversation,
            json!({"prompt": "x", "size": "1x1"}),
        )
        .await;
        let (status, field, _) = error_of(response).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("size"))
        );
        assert_eq!(image_rows(&app).await.len(), 1);
    }
);

both_engines!(
    a_failed_picture_is_stored_as_a_failed_answer_and_other_providers_offer_none,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (project, conversation) = gpt_conversation(&app).await;
        fail_model(&app, "gpt-image-2", "bad_request").await;
        let response = draw(
            &app,
            &project,
            &conversation,
            json!({"prompt": "A red bicycle"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let detail: Value = app
            .get(&format!(
                "/api/projects/{project}/conversations/{conversation}"
            ))
            .await
            .json()
            .await
            .unwrap();
        let messages = detail["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["content"], "A red bicycle");
        assert_eq!(messages[1]["status"], "error");
        assert!(
            messages[1]["error"].as_str().unwrap().contains("rejected"),
            "{detail}"
        );
        // One try (a rejected request is not retried), unbilled.
        let rows = image_rows(&app).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].3, Some(0));

        // A Claude conversation has no image generation, and says so.
        let claude = app.new_project("Claude only").await;
        let other = app.conversation_id(&claude).await;
        let detail: Value = app
            .get(&format!("/api/projects/{claude}/conversations/{other}"))
            .await
            .json()
            .await
            .unwrap();
        assert!(detail.get("imageGeneration").is_none(), "{detail}");
        let response = draw(&app, &claude, &other, json!({"prompt": "A red bicycle"})).await;
        let (status, _, message) = error_of(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("GPT (OpenAI)"), "{message}");
        let page = app
            .get(&format!("/projects/{claude}/chat?c={other}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains(r#"data-test="no-image-generation""#));
        assert!(!page.contains(r#"data-test="generate-image""#));
    }
);
