//! Server-rendered pages: every page is complete HTML before any WASM runs.

use crate::helpers::{Engine, TestApp};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_renders_a_working_form_without_javascript() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-test="login-form""#), "{html}");
    assert!(html.contains(r#"action="/sfn/auth/login""#), "{html}");
    assert!(html.contains("/pkg/cover.js"), "hydration script is linked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_page_is_rendered_on_the_server_with_all_providers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("ada@example.com").await;
    let id = app.new_project("Bot").await;
    let html = app
        .get(&format!("/projects/{id}/compare"))
        .await
        .text()
        .await
        .unwrap();
    for expected in [
        "Anthropic Claude",
        "OpenAI GPT",
        "Google Gemini",
        "Meta Llama",
        "$3.00/1M",
        "$0*",
    ] {
        assert!(html.contains(expected), "missing {expected}");
    }
    assert!(html.contains(r#"data-test="project-title""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_page_shows_the_latency_this_project_measured() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("ada@example.com").await;
    let id = app.new_project("Bot").await;
    let cell = |html: &str, provider: &str| -> String {
        let marker = format!(r#"data-test="cell-avg-response-{provider}""#);
        let start = html.find(&marker).unwrap_or_else(|| panic!("no {marker}"));
        let rest = &html[start..];
        rest[..rest.find("</td>").unwrap()].to_owned()
    };
    let html = app
        .get(&format!("/projects/{id}/compare"))
        .await
        .text()
        .await
        .unwrap();
    assert!(cell(&html, "claude").contains("Not measured in this project yet (typically fast)"));
    for _ in 0..2 {
        let conversation = app.conversation_id(&id).await;
        app.ask_ok(&id, &conversation, "How fast?").await;
    }
    app.state.ledger.flush().await;
    let html = app
        .get(&format!("/projects/{id}/compare"))
        .await
        .text()
        .await
        .unwrap();
    let claude = cell(&html, "claude");
    assert!(
        claude.contains(" s median, measured (only 2 answers)"),
        "{claude}"
    );
    assert!(cell(&html, "openai").contains("Not measured in this project yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_form_picks_models_from_the_query_before_hydration() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("ada@example.com").await;
    let id = app.new_project("Bot").await;
    let html = app
        .get(&format!(
            "/projects/{id}/compare?claude=claude-3-opus-20240229"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("$75.00/1M"), "Opus output price is shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_answers_404() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_through_the_plain_form_redirects_to_projects() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let response = app
        .client
        .post(app.url("/sfn/auth/signup"))
        .header("referer", app.url("/signup"))
        .header("accept", "text/html")
        .form(&[
            ("email", "ada@example.com"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/projects");
    let me = app.get("/api/auth/me").await;
    assert_eq!(me.status(), StatusCode::OK);
}

/// Regression: listing the page routes renders the app with resource loading
/// suppressed by a process-global flag in `leptos_server`. When one
/// application built its route list while another (in the same process)
/// rendered a page, that page's resources stayed pending forever and the
/// response never ended. Applications now list the routes once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_finish_while_other_applications_start_in_the_same_process() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("ada@example.com").await;
    let id = app.new_project("Bot").await;
    let path = format!("/projects/{id}/compare");
    let starting = tokio::spawn(async {
        for _ in 0..12 {
            let others: Vec<_> = (0..4).map(|_| TestApp::spawn(Engine::Sqlite)).collect();
            drop(futures::future::join_all(others).await);
        }
    });
    let mut rendered = 0;
    while !starting.is_finished() || rendered < 40 {
        let pages = (0..4).map(|_| async {
            let page = app.get(&path).await;
            assert_eq!(page.status(), StatusCode::OK);
            page.text().await.expect("the page ends")
        });
        for html in futures::future::join_all(pages).await {
            assert!(html.contains("Anthropic Claude"), "the table is there");
            rendered += 1;
        }
    }
    starting.await.expect("the other applications started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_answer_with_their_errors_own_status() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let call = |endpoint: &str, form: Vec<(&'static str, String)>| {
        let request = app
            .client
            .post(app.url(&format!("/sfn/{endpoint}")))
            .form(&form);
        async move { request.send().await.unwrap() }
    };
    let bad_email = call(
        "auth/signup",
        vec![
            ("email", "not-an-email".into()),
            ("password", crate::helpers::PASSWORD.into()),
        ],
    )
    .await;
    assert_eq!(bad_email.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = bad_email.json().await.unwrap();
    assert_eq!(body["code"], "invalid");
    assert_eq!(body["field"], "email");

    app.sign_up("ada@example.com").await;
    let wrong_password = call(
        "auth/login",
        vec![
            ("email", "ada@example.com".into()),
            ("password", "not the password".into()),
        ],
    )
    .await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);

    let missing = call("projects/get", vec![("id", "no-such-project".into())]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_plain_form_post_is_redirected_back_to_its_page() {
    // Before hydration a form posts natively (Accept: text/html): whatever
    // the error, the browser must land back on the page, never on raw JSON.
    let app = TestApp::spawn(Engine::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let referer = app.url("/signup");
    let response = client
        .post(app.url("/sfn/auth/signup"))
        .header("accept", "text/html")
        .header("referer", &referer)
        .form(&[
            ("email", "not-an-email"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&referer) && location.contains("__err="),
        "back to the page, carrying the error to show: {location}"
    );
}

/// The browser bundle goes out precompressed: `scripts/build` writes a `.gz`
/// next to every wasm, js and css file, and the static files handler sends
/// it, with `Content-Encoding: gzip`, to a client that accepts gzip (the
/// plain file to one that does not). Lazy-route chunks are served the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_is_sent_gzipped_to_clients_that_accept_gzip() {
    use cover::server::config::Config;
    use cover::server::startup::Application;

    let site = tempfile::tempdir().expect("temp dir");
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let plain: &[u8] = b"\0asm\x01\0\0\0 the plain module";
    let gzipped: &[u8] = b"\x1f\x8b the gzipped module";
    for name in ["cover.wasm", "chunk_8.wasm"] {
        std::fs::write(pkg.join(name), plain).unwrap();
        std::fs::write(pkg.join(format!("{name}.gz")), gzipped).unwrap();
    }
    let database = crate::helpers::TestDatabase::create(Engine::Sqlite).await;
    let mut config = Config::loopback(&database.url, "http://127.0.0.1:9");
    config.leptos.site_root = site.path().to_string_lossy().as_ref().into();
    let app = Application::build(config).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = crate::helpers::new_client();

    for name in ["cover.wasm", "chunk_8.wasm"] {
        let url = format!("{base}/pkg/{name}");
        let response = client
            .get(&url)
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert_eq!(response.headers()["content-type"], "application/wasm");
        assert_eq!(response.bytes().await.unwrap().as_ref(), gzipped);

        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("content-encoding"));
        assert_eq!(response.bytes().await.unwrap().as_ref(), plain);
    }

    let _ = stop.send(());
    serving.await.unwrap().expect("graceful shutdown");
}
