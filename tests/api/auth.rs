//! Sign-up, log-in, log-out and their failure paths, through the JSON API.

use crate::both_engines;
use crate::helpers::{error_of, new_client, post_with, TestApp, TestOptions, PASSWORD};
use cover::model::account::SignupMode;
use cover::server::services::accounts;
use reqwest::StatusCode;
use serde_json::json;

both_engines!(
    nobody_becomes_admin_by_being_first_the_setup_token_makes_one_once,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let first = app.sign_up("Ada@Example.com").await;
        assert_eq!(first["email"], "ada@example.com");
        assert_eq!(first["role"], "member");
        // A fresh start makes a setup token while there is no admin.
        let token = accounts::fresh_setup_token(&app.state.db)
            .await
            .unwrap()
            .expect("a setup token while there is no admin");
        let wrong = post_with(
            &new_client(),
            &app.url("/api/auth/signup"),
            json!({"email": "eve@example.com", "password": PASSWORD, "setupToken": "setup_guess"}),
        )
        .await;
        let (status, field, _) = error_of(wrong).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("setupToken"))
        );
        let admin = post_with(
            &new_client(),
            &app.url("/api/auth/signup"),
            json!({"email": "ops@example.com", "password": PASSWORD, "setupToken": token}),
        )
        .await;
        assert_eq!(admin.status(), StatusCode::CREATED);
        let admin: serde_json::Value = admin.json().await.unwrap();
        assert_eq!(admin["role"], "admin");
        // It works once, and no new one is made once an admin exists.
        let again = post_with(
            &new_client(),
            &app.url("/api/auth/signup"),
            json!({"email": "eve@example.com", "password": PASSWORD, "setupToken": token}),
        )
        .await;
        assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(accounts::fresh_setup_token(&app.state.db)
            .await
            .unwrap()
            .is_none());
    }
);

both_engines!(
    by_invitation_only_a_link_for_that_email_makes_an_account_and_only_once,
    |engine| async move {
        let options = TestOptions {
            signup: SignupMode::Invite,
            ..TestOptions::default()
        };
        let app = TestApp::spawn_with(engine, options).await;
        app.sign_up_admin("admin@example.com").await;
        let project = app.new_project("Invited").await;
        let signup_url = app.url("/api/auth/signup");
        let anonymous = new_client();
        let signup = |body: serde_json::Value| post_with(&anonymous, &signup_url, body);
        let (status, _, message) =
            error_of(signup(json!({"email": "bob@example.com", "password": PASSWORD})).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
        assert!(message.contains("invitation"), "{message}");

        // The same answer whether the email has an account or not.
        let for_new = app
            .post(
                &format!("/api/projects/{project}/members"),
                json!({"email": "bob@example.com"}),
            )
            .await;
        let for_admin = app
            .post(
                &format!("/api/projects/{project}/members"),
                json!({"email": "admin@example.com"}),
            )
            .await;
        assert_eq!(
            (for_new.status(), for_admin.status()),
            (StatusCode::CREATED, StatusCode::CREATED)
        );
        let invitation = app.invitation(&project, "bob@example.com").await;
        let (status, field, _) = error_of(
            signup(json!({"email": "mallory@example.com", "password": PASSWORD, "invitation": invitation})).await,
        )
        .await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
        );
        let bob = new_client();
        let joined = post_with(
            &bob,
            &app.url("/api/auth/signup"),
            json!({"email": "bob@example.com", "password": PASSWORD, "invitation": invitation}),
        )
        .await;
        assert_eq!(joined.status(), StatusCode::CREATED);
        let seen = bob
            .get(app.url(&format!("/api/projects/{project}")))
            .send()
            .await
            .unwrap();
        let seen: serde_json::Value = seen.json().await.unwrap();
        assert_eq!(seen["role"], "member");
        let (status, field, _) = error_of(
            signup(
                json!({"email": "bob@example.com", "password": PASSWORD, "invitation": invitation}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invitation"))
        );

        let closed = TestApp::spawn_with(
            engine,
            TestOptions {
                signup: SignupMode::Closed,
                ..TestOptions::default()
            },
        )
        .await;
        let refused = post_with(
            &new_client(),
            &closed.url("/api/auth/signup"),
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
);

both_engines!(
    guesses_from_many_addresses_slow_the_owner_down_but_never_lock_them_out,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let db = &app.state.db;
        let now = cover::server::db::now_ms();
        for i in 0..40u8 {
            let attacker = Some(std::net::IpAddr::from([198, 51, 100, i]));
            let _ = accounts::log_in(db, "ada@example.com", "guess", attacker, now).await;
        }
        let owner = Some(std::net::IpAddr::from([203, 0, 113, 7]));
        // Right now the account waits, but for at most 30 s…
        let waiting = accounts::log_in(db, "ada@example.com", PASSWORD, owner, now).await;
        match waiting {
            Err(cover::server::error::Error::App(cover::error::AppError::TooManyRequests {
                retry_after_secs,
                ..
            })) => assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}"),
            other => panic!("expected a short wait, got {other:?}"),
        }
        // …and then the owner gets in from their own address.
        accounts::log_in(db, "ada@example.com", PASSWORD, owner, now + 31_000)
            .await
            .expect("the owner is slowed down, not locked out");
        // One address guessing the same account is stopped far longer.
        let attacker = Some(std::net::IpAddr::from([198, 51, 100, 250]));
        let mut last = None;
        for step in 0..12 {
            last = accounts::log_in(
                db,
                "bob@example.com",
                "guess",
                attacker,
                now + step * 100_000,
            )
            .await
            .err();
        }
        match last {
            Some(cover::server::error::Error::App(cover::error::AppError::TooManyRequests {
                retry_after_secs,
                ..
            })) => assert!(retry_after_secs > 60, "{retry_after_secs}"),
            other => panic!("expected a long wait, got {other:?}"),
        }
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
        let loopback = Some(std::net::IpAddr::from([127, 0, 0, 1]));
        accounts::log_in(&app.state.db, "ada@example.com", PASSWORD, loopback, later)
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
