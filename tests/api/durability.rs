//! Holding under load and across failures: answers beyond the server's or a
//! project's bound wait and are refused before any work; a `kill -9` under
//! streaming and non-streaming load loses no answer a client received, nor
//! its cost; several app servers share one PostgreSQL (sessions, budgets,
//! ledger) and settle what a killed one left running.

use crate::both_engines;
use crate::helpers::{
    create_admin, messages_path, new_client, spawn_simulator, Engine, ServerProcess, TestApp,
    TestDatabase, TestOptions, PASSWORD,
};
use cover::server::db::Db;
use cover::server::services::capacity::CapacityLimits;
use cover::server::simulator::SimulatorOptions;
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts a streamed question and returns the open response once the answer
/// has begun (its `started` event arrived).
async fn start_stream(app: &TestApp, project: &str, conversation: &str) -> reqwest::Response {
    let response = app
        .client
        .post(app.url(&messages_path(project, conversation)))
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "tell me something long" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

async fn stored_messages(app: &TestApp, conversation: &str) -> i64 {
    sqlx::query_scalar("select count(*) from message where conversation_id = $1")
        .bind(conversation)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

both_engines!(
    past_their_bounds_questions_wait_then_are_refused_before_anything_is_stored,
    |engine| async move {
        let mut options = TestOptions::default();
        // Each answer streams for a few seconds.
        options.simulator.tokens_per_second = 4.0;
        options.capacity = CapacityLimits {
            in_flight: 2,
            per_project: 1,
            queue_deadline: Duration::from_millis(300),
        };
        let app = TestApp::spawn_with(engine, options).await;
        app.sign_up("busy@example.com").await;
        let (first, second, third) = (
            app.new_project("First").await,
            app.new_project("Second").await,
            app.new_project("Third").await,
        );
        let running = app.conversation_id(&first).await;
        let _holding_first = start_stream(&app, &first, &running).await;

        // The first project's only slot is taken: 429 after the deadline.
        let waiting = app.conversation_id(&first).await;
        let started = std::time::Instant::now();
        let refused = app.ask(&first, &waiting, "me too").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "1");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "it waited in line"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests");

        // Another project takes the server's second slot; a third finds none: 503.
        let other = app.conversation_id(&second).await;
        let _holding_second = start_stream(&app, &second, &other).await;
        let turned_away = app.conversation_id(&third).await;
        let refused = app.ask(&third, &turned_away, "anyone?").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "busy");

        // Refused before any work: nothing stored, nothing sent, nothing billed.
        for conversation in [&waiting, &turned_away] {
            assert_eq!(stored_messages(&app, conversation).await, 0);
        }
        app.state.ledger.flush().await;
        let billed: i64 =
            sqlx::query_scalar("select count(*) from llm_usage where conversation_id in ($1, $2)")
                .bind(&waiting)
                .bind(&turned_away)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(billed, 0);
    }
);

/// What a client was told about one answer it received in full.
#[derive(Debug, Clone)]
struct Received {
    message_id: String,
    cost_nanos: i64,
}

/// Reads a streamed answer to its `done` event; `None` if it broke off first.
async fn read_stream(response: reqwest::Response) -> Option<Value> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            match event.as_deref() {
                Some("done") => return serde_json::from_str(&data).ok(),
                Some("error") => return None,
                _ => {}
            }
        }
    }
    None
}

/// Asks questions in a loop, alternating streamed and whole answers, and
/// keeps what it was told, until `stop` or until the server is gone.
async fn ask_until_stopped(
    client: Client,
    url: String,
    token: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
) {
    let mut streamed = false;
    while !stop.load(Ordering::Relaxed) {
        streamed = !streamed;
        let mut request = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "content": "how do refunds work?" }));
        if streamed {
            request = request.header("accept", "text/event-stream");
        }
        let Ok(response) = request.send().await else {
            return;
        };
        if response.status() != StatusCode::OK {
            return;
        }
        let answer = if streamed {
            read_stream(response).await
        } else {
            response.json::<Value>().await.ok()
        };
        let Some(answer) = answer else {
            return;
        };
        received.lock().unwrap().push(Received {
            message_id: answer["messageId"].as_str().unwrap().to_owned(),
            cost_nanos: answer["costNanos"].as_i64().unwrap(),
        });
    }
}

