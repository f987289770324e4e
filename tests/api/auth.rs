//! Sign-up, log-in, log-out and their failure paths, through the JSON API.

use crate::both_engines;
use crate::helpers::{error_of, new_client, post_with, TestApp, PASSWORD};
use cover::server::services::accounts;
use reqwest::StatusCode;
use serde_json::json;

both_engines!(
    the_first_account_becomes_admin_and_later_ones_members,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let first = app.sign_up("Ada@Example.com").await;
        assert_eq!(first["email"], "ada@example.com");
        assert_eq!(first["role"], "admin");

        let other = new_client();
        let response = post_with(
            &other,
            &app.url("/api/auth/signup"),
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
        let second: serde_json::Value = response.json().await.unwrap();
        assert_eq!(second["role"], "member");
    }
);

both_engines!(
    signing_up_signs_in_and_logging_out_ends_the_session,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let me = app.get("/api/auth/me").await;
        assert_eq!(me.status(), StatusCode::OK);

        let out = app.post("/api/auth/logout", json!({})).await;
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let me = app.get("/api/auth/me").await;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }
);

both_engines!(
    logging_in_works_and_cycles_the_session_id,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        app.post("/api/auth/logout", json!({})).await;

        let client = new_client();
        // A session that exists before login (created by a first request that stores nothing
        // would not set a cookie), so compare the cookie set at signup-time with login-time.
        let first = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
        assert_eq!(first.status(), StatusCode::OK);
        let cookie_one = session_cookie(&first);
        let second = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
        let cookie_two = session_cookie(&second);
        assert!(cookie_one.is_some() && cookie_two.is_some());
        assert_ne!(cookie_one, cookie_two, "login must issue a new session id");
        let set_cookie = second.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    }
);

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .cookies()
        .find(|c| c.name() == "cover_session")
        .map(|c| c.value().to_owned())
}

both_engines!(
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let client = new_client();
        let wrong = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "ada@example.com", "password": "not the password"}),
        )
        .await;
        let unknown = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "nobody@example.com", "password": "not the password"}),
        )
        .await;
        let wrong = error_of(wrong).await;
        let unknown = error_of(unknown).await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown);
        assert_eq!(wrong.2, "wrong email or password");
    }
);

both_engines!(
    repeated_failed_logins_are_slowed_down,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let client = new_client();
        let login_url = app.url("/api/auth/login");
        let attempt = || {
            post_with(
                &client,
                &login_url,
                json!({"email": "ada@example.com", "password": "guess"}),
            )
        };
        for _ in 0..4 {
            assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
        }
        let fifth = attempt().await;
        assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(fifth.headers()["retry-after"], "1");
        // Even the right password waits until the lockout is over.
        let right = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        // Once the wait is over (the attempt is dated 2.1 s later rather than
        // the test sleeping), the right password logs in and clears the count.
        let later = cover::server::db::now_ms() + 2_100;
        accounts::log_in(&app.state.db, "ada@example.com", PASSWORD, later)
            .await
            .expect("the wait is over");
        let right = post_with(
            &client,
            &app.url("/api/auth/login"),
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
        assert_eq!(right.status(), StatusCode::OK);
    }
);

both_engines!(bad_sign_up_input_names_the_field, |engine| async move {
    let app = TestApp::spawn(engine).await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("email"),
        ),
        (
            json!({"email": "ada@example.com", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("password"),
        ),
    ];
    for (body, status, field) in cases {
        let (got_status, got_field, message) =
            error_of(app.post("/api/auth/signup", body).await).await;
        assert_eq!(
            (got_status, got_field.as_deref()),
            (status, field),
            "{message}"
        );
    }
    let (status, _, message) = error_of(
        app.post("/api/auth/signup", json!({"email": "ada@example.com"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("password"), "{message}");

    let raw = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
});

both_engines!(an_email_can_only_sign_up_once, |engine| async move {
    let app = TestApp::spawn(engine).await;
    app.sign_up("ada@example.com").await;
    let again = post_with(
        &new_client(),
        &app.url("/api/auth/signup"),
        json!({"email": "ADA@example.com", "password": PASSWORD}),
    )
    .await;
    let (status, field, _) = error_of(again).await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::CONFLICT, Some("email"))
    );
});
