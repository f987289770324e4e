//! The gateway for programs (`/v1/chat/completions`, `/v1/models`) over real
//! HTTP, with the simulator behind it as every provider: OpenAI's wire format
//! in and out, any provider's model, streams with their usage chunk, tools,
//! fallback before the first token, a clean error after it, each attempt a
//! priced ledger row equal to what the answer said, and errors in OpenAI's
//! shape.

use crate::both_engines;
use crate::helpers::{fail_model, fallback_to, listed_models, new_client, Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

const SONNET: &str = "claude-3-5-sonnet-20241022";

/// A signed-in owner, a project and a `chat` token for it.
async fn program(app: &TestApp) -> (String, String) {
    app.sign_up("program@example.com").await;
    let project = app.new_project("Gateway").await;
    let token = app.token(&project).await;
    (project, token)
}

async fn complete(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    new_client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers")
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// The `data:` payloads of a server-sent event stream, in order.
fn data_frames(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|line| line.strip_prefix("data: ").or(line.strip_prefix("data:")))
                .map(|data| data.trim().to_owned())
        })
        .collect()
}

/// Every ledger row of one request: (provider, model, success, cost).
async fn rows_of(app: &TestApp, request_id: &str) -> Vec<(String, String, bool, Option<i64>)> {
    app.state.ledger.flush().await;
    sqlx::query(
        "select provider, model, success, cost_nanos from llm_usage \
         where request_id = $1 order by attempt",
    )
    .bind(request_id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| {
        (
            row.get("provider"),
            row.get("model"),
            row.get::<i64, _>("success") == 1,
            row.get("cost_nanos"),
        )
    })
    .collect()
}

fn request_id(completion_id: &str) -> &str {
    completion_id
        .strip_prefix("chatcmpl-")
        .expect("a chatcmpl- id")
}

fn nanos_of(usd: &str) -> i64 {
    cover::model::money::parse_usd_nanos(usd).expect("a decimal cost")
}

both_engines!(
    a_completion_answers_in_openai_format_and_its_cost_is_the_ledger_s,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (_, token) = program(&app).await;
        let response = complete(&app, &token, ask("cover/default", "What are your hours?")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], SONNET);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "This is a simulated answer to: What are your hours?"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        let usage = &body["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(headers["x-cover-provider"], "claude");
        assert_eq!(headers["x-cover-model"], SONNET);
        assert_eq!(headers["x-cover-fallback"], "none");
        let cost = headers["x-cover-cost-usd"].to_str().unwrap();
        assert_eq!(usage["cost_usd"], cost);
        let overhead: f64 = headers["x-cover-overhead-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(overhead >= 0.0);

        // Sonnet: $3 in, $15 out per million tokens.
        let expected = usage["prompt_tokens"].as_i64().unwrap() * 3_000
            + usage["completion_tokens"].as_i64().unwrap() * 15_000;
        assert_eq!(nanos_of(cost), expected);
        let rows = rows_of(&app, request_id(body["id"].as_str().unwrap())).await;
        assert_eq!(
            rows,
            [("claude".to_owned(), SONNET.to_owned(), true, Some(expected))]
        );
    }
);