/// Signs in on a server process as the admin `create_admin` made, creates a
/// project with an API token; returns (client, project, token).
pub(crate) async fn admin_project(server: &ServerProcess, email: &str) -> (Client, String, String) {
    let client = new_client();
    let login = client
        .post(server.url("/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let project: Value = client
        .post(server.url("/api/projects"))
        .json(&json!({ "name": "Durable bot" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().unwrap().to_owned();
    let token: Value = client
        .post(server.url(&format!("/api/projects/{project}/tokens")))
        .json(&json!({ "name": "load" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["secret"].as_str().unwrap().to_owned();
    (client, project, token)
}

/// A new conversation in `project` on `server`; returns its id.
pub(crate) async fn new_conversation(
    client: &Client,
    server: &str,
    project: &str,
    token: &str,
) -> String {
    let created: Value = client
        .post(format!("{server}/api/projects/{project}/conversations"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The database's own integrity check: SQLite's `integrity_check`, and on
/// PostgreSQL `amcheck` over every table and B-tree index.
pub(crate) async fn assert_intact(db: &Db, engine: Engine) {
    match engine {
        Engine::Sqlite => {
            let verdict: String = sqlx::query_scalar("pragma integrity_check")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(verdict, "ok");
        }
        Engine::Postgres => {
            sqlx::query("create extension if not exists amcheck")
                .execute(&db.pool)
                .await
                .unwrap();
            let broken_pages: i64 = sqlx::query_scalar(
                "select count(*) from pg_class c cross join lateral verify_heapam(c.oid) \
                 where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert_eq!(broken_pages, 0, "heap corruption");
            let indexes: i64 = sqlx::query_scalar(
                "select count(*) from (select bt_index_check(i.indexrelid, true) \
                 from pg_index i join pg_class c on c.oid = i.indexrelid \
                 join pg_am a on a.oid = c.relam \
                 where a.amname = 'btree' and c.relnamespace = 'public'::regnamespace) checked",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert!(indexes > 0, "the indexes were checked");
        }
    }
}

/// Ledger, rollups and budget months agree to the nano-dollar for `project`.
async fn assert_books_agree(db: &Db, project: &str) -> i64 {
    let sum = |sql: &'static str| {
        let pool = db.pool.clone();
        let project = project.to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(project)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let ledger = sum(
        "select cast(coalesce(sum(cost_nanos), 0) as bigint) from llm_usage where project_id = $1",
    )
    .await;
    let rollups = sum("select cast(coalesce(sum(cost_nanos), 0) as bigint) from usage_daily where project_id = $1").await;
    let months = sum("select cast(coalesce(sum(spent_nanos), 0) as bigint) from budget_month where project_id = $1").await;
    assert_eq!(rollups, ledger, "the rollups equal the ledger");
    assert_eq!(months, ledger, "the budget counted exactly the ledger");
    ledger
}

both_engines!(
    a_kill_9_under_load_loses_no_answer_a_client_received_nor_its_cost,
    |engine| async move {
        let database = TestDatabase::create(engine).await;
        let simulator = spawn_simulator(SimulatorOptions::default()).await;
        create_admin(&database.url, "ops@example.com").await;
        let mut server = ServerProcess::start(&database.url, &simulator, &[]).await;
        let (client, project, token) = admin_project(&server, "ops@example.com").await;

        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for _ in 0..40 {
            let conversation = new_conversation(&client, &server.address, &project, &token).await;
            loops.push(tokio::spawn(ask_until_stopped(
                client.clone(),
                server.url(&messages_path(&project, &conversation)),
                token.clone(),
                received.clone(),
                stop.clone(),
            )));
        }
        // Kill it in the middle of the load, once a good number were answered.
        while received.lock().unwrap().len() < 300 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.kill_9().await;
        stop.store(true, Ordering::Relaxed);
        for handle in loops {
            handle.await.unwrap();
        }

        let db = Db::connect(&database.url).await.unwrap();
        assert_intact(&db, engine).await;
        let received = received.lock().unwrap().clone();
        for answer in &received {
            let (status, cost): (String, i64) =
                sqlx::query_as("select status, cost_nanos from message where message_id = $1")
                    .bind(&answer.message_id)
                    .fetch_one(&db.pool)
                    .await
                    .unwrap_or_else(|e| panic!("answer {} is lost: {e}", answer.message_id));
            assert_eq!(status, "complete");
            assert_eq!(
                cost, answer.cost_nanos,
                "the stored cost is what the client was told"
            );
            let (rows, billed): (i64, i64) = sqlx::query_as(
                "select count(*), cast(coalesce(sum(cost_nanos), 0) as bigint) \
                 from llm_usage where message_id = $1 and success = 1",
            )
            .bind(&answer.message_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert_eq!(rows, 1, "its ledger row is stored");
            assert_eq!(
                billed, answer.cost_nanos,
                "the ledger bills what the client was told"
            );
        }
        assert_books_agree(&db, &project).await;
        eprintln!(
            "{engine:?}: {} answers received before kill -9, all stored",
            received.len()
        );
        db.close().await;

        // The database serves on: a restarted server answers at once.
        let server = ServerProcess::start(&database.url, &simulator, &[]).await;
        let conversation = new_conversation(&client, &server.address, &project, &token).await;
        let after = client
            .post(server.url(&messages_path(&project, &conversation)))
            .bearer_auth(&token)
            .json(&json!({ "content": "still there?" }))
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::OK);
    }
);

/// Two app servers on one PostgreSQL database: one in this process, one a
/// process of its own (so it can be killed with SIGKILL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_servers_sharing_one_postgresql_share_sessions_budgets_and_the_ledger() {
    crate::helpers::within_limit(async {
        let mut options = TestOptions::default();
        // Short answers, so the race is about admission; a short answer time
        // limit, so what a killed server left is swept within seconds.
        options.router.total_timeout = Duration::from_secs(3);
        let first = TestApp::spawn_with(Engine::Postgres, options.clone()).await;
        let limit = "3000";
        let mut second = ServerProcess::start(
            &first.database_url(),
            &first.simulator,
            &[("COVER_LLM_TOTAL_TIMEOUT_MS", limit)],
        )
        .await;

        // A session from one server works on the other.
        first.sign_up("team@example.com").await;
        let me = first
            .client
            .get(second.url("/api/auth/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        let project = first.new_project("Shared bot").await;
        first
            .configure(&project, json!({"parameters": {"maxTokens": 8}}))
            .await;
        let budget = first
            .client
            .put(second.url(&format!("/api/projects/{project}/budget")))
            .json(&json!({ "limitUsd": "0.006" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            budget.status(),
            StatusCode::OK,
            "the budget is set through the other server"
        );

        // 200 concurrent answers, half through each server: never overspent.
        let mut conversations = Vec::new();
        for _ in 0..20 {
            conversations.push(first.conversation_id(&project).await);
        }
        let requests = (0..200).map(|i| {
            let base = if i % 2 == 0 {
                &first.address
            } else {
                &second.address
            };
            let url = format!("{base}{}", messages_path(&project, &conversations[i % 20]));
            let request = first
                .client
                .post(url)
                .json(&json!({ "content": format!("question {i}") }));
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures::future::join_all(requests).await;
        let answered = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::PAYMENT_REQUIRED),
            "only answers and 402s: {statuses:?}"
        );
        assert!(answered > 0 && answered < 200, "{answered} answered");
        let db = &first.state.db;
        let spent = assert_books_agree(db, &project).await;
        let (limit_nanos, reserved): (i64, i64) = sqlx::query_as(
            "select b.limit_nanos, m.reserved_nanos from budget b \
             join budget_month m on m.project_id = b.project_id where b.project_id = $1",
        )
        .bind(&project)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(reserved, 0, "every hold was released");
        // One answer's estimation error at most (a prompt under 50 tokens, 8 answer tokens).
        assert!(
            spent <= limit_nanos + 50 * 3_000 + 8 * 15_000,
            "spent {spent} of {limit_nanos}"
        );
        let report: Value = first
            .client
            .get(second.url(&format!("/api/projects/{project}/llm-usage")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            report["total"]["costNanos"].as_i64(),
            Some(spent),
            "the cost report agrees with the ledger: {report}"
        );

        // Answers left running on a server killed with kill -9 are settled by
        // the other once they are older than the answer time limit.
        let hanging = first.new_project("Hanging bot").await;
        first
            .configure(
                &hanging,
                json!({"model": "claude-3-opus-20240229", "parameters": {"maxTokens": 8}}),
            )
            .await;
        let roomy = first
            .client
            .put(first.url(&format!("/api/projects/{hanging}/budget")))
            .json(&json!({ "limitUsd": "100" }))
            .send()
            .await
            .unwrap();
        assert_eq!(roomy.status(), StatusCode::OK);
        let fault = first
            .client
            .post(format!("{}/_sim/faults", first.simulator))
            .json(&json!({"model": "claude-3-opus-20240229", "fault": "hang", "times": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(fault.status(), StatusCode::CREATED);
        let mut asked = Vec::new();
        for _ in 0..3 {
            let conversation = first.conversation_id(&hanging).await;
            let request = first
                .client
                .post(second.url(&messages_path(&hanging, &conversation)))
                .json(&json!({ "content": "are you there?" }));
            asked.push(tokio::spawn(async move {
                request.send().await.map(|r| r.status())
            }));
        }
        let pending = || async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from message m join conversation c \
                 on c.conversation_id = m.conversation_id \
                 where c.project_id = $1 and m.status = 'pending'",
            )
            .bind(&hanging)
            .fetch_one(&db.pool)
            .await
            .unwrap()
        };
        while pending().await < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        second.kill_9().await;
        for question in asked {
            assert!(
                question.await.unwrap().is_err(),
                "the killed server answered nobody"
            );
        }
        let held = || async {
            sqlx::query_scalar::<_, i64>(
                "select reserved_nanos from budget_month where project_id = $1",
            )
            .bind(&hanging)
            .fetch_one(&db.pool)
            .await
            .unwrap()
        };
        assert!(
            held().await > 0,
            "the running answers held part of the budget"
        );
        let swept_by = std::time::Instant::now() + Duration::from_secs(20);
        while pending().await > 0 || held().await > 0 {
            assert!(
                std::time::Instant::now() < swept_by,
                "the other server never settled the killed server's answers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let failed: i64 = sqlx::query_scalar(
            "select count(*) from message m join conversation c \
             on c.conversation_id = m.conversation_id \
             where c.project_id = $1 and m.role = 'assistant' and m.status = 'error'",
        )
        .bind(&hanging)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(failed, 3, "each question has its answer's fate");
    })
    .await
}
