//! Monthly budgets against the provider simulator: the budget API and its
//! validation, atomic admission under 200 concurrent answers on both engines
//! (no overspend, nothing left reserved, every cent accounted for), alerts
//! that fire once with their webhook, the ladder (cheaper model, shorter
//! answer, 402), free self-hosted models past the limit, and leases: under
//! load, far from the limit, one hold covers many answers.

use crate::both_engines;
use crate::helpers::{
    error_of, messages_by_role_and_status, messages_path, new_client, Engine, TestApp,
    METRICS_TOKEN,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SONNET: &str = "claude-3-5-sonnet-20241022";
const HAIKU: &str = "claude-3-5-haiku-20241022";

/// A signed-in user with a project; returns the project id.
async fn project(app: &TestApp) -> String {
    app.sign_up("budget@example.com").await;
    app.new_project("Budgeted bot").await
}

fn budget_path(project: &str) -> String {
    format!("/api/projects/{project}/budget")
}

async fn put_budget(app: &TestApp, project: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&budget_path(project)))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Sets the limit (and webhook) and returns the status.
async fn set_budget(app: &TestApp, project: &str, limit_usd: &str, webhook: Option<&str>) -> Value {
    let response = put_budget(
        app,
        project,
        json!({ "limitUsd": limit_usd, "webhookUrl": webhook }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn status(app: &TestApp, project: &str) -> Value {
    let response = app.get(&budget_path(project)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn message_count(app: &TestApp, project: &str, conversation: &str) -> i64 {
    let detail: Value = app
        .get(&format!(
            "/api/projects/{project}/conversations/{conversation}"
        ))
        .await
        .json()
        .await
        .unwrap();
    detail["messageCount"].as_i64().unwrap()
}

/// The month's figures as stored: (spent, reserved).
async fn month_figures(app: &TestApp, project: &str) -> (i64, i64) {
    let (spent, reserved, _, _) = books(&app.state.db.pool, project).await;
    (spent, reserved)
}

both_engines!(
    the_budget_api_validates_every_field_and_reports_the_month,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        // On Cover's managed keys, a project without a budget of its own has
        // the workspace's default.
        let none = status(&app, &project).await;
        assert_eq!(
            none,
            json!({"limitNanos": 25_000_000_000_i64, "workspaceDefault": true, "spentNanos": 0, "workspaceCapLeftNanos": null, "webhookUrl": null, "alertsFired": [], "state": "ok"})
        );

        for (body, field) in [
            (json!({"limitUsd": "-5"}), "limitUsd"),
            (json!({"limitUsd": "a lot"}), "limitUsd"),
            (json!({"limitUsd": "1.0000000001"}), "limitUsd"),
            (
                json!({"limitUsd": "10", "webhookUrl": "ftp://hooks.example.com"}),
                "webhookUrl",
            ),
            (
                json!({"limitUsd": "10", "webhookUrl": "hooks.example.com/budget"}),
                "webhookUrl",
            ),
        ] {
            let (status, got, message) =
                error_of(put_budget(&app, &project, body.clone()).await).await;
            assert_eq!(
                (status, got.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {message}"
            );
        }
        let (status_code, _, _) =
            error_of(put_budget(&app, &project, json!({"limitUsd": 250})).await).await;
        assert_eq!(status_code, StatusCode::BAD_REQUEST);
        assert_eq!(
            status(&app, &project).await,
            none,
            "nothing invalid was saved"
        );

        // Spend is counted without a budget, so a budget set later starts from it.
        let conversation = app.conversation_id(&project).await;
        let answer = app
            .ask_ok(&project, &conversation, "What does it cost?")
            .await;
        let cost = answer["costNanos"].as_i64().unwrap();
        assert!(cost > 0);

        let hook = "https://hooks.example.com/budget?token=s3cret";
        let saved = set_budget(&app, &project, "250.00", Some(hook)).await;
        assert_eq!(
            saved,
            json!({"limitNanos": 250_000_000_000_i64, "workspaceDefault": false, "spentNanos": cost, "workspaceCapLeftNanos": null, "webhookUrl": hook, "alertsFired": [], "state": "ok"})
        );
        assert_eq!(status(&app, &project).await, saved);

        let removed: Value = put_budget(&app, &project, json!({"limitUsd": null}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            removed,
            json!({"limitNanos": 25_000_000_000_i64, "workspaceDefault": true, "spentNanos": cost, "workspaceCapLeftNanos": null, "webhookUrl": null, "alertsFired": [], "state": "ok"})
        );

        let notifications: Value = app
            .get(&format!("/api/projects/{project}/notifications"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(notifications, json!({"notifications": []}));
        let read = app
            .post(
                &format!("/api/projects/{project}/notifications/read"),
                json!({}),
            )
            .await;
        assert_eq!(read.status(), StatusCode::NO_CONTENT);

        // Someone else's project is not found.
        let stranger = app.other_user("stranger@example.com").await;
        let response = stranger
            .get(app.url(&budget_path(&project)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
);

/// A webhook receiver: records every alert it accepts; refuses the very first
/// delivery with a 503, so the retry is exercised.
struct Webhook {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    async fn start() -> Webhook {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = accepted.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (store, refused_once) = (store.clone(), refused_once.clone());
                async move {
                    if !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    store.lock().unwrap().push(body);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hook?token=s3cret",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Webhook { url, accepted }
    }

    /// The accepted alerts once `count` have arrived (and a moment for extras).
    async fn alerts(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.accepted.lock().unwrap().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.accepted.lock().unwrap().clone()
    }
}

/// Asks 200 questions at once, the i-th in `conversations[i % len]`
/// (project, conversation); answers how many were answered and the bodies of
/// the refusals. Every answer must be a 200 or a 402, and both must occur.
async fn ask_200_at_once(app: &TestApp, conversations: &[(String, String)]) -> (usize, Vec<Value>) {
    let requests = (0..200).map(|i| {
        let (project, conversation) = &conversations[i % conversations.len()];
        let request = app
            .client
            .post(app.url(&messages_path(project, conversation)))
            .json(&json!({ "content": format!("question {i}") }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let results = futures::future::join_all(requests).await;
    let answered = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused: Vec<Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::PAYMENT_REQUIRED)
        .map(|(_, body)| body.clone())
        .collect();
    assert_eq!(
        answered + refused.len(),
        200,
        "only answers and 402s: {results:?}"
    );
    assert!(answered > 0 && !refused.is_empty(), "{answered} answered");
    (answered, refused)
}

/// Then one short question at a time in a fresh conversation (no history, so
/// each needs the same reservation), taking `projects` in turn, until one is
/// refused; answers how many were answered.
async fn ask_one_by_one_until_refused(app: &TestApp, projects: &[String]) -> usize {
    let mut later = 0;
    loop {
        let project = &projects[later % projects.len()];
        let fresh = app.conversation_id(project).await;
        if app.ask(project, &fresh, "one more?").await.status() != StatusCode::OK {
            return later;
        }
        later += 1;
        assert!(later < 50, "the limit never ran out");
    }
}

/// Answers admitted under a budget so far whose cost `hold` held (`own`,
/// `lease` or `new_lease`), from the server's `/metrics`.
async fn admissions(app: &TestApp, hold: &str) -> u64 {
    let text = new_client()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("cover_budget_admissions_total{{hold=\"{hold}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// Asks 100 questions at once, over `conversations`; every one must be answered.
async fn ask_100_at_once(app: &TestApp, project: &str, conversations: &[String]) {
    let asked = (0..100).map(|i| {
        let path = messages_path(project, &conversations[i % conversations.len()]);
        let request = app
            .client
            .post(app.url(&path))
            .json(&json!({ "content": format!("question {i}") }));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(asked).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

/// The project's spend, what is held, the holds stored and what the ledger
/// billed, read through `pool`.
async fn books(pool: &sqlx::AnyPool, project: &str) -> (i64, i64, i64, i64) {
    let (spent, reserved): (i64, i64) = sqlx::query_as(
        "select spent_nanos, reserved_nanos from budget_month where project_id = $1",
    )
    .bind(project)
    .fetch_one(pool)
    .await
    .unwrap();
    let holds: i64 = sqlx::query_scalar("select count(*) from budget_hold")
        .fetch_one(pool)
        .await
        .unwrap();
    let billed: i64 = sqlx::query_scalar(
        "select cast(coalesce(sum(cost_nanos), 0) as bigint) from llm_usage where project_id = $1",
    )
    .bind(project)
    .fetch_one(pool)
    .await
    .unwrap();
    (spent, reserved, holds, billed)
}

both_engines!(
    under_load_far_from_the_limit_answers_draw_on_a_lease_and_the_books_still_agree,
    |engine| async move {
        let mut app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        app.configure(&project, json!({"parameters": {"maxTokens": 8}}))
            .await;
        set_budget(&app, &project, "1000", None).await;
        let mut conversations = Vec::new();
        for _ in 0..20 {
            conversations.push(app.conversation_id(&project).await);
        }
        ask_100_at_once(&app, &project, &conversations[..10]).await;

        let (own, leased, new_leases) = (
            admissions(&app, "own").await,
            admissions(&app, "lease").await,
            admissions(&app, "new_lease").await,
        );
        eprintln!("{engine:?}: {own} own holds, {new_leases} leases taken, {leased} drawn on");
        assert_eq!(
            own + leased + new_leases,
            100,
            "every answer was admitted once"
        );
        assert!(new_leases >= 1 && leased > 0, "answers ran together");
        assert!(
            own + new_leases <= 50,
            "most answers needed no hold of their own: {own} own, {new_leases} leases"
        );
        // Answers on a lease start before their question's commit; each
        // question and its answer are stored all the same, the answer ended.
        assert_eq!(
            messages_by_role_and_status(&app, &project).await,
            [
                ("assistant".to_owned(), "complete".to_owned(), 100),
                ("user".to_owned(), "complete".to_owned(), 100)
            ],
            "every question and its ended answer"
        );
        // The keeper releases the leases once their answers have ended.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (spent, reserved, holds, billed) = loop {
            let figures = books(&app.state.db.pool, &project).await;
            if figures.1 == 0 || Instant::now() > deadline {
                break figures;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((reserved, holds), (0, 0), "every lease was released");
        assert!(billed > 0);
        assert_eq!(spent, billed, "the budget counted exactly the ledger");
        assert_eq!(status(&app, &project).await["spentNanos"], billed);

        // A server stopped right after a burst releases its lease as it stops.
        ask_100_at_once(&app, &project, &conversations[10..]).await;
        app.shut_down().await;
        let pool = sqlx::AnyPool::connect(&app.database_url()).await.unwrap();
        let (spent, reserved, holds, billed) = books(&pool, &project).await;
        assert_eq!((reserved, holds), (0, 0), "the stop released every lease");
        assert_eq!(spent, billed);
        pool.close().await;
    }
);

/// An upper bound of one question's reservation in the race: a prompt under
/// 50 tokens at $3 per 1M plus 8 answer tokens at $15 per 1M.
const ONE_RESERVATION_BOUND: i64 = 50 * 3_000 + 8 * 15_000;

both_engines!(
    concurrent_answers_never_overspend_and_each_alert_fires_once,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        // Answers of at most 8 tokens: a reservation is close to what an answer costs.
        app.configure(&project, json!({"parameters": {"maxTokens": 8}}))
            .await;
        let webhook = Webhook::start().await;
        let limit = 6_000_000_i64; // $0.006: about 40 answers
        set_budget(&app, &project, "0.006", Some(&webhook.url)).await;
        let mut conversations = Vec::new();
        for _ in 0..20 {
            conversations.push((project.clone(), app.conversation_id(&project).await));
        }

        let (answered, refused) = ask_200_at_once(&app, &conversations).await;
        assert_eq!(refused[0]["error"]["code"], "budget_exceeded");
        assert!(refused[0]["message"].as_str().unwrap().contains("$0.006"));
        // Then one at a time until the budget refuses: it is used up.
        let later = ask_one_by_one_until_refused(&app, std::slice::from_ref(&project)).await;

        let (spent, reserved) = month_figures(&app, &project).await;
        let over = spent - limit;
        eprintln!(
            "{engine:?}: {answered} of 200 answered at once, {later} after; spent {spent} of {limit} n$ ({over:+} n$ over the limit)"
        );
        assert_eq!(reserved, 0, "every reservation was settled");
        assert!(over <= ONE_RESERVATION_BOUND, "spent {spent} of {limit}");
        assert_eq!(
            admissions(&app, "new_lease").await,
            0,
            "near the limit every answer holds its own"
        );
        let stored: i64 = sqlx::query_scalar(
            "select cast(coalesce(sum(m.cost_nanos), 0) as bigint) from message m \
             join conversation c on c.conversation_id = m.conversation_id where c.project_id = $1",
        )
        .bind(&project)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(stored, spent, "spent is exactly the stored answers' cost");
        let questions: i64 = sqlx::query_scalar(
            "select count(*) from message m join conversation c on c.conversation_id = m.conversation_id \
             where c.project_id = $1 and m.role = 'user'",
        )
        .bind(&project)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(
            questions,
            (answered + later) as i64,
            "refused questions are not stored"
        );

        let notifications: Value = app
            .get(&format!("/api/projects/{project}/notifications"))
            .await
            .json()
            .await
            .unwrap();
        let mut kinds: Vec<&str> = notifications["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["budget100", "budget50", "budget80"]);
        let newest = &notifications["notifications"][0];
        assert_eq!(newest["kind"], "budget100");
        assert_eq!(newest["read"], false);

        let mut alerts = webhook.alerts(3).await;
        alerts.sort_by_key(|a| a["threshold"].as_i64());
        let thresholds: Vec<i64> = alerts
            .iter()
            .map(|a| a["threshold"].as_i64().unwrap())
            .collect();
        assert_eq!(
            thresholds,
            [50, 80, 100],
            "one delivery per threshold: {alerts:?}"
        );
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        for alert in &alerts {
            assert_eq!(alert["projectId"], project.as_str());
            assert_eq!(alert["limitUsd"], "0.006");
            assert_eq!(alert["month"], month.as_str());
        }

        let now = status(&app, &project).await;
        assert_eq!(now["alertsFired"], json!([50, 80, 100]));
        assert_eq!(now["state"], "blocked");
        let read = app
            .post(
                &format!("/api/projects/{project}/notifications/read"),
                json!({}),
            )
            .await;
        assert_eq!(read.status(), StatusCode::NO_CONTENT);
        let notifications: Value = app
            .get(&format!("/api/projects/{project}/notifications"))
            .await
            .json()
            .await
            .unwrap();
        assert!(notifications["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"] == true));
    }
);

/// Sets the admin's limits on managed keys; answers them.
async fn set_managed_limits(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .put(app.url("/api/admin/managed-budget"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

both_engines!(
    the_workspace_cap_on_managed_keys_holds_across_projects_under_200_concurrent_answers,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up_admin("admin@example.com").await;
        let projects = [
            app.new_project("First managed bot").await,
            app.new_project("Second managed bot").await,
        ];
        for project in &projects {
            app.configure(project, json!({"parameters": {"maxTokens": 8}}))
                .await;
        }
        for (body, field) in [
            (json!({"managedBudgetUsd": "25", "capUsd": "-1"}), "capUsd"),
            (json!({"managedBudgetUsd": "25", "capUsd": "0"}), "capUsd"),
            (
                json!({"managedBudgetUsd": "0", "capUsd": "1"}),
                "managedBudgetUsd",
            ),
        ] {
            let (status, got, message) =
                error_of(set_managed_limits(&app, body.clone()).await).await;
            assert_eq!(
                (status, got.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {message}"
            );
        }
        // Each project's default budget ($25) is far above the cap ($0.006):
        // only the cap can refuse.
        let cap = 6_000_000_i64;
        let set =
            set_managed_limits(&app, json!({"managedBudgetUsd": "25", "capUsd": "0.006"})).await;
        assert_eq!(set.status(), StatusCode::OK);
        let limits: Value = set.json().await.unwrap();
        assert_eq!(limits["capUsd"], "0.006");
        assert_eq!(limits["spentUsd"], "0.00");
        let before = status(&app, &projects[0]).await;
        assert_eq!(before["workspaceCapLeftNanos"], cap);

        let mut conversations = Vec::new();
        for i in 0..20 {
            let project = projects[i % 2].clone();
            let conversation = app.conversation_id(&project).await;
            conversations.push((project, conversation));
        }
        let (answered, refused) = ask_200_at_once(&app, &conversations).await;
        let message = refused[0]["message"].as_str().unwrap();
        assert!(
            message.contains("workspace's monthly cap of $0.006 on Cover's managed keys"),
            "{message}"
        );

        // Then one at a time, alternating projects, until the cap refuses:
        // it is used up.
        let later = ask_one_by_one_until_refused(&app, &projects).await;

        let pool = &app.state.db.pool;
        let (spent, reserved): (i64, i64) =
            sqlx::query_as("select spent_nanos, reserved_nanos from workspace_month")
                .fetch_one(pool)
                .await
                .unwrap();
        let ledger: i64 = sqlx::query_scalar(
            "select cast(coalesce(sum(cost_nanos), 0) as bigint) from llm_usage where managed_key = 1",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let projects_spent: i64 =
            sqlx::query_scalar("select cast(sum(spent_nanos) as bigint) from budget_month")
                .fetch_one(pool)
                .await
                .unwrap();
        let over = spent - cap;
        eprintln!("{engine:?}: {answered} of 200 answered at once across 2 projects, {later} after; managed spend {spent} of {cap} n$ ({over:+})");
        assert_eq!(reserved, 0, "every hold on the cap was released");
        assert_eq!(
            spent, ledger,
            "the cap counted exactly the ledger's managed spend"
        );
        assert_eq!(
            spent, projects_spent,
            "and what the projects' budgets counted"
        );
        assert!(over <= ONE_RESERVATION_BOUND, "spent {spent} of {cap}");
        for project in &projects {
            let (_, held) = month_figures(&app, project).await;
            assert_eq!(
                held, 0,
                "a hold refused by the cap gave its project's share back"
            );
        }
        let after: Value = app
            .get("/api/admin/managed-budget")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(after["heldUsd"], "0.00");
        assert_eq!(
            cover::model::money::parse_usd_nanos(after["spentUsd"].as_str().unwrap()).unwrap(),
            spent
        );

        // Without the cap, the same project answers again.
        let fresh = app.conversation_id(&projects[0]).await;
        assert_eq!(
            app.ask(&projects[0], &fresh, "capped?").await.status(),
            StatusCode::PAYMENT_REQUIRED
        );
        let removed =
            set_managed_limits(&app, json!({"managedBudgetUsd": "25", "capUsd": ""})).await;
        assert_eq!(removed.status(), StatusCode::OK);
        assert_eq!(
            app.ask(&projects[0], &fresh, "capped?").await.status(),
            StatusCode::OK
        );
        assert_eq!(
            status(&app, &projects[0]).await["workspaceCapLeftNanos"],
            Value::Null
        );
    }
);

/// Asks with `Accept: text/event-stream`; returns the response.
async fn ask_streamed(
    app: &TestApp,
    project: &str,
    conversation: &str,
    text: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&messages_path(project, conversation)))
        .header("accept", "text/event-stream")
        .json(&json!({ "content": text }))
        .send()
        .await
        .unwrap()
}

/// The `data` of the first event named `name` in an SSE body.
fn event(body: &str, name: &str) -> Value {
    body.split("\n\n")
        .find(|frame| frame.lines().any(|line| line == format!("event: {name}")))
        .and_then(|frame| frame.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .unwrap_or_else(|| panic!("no {name} event in {body}"))
}

/// A project on Sonnet (answers up to 1,000 tokens) falling back to Haiku,
/// and a conversation in it: a chain the ladder can step down.
async fn ladder_project(app: &TestApp) -> (String, String) {
    let project = project(app).await;
    app.configure(&project,
        json!({
            "parameters": {"maxTokens": 1000},
            "fallbackConfig": {"enabled": true, "provider": "claude", "model": HAIKU, "retryAttempts": 1}
        }),
    )
    .await;
    let conversation = app.conversation_id(&project).await;
    (project, conversation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_steps_down_to_the_cheaper_model_then_shorter_answers_then_refuses() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (project, conversation) = ladder_project(&app).await;

    // $0.01 pays for Haiku's longest answer ($0.004) but not Sonnet's ($0.015).
    assert_eq!(
        set_budget(&app, &project, "0.01", None).await["state"],
        "downgraded"
    );
    let answer = app
        .ask_ok(&project, &conversation, "Which plan suits me?")
        .await;
    assert_eq!(answer["model"], HAIKU);
    assert_eq!(
        answer["fallback"],
        json!({
            "from": SONNET, "fromProvider": "claude", "to": HAIKU, "toProvider": "claude", "reason": "budget",
            "message": "The monthly budget is nearly used up — answered by Claude 3.5 Haiku instead of Claude 3.5 Sonnet"
        })
    );
    let streamed = ask_streamed(&app, &project, &conversation, "And the streamed one?").await;
    assert_eq!(streamed.status(), StatusCode::OK);
    let body = streamed.text().await.unwrap();
    assert_eq!(event(&body, "fallback")["reason"], "budget");
    assert_eq!(event(&body, "done")["model"], HAIKU);

    // $0.003 pays for a shorter Haiku answer only.
    assert_eq!(
        set_budget(&app, &project, "0.003", None).await["state"],
        "capped"
    );
    let answer = app.ask_ok(&project, &conversation, "In short?").await;
    assert_eq!(answer["model"], HAIKU);
    let message = answer["fallback"]["message"].as_str().unwrap();
    let prefix = "The monthly budget is nearly used up — answered by Claude 3.5 Haiku instead of Claude 3.5 Sonnet, in at most ";
    let tokens: u32 = message
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(" tokens"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!((256..1000).contains(&tokens), "{message}");

    // $0.001 does not pay for 256 tokens of Haiku: refused before any call, nothing stored.
    assert_eq!(
        set_budget(&app, &project, "0.001", None).await["state"],
        "blocked"
    );
    let (calls, messages) = (
        app.simulator_requests().await,
        message_count(&app, &project, &conversation).await,
    );
    let (status_code, _, message) =
        error_of(app.ask(&project, &conversation, "Still there?").await).await;
    assert_eq!(status_code, StatusCode::PAYMENT_REQUIRED);
    assert!(
        message.starts_with("The monthly budget of $0.001 is used up"),
        "{message}"
    );
    let streamed = ask_streamed(&app, &project, &conversation, "Still there?").await;
    assert_eq!(streamed.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(app.simulator_requests().await, calls);
    assert_eq!(message_count(&app, &project, &conversation).await, messages);
    assert_eq!(month_figures(&app, &project).await.1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_hosted_llama_project_keeps_answering_with_the_budget_used_up() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let project = project(&app).await;
    set_budget(&app, &project, "0", None).await;
    let sonnet = app.conversation_id(&project).await;
    let response = app.ask(&project, &sonnet, "Hello?").await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);

    app.configure(
        &project,
        json!({"provider": "llama", "model": "llama-3.1-70b"}),
    )
    .await;
    assert_eq!(status(&app, &project).await["state"], "ok");
    let llama = app.conversation_id(&project).await;
    for question in ["Hello?", "Still free?"] {
        let answer = app.ask_ok(&project, &llama, question).await;
        assert_eq!(answer["model"], "llama-3.1-70b");
        assert_eq!(answer["costNanos"], 0);
        assert!(answer["fallback"].is_null());
    }
    assert_eq!(status(&app, &project).await["spentNanos"], 0);
}

both_engines!(
    compare_and_chat_pass_the_one_budget_gate_and_nothing_passes_a_spent_budget,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let limit: i64 = 5_000_000; // $0.005
        let set = app
            .client
            .put(app.url(&format!("/api/projects/{project}/budget")))
            .json(&json!({"limitUsd": "0.005"}))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), StatusCode::OK);
        let conversation = app.conversation_id(&project).await;
        let compare = json!({"projectId": project, "prompt": "Hello?",
            "models": ["claude-3-5-sonnet-20241022", "gpt-4o"]});
        let (mut chat_open, mut compare_open, mut rounds) = (true, true, 0);
        while chat_open || compare_open {
            rounds += 1;
            assert!(rounds < 100, "the budget never ran out");
            let asked = app.ask(&project, &conversation, "And then?").await.status();
            assert!(matches!(asked.as_u16(), 200 | 402), "chat answered {asked}");
            chat_open = asked == StatusCode::OK;
            let results: Vec<Value> = app
                .post("/api/llm/compare", compare.clone())
                .await
                .json()
                .await
                .unwrap();
            compare_open = results.iter().any(|r| r["error"].is_null());
            for refused in results.iter().filter(|r| !r["error"].is_null()) {
                assert!(
                    refused["error"].as_str().unwrap().contains("budget"),
                    "{refused}"
                );
                assert_eq!(refused["costNanos"], 0);
            }
        }
        // Spent: no request reaches a provider any more, by either path.
        let before = app.simulator_requests().await;
        assert_eq!(
            app.ask(&project, &conversation, "One more?").await.status(),
            StatusCode::PAYMENT_REQUIRED
        );
        app.post("/api/llm/compare", compare).await;
        assert_eq!(
            app.simulator_requests().await,
            before,
            "a spent budget lets nothing through"
        );

        app.state.ledger.flush().await;
        let (spent, reserved, _, billed) = books(&app.state.db.pool, &project).await;
        let compared: i64 = sqlx::query_scalar(
            "select count(*) from llm_usage where project_id = $1 and conversation_id is null",
        )
        .bind(&project)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        assert!(compared > 0, "comparisons were answered and billed");
        assert_eq!(reserved, 0, "every hold was released");
        assert_eq!(spent, billed, "the budget counted exactly the ledger");
        assert!(spent <= limit, "spent {spent} of {limit}");
    }
);

both_engines!(
    a_budget_changed_by_another_app_server_counts_at_once_on_this_one,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let (project, conversation) = ladder_project(&app).await;
        // $0.01 pays for Haiku's longest answer only: this server now holds
        // a copy of the budget that steps down to Haiku.
        set_budget(&app, &project, "0.01", None).await;
        let answer = app.ask_ok(&project, &conversation, "Which plan?").await;
        assert_eq!(answer["model"], HAIKU);

        // Another app server raises the limit (straight in the database, so
        // this one's copy is not forgotten): the next answer is whole.
        sqlx::query("update budget set limit_nanos = 100000000000 where project_id = $1")
            .bind(&project)
            .execute(&app.state.db.writer)
            .await
            .unwrap();
        let answer = app.ask_ok(&project, &conversation, "And now?").await;
        assert_eq!(answer["model"], SONNET, "{answer}");
        assert!(answer["fallback"].is_null(), "{answer}");

        // Another app server spends the month: this one's copy still shows
        // room, but nothing gets past the hold.
        app.state.ledger.flush().await;
        sqlx::query("update budget_month set spent_nanos = 100000000000 where project_id = $1")
            .bind(&project)
            .execute(&app.state.db.writer)
            .await
            .unwrap();
        let calls = app.simulator_requests().await;
        let (status_code, _, message) =
            error_of(app.ask(&project, &conversation, "Still there?").await).await;
        assert_eq!(status_code, StatusCode::PAYMENT_REQUIRED, "{message}");
        assert!(
            message.starts_with("The monthly budget of $100.00 is used up"),
            "{message}"
        );
        assert_eq!(app.simulator_requests().await, calls);
        assert_eq!(month_figures(&app, &project).await.1, 0, "nothing held");
    }
);
