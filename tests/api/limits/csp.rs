//! The content policy of pages: each rendered page draws a fresh nonce, its
//! `Content-Security-Policy` header allows inline scripts with that nonce
//! only, and every inline script of the page carries it; other answers allow
//! no inline script at all.

use crate::helpers::{within_limit, Engine, TestApp};
use reqwest::StatusCode;

/// The `script-src` directive of an answer's content policy.
fn script_src(response: &reqwest::Response) -> String {
    let policy = response
        .headers()
        .get("content-security-policy")
        .expect("a content policy")
        .to_str()
        .expect("ASCII")
        .to_owned();
    policy
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src "))
        .unwrap_or_else(|| panic!("no script-src in {policy}"))
        .to_owned()
}

/// GETs a page; returns its status, its nonce (from the header) and its HTML,
/// after checking that `script-src` allows no inline script but the nonce's.
async fn page(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app.get(path).await;
    let status = response.status();
    let directive = script_src(&response);
    assert!(
        !directive.contains("'unsafe-inline'"),
        "{path}: {directive}"
    );
    let nonces: Vec<&str> = directive
        .split_whitespace()
        .filter_map(|source| source.strip_prefix("'nonce-")?.strip_suffix('\''))
        .collect();
    let [nonce] = nonces[..] else {
        panic!("{path}: one nonce expected in {directive}");
    };
    assert!(
        nonce.len() >= 22,
        "{path}: a nonce of 128 bits or more, got {nonce}"
    );
    let nonce = nonce.to_owned();
    let html = response.text().await.expect("the page");
    (status, nonce, html)
}

/// The opening tags of every `<script` element in `html`.
fn script_tags(html: &str) -> Vec<&str> {
    html.match_indices("<script")
        .map(|(start, _)| {
            let end = html[start..].find('>').expect("a closed tag");
            &html[start..=start + end]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_its_own_nonce_and_each_of_its_inline_scripts_carries_it() {
    within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let mut seen = Vec::new();
        for (path, status) in [
            ("/", StatusCode::OK),
            ("/", StatusCode::OK),
            ("/signup", StatusCode::OK),
            ("/no-such-page", StatusCode::NOT_FOUND),
        ] {
            let (got, nonce, html) = page(&app, path).await;
            assert_eq!(got, status, "{path}");
            let scripts = script_tags(&html);
            assert!(
                !scripts.is_empty(),
                "{path}: the hydration script is inline"
            );
            for tag in scripts {
                assert!(
                    tag.contains(&format!("nonce=\"{nonce}\"")),
                    "{path}: {tag} lacks the nonce {nonce}"
                );
            }
            assert!(
                !seen.contains(&nonce),
                "{path}: the nonce {nonce} came twice"
            );
            seen.push(nonce);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_page_with_streamed_data_has_its_scripts_covered_too() {
    within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up("csp@example.com").await;
        let project = app.new_project("Policed").await;
        for path in [
            "/projects".to_owned(),
            format!("/projects/{project}/settings"),
        ] {
            let (status, nonce, html) = page(&app, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            for tag in script_tags(&html) {
                assert!(
                    tag.contains(&format!("nonce=\"{nonce}\"")),
                    "{path}: {tag} lacks the nonce {nonce}"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_are_not_pages_allow_no_inline_script() {
    within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        for path in ["/api/llm/providers", "/api/openapi.json"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                script_src(&response),
                "script-src 'self' 'wasm-unsafe-eval'",
                "{path}"
            );
        }
    })
    .await;
}