both_engines!(
    a_stream_sends_chunks_then_its_usage_then_done,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (_, token) = program(&app).await;
        let mut body = ask("gpt-4o-mini", "Stream this please");
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let response = complete(&app, &token, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-provider"], "openai");
        assert_eq!(response.headers()["x-cover-model"], "gpt-4o-mini");
        let frames = data_frames(&response.text().await.unwrap());
        assert_eq!(
            frames.last().map(String::as_str),
            Some("[DONE]"),
            "{frames:?}"
        );
        let chunks: Vec<Value> = frames[..frames.len() - 1]
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "This is a simulated answer to: Stream this please");
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(
            usage_chunk["choices"],
            json!([]),
            "the usage chunk has no choices"
        );
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let usage = &usage_chunk["usage"];
        // gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
        let expected = usage["prompt_tokens"].as_i64().unwrap() * 150
            + usage["completion_tokens"].as_i64().unwrap() * 600;
        assert_eq!(nanos_of(usage["cost_usd"].as_str().unwrap()), expected);
        let rows = rows_of(&app, request_id(chunks[0]["id"].as_str().unwrap())).await;
        assert_eq!(
            rows,
            [(
                "openai".to_owned(),
                "gpt-4o-mini".to_owned(),
                true,
                Some(expected)
            )],
            "stored before the stream's end was sent"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_tool_call_comes_back_whole_and_streamed_with_its_index() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (_, token) = program(&app).await;
        let tools = json!([{"type": "function", "function": {
            "name": "lookup_order",
            "description": "Finds an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
        }}]);
        for model in ["gpt-4o-mini", SONNET] {
            let mut body = ask(model, "Where is order 42?");
            body["tools"] = tools.clone();
            body["tool_choice"] = json!({"type": "function", "function": {"name": "lookup_order"}});
            let whole: Value = complete(&app, &token, body.clone()).await.json().await.unwrap();
            let choice = &whole["choices"][0];
            assert_eq!(choice["finish_reason"], "tool_calls", "{model}: {whole}");
            let call = &choice["message"]["tool_calls"][0];
            assert_eq!(call["type"], "function");
            assert_eq!(call["function"]["name"], "lookup_order");
            let arguments: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert!(arguments["order_id"].is_string(), "{model}: {arguments}");

            body["stream"] = json!(true);
            let text = complete(&app, &token, body).await.text().await.unwrap();
            let frames = data_frames(&text);
            assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
            let pieces: Vec<Value> = frames[..frames.len() - 1]
                .iter()
                .map(|f| serde_json::from_str::<Value>(f).unwrap())
                .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0].as_object().cloned().map(Value::Object))
                .collect();
            assert!(!pieces.is_empty(), "{model}: {text}");
            assert!(pieces.iter().all(|p| p["index"] == 0), "{model}: {pieces:?}");
            assert_eq!(pieces[0]["function"]["name"], "lookup_order");
            assert!(pieces[0]["id"].is_string());
            let streamed: String = pieces
                .iter()
                .filter_map(|p| p["function"]["arguments"].as_str())
                .collect();
            assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), arguments, "{model}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tool_calls_keep_their_own_index_whole_and_streamed() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (_, token) = program(&app).await;
        let tools = json!([{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}]);
        // The simulator calls the tool once per place asked about; each provider's
        // own parallel form (Anthropic's content blocks, OpenAI's tool_calls) comes
        // out as OpenAI's, the calls numbered 0 and 1.
        for model in ["gpt-4o-mini", SONNET] {
            let mut body = ask(model, "Paris and London");
            body["tools"] = tools.clone();
            body["tool_choice"] = json!("required");
            let whole: Value = complete(&app, &token, body.clone()).await.json().await.unwrap();
            let calls = whole["choices"][0]["message"]["tool_calls"]
                .as_array()
                .unwrap_or_else(|| panic!("{model}: no tool calls in {whole}"))
                .clone();
            let cities: Vec<Value> = calls
                .iter()
                .map(|c| serde_json::from_str::<Value>(c["function"]["arguments"].as_str().unwrap()).unwrap()["city"].clone())
                .collect();
            assert_eq!(cities, [json!("Paris"), json!("London")], "{model}: {whole}");
            assert_ne!(calls[0]["id"], calls[1]["id"], "{model}");

            body["stream"] = json!(true);
            let text = complete(&app, &token, body).await.text().await.unwrap();
            let frames = data_frames(&text);
            assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{model}: {text}");
            let mut arguments = [String::new(), String::new()];
            let mut names = [0, 0];
            for frame in &frames[..frames.len() - 1] {
                let chunk: Value = serde_json::from_str(frame).unwrap();
                for piece in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
                    let index = piece["index"].as_u64().expect("an integer index") as usize;
                    assert!(index < 2, "{model}: {piece}");
                    if piece["function"]["name"].is_string() {
                        names[index] += 1;
                        assert!(piece["id"].is_string(), "{model}: {piece}");
                    }
                    arguments[index] += piece["function"]["arguments"].as_str().unwrap_or_default();
                }
            }
            assert_eq!(names, [1, 1], "{model}: each call opens once: {text}");
            let streamed: Vec<Value> = arguments
                .iter()
                .map(|a| serde_json::from_str::<Value>(a).unwrap()["city"].clone())
                .collect();
            assert_eq!(streamed, cities, "{model}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_format_holds_answers_to_json_where_the_model_can() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (project, token) = program(&app).await;
        let content = |body: &Value| -> Value {
            serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{e}: {body}"))
        };
        let mut body = ask("gpt-4o-mini", "Opening hours in JSON");
        body["response_format"] = json!({"type": "json_object"});
        let whole: Value = complete(&app, &token, body).await.json().await.unwrap();
        assert_eq!(
            content(&whole),
            json!({"answer": "This is a simulated answer to: Opening hours in JSON"})
        );
        let schema = json!({"type": "object", "properties": {"opens": {"type": "string"}, "days": {"type": "integer"}},
                            "required": ["opens", "days"], "additionalProperties": false});
        let mut body = ask("gpt-4o-mini", "Opening hours");
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "hours", "schema": schema, "strict": true}});
        let whole: Value = complete(&app, &token, body.clone()).await.json().await.unwrap();
        assert_eq!(content(&whole), json!({"opens": "Opening hours", "days": 42}));
        body["stream"] = json!(true);
        let text = complete(&app, &token, body).await.text().await.unwrap();
        let frames = data_frames(&text);
        let streamed: String = frames[..frames.len() - 1]
            .iter()
            .filter_map(|f| {
                serde_json::from_str::<Value>(f).unwrap()["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&streamed).unwrap(),
            json!({"opens": "Opening hours", "days": 42})
        );

        // Where the model cannot, a 400 names the parameter and lists who can.
        let mut body = ask(SONNET, "Opening hours in JSON");
        body["response_format"] = json!({"type": "json_object"});
        let response = complete(&app, &token, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], "response_format");
        assert!(error["error"]["message"].as_str().unwrap().contains("gpt-4o-mini"), "{error}");
        // JSON mode is not schemas: GPT-3.5 Turbo takes the one, not the other.
        let mut body = ask("gpt-3.5-turbo", "Opening hours");
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "hours", "schema": {"type": "object"}}});
        let response = complete(&app, &token, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let mut body = ask("gpt-4o-mini", "Opening hours");
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}});
        let error: Value = complete(&app, &token, body).await.json().await.unwrap();
        assert_eq!(error["error"]["param"], "response_format.json_schema.name");

        // A fallback that cannot answer in JSON is left out: the failure is
        // reported rather than free text from Claude.
        app.configure(
            &project,
            json!({"provider": "openai", "model": "gpt-4o-mini", "fallbackConfig": {"enabled": true, "provider": "claude", "model": SONNET, "retryAttempts": 1}}),
        )
        .await;
        fail_model(&app, "gpt-4o-mini", "bad_request").await;
        let mut body = ask("cover/default", "Opening hours in JSON");
        body["response_format"] = json!({"type": "json_object"});
        let response = complete(&app, &token, body).await;
        assert_ne!(response.status(), StatusCode::OK);
        assert_ne!(
            response.headers().get("x-cover-model").map(|v| v.to_str().unwrap()),
            Some(SONNET)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_falls_back_before_the_first_token_whole_and_streamed() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (project, token) = program(&app).await;
        app.configure(&project, fallback_to("openai", "gpt-4o-mini", 1))
            .await;
        fail_model(&app, SONNET, "overloaded").await;
        let response = complete(&app, &token, ask("cover/default", "Anyone there?")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-model"], "gpt-4o-mini");
        let fallback = response.headers()["x-cover-fallback"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            fallback.contains(SONNET) && fallback.contains("overloaded"),
            "{fallback}"
        );
        let body: Value = response.json().await.unwrap();
        let rows = rows_of(&app, request_id(body["id"].as_str().unwrap())).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            !rows[0].2 && rows[1].2,
            "the primary failed, the fallback answered: {rows:?}"
        );

        let mut streamed = ask("cover/default", "Anyone there?");
        streamed["stream"] = json!(true);
        let response = complete(&app, &token, streamed).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-model"], "gpt-4o-mini");
        let frames = data_frames(&response.text().await.unwrap());
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_after_its_first_token_ends_with_an_error_not_done() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (project, token) = program(&app).await;
        // Even with a fallback configured: the client already has tokens.
        app.configure(&project, fallback_to("openai", "gpt-4o-mini", 1))
            .await;
        fail_model(&app, SONNET, "cut").await;
        let mut body = ask("cover/default", "Tell me a long story");
        body["stream"] = json!(true);
        let response = complete(&app, &token, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let frames = data_frames(&response.text().await.unwrap());
        assert!(!frames.iter().any(|f| f == "[DONE]"), "{frames:?}");
        let last: Value = serde_json::from_str(frames.last().unwrap()).unwrap();
        assert!(last["error"]["message"].is_string(), "{last}");
        assert_eq!(last["error"]["code"], "upstream_error");
        let first: Value = serde_json::from_str(&frames[0]).unwrap();
        let rows = rows_of(&app, request_id(first["id"].as_str().unwrap())).await;
        assert!(
            !rows.is_empty() && rows.iter().all(|r| r.1 == SONNET),
            "{rows:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_exactly_what_completions_accept() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (_, token) = program(&app).await;
        let listed = listed_models(&app.url("/v1/models"), &token).await;
        // The test server has managed Claude and OpenAI keys, no Gemini key
        // and no Llama server.
        let owners: std::collections::BTreeSet<&str> =
            listed.iter().map(|(_, owner)| owner.as_str()).collect();
        assert_eq!(owners, ["claude", "openai"].into());
        for (id, _) in &listed {
            let response = complete(&app, &token, ask(id, "Hi")).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{id} is listed but refused"
            );
        }
        for refused in ["gemini-1.5-pro", "no-such-model"] {
            let response = complete(&app, &token, ask(refused, "Hi")).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["param"], "model", "{body}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_openai_shape_and_a_spent_budget_says_do_not_retry() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (project, token) = program(&app).await;

        let anonymous = new_client()
            .post(app.url("/v1/chat/completions"))
            .json(&ask("cover/default", "Hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let body: Value = anonymous.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");

        let mut hot = ask(SONNET, "Hi");
        hot["temperature"] = json!(1.5);
        let response = complete(&app, &token, hot).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "temperature", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");

        let response = app
            .client
            .put(app.url(&format!("/api/projects/{project}/budget")))
            .json(&json!({"limitUsd": "0.000001", "webhookUrl": null}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let response = complete(&app, &token, ask("cover/default", "Hi")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        assert!(app.simulator_requests().await == 0, "nothing was sent");
    })
    .await;
}

/// The named events of a server-sent event stream: (event, data as JSON).
fn named_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            Some((
                field("event:")?,
                serde_json::from_str(&field("data:")?).ok()?,
            ))
        })
        .collect()
}

async fn messages(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    new_client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", token)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("the gateway answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_format_reaches_gpt_whole_and_streamed_with_tools() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (_, token) = program(&app).await;
        let ask = json!({"model": "gpt-4o-mini", "max_tokens": 200,
            "system": "Be brief.", "messages": [{"role": "user", "content": "Hello there"}]});
        let response = messages(&app, &token, ask.clone()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-provider"], "openai");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(body["content"][0]["text"], "This is a simulated answer to: Hello there");
        assert_eq!(body["stop_reason"], "end_turn");
        let usage = &body["usage"];
        let expected = usage["input_tokens"].as_i64().unwrap() * 150
            + usage["output_tokens"].as_i64().unwrap() * 600;
        assert_eq!(nanos_of(usage["cost_usd"].as_str().unwrap()), expected);
        let id = body["id"].as_str().unwrap().strip_prefix("msg_").unwrap();
        let rows = rows_of(&app, id).await;
        assert_eq!(rows, [("openai".to_owned(), "gpt-4o-mini".to_owned(), true, Some(expected))]);

        let mut streamed = ask.clone();
        streamed["stream"] = json!(true);
        let text = messages(&app, &token, streamed).await.text().await.unwrap();
        let events = named_events(&text);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
        assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
        assert!(names.contains(&"content_block_start") && names.contains(&"content_block_stop"));
        let said: String = events
            .iter()
            .filter_map(|(_, data)| data.pointer("/delta/text").and_then(Value::as_str))
            .collect();
        assert_eq!(said, "This is a simulated answer to: Hello there");
        let (_, delta) = events.iter().find(|(name, _)| name == "message_delta").unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);

        let mut tool = ask;
        tool["tools"] = json!([{"name": "lookup_order", "description": "Finds an order",
            "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}]);
        tool["tool_choice"] = json!({"type": "tool", "name": "lookup_order"});
        tool["stream"] = json!(true);
        let text = messages(&app, &token, tool).await.text().await.unwrap();
        let events = named_events(&text);
        let (_, start) = events
            .iter()
            .find(|(name, data)| name == "content_block_start" && data["content_block"]["type"] == "tool_use")
            .unwrap_or_else(|| panic!("no tool_use block: {text}"));
        assert_eq!(start["content_block"]["name"], "lookup_order");
        let index = &start["index"];
        let json_text: String = events
            .iter()
            .filter(|(_, data)| &data["index"] == index)
            .filter_map(|(_, data)| data.pointer("/delta/partial_json").and_then(Value::as_str))
            .collect();
        let input: Value = serde_json::from_str(&json_text).unwrap();
        assert!(input["order_id"].is_string(), "{input}");
        let (_, delta) = events.iter().find(|(name, _)| name == "message_delta").unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");

        let response = messages(&app, &token, json!({"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}]})).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("max_tokens"), "{body}");
    })
    .await;
}

async fn embeddings(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    new_client()
        .post(app.url("/v1/embeddings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers")
}

both_engines!(
    embeddings_come_in_openai_shape_from_any_provider_priced_and_in_the_ledger,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (_, token) = program(&app).await;
        let response = embeddings(
            &app,
            &token,
            json!({"model": "text-embedding-3-small", "input": ["Refunds are paid in 14 days", "Parcels ship daily"]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cover-provider"], "openai");
        assert_eq!(
            response.headers()["x-cover-model"],
            "text-embedding-3-small"
        );
        let cost = response.headers()["x-cover-cost-usd"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["model"], "text-embedding-3-small");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(
            (data[0]["index"].as_u64(), data[1]["index"].as_u64()),
            (Some(0), Some(1))
        );
        let floats: Vec<f32> = data[0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(floats.len(), 1536);
        let tokens = body["usage"]["prompt_tokens"].as_i64().unwrap();
        assert!(tokens > 0);

        // Priced from the catalog ($0.02 per million tokens), in the ledger as such.
        app.state.ledger.flush().await;
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "select operation, input_tokens, cost_nanos from llm_usage where model = 'text-embedding-3-small'",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, "embeddings");
        assert_eq!(rows[0].1, tokens);
        assert_eq!(rows[0].2, Some(tokens * 20));
        assert_eq!(cost, cover::model::money::format_decimal(tokens * 20));

        // base64 is the same floats as little-endian bytes.
        let encoded: Value = embeddings(
            &app,
            &token,
            json!({"model": "text-embedding-3-small", "input": "Refunds are paid in 14 days", "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(decoded, floats);

        // cover/default is the project's embedding model: Voyage for a Claude project.
        let response = embeddings(
            &app,
            &token,
            json!({"model": "cover/default", "input": "Hello"}),
        )
        .await;
        assert_eq!(response.headers()["x-cover-model"], "voyage-3.5");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 1024);

        // Refusals in OpenAI's shape, naming the parameter.
        for (request, param) in [
            (json!({"model": "gpt-4o", "input": "x"}), "model"),
            (
                json!({"model": "text-embedding-3-small", "input": [1, 2, 3]}),
                "input",
            ),
            (
                json!({"model": "text-embedding-3-small", "input": ""}),
                "input",
            ),
            (
                json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
                "encoding_format",
            ),
            (json!({"input": "x"}), "model"),
        ] {
            let response = embeddings(&app, &token, request.clone()).await;
            let status = response.status();
            let error: Value = response.json().await.unwrap();
            assert!(status.is_client_error(), "{request}: {status}");
            assert_eq!(error["error"]["param"], param, "{request}: {error}");
        }
        // An embedding model is no chat model.
        let response = complete(&app, &token, ask("text-embedding-3-small", "Hi")).await;
        assert!(response.status().is_client_error());
    }
);
