//! Project rules: who may see and change a project. Members and workspace admins
//! may act on a project (members chat and read, owners and admins also
//! manage); for everyone else it does not exist (404).

use crate::error::AppError;
use crate::model::access::Scope;
use crate::model::account::{MemberView, ProjectRole, ProjectView, UseCase, WorkspaceRole};
use crate::model::catalog::Catalog;
use crate::server::auth::check_role;
use crate::server::db::paging::Page;
use crate::server::db::users::UserRecord;
use crate::server::db::{projects, rfc3339, Db};
use crate::server::error::{Error, Result};
use crate::server::services::llm_settings::Draft;
use sqlx::AnyPool;

/// Longest project name accepted.
pub const MAX_NAME_LEN: usize = 80;

fn view(record: projects::ProjectRecord) -> ProjectView {
    ProjectView {
        id: record.project_id,
        name: record.name,
        use_case: record.use_case,
        role: record.member_role.unwrap_or(ProjectRole::Admin),
        created_at: rfc3339(record.created_at),
    }
}

/// Checks a project name (trimmed, 1..=80 characters).
pub fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() {
        Err(AppError::invalid("name", "is required"))
    } else if name.chars().count() > MAX_NAME_LEN {
        Err(AppError::invalid(
            "name",
            format!("must be at most {MAX_NAME_LEN} characters"),
        ))
    } else {
        Ok(name.to_owned())
    }
}

/// Parses a use case from a form or JSON value.
pub fn parse_use_case(value: &str) -> Result<UseCase, AppError> {
    UseCase::parse(value).ok_or_else(|| {
        AppError::invalid(
            "useCase",
            "must be one of customer_support, sales, technical_docs, other",
        )
    })
}

/// One page of the projects the user may open (all of them for workspace
/// admins), newest first, and the next page's cursor if there are more.
pub async fn list(
    pool: &AnyPool,
    user: &UserRecord,
    page: &Page,
) -> Result<(Vec<ProjectView>, Option<String>)> {
    let every = user.role == WorkspaceRole::Admin;
    let (records, next) = projects::list(pool, &user.user_id, every, page).await?;
    Ok((records.into_iter().map(view).collect(), next))
}

/// Creates a project owned by the user, with the default LLM configuration as
/// its version 1.
pub async fn create(
    db: &Db,
    catalog: &Catalog,
    user: &UserRecord,
    name: &str,
    use_case: UseCase,
) -> Result<ProjectView> {
    let name = check_name(name)?;
    let initial = Draft::default_for(catalog);
    let record = projects::insert(&db.writer, &user.user_id, &name, use_case, |project_id| {
        initial.to_row(project_id, 1, Some(&user.user_id))
    })
    .await?;
    Ok(view(record))
}

/// One project, if the user may act on it; otherwise 404 (never 403, so project
/// ids cannot be probed).
pub async fn get(pool: &AnyPool, user: &UserRecord, project_id: &str) -> Result<ProjectView> {
    let record = projects::find(pool, project_id, &user.user_id)
        .await?
        .filter(|p| p.member_role.is_some() || user.role == WorkspaceRole::Admin)
        .ok_or(Error::App(AppError::NotFound))?;
    Ok(view(record))
}

/// Renames a project and/or changes its use case (owners and admins).
pub async fn update(
    db: &Db,
    user: &UserRecord,
    project_id: &str,
    name: Option<&str>,
    use_case: Option<UseCase>,
) -> Result<ProjectView> {
    let current = check_role(&db.pool, user, project_id, Scope::Manage).await?;
    let name = match name {
        Some(name) => check_name(name)?,
        None => current.name.clone(),
    };
    let use_case = use_case.unwrap_or(current.use_case);
    projects::update(&db.writer, project_id, &name, use_case).await?;
    Ok(ProjectView {
        name,
        use_case,
        ..current
    })
}

/// Whether `user_id` owns at least one project.
pub async fn owns_any(pool: &AnyPool, user_id: &str) -> Result<bool> {
    projects::owns_any(pool, user_id).await
}

/// A project's members (anyone who may read the project may see them).
pub async fn members(db: &Db, user: &UserRecord, project_id: &str) -> Result<Vec<MemberView>> {
    check_role(&db.pool, user, project_id, Scope::Read).await?;
    Ok(projects::members(&db.pool, project_id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            joined_at: rfc3339(m.joined_at),
        })
        .collect())
}

/// Removes a member (owners and admins may; anyone may leave); the tokens
/// they made for the project are revoked with them. The last owner stays.
pub async fn remove_member(
    db: &Db,
    user: &UserRecord,
    project_id: &str,
    member_id: &str,
) -> Result<()> {
    let scope = if member_id == user.user_id {
        Scope::Read
    } else {
        Scope::Manage
    };
    check_role(&db.pool, user, project_id, scope).await?;
    match projects::remove_member(&db.writer, project_id, member_id).await? {
        projects::Removal::Removed { tokens_revoked } => {
            tracing::info!(project_id, member_id, tokens_revoked, "member removed");
            Ok(())
        }
        projects::Removal::NotAMember => Err(AppError::NotFound.into()),
        projects::Removal::LastOwner => Err(AppError::Conflict {
            field: "userId".into(),
            message: "a project keeps at least one owner".into(),
        }
        .into()),
    }
}
