//! Projects through the JSON API: create, list, rename, members, and who may
//! see what.

use crate::both_engines;
use crate::helpers::{error_of, every_page, new_client, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_engines!(
    a_user_creates_lists_and_renames_projects,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let created = app
            .post(
                "/api/projects",
                json!({"name": "  Support bot ", "useCase": "sales"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let project: Value = created.json().await.unwrap();
        assert_eq!(project["name"], "Support bot");
        assert_eq!(project["useCase"], "sales");
        assert_eq!(project["role"], "owner");
        let id = project["id"].as_str().unwrap().to_owned();

        let list: Value = app.get("/api/projects").await.json().await.unwrap();
        assert_eq!(list["projects"].as_array().unwrap().len(), 1);

        let renamed: Value = app
            .patch(&format!("/api/projects/{id}"), json!({"name": "Helpdesk"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(renamed["name"], "Helpdesk");
        assert_eq!(renamed["useCase"], "sales");
        let fetched: Value = app
            .get(&format!("/api/projects/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["name"], "Helpdesk");
    }
);

both_engines!(
    another_users_project_answers_404_and_members_can_see_it,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up_admin("admin@example.com").await;
        let owner = app.other_user("owner@example.com").await;
        let stranger = app.other_user("stranger@example.com").await;
        let id = app.new_project_as(&owner, "Private").await;
        let path = format!("/api/projects/{id}");

        let peek = stranger.get(app.url(&path)).send().await.unwrap();
        assert_eq!(peek.status(), StatusCode::NOT_FOUND);
        let rename = stranger
            .patch(app.url(&path))
            .json(&json!({"name": "Mine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(rename.status(), StatusCode::NOT_FOUND);
        let list: Value = stranger
            .get(app.url("/api/projects"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(list["projects"].as_array().unwrap().is_empty());

        // The workspace admin sees every project.
        let as_admin = app.get(&path).await;
        assert_eq!(as_admin.status(), StatusCode::OK);
        let admin_view: Value = as_admin.json().await.unwrap();
        assert_eq!(admin_view["role"], "admin");

        // Once invited, the stranger accepts the link signed in and is a member.
        let invited: Value = owner
            .post(app.url(&format!("{path}/members")))
            .json(&json!({"email": "stranger@example.com"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = invited["link"]
            .as_str()
            .unwrap()
            .split_once("invitation=")
            .unwrap()
            .1;
        let accepted: Value = stranger
            .post(app.url("/api/invitations/accept"))
            .json(&json!({"invitation": secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(accepted["projectId"], id.as_str());
        let now_member: Value = stranger
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(now_member["role"], "member");
        assert_eq!(now_member["name"], "Private");
    }
);

both_engines!(
    owners_remove_members_whose_tokens_go_with_them_and_the_last_owner_stays,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("owner@example.com").await;
        let id = app.new_project("Team").await;
        let member = app.invited_member(&id, "member@example.com").await;
        let path = format!("/api/projects/{id}");
        let members: Value = app
            .get(&format!("{path}/members"))
            .await
            .json()
            .await
            .unwrap();
        let roles: Vec<(&str, &str)> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [
                ("owner@example.com", "owner"),
                ("member@example.com", "member")
            ]
        );
        let user_id = |email: &str| {
            members["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["email"] == email)
                .unwrap()["userId"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        // A member cannot remove the owner, nor make tokens.
        let refused = member
            .delete(app.url(&format!("{path}/members/{}", user_id("owner@example.com"))))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        // A token made in the member's name (the API lets only owners make
        // tokens; the service makes this one) is revoked when they leave.
        let made = cover::server::services::api_tokens::create(
            &app.state.db,
            &id,
            &user_id("member@example.com"),
            "member's",
            &[],
        )
        .await
        .unwrap();
        let removed = app
            .client
            .delete(app.url(&format!("{path}/members/{}", user_id("member@example.com"))))
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        let gone = member.get(app.url(&path)).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        let with_token = new_client()
            .get(app.url(&format!("{path}/llm-config")))
            .bearer_auth(&made.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(with_token.status(), StatusCode::UNAUTHORIZED);
        let last_owner = app
            .client
            .delete(app.url(&format!("{path}/members/{}", user_id("owner@example.com"))))
            .send()
            .await
            .unwrap();
        assert_eq!(last_owner.status(), StatusCode::CONFLICT);
    }
);

both_engines!(
    project_input_is_validated_with_the_field_named,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("ada@example.com").await;
        let (status, field, _) =
            error_of(app.post("/api/projects", json!({"name": "   "})).await).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let long = "x".repeat(81);
        let (status, field, _) =
            error_of(app.post("/api/projects", json!({"name": long})).await).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let (status, field, _) = error_of(
            app.post("/api/projects", json!({"name": "Bot", "useCase": "gaming"}))
                .await,
        )
        .await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("useCase"))
        );
        let (status, field, _) = error_of(
            app.post(
                "/api/projects/none/members",
                json!({"email": "x@example.com"}),
            )
            .await,
        )
        .await;
        assert_eq!((status, field), (StatusCode::NOT_FOUND, None));
    }
);

both_engines!(projects_need_a_signed_in_user, |engine| async move {
    let app = TestApp::spawn(engine).await;
    let anonymous = new_client();
    let list = anonymous
        .get(app.url("/api/projects"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::UNAUTHORIZED);
    let create = anonymous
        .post(app.url("/api/projects"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::UNAUTHORIZED);
});

both_engines!(
    the_project_list_pages_through_every_project_once,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("many@example.com").await;
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(app.new_project(&format!("Bot {i}")).await);
        }
        let (mut seen, pages) = every_page(&app, "/api/projects", "projects", 2).await;
        assert_eq!(pages, 3);
        let whole: Value = app.get("/api/projects").await.json().await.unwrap();
        let newest_first: Vec<&str> = whole["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(seen, newest_first, "every project once, newest first");
        seen.sort();
        created.sort();
        assert_eq!(seen, created);
        let (status, field, _) = error_of(app.get("/api/projects?limit=500").await).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
        );
    }
);
