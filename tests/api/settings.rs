//! Project LLM settings through the JSON API: defaults, every validation rule,
//! BYOK keys checked with the provider (the simulator) and stored encrypted,
//! Test Connection, API tokens and who may do what.

use crate::both_engines;
use crate::helpers::{error_of, new_client, Engine, TestApp, GOOD_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Signs up and creates a project; returns its id.
async fn project(app: &TestApp) -> String {
    app.sign_up("owner@example.com").await;
    app.new_project("Bot").await
}

async fn config(app: &TestApp, id: &str) -> Value {
    let response = app.get(&format!("/api/projects/{id}/llm-config")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

both_engines!(
    a_new_project_starts_on_claude_3_5_sonnet_as_version_1,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let id = project(&app).await;
        let config = config(&app, &id).await;
        assert_eq!(config["version"], 1);
        assert_eq!(config["provider"], "claude");
        assert_eq!(config["model"], "claude-3-5-sonnet-20241022");
        assert_eq!(config["apiKeySource"], "managed");
        assert!(config["apiKeyMasked"].is_null());
        assert_eq!(
            config["parameters"],
            json!({"temperature": 0.7, "topP": 1.0, "maxTokens": 4096})
        );
        assert_eq!(
            config["fallbackConfig"],
            json!({"enabled": false, "provider": "openai", "model": "gpt-4o-mini", "retryAttempts": 3})
        );
    }
);

both_engines!(every_saved_change_is_a_new_version, |engine| async move {
    let app = TestApp::spawn(engine).await;
    let id = project(&app).await;
    let path = format!("/api/projects/{id}/llm-config");
    let switched: Value = app
        .patch(&path, json!({"provider": "openai"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (switched["version"].as_i64(), switched["model"].as_str()),
        (Some(2), Some("gpt-4o"))
    );
    let hot: Value = app
        .patch(
            &path,
            json!({"parameters": {"temperature": 1.5, "frequencyPenalty": 0.5}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hot["version"], 3);
    assert_eq!(hot["parameters"]["temperature"], 1.5);
    assert_eq!(hot["parameters"]["maxTokens"], 4096);
    assert_eq!(
        config(&app, &id).await["parameters"]["frequencyPenalty"],
        0.5
    );
});

both_engines!(
    every_invalid_value_answers_422_naming_the_field_and_nothing_is_saved,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let id = project(&app).await;
        let path = format!("/api/projects/{id}/llm-config");
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"parameters": {"temperature": 1.5}}),
                "parameters.temperature",
                "between 0 and 1",
            ),
            (
                json!({"parameters": {"temperature": -0.1}}),
                "parameters.temperature",
                "between 0 and 1",
            ),
            (
                json!({"parameters": {"maxTokens": 0}}),
                "parameters.maxTokens",
                "1–8192",
            ),
            (
                json!({"parameters": {"maxTokens": 8193}}),
                "parameters.maxTokens",
                "1–8192",
            ),
            (
                json!({"parameters": {"topP": 1.1}}),
                "parameters.topP",
                "between 0 and 1",
            ),
            (
                json!({"parameters": {"frequencyPenalty": 0.5}}),
                "parameters.frequencyPenalty",
                "OpenAI",
            ),
            (
                json!({"parameters": {"presencePenalty": 0.5}}),
                "parameters.presencePenalty",
                "OpenAI",
            ),
            (
                json!({"parameters": {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}}),
                "parameters.safetySettings",
                "Gemini",
            ),
            (
                json!({"parameters": {"temprature": 0.5}}),
                "parameters.temprature",
                "unknown parameter",
            ),
            (
                json!({"parameters": {"temperature": "hot"}}),
                "parameters",
                "wrong type",
            ),
            (json!({"model": "gpt-4o"}), "model", "not a claude"),
            (json!({"model": "claude-9"}), "model", "unknown model"),
            (
                json!({"fallbackConfig": {"enabled": true, "provider": "openai", "model": "gpt-4o-mini", "retryAttempts": 11}}),
                "fallbackConfig.retryAttempts",
                "between 0 and 10",
            ),
            (
                json!({"fallbackConfig": {"enabled": true, "provider": "gemini", "model": "gpt-4o-mini", "retryAttempts": 1}}),
                "fallbackConfig.model",
                "not a gemini",
            ),
            (
                json!({"fallbackConfig": {"enabled": true, "provider": "claude", "model": "claude-3-5-sonnet-20241022", "retryAttempts": 1}}),
                "fallbackConfig.model",
                "differ",
            ),
            (
                json!({"baseUrl": "ftp://llama.internal"}),
                "baseUrl",
                "http://",
            ),
            (
                json!({"systemPrompt": "x".repeat(20_001)}),
                "systemPrompt",
                "20000",
            ),
            (
                json!({"apiKeySource": "byok"}),
                "apiKey",
                "enter your claude API key",
            ),
        ];
        for (body, field, fragment) in cases {
            let (status, got_field, message) = error_of(app.patch(&path, body.clone()).await).await;
            assert_eq!(
                (status, got_field.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {message}"
            );
            assert!(
                message.contains(fragment),
                "{body}: `{message}` lacks `{fragment}`"
            );
        }
        // OpenAI's own ranges.
        app.patch(&path, json!({"provider": "openai"})).await;
        for (body, field) in [
            (
                json!({"parameters": {"temperature": 2.1}}),
                "parameters.temperature",
            ),
            (
                json!({"parameters": {"frequencyPenalty": 2.5}}),
                "parameters.frequencyPenalty",
            ),
            (
                json!({"parameters": {"presencePenalty": -2.5}}),
                "parameters.presencePenalty",
            ),
            (json!({"parameters": {"topK": 40}}), "parameters.topK"),
            (
                json!({"parameters": {"maxTokens": 16385}}),
                "parameters.maxTokens",
            ),
        ] {
            let (status, got, message) = error_of(app.patch(&path, body.clone()).await).await;
            assert_eq!(
                (status, got.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {message}"
            );
        }
        // Gemini's safety settings.
        app.patch(&path, json!({"provider": "gemini"})).await;
        let bad = json!({"parameters": {"safetySettings": [{"category": "HARM_CATEGORY_RUDENESS", "threshold": "BLOCK_NONE"}]}});
        let (status, field, _) = error_of(app.patch(&path, bad).await).await;
        assert_eq!(
            (status, field.as_deref()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("parameters.safetySettings")
            )
        );
        let good = json!({"parameters": {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]}});
        assert_eq!(app.patch(&path, good).await.status(), StatusCode::OK);
        // Only the three valid switches and the safety change were saved.
        assert_eq!(config(&app, &id).await["version"], 4);
        // Unknown top-level fields are malformed requests.
        let (status, _, message) = error_of(app.patch(&path, json!({"colour": "red"})).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("colour"), "{message}");
    }
);

both_engines!(
    a_wrong_byok_key_is_refused_and_a_right_one_is_stored_masked,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let id = project(&app).await;
        let path = format!("/api/projects/{id}/llm-config");
        let (status, field, message) = error_of(
            app.patch(&path, json!({"apiKey": "sk-ant-api03-wrong-key-0000"}))
                .await,
        )
        .await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("apiKey"))
        );
        assert!(message.contains("rejected"), "{message}");
        let unchanged = config(&app, &id).await;
        assert_eq!(
            (
                unchanged["version"].as_i64(),
                unchanged["apiKeyMasked"].is_null()
            ),
            (Some(1), true)
        );

        let saved = app.patch(&path, json!({"apiKey": GOOD_KEY})).await;
        assert_eq!(saved.status(), StatusCode::OK);
        let text = saved.text().await.unwrap();
        assert!(!text.contains(GOOD_KEY), "the key must never be returned");
        let saved: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(saved["apiKeySource"], "byok");
        assert_eq!(saved["apiKeyMasked"], "sk-ant-...k4j2");
        assert_eq!(config(&app, &id).await["apiKeyMasked"], "sk-ant-...k4j2");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_with_the_provider_before_anything_is_stored() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    project(&app).await;
    let good: Value = app
        .post(
            "/api/llm/providers/claude/validate",
            json!({"apiKey": GOOD_KEY}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(good["valid"], true, "{good}");
    let bad: Value = app
        .post(
            "/api/llm/providers/openai/validate",
            json!({"apiKey": "sk-wrong"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bad["valid"], false);
    assert!(
        bad["message"].as_str().unwrap().contains("rejected"),
        "{bad}"
    );
    let llama: Value = app
        .post(
            "/api/llm/providers/llama/validate",
            json!({"baseUrl": app.simulator, "llamaFlavour": "ollama"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(llama["valid"], true, "{llama}");

    let (status, field, _) = error_of(
        app.post(
            "/api/llm/providers/mistral/validate",
            json!({"apiKey": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id"))
    );
    let (status, field, _) = error_of(
        app.post("/api/llm/providers/claude/validate", json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("apiKey"))
    );
    let anonymous = new_client()
        .post(app.url("/api/llm/providers/claude/validate"))
        .json(&json!({"apiKey": GOOD_KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_uses_the_key_the_project_would_use() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let id = project(&app).await;
    let path = format!("/api/projects/{id}/llm-config/test");
    let managed: Value = app.post(&path, json!({})).await.json().await.unwrap();
    assert_eq!(
        managed["valid"], true,
        "the managed Claude key works: {managed}"
    );
    let typed: Value = app
        .post(&path, json!({"apiKey": "sk-ant-typo"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(typed["valid"], false);
    let gemini: Value = app
        .post(&path, json!({"provider": "gemini"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gemini["valid"], false);
    assert!(
        gemini["message"]
            .as_str()
            .unwrap()
            .contains("no Cover-managed gemini key"),
        "{gemini}"
    );
}

both_engines!(
    project_tokens_open_one_project_until_revoked,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let id = project(&app).await;
        let other: Value = app
            .post("/api/projects", json!({"name": "Other"}))
            .await
            .json()
            .await
            .unwrap();
        let other_id = other["id"].as_str().unwrap();
        let created = app
            .post(
                &format!("/api/projects/{id}/tokens"),
                json!({"name": "CI", "scopes": ["read", "manage"]}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("cov_") && secret.len() == 44, "{secret}");

        let program = new_client();
        let with_token = |path: String| program.get(app.url(&path)).bearer_auth(&secret).send();
        assert_eq!(
            with_token(format!("/api/projects/{id}/llm-config"))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let patched = program
            .patch(app.url(&format!("/api/projects/{id}/llm-config")))
            .bearer_auth(&secret)
            .json(&json!({"parameters": {"temperature": 0.3}}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        assert_eq!(
            with_token(format!("/api/projects/{other_id}/llm-config"))
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            with_token(format!("/api/projects/{id}/tokens"))
                .await
                .unwrap()
                .status(),
            // Tokens are managed with the session only: a token is no one there.
            StatusCode::UNAUTHORIZED
        );

        let list: Value = app
            .get(&format!("/api/projects/{id}/tokens"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["tokens"][0]["prefix"], &secret[..12]);
        assert!(
            list.to_string().find(&secret).is_none(),
            "the secret is shown once only"
        );

        let token_id = created["id"].as_str().unwrap();
        let revoke = app
            .client
            .delete(app.url(&format!("/api/projects/{id}/tokens/{token_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            with_token(format!("/api/projects/{id}/llm-config"))
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let bogus = program
            .get(app.url(&format!("/api/projects/{id}/llm-config")))
            .bearer_auth("cov_nope")
            .send()
            .await
            .unwrap();
        assert_eq!(bogus.status(), StatusCode::UNAUTHORIZED);
    }
);

both_engines!(
    owners_and_admins_configure_members_read_and_strangers_get_404,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up_admin("admin@example.com").await;
        let owner = app.other_user("owner@example.com").await;
        let stranger = app.other_user("stranger@example.com").await;
        let id = app.new_project_as(&owner, "Bot").await;
        let member = app.invited_member(&id, "member@example.com").await;
        let path = app.url(&format!("/api/projects/{id}/llm-config"));
        for (who, client, read, expected) in [
            ("member", &member, StatusCode::OK, StatusCode::FORBIDDEN),
            ("owner", &owner, StatusCode::OK, StatusCode::OK),
            ("admin", &app.client, StatusCode::OK, StatusCode::OK),
            (
                "stranger",
                &stranger,
                StatusCode::NOT_FOUND,
                StatusCode::NOT_FOUND,
            ),
        ] {
            assert_eq!(
                client.get(&path).send().await.unwrap().status(),
                read,
                "{who} GET"
            );
            let patch = client
                .patch(&path)
                .json(&json!({"parameters": {"topP": 0.9}}))
                .send()
                .await
                .unwrap();
            assert_eq!(patch.status(), expected, "{who} PATCH");
        }
        assert_eq!(
            new_client().get(&path).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_never_appears_in_the_database_logs_pages_or_answers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let id = project(&app).await;
    let wrong_key = "sk-ant-api03-wrong-secret-key-zzzz";
    let mut seen = String::new();
    let config_path = format!("/api/projects/{id}/llm-config");
    for response in [
        app.patch(&config_path, json!({"apiKey": wrong_key})).await,
        app.patch(&config_path, json!({"apiKey": GOOD_KEY})).await,
        app.get(&config_path).await,
        app.post(&format!("{config_path}/test"), json!({})).await,
        app.post(
            "/api/llm/providers/claude/validate",
            json!({"apiKey": GOOD_KEY}),
        )
        .await,
        app.post(
            "/api/llm/providers/claude/validate",
            json!({"apiKey": wrong_key}),
        )
        .await,
        app.get(&format!("/projects/{id}/settings")).await,
    ] {
        assert!(
            response.status().is_success() || response.status() == StatusCode::UNPROCESSABLE_ENTITY
        );
        seen.push_str(&response.text().await.unwrap());
    }
    assert!(seen.contains("sk-ant-...k4j2"), "the masked key is shown");
    let files = app.sqlite_files();
    assert!(!files.is_empty());
    let mut stored = Vec::new();
    for file in files {
        stored.extend(std::fs::read(file).unwrap());
    }
    let stored = String::from_utf8_lossy(&stored);
    let logs = crate::helpers::captured_logs();
    assert!(logs.contains("llm-config"), "requests were logged at all");
    for secret in [GOOD_KEY, wrong_key] {
        assert!(!seen.contains(secret), "{secret} in an answer or page");
        assert!(!stored.contains(secret), "{secret} in the SQLite files");
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_re_encrypts_every_stored_key() {
    use cover::server::config::MasterKeySource;
    use cover::server::crypto::{pending_path, Keyring};
    use cover::server::db::provider_keys;
    use cover::server::services::key_rotation;
    use secrecy::{ExposeSecret, SecretString};

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("cover.key");
    let source = MasterKeySource::File(key_file.clone());
    let db = crate::helpers::TestDatabase::create(Engine::Sqlite)
        .await
        .connect()
        .await;
    let owner = crate::helpers::insert_user(
        &db.pool,
        "o@example.com",
        cover::model::account::WorkspaceRole::Member,
    )
    .await
    .unwrap();
    let catalog = cover::server::catalog::load().unwrap();
    let mut projects = Vec::new();
    for name in ["A", "B"] {
        let project = cover::server::db::projects::insert(
            &db.pool,
            &owner.user_id,
            name,
            cover::model::account::UseCase::Sales,
            |id| {
                cover::server::services::llm_settings::Draft::default_for(&catalog)
                    .to_row(id, 1, None)
            },
        )
        .await
        .unwrap();
        projects.push(project.project_id);
    }
    let before = source.load().unwrap();
    for project in &projects {
        let sealed = before
            .seal(project, &SecretString::from(format!("sk-secret-{project}")))
            .unwrap();
        provider_keys::upsert(
            &db.pool,
            &provider_keys::StoredKey {
                project_id: project.clone(),
                provider: "claude".into(),
                sealed,
                masked: "sk-...".into(),
            },
        )
        .await
        .unwrap();
    }

    let rotation = key_rotation::rotate(&db, &source, None).await.unwrap();
    assert_eq!((rotation.keys, rotation.version), (2, 2));
    assert!(
        !pending_path(&key_file).exists(),
        "the new key replaced the old file"
    );
    let after = Keyring::load(None, None, &key_file).unwrap();
    assert_eq!(after.current_version(), 2);
    for project in &projects {
        let stored = provider_keys::get(&db.pool, project, "claude")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.sealed.key_version, 2);
        assert_eq!(
            after.open(project, &stored.sealed).unwrap().expose_secret(),
            format!("sk-secret-{project}")
        );
        assert!(
            before.open(project, &stored.sealed).is_err(),
            "the old key no longer opens it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_renders_on_the_server_with_the_configuration() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let id = project(&app).await;
    let html = app
        .get(&format!("/projects/{id}/settings?preset=technical_docs"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"data-test="settings-form""#));
    assert!(
        html.contains("Claude 3.5 Haiku (Recommended)"),
        "the recommended model for customer support is marked"
    );
    assert!(
        html.contains("precise technical-documentation assistant"),
        "the preset applies before hydration"
    );
    assert!(
        html.contains(r#"action="/sfn/settings/save""#),
        "Save works as a plain form post"
    );
    let openai = app
        .get(&format!("/projects/{id}/settings?provider=openai"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        openai.contains("GPT-4o mini"),
        "Change shows the provider's models before hydration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_holds_at_most_100_live_tokens_and_a_revoked_one_frees_a_place() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let id = project(&app).await;
    let path = format!("/api/projects/{id}/tokens");
    let mut first = None;
    for _ in 0..100 {
        let created: Value = app
            .post(&path, json!({"name": "fleet"}))
            .await
            .json()
            .await
            .unwrap();
        first.get_or_insert(created["id"].as_str().unwrap().to_owned());
    }
    let (status, field, message) =
        error_of(app.post(&path, json!({"name": "one too many"})).await).await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::CONFLICT, Some("name"))
    );
    assert!(message.contains("at most 100 live tokens"), "{message}");

    let first = first.unwrap();
    let revoked = app
        .client
        .delete(app.url(&format!("{path}/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let again = app.post(&path, json!({"name": "replacement"})).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let list: Value = app.get(&path).await.json().await.unwrap();
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 101, "100 live, then the revoked one");
    assert!(tokens[..100].iter().all(|t| t["revoked"] == false));
    assert!(tokens[..100].iter().any(|t| t["name"] == "replacement"));
    assert_eq!(tokens[100]["id"], first.as_str());
    assert_eq!(tokens[100]["revoked"], true);
}
