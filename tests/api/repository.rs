//! The repository layer on both engines: the same tests, SQLite and PostgreSQL.

use crate::both_engines;
use crate::helpers::TestDatabase;
use cover::model::account::{UseCase, WorkspaceRole};
use cover::server::catalog;
use cover::server::db::{login_attempts, projects, users};
use cover::server::services::accounts;
use cover::server::services::llm_settings::Draft;

both_engines!(
    users_are_inserted_once_per_email_and_the_first_is_admin,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        let first = users::insert(&db.pool, "a@example.com", "hash-a", false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.role, WorkspaceRole::Admin);
        let second = users::insert(&db.pool, "b@example.com", "hash-b", false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.role, WorkspaceRole::Member);
        assert!(users::insert(&db.pool, "a@example.com", "other", false)
            .await
            .unwrap()
            .is_none());
        let found = users::find_by_email(&db.pool, "b@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, second);
        assert_eq!(
            users::find_by_id(&db.pool, &first.user_id)
                .await
                .unwrap()
                .unwrap()
                .email,
            "a@example.com"
        );
    }
);

both_engines!(
    concurrent_first_sign_ups_make_exactly_one_admin,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        let inserts = (0..8).map(|i| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                users::insert(&pool, &format!("u{i}@example.com"), "h", false).await
            })
        });
        let mut admins = 0;
        for handle in inserts {
            if let Ok(Ok(Some(user))) = handle.await {
                admins += usize::from(user.role == WorkspaceRole::Admin);
            }
        }
        assert_eq!(admins, 1);
    }
);

both_engines!(projects_are_listed_for_members_only, |engine| async move {
    let db = TestDatabase::create(engine).await.connect().await;
    let owner = users::insert(&db.pool, "o@example.com", "h", false)
        .await
        .unwrap()
        .unwrap();
    let other = users::insert(&db.pool, "x@example.com", "h", false)
        .await
        .unwrap()
        .unwrap();
    let project = projects::insert(
        &db.pool,
        &owner.user_id,
        "Bot",
        UseCase::TechnicalDocs,
        |id| Draft::default_for(&catalog::load().unwrap()).to_row(id, 1, None),
    )
    .await
    .unwrap();
    assert_eq!(
        projects::list_for_member(&db.pool, &owner.user_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(projects::list_for_member(&db.pool, &other.user_id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        projects::list_all(&db.pool, &other.user_id)
            .await
            .unwrap()
            .len(),
        1
    );
    let seen = projects::find(&db.pool, &project.project_id, &other.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.member_role, None);
    assert!(
        projects::add_member(&db.pool, &project.project_id, &other.user_id)
            .await
            .unwrap()
    );
    assert!(
        !projects::add_member(&db.pool, &project.project_id, &other.user_id)
            .await
            .unwrap()
    );
    projects::update(&db.pool, &project.project_id, "Docs bot", UseCase::Sales)
        .await
        .unwrap();
    let renamed = projects::find(&db.pool, &project.project_id, &other.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.use_case),
        ("Docs bot", UseCase::Sales)
    );
    assert!(renamed.member_role.is_some());
});

both_engines!(
    failed_logins_are_counted_atomically_and_cleared,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        let writers = (0..10).map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                login_attempts::record_failure(&pool, "a@example.com", 1_000)
                    .await
                    .unwrap()
            })
        });
        for handle in writers {
            handle.await.unwrap();
        }
        assert_eq!(
            login_attempts::get(&db.pool, "a@example.com")
                .await
                .unwrap()
                .unwrap()
                .count,
            10
        );
        login_attempts::clear(&db.pool, "a@example.com")
            .await
            .unwrap();
        assert!(login_attempts::get(&db.pool, "a@example.com")
            .await
            .unwrap()
            .is_none());
    }
);

both_engines!(
    the_cli_creates_an_admin_and_resets_a_password,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        users::insert(&db.pool, "first@example.com", "h", false)
            .await
            .unwrap();
        let (user, created) =
            accounts::create_or_update(&db, "ops@example.com", "password-1", true)
                .await
                .unwrap();
        assert!(created);
        assert_eq!(user.role, WorkspaceRole::Admin);
        let (again, created) =
            accounts::create_or_update(&db, "ops@example.com", "password-2", false)
                .await
                .unwrap();
        assert!(!created);
        assert_eq!(again.role, WorkspaceRole::Admin);
        assert!(accounts::log_in(&db, "ops@example.com", "password-2", 0)
            .await
            .is_ok());
        assert!(accounts::log_in(&db, "ops@example.com", "password-1", 0)
            .await
            .is_err());
    }
);
