//! The repository layer on both engines: the same tests, SQLite and PostgreSQL.

use crate::both_engines;
use crate::helpers::{insert_user, TestDatabase};
use cover::model::account::{UseCase, WorkspaceRole};
use cover::server::catalog;
use cover::server::db::paging::Page;
use cover::server::db::{login_throttle, projects, users};
use cover::server::services::accounts;
use cover::server::services::llm_settings::Draft;
use sqlx::Row;

both_engines!(
    users_are_inserted_once_per_email_with_their_role,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        let first = insert_user(&db.pool, "a@example.com", WorkspaceRole::Admin)
            .await
            .unwrap();
        assert_eq!(first.role, WorkspaceRole::Admin);
        let second = insert_user(&db.pool, "b@example.com", WorkspaceRole::Member)
            .await
            .unwrap();
        assert_eq!(second.role, WorkspaceRole::Member);
        assert!(
            insert_user(&db.pool, "a@example.com", WorkspaceRole::Member)
                .await
                .is_none()
        );
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
    concurrent_sign_ups_of_one_email_make_exactly_one_account,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        let inserts = (0..8).map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                insert_user(&pool, "same@example.com", WorkspaceRole::Member).await
            })
        });
        let mut created = 0;
        for handle in inserts {
            created += usize::from(handle.await.unwrap().is_some());
        }
        assert_eq!(created, 1);
        assert!(!users::admin_exists(&db.pool).await.unwrap());
    }
);

both_engines!(projects_are_listed_for_members_only, |engine| async move {
    let db = TestDatabase::create(engine).await.connect().await;
    let owner = insert_user(&db.pool, "o@example.com", WorkspaceRole::Member)
        .await
        .unwrap();
    let other = insert_user(&db.pool, "x@example.com", WorkspaceRole::Member)
        .await
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
    let page = Page::default();
    let listed = |user_id: String, every: bool| {
        let (pool, page) = (db.pool.clone(), page.clone());
        async move { projects::list(&pool, &user_id, every, &page).await.unwrap() }
    };
    let (own, next) = listed(owner.user_id.clone(), false).await;
    assert_eq!((own.len(), next), (1, None));
    assert!(listed(other.user_id.clone(), false).await.0.is_empty());
    assert_eq!(listed(other.user_id.clone(), true).await.0.len(), 1);
    let seen = projects::find(&db.pool, &project.project_id, &other.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.member_role, None);
    let mut tx = db.pool.begin().await.unwrap();
    assert!(
        projects::add_member(&mut tx, &project.project_id, &other.user_id)
            .await
            .unwrap()
    );
    assert!(
        !projects::add_member(&mut tx, &project.project_id, &other.user_id)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
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
                login_throttle::record_failure(&pool, "account:a@example.com", 1_000, 0)
                    .await
                    .unwrap()
            })
        });
        for handle in writers {
            handle.await.unwrap();
        }
        assert_eq!(
            login_throttle::get(&db.pool, "account:a@example.com")
                .await
                .unwrap()
                .unwrap()
                .count,
            10
        );
        login_throttle::clear(&db.pool, "account:a@example.com")
            .await
            .unwrap();
        assert!(login_throttle::get(&db.pool, "account:a@example.com")
            .await
            .unwrap()
            .is_none());
    }
);

both_engines!(
    the_cli_creates_an_admin_and_resets_a_password,
    |engine| async move {
        let db = TestDatabase::create(engine).await.connect().await;
        insert_user(&db.pool, "first@example.com", WorkspaceRole::Member)
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
        assert!(
            accounts::log_in(&db, "ops@example.com", "password-2", None, 0)
                .await
                .is_ok()
        );
        assert!(
            accounts::log_in(&db, "ops@example.com", "password-1", None, 0)
                .await
                .is_err()
        );
    }
);

both_engines!(
    a_batch_sends_its_statements_together_and_answers_the_last_ones_rows,
    |engine| async move {
        use cover::server::db::batch::Batch;
        let db = TestDatabase::create(engine).await.connect().await;
        let insert = |batch: &mut Batch<'_>, name: &'static str, value: &'static str| {
            let sql = format!(
                "insert into workspace_setting (name, value, updated_at) values {}",
                batch.style().values_list(1, 3)
            );
            batch.add(&sql).bind(name).bind(value).bind(1_i64);
        };
        let mut tx = db.pool.begin().await.unwrap();
        let mut batch = Batch::new(&tx);
        insert(&mut batch, "batch.a", "1");
        insert(&mut batch, "batch.b", "2");
        let sql = format!(
            "update project set name = v.column1 from (values {}) as v \
             where project_id = v.column2 returning project_id",
            batch.style().values_list(1, 2)
        );
        batch.add(&sql).bind("never").bind("no such project");
        assert!(batch.send(&mut tx).await.unwrap().is_empty());
        let mut batch = Batch::new(&tx);
        insert(&mut batch, "batch.c", "3");
        let sql = format!(
            "insert into workspace_setting (name, value, updated_at) values {} \
             returning name, value",
            batch.style().values_list(1, 3)
        );
        batch.add(&sql).bind("batch.d").bind("4").bind(2_i64);
        let rows = batch.send(&mut tx).await.unwrap();
        let last: Vec<(String, String)> = rows
            .iter()
            .map(|row| (row.get("name"), row.get("value")))
            .collect();
        assert_eq!(last, [("batch.d".to_owned(), "4".to_owned())]);
        tx.commit().await.unwrap();
        let stored: Vec<(String, String)> = sqlx::query_as(
            "select name, value from workspace_setting where name like 'batch.%' order by name",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let expected = [
            ("batch.a", "1"),
            ("batch.b", "2"),
            ("batch.c", "3"),
            ("batch.d", "4"),
        ];
        assert_eq!(
            stored,
            expected.map(|(n, v)| (n.to_owned(), v.to_owned())),
            "every statement of both batches ran, each with its own parameters"
        );

        // More parameters than one PostgreSQL query takes (65,535): 25
        // statements of 3,000.
        let names: Vec<String> = (0..25_000).map(|i| format!("batch.many.{i:05}")).collect();
        let mut tx = db.pool.begin().await.unwrap();
        let mut batch = Batch::new(&tx);
        for chunk in names.chunks(1000) {
            let sql = format!(
                "insert into workspace_setting (name, value, updated_at) values {}",
                batch.style().values_list(chunk.len(), 3)
            );
            let mut statement = batch.add(&sql);
            for name in chunk {
                statement = statement.bind(name.as_str()).bind("many").bind(3_i64);
            }
        }
        batch.send(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let many: i64 =
            sqlx::query_scalar("select count(*) from workspace_setting where value = 'many'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(many, 25_000);

        // A statement that fails fails the batch, and its transaction
        // stores none of it.
        let mut tx = db.pool.begin().await.unwrap();
        let mut batch = Batch::new(&tx);
        insert(&mut batch, "batch.e", "5");
        insert(&mut batch, "batch.a", "again");
        assert!(batch.send(&mut tx).await.is_err());
        drop(tx);
        let count: i64 =
            sqlx::query_scalar("select count(*) from workspace_setting where name like 'batch.%'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(count, 25_004, "nothing of the failed batch was stored");
    }
);
