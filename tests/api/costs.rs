//! Cost analysis over the JSON API (FR-007, AC-005): answers from the
//! simulator, then the report agrees with the ledger and the answers to the
//! nano-dollar; what-if figures match hand-computed prices; filters, 422s,
//! CSV exports, the admin dashboard, unpriced usage, and the rollups the
//! ledger writer keeps equal a direct aggregate of the ledger.

use crate::both_engines;
use crate::helpers::{error_of, new_client, Engine, TestApp};
use cover::model::money::parse_usd_nanos;
use cover::server::ledger::{self, rows::UsageRow};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;

const SONNET: &str = "claude-3-5-sonnet-20241022";
const MINI: &str = "gpt-4o-mini";
const DAY_MS: i64 = 86_400_000;

/// Starts a conversation in `project` as the user signed in on `client`.
async fn new_conversation(app: &TestApp, client: &Client, project: &str) -> String {
    let response = client
        .post(app.url(&format!("/api/projects/{project}/conversations")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let conversation: Value = response.json().await.unwrap();
    conversation["id"].as_str().unwrap().to_owned()
}

/// Asks a question in a new conversation; returns the answer.
async fn answer(app: &TestApp, client: &Client, project: &str, question: &str) -> Value {
    let conversation = new_conversation(app, client, project).await;
    follow_up(app, client, project, &conversation, question).await
}

/// Asks a question in an existing conversation.
async fn follow_up(
    app: &TestApp,
    client: &Client,
    project: &str,
    conversation: &str,
    question: &str,
) -> Value {
    let response = client
        .post(app.url(&format!(
            "/api/projects/{project}/conversations/{conversation}/messages"
        )))
        .json(&json!({ "content": question }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// GETs a JSON answer with `client`, asserting 200.
async fn get_json(app: &TestApp, client: &Client, path: &str) -> Value {
    app.state.ledger.flush().await;
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn report(app: &TestApp, project: &str, query: &str) -> Value {
    get_json(
        app,
        &app.client,
        &format!("/api/projects/{project}/llm-usage{query}"),
    )
    .await
}

async fn switch_model(app: &TestApp, project: &str, provider: &str, model: &str) {
    let response = app
        .patch(
            &format!("/api/projects/{project}/llm-config"),
            json!({ "provider": provider, "model": model }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Σ of a ledger column (`cost_nanos`, `input_tokens`, …) over a project's rows.
async fn ledger_sum(app: &TestApp, project: &str, column: &str) -> i64 {
    app.state.ledger.flush().await;
    sqlx::query_scalar(&format!(
        "select cast(coalesce(sum({column}), 0) as bigint) from llm_usage where project_id = $1"
    ))
    .bind(project)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap()
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not an integer"))
}

/// A ledger row written directly (history, unpriced models).
pub fn usage_row(project: &str, model: &str, provider: &str, created_at: i64) -> UsageRow {
    UsageRow {
        usage_id: uuid_text(),
        project_id: project.to_owned(),
        conversation_id: None,
        message_id: None,
        request_id: uuid_text(),
        attempt: 1,
        provider: provider.to_owned(),
        model: model.to_owned(),
        config_version: None,
        role: cover::server::llm::router::TargetRole::Primary,
        is_fallback: false,
        streamed: false,
        managed_key: false,
        operation: Default::default(),
        input_tokens: 1_000,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: 100,
        reasoning_tokens: 0,
        usage_estimated: false,
        raw_usage: None,
        cost_nanos: None,
        price_version: None,
        latency_ms: 500,
        ttft_ms: None,
        success: true,
        error_class: None,
        error_message: None,
        created_at,
    }
}

fn uuid_text() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "row-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> i64 {
    cover::server::db::now_ms()
}

both_engines!(
    the_report_equals_the_ledger_and_the_answers_to_the_nano_dollar,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("costs@example.com").await;
        let project = app.new_project("Support bot").await;
        let conversation = new_conversation(&app, &app.client, &project).await;
        let first = follow_up(
            &app,
            &app.client,
            &project,
            &conversation,
            "What are your opening hours?",
        )
        .await;
        let second = follow_up(
            &app,
            &app.client,
            &project,
            &conversation,
            "And on Sundays?",
        )
        .await;
        let third = answer(&app, &app.client, &project, "Do you ship abroad?").await;
        let answers = [&first, &second, &third];
        let answered: i64 = answers.iter().map(|a| int(&a["costNanos"])).sum();

        let costs = report(&app, &project, "").await;
        let total = &costs["total"];
        assert_eq!(int(&total["costNanos"]), answered);
        assert_eq!(
            int(&total["costNanos"]),
            ledger_sum(&app, &project, "cost_nanos").await
        );
        assert_eq!(int(&total["attempts"]), 3);
        assert_eq!(int(&total["unpricedAttempts"]), 0);
        let input: i64 = answers
            .iter()
            .map(|a| int(&a["usage"]["inputTokens"]))
            .sum();
        let output: i64 = answers
            .iter()
            .map(|a| int(&a["usage"]["outputTokens"]))
            .sum();
        assert_eq!(int(&total["tokens"]["inputTokens"]), input);
        assert_eq!(int(&total["tokens"]["outputTokens"]), output);
        assert_eq!(int(&total["tokens"]["cacheReadTokens"]), 0);
        assert_eq!(
            answered,
            input * 3_000 + output * 15_000,
            "Sonnet: $3 / $15 per 1M"
        );

        assert_eq!(costs["conversations"], 2);
        assert_eq!(
            int(&costs["avgCostPerConversationNanos"]),
            (answered + 1) / 2
        );
        assert_eq!(costs["currentModel"], SONNET);
        assert_eq!(costs["currentModelName"], "Claude 3.5 Sonnet");
        assert_eq!(costs["byModel"][0]["key"], SONNET);
        assert_eq!(costs["byModel"][0]["label"], "Claude 3.5 Sonnet");
        assert_eq!(costs["byProvider"][0]["label"], "Anthropic Claude");
        let series = costs["series"].as_array().unwrap();
        assert_eq!(series.len(), 30, "the last 30 days, one point each");
        assert_eq!(series.last().unwrap()["key"], costs["to"]);
        assert_eq!(
            series.iter().map(|l| int(&l["costNanos"])).sum::<i64>(),
            answered
        );

        // What if: the same tokens at other list prices, computed by hand.
        let what_if = |model: &str| {
            costs["whatIf"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["model"] == model)
                .unwrap_or_else(|| panic!("no what-if for {model}"))
                .clone()
        };
        assert!(costs["whatIf"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["model"] != SONNET));
        let permille = |cost: i64| {
            let diff = i128::from(cost - answered) * 1000;
            let whole = i128::from(answered);
            let rounded = (diff.abs() + whole / 2) / whole;
            i64::try_from(if diff < 0 { -rounded } else { rounded }).unwrap()
        };
        for (model, per_input, per_output) in [
            (MINI, 150, 600),
            ("gpt-4o", 2_500, 10_000),
            ("claude-3-5-haiku-20241022", 800, 4_000),
            ("gemini-1.5-flash", 75, 300),
            ("claude-3-opus-20240229", 15_000, 75_000),
        ] {
            let expected = input * per_input + output * per_output;
            let figure = what_if(model);
            assert_eq!(int(&figure["costNanos"]), expected, "{model}");
            assert_eq!(
                int(&figure["differencePermille"]),
                permille(expected),
                "{model}"
            );
        }
        assert!(
            what_if("llama-3.1-70b")["costNanos"].is_null(),
            "self-hosted: no per-token price"
        );

        // Customer support: Claude 3.5 Haiku, with the saving.
        let haiku = input * 800 + output * 4_000;
        let recommendation = &costs["recommendation"];
        assert_eq!(recommendation["model"], "claude-3-5-haiku-20241022");
        assert_eq!(int(&recommendation["savingPermille"]), -permille(haiku));
        assert!(recommendation["reason"]
            .as_str()
            .unwrap()
            .starts_with("For your use case (customer support), Claude 3.5 Haiku would have cost"));

        // This month so far is everything (all of it today); the budget is there.
        let projection = &costs["projection"];
        assert_eq!(int(&projection["spentNanos"]), answered);
        assert!(int(&projection["projectedNanos"]) >= answered);
        // No budget of its own: the workspace's default for managed keys.
        assert_eq!(costs["budget"]["workspaceDefault"], true);
    }
);

both_engines!(
    filters_narrow_the_report_by_provider_model_period_and_granularity,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("filters@example.com").await;
        let project = app.new_project("Sales bot").await;
        let sonnet = answer(&app, &app.client, &project, "Hello from Claude").await;
        switch_model(&app, &project, "openai", MINI).await;
        let mini = answer(&app, &app.client, &project, "Hello from GPT").await;
        // Forty days ago: outside the default period.
        let old = now_ms() - 40 * DAY_MS;
        let mut history = usage_row(&project, SONNET, "claude", old);
        history.cost_nanos = Some(1_234_567);
        ledger::insert_batch(&app.state.db.pool, &[history])
            .await
            .unwrap();

        let all = report(&app, &project, "").await;
        let both = int(&sonnet["costNanos"]) + int(&mini["costNanos"]);
        assert_eq!(int(&all["total"]["costNanos"]), both);
        assert_eq!(all["currentModel"], MINI);
        assert_eq!(all["byProvider"].as_array().unwrap().len(), 2);

        let openai = report(&app, &project, "?provider=openai").await;
        assert_eq!(int(&openai["total"]["costNanos"]), int(&mini["costNanos"]));
        assert_eq!(openai["byModel"].as_array().unwrap().len(), 1);
        assert_eq!(openai["conversations"], 1);
        let claude = report(&app, &project, &format!("?model={SONNET}")).await;
        assert_eq!(
            int(&claude["total"]["costNanos"]),
            int(&sonnet["costNanos"])
        );
        let alias = report(
            &app,
            &project,
            "?model=claude-3-5-sonnet-latest&provider=claude",
        )
        .await;
        assert_eq!(alias["total"], claude["total"]);

        let old_day = chrono::DateTime::from_timestamp_millis(old)
            .unwrap()
            .date_naive();
        let period = report(&app, &project, &format!("?from={old_day}&to={old_day}")).await;
        assert_eq!(int(&period["total"]["costNanos"]), 1_234_567);
        assert_eq!(period["conversations"], 0);
        assert!(period["avgCostPerConversationNanos"].is_null());
        assert_eq!(period["series"].as_array().unwrap().len(), 1);
        let wide = report(&app, &project, &format!("?from={old_day}")).await;
        assert_eq!(int(&wide["total"]["costNanos"]), both + 1_234_567);

        let weekly = report(
            &app,
            &project,
            "?granularity=week&from=2024-07-03&to=2024-07-31",
        )
        .await;
        let keys: Vec<&str> = weekly["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "2024-07-01",
                "2024-07-08",
                "2024-07-15",
                "2024-07-22",
                "2024-07-29"
            ]
        );
        let monthly = report(
            &app,
            &project,
            "?granularity=month&from=2024-01-15&to=2024-03-01",
        )
        .await;
        let months: Vec<&str> = monthly["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["label"].as_str().unwrap())
            .collect();
        assert_eq!(months, ["2024-01", "2024-02", "2024-03"]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_422s_naming_the_field() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up_admin("bad@example.com").await;
    let project = app.new_project("Bot").await;
    for (query, field) in [
        ("from=2024-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2024-3-1", "from"),
        ("from=2024-05-02&to=2024-05-01", "from"),
        ("from=2023-01-01&to=2024-01-02", "from"),
        ("provider=mistral", "provider"),
        ("granularity=hour", "granularity"),
        ("model=gpt-5-ultra", "model"),
        ("model=gpt-4o&provider=claude", "model"),
    ] {
        for path in [
            format!("/api/projects/{project}/llm-usage?{query}"),
            format!("/api/projects/{project}/llm-usage.csv?{query}"),
            format!("/api/admin/llm-usage?{query}"),
        ] {
            let (status, got, message) = error_of(app.get(&path).await).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: {message}"
            );
            assert_eq!(got.as_deref(), Some(field), "{path}: {message}");
        }
    }
    // A full year (366 days in a leap year) is fine.
    report(&app, &project, "?from=2024-01-01&to=2024-12-31").await;
    // Someone else's project is not found.
    let stranger = app.other_user("stranger@example.com").await;
    let response = stranger
        .get(app.url(&format!("/api/projects/{project}/llm-usage")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

both_engines!(
    the_csv_has_one_line_per_ledger_row_and_unpriced_costs_stay_empty,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("csv@example.com").await;
        let project = app.new_project("Export bot").await;
        answer(&app, &app.client, &project, "First").await;
        answer(&app, &app.client, &project, "Second, with a comma").await;
        app.state
            .ledger
            .record(usage_row(&project, "mystery-model", "llama", now_ms()))
            .await;
        app.state.ledger.flush().await;

        let response = app
            .get(&format!("/api/projects/{project}/llm-usage.csv"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"llm-usage-{project}-")),
            "{disposition}"
        );
        let body = response.text().await.unwrap();
        let lines: Vec<&str> = body.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header[0], "time");
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
        let ledger_rows: i64 =
            sqlx::query_scalar("select count(*) from llm_usage where project_id = $1")
                .bind(&project)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(rows.len() as i64, ledger_rows);
        assert!(rows.iter().all(|r| r.len() == header.len()));
        let (cost, model) = (column("cost_usd"), column("model"));
        let priced: i64 = rows
            .iter()
            .filter(|r| !r[cost].is_empty())
            .map(|r| parse_usd_nanos(r[cost]).unwrap())
            .sum();
        assert_eq!(priced, ledger_sum(&app, &project, "cost_nanos").await);
        let unpriced: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| r[model] == "mystery-model")
            .collect();
        assert_eq!(unpriced.len(), 1);
        assert_eq!(unpriced[0][cost], "", "unpriced is empty, never 0");
        assert_eq!(unpriced[0][column("input_tokens")], "1000");

        // Filters apply to the export too.
        let claude = app
            .get(&format!(
                "/api/projects/{project}/llm-usage.csv?provider=claude"
            ))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(claude.lines().count(), 1 + 2);
    }
);

both_engines!(
    admins_see_the_whole_workspace_and_members_get_403,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up_admin("admin@example.com").await;
        let alpha = app.new_project("Alpha").await;
        let member = app.other_user("member@example.com").await;
        let beta = app.new_project_as(&member, "Beta").await;
        let a1 = answer(&app, &app.client, &alpha, "A short question").await;
        let a2 = answer(
            &app,
            &app.client,
            &alpha,
            "A much longer question about shipping, returns and the warranty",
        )
        .await;
        let b1 = answer(&app, &member, &beta, "Beta question").await;
        let costs: Vec<i64> = [&a1, &a2, &b1]
            .iter()
            .map(|a| int(&a["costNanos"]))
            .collect();

        let workspace = get_json(&app, &app.client, "/api/admin/llm-usage").await;
        assert_eq!(
            int(&workspace["total"]["costNanos"]),
            costs.iter().sum::<i64>()
        );
        let projects: Vec<(String, i64)> = workspace["byProject"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["label"].as_str().unwrap().to_owned(),
                    int(&l["costNanos"]),
                )
            })
            .collect();
        assert_eq!(
            projects,
            [
                ("Alpha".to_owned(), costs[0] + costs[1]),
                ("Beta".to_owned(), costs[2])
            ]
        );
        let top = workspace["topConversations"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let mut expected = costs.clone();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(
            top.iter().map(|c| int(&c["costNanos"])).collect::<Vec<_>>(),
            expected
        );
        assert!(top.iter().all(|c| c["attempts"] == 1));
        let beta_row = top.iter().find(|c| c["projectId"] == beta).unwrap();
        assert_eq!(beta_row["projectName"], "Beta");
        assert_eq!(beta_row["title"], "Beta question");
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        assert_eq!(
            workspace["monthlyByProvider"][0]["key"],
            format!("{month}|claude")
        );
        assert_eq!(workspace["byProvider"][0]["key"], "claude");
        assert_eq!(workspace["byModel"][0]["key"], SONNET);

        let csv = app
            .get("/api/admin/llm-usage.csv")
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(csv.lines().count(), 1 + 3);
        assert!(csv.contains(&alpha) && csv.contains(&beta));

        for path in ["/api/admin/llm-usage", "/api/admin/llm-usage.csv"] {
            let response = member.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            let response = new_client().get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        // A member still sees their own project's report.
        let own = get_json(&app, &member, &format!("/api/projects/{beta}/llm-usage")).await;
        assert_eq!(int(&own["total"]["costNanos"]), costs[2]);
    }
);

both_engines!(
    unpriced_usage_is_counted_apart_and_never_as_zero_dollars,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("unpriced@example.com").await;
        let project = app.new_project("Bot").await;
        let priced = answer(&app, &app.client, &project, "Hi").await;
        let mut rows = Vec::new();
        for _ in 0..2 {
            rows.push(usage_row(&project, "mystery-model", "llama", now_ms()));
        }
        ledger::insert_batch(&app.state.db.pool, &rows)
            .await
            .unwrap();

        let costs = report(&app, &project, "").await;
        assert_eq!(int(&costs["total"]["costNanos"]), int(&priced["costNanos"]));
        assert_eq!(int(&costs["total"]["unpricedAttempts"]), 2);
        assert_eq!(int(&costs["total"]["attempts"]), 3);
        let mystery = costs["byModel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["key"] == "mystery-model")
            .unwrap();
        assert_eq!(int(&mystery["unpricedAttempts"]), 2);
        assert_eq!(mystery["label"], "mystery-model");
        // The comparison covers the priced usage only: Haiku against Sonnet's tokens.
        let usage = &priced["usage"];
        let haiku = int(&usage["inputTokens"]) * 800 + int(&usage["outputTokens"]) * 4_000;
        let figure = costs["whatIf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["model"] == "claude-3-5-haiku-20241022")
            .unwrap();
        assert_eq!(int(&figure["costNanos"]), haiku);
        // A model the catalog does not know is a valid filter while the ledger has it.
        let only = report(&app, &project, "?model=mystery-model").await;
        assert_eq!(int(&only["total"]["costNanos"]), 0);
        assert_eq!(int(&only["total"]["unpricedAttempts"]), 2);
    }
);

/// A spread of ledger rows: days, models, long prompts, fallbacks, failures,
/// unpriced models and conversations.
fn varied_rows(project: &str, count: usize) -> Vec<UsageRow> {
    let models = [
        (SONNET, "claude", Some(3_000)),
        (MINI, "openai", Some(150)),
        ("gemini-1.5-pro", "gemini", Some(1_250)),
        ("mystery-model", "llama", None),
    ];
    let start = now_ms() - 20 * DAY_MS;
    let hour = 3_600_000;
    (0..count)
        .map(|i| {
            let (model, provider, price) = models[i % models.len()];
            let mut row = usage_row(project, model, provider, start + i as i64 * hour);
            row.conversation_id = (i % 5 != 0).then(|| format!("conversation-{}", i % 17));
            row.input_tokens = if i % 7 == 0 { 130_000 } else { 500 + i as i64 };
            row.cache_read_tokens = (i % 3) as i64 * 100;
            row.cache_write_tokens = (i % 4) as i64 * 10;
            row.output_tokens = 50 + (i % 11) as i64;
            row.reasoning_tokens = i as i64 % 5;
            row.is_fallback = i % 6 == 0;
            row.success = i % 9 != 0;
            row.latency_ms = 100 + i as i64;
            row.cost_nanos = price.map(|p| p * row.input_tokens + (i as i64));
            row
        })
        .collect()
}

both_engines!(
    the_rollups_equal_a_direct_aggregate_of_the_ledger,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("rollups@example.com").await;
        let project = app.new_project("Bot").await;
        answer(&app, &app.client, &project, "Through the real writer").await;
        let rows = varied_rows(&project, 300);
        ledger::insert_batch(&app.state.db.pool, &rows[..120])
            .await
            .unwrap();
        for row in &rows[120..] {
            app.state.ledger.record(row.clone()).await;
        }
        app.state.ledger.flush().await;
        // A batch retried after a lost acknowledgement adds nothing twice.
        ledger::insert_batch(&app.state.db.pool, &rows[100..200])
            .await
            .unwrap();

        let pool = &app.state.db.pool;
        let rollup = "select project_id, provider, model, day, is_fallback, long_prompt, attempts, failed_attempts, \
                unpriced_attempts, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, \
                reasoning_tokens, cost_nanos, latency_ms \
             from usage_daily order by 1, 2, 3, 4, 5, 6";
        let direct = "select project_id, provider, model, (created_at / 86400000) * 86400000, is_fallback, \
                cast(case when input_tokens + cache_read_tokens + cache_write_tokens > 128000 then 1 else 0 end as bigint), \
                count(*), cast(sum(1 - success) as bigint), count(*) - count(cost_nanos), \
                cast(sum(input_tokens) as bigint), cast(sum(cache_read_tokens) as bigint), \
                cast(sum(cache_write_tokens) as bigint), cast(sum(output_tokens) as bigint), \
                cast(sum(reasoning_tokens) as bigint), cast(coalesce(sum(cost_nanos), 0) as bigint), \
                cast(sum(latency_ms) as bigint) \
             from llm_usage group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6";
        let rows_of = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    let key: Vec<String> = (0..3).map(|i| row.get(i)).collect();
                    let values: Vec<i64> = (3..16).map(|i| row.get(i)).collect();
                    (key, values)
                })
                .collect::<Vec<_>>()
        };
        let from_rollups = rows_of(rollup).await;
        assert!(
            from_rollups.len() > 20,
            "{} rollup rows",
            from_rollups.len()
        );
        assert_eq!(from_rollups, rows_of(direct).await);

        let conversations = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row.get::<String, _>(0),
                        row.get::<i64, _>(1),
                        row.get::<String, _>(2),
                        row.get::<String, _>(3),
                        row.get::<i64, _>(4),
                        row.get::<i64, _>(5),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            conversations(
                "select k.conversation_id, d.day, d.provider, d.model, d.attempts, d.cost_nanos \
                 from usage_conversation_daily d \
                 join usage_conversation k on k.conversation_key = d.conversation_key \
                 order by 1, 2, 3, 4"
            )
            .await,
            conversations(
                "select conversation_id, (created_at / 86400000) * 86400000, provider, model, count(*), \
                        cast(coalesce(sum(cost_nanos), 0) as bigint) \
                 from llm_usage where conversation_id is not null group by 1, 2, 3, 4 order by 1, 2, 3, 4"
            )
            .await
        );

        // And the report reads the same figures.
        let monthly = report(&app, &project, "?granularity=month").await;
        let ledger_cost = ledger_sum(&app, &project, "cost_nanos").await;
        assert_eq!(int(&monthly["total"]["costNanos"]), ledger_cost);
        let distinct: i64 = sqlx::query_scalar(
            "select count(distinct conversation_id) from llm_usage where project_id = $1",
        )
        .bind(&project)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(int(&monthly["conversations"]), distinct);
    }
);

both_engines!(
    the_most_expensive_conversations_are_exact_however_their_cost_is_spread,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up_admin("top@example.com").await;
        let project = app.new_project("Bot").await;
        let today = now_ms() - DAY_MS / 2;
        let row = |conversation: &str, at: i64, cost: i64| {
            let mut row = usage_row(&project, SONNET, "claude", at);
            row.conversation_id = Some(conversation.to_owned());
            row.cost_nanos = Some(cost);
            row
        };
        let mut rows = Vec::new();
        // Thirty one-answer conversations of 1,000 to 30,000 n$.
        for i in 1..=30 {
            rows.push(row(
                &format!("single-{i:02}"),
                today - i * 3_600_000,
                i * 1_000 + 7,
            ));
        }
        // Forty cheap answers over twenty days add up to the second most expensive.
        for i in 0..40 {
            rows.push(row("spread", today - (i % 20) * DAY_MS, 900));
        }
        // Expensive long ago, cheap in the period.
        rows.push(row("old-big", today - 60 * DAY_MS, 1_000_000_000));
        rows.push(row("old-big", today, 5));
        ledger::insert_batch(&app.state.db.pool, &rows)
            .await
            .unwrap();

        let workspace = get_json(&app, &app.client, "/api/admin/llm-usage").await;
        let top: Vec<(String, i64)> = workspace["topConversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["conversationId"].as_str().unwrap().to_owned(),
                    int(&c["costNanos"]),
                )
            })
            .collect();
        let start = workspace["from"].as_str().unwrap();
        let start_ms = chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let direct: Vec<(String, i64)> = sqlx::query(
            "select conversation_id, cast(sum(cost_nanos) as bigint) from llm_usage \
             where created_at >= $1 and conversation_id is not null \
             group by conversation_id order by 2 desc limit 10",
        )
        .bind(start_ms)
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        assert_eq!(top, direct);
        assert_eq!(
            top[0],
            ("spread".to_owned(), 36_000),
            "its days are cheap, their sum is not"
        );
        assert!(top.iter().all(|(id, _)| id != "old-big"));
    }
);
