//! The `project` and `project_member` tables.

use crate::model::account::{ProjectRole, UseCase};
use crate::server::db::api_tokens;
use crate::server::db::llm_configs::{self, ConfigRow};
use crate::server::db::paging::{Cursor, Page};
use crate::server::db::{col, now_ms, parsed, parsed_optional};
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A stored project with the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// UUID.
    pub project_id: String,
    /// Display name.
    pub name: String,
    /// What it is used for.
    pub use_case: UseCase,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// The caller's membership role; `None` when the caller is not a member.
    pub member_role: Option<ProjectRole>,
}

fn from_row(row: &AnyRow) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        project_id: col(row, "project_id")?,
        name: col(row, "name")?,
        use_case: parsed(row, "use_case", UseCase::parse)?,
        created_at: col(row, "created_at")?,
        member_role: parsed_optional(row, "member_role", ProjectRole::parse)?,
    })
}

const SELECT: &str =
    "select p.project_id, p.name, p.use_case, p.created_at, m.role as member_role \
                      from project p \
                      left join project_member m on m.project_id = p.project_id and m.user_id = $1";

/// Creates a project owned by `user_id` with its first LLM configuration
/// (`initial_config` gets the new project's id), in one transaction.
pub async fn insert(
    pool: &AnyPool,
    user_id: &str,
    name: &str,
    use_case: UseCase,
    initial_config: impl FnOnce(&str) -> ConfigRow,
) -> Result<ProjectRecord> {
    let project_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into project (project_id, name, use_case, created_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&project_id)
    .bind(name)
    .bind(use_case.as_str())
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    add_member_in(&mut tx, &project_id, user_id, "owner", now).await?;
    llm_configs::insert(&mut *tx, &initial_config(&project_id)).await?;
    tx.commit().await?;
    Ok(ProjectRecord {
        project_id,
        name: name.to_owned(),
        use_case,
        created_at: now,
        member_role: Some(ProjectRole::Owner),
    })
}

async fn add_member_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into project_member (project_id, user_id, role, created_at) values ($1, $2, $3, $4) \
         on conflict (project_id, user_id) do nothing",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds a member inside the caller's transaction (accepting an invitation);
/// `false` when they already were one.
pub async fn add_member(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: &str,
    user_id: &str,
) -> Result<bool> {
    add_member_in(tx, project_id, user_id, "member", now_ms()).await
}

/// A project's member as stored, with the account's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The account.
    pub user_id: String,
    /// Its email.
    pub email: String,
    /// Owner or member.
    pub role: ProjectRole,
    /// When they joined (Unix ms).
    pub joined_at: i64,
}

/// A project's members, owners first, then by joining time.
pub async fn members(pool: &AnyPool, project_id: &str) -> Result<Vec<MemberRecord>> {
    let rows = sqlx::query(
        "select m.user_id, u.email, m.role, m.created_at from project_member m \
         join app_user u on u.user_id = m.user_id where m.project_id = $1 \
         order by case m.role when 'owner' then 0 else 1 end, m.created_at, u.email",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(MemberRecord {
                user_id: col(row, "user_id")?,
                email: col(row, "email")?,
                role: parsed(row, "role", ProjectRole::parse)?,
                joined_at: col(row, "created_at")?,
            })
        })
        .collect()
}

/// What removing a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Removed, with this many of their tokens revoked.
    Removed {
        /// Tokens of theirs revoked with them.
        tokens_revoked: u64,
    },
    /// They were not a member.
    NotAMember,
    /// They are the project's last owner.
    LastOwner,
}

/// Removes a member and revokes the tokens they made for the project, in one
/// transaction; a project never loses its last owner.
pub async fn remove_member(pool: &AnyPool, project_id: &str, user_id: &str) -> Result<Removal> {
    let mut tx = pool.begin().await?;
    let owners: i64 = sqlx::query_scalar(
        "select count(*) from project_member where project_id = $1 and role = 'owner' \
         and user_id <> $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    let role: Option<String> = sqlx::query_scalar(
        "select role from project_member where project_id = $1 and user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match role.as_deref() {
        None => Removal::NotAMember,
        Some("owner") if owners == 0 => Removal::LastOwner,
        Some(_) => {
            sqlx::query("delete from project_member where project_id = $1 and user_id = $2")
                .bind(project_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let tokens_revoked = api_tokens::revoke_made_by(&mut tx, project_id, user_id).await?;
            Removal::Removed { tokens_revoked }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Whether `user_id` owns at least one project.
pub async fn owns_any(pool: &AnyPool, user_id: &str) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "select 1 from project_member where user_id = $1 and role = 'owner' limit 1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// One page of the projects `user_id` sees, newest first, with their role
/// in each: those they belong to, or every project (`every`: workspace
/// admins); and the next page's cursor if there are more.
pub async fn list(
    pool: &AnyPool,
    user_id: &str,
    every: bool,
    page: &Page,
) -> Result<(Vec<ProjectRecord>, Option<String>)> {
    let mut filters = Vec::new();
    if !every {
        filters.push("m.user_id is not null");
    }
    if page.after.is_some() {
        filters.push("(p.created_at < $3 or (p.created_at = $3 and p.project_id > $4))");
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("where {}", filters.join(" and "))
    };
    let sql = format!("{SELECT} {filter} order by p.created_at desc, p.project_id limit $2");
    let mut query = sqlx::query(&sql)
        .bind(user_id)
        .bind(i64::from(page.limit) + 1);
    if let Some(after) = &page.after {
        query = query.bind(after.at_ms).bind(&after.id);
    }
    let rows = query.fetch_all(pool).await?;
    let records = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok(page.split(records, |record| Cursor {
        at_ms: record.created_at,
        id: record.project_id.clone(),
    }))
}

/// One project with `user_id`'s role in it (if any).
pub async fn find(
    pool: &AnyPool,
    project_id: &str,
    user_id: &str,
) -> Result<Option<ProjectRecord>> {
    let sql = format!("{SELECT} where p.project_id = $2");
    let row = sqlx::query(&sql)
        .bind(user_id)
        .bind(project_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Renames a project and/or changes its use case.
pub async fn update(pool: &AnyPool, project_id: &str, name: &str, use_case: UseCase) -> Result<()> {
    sqlx::query(
        "update project set name = $1, use_case = $2, updated_at = $3 where project_id = $4",
    )
    .bind(name)
    .bind(use_case.as_str())
    .bind(now_ms())
    .bind(project_id)
    .execute(pool)
    .await?;
    Ok(())
}
