//! The workspace admin's overview.

use crate::error::AppError;
use crate::model::account::ProjectView;
use leptos::prelude::*;

/// Every project in the workspace (admins only; 403 for members).
#[server(prefix = "/sfn", endpoint = "admin/projects")]
pub async fn workspace_projects() -> Result<Vec<ProjectView>, AppError> {
    let (state, user) = admin_user().await?;
    let first = crate::server::db::paging::Page::FIRST_FULL;
    let (projects, _) =
        crate::server::services::projects::list(&state.db.pool, &user, &first).await?;
    Ok(projects)
}

/// The self-hosted models an admin may set a rate for, and the rates set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SelfHostedRates {
    /// Self-hosted catalog models: id and display name.
    pub models: Vec<(String, String)>,
    /// Every rate set so far.
    pub rates: Vec<crate::model::pricing::InternalRate>,
}

/// Internal rates of self-hosted models (admins only).
#[server(prefix = "/sfn", endpoint = "admin/internal-rates")]
pub async fn list_internal_rates() -> Result<SelfHostedRates, AppError> {
    let (state, _) = admin_user().await?;
    Ok(SelfHostedRates {
        models: state
            .catalog
            .models
            .iter()
            .filter(|m| m.capabilities.self_hosted)
            .map(|m| (m.id.clone(), m.name.clone()))
            .collect(),
        rates: state.internal_rates.list(),
    })
}

/// Sets what a self-hosted model costs from a date (admins only): dollars per
/// hour of answer time and/or per 1M tokens, as typed.
#[server(prefix = "/sfn", endpoint = "admin/internal-rates/set")]
pub async fn set_internal_rate(
    model: String,
    effective_date: String,
    per_hour_usd: String,
    per_m_tok_usd: String,
) -> Result<crate::model::pricing::InternalRate, AppError> {
    use crate::server::services::internal_rates::RateChange;
    let (state, admin) = admin_user().await?;
    let change = RateChange {
        effective_date,
        per_hour_usd: Some(per_hour_usd),
        per_m_tok_usd: Some(per_m_tok_usd),
    };
    Ok(state
        .internal_rates
        .set(&state.db, &state.catalog, &admin.user_id, &model, &change)
        .await?)
}

/// The signed-in workspace admin, or 403 (every admin-only server function).
/// The limits on Cover's managed keys (the default budget of projects
/// without their own, the workspace-wide cap) and this month's spend.
#[server(prefix = "/sfn", endpoint = "admin/managed-budget")]
pub async fn managed_budget() -> Result<crate::model::costs::ManagedKeyLimits, AppError> {
    let (state, _) = admin_user().await?;
    let month = crate::server::services::budgets::current_month();
    Ok(state.workspace_limits.view(&state.db, &month).await?)
}

/// Sets those limits (`cap_usd` empty: no cap).
#[server(prefix = "/sfn", endpoint = "admin/managed-budget/set")]
pub async fn set_managed_budget(
    managed_budget_usd: String,
    cap_usd: String,
) -> Result<(), AppError> {
    let (state, _) = admin_user().await?;
    Ok(state
        .workspace_limits
        .set(&state.db, &managed_budget_usd, Some(&cap_usd))
        .await?)
}

/// The private hosts user-supplied URLs may reach (the operator's and the
/// admin's lists).
#[server(prefix = "/sfn", endpoint = "admin/private-hosts")]
pub async fn private_hosts() -> Result<crate::model::access::PrivateHosts, AppError> {
    let (state, _) = admin_user().await?;
    Ok(crate::server::services::private_hosts::view(
        &state.outbound,
    ))
}

/// Replaces the admin's list (`hosts`: one entry per line or comma).
#[server(prefix = "/sfn", endpoint = "admin/private-hosts/set")]
pub async fn set_private_hosts(hosts: String) -> Result<(), AppError> {
    let (state, _) = admin_user().await?;
    crate::server::services::private_hosts::set(&state.db, &state.outbound, &hosts).await?;
    Ok(())
}

/// Invites an email to the workspace (no project): a one-time sign-up link.
#[server(prefix = "/sfn", endpoint = "admin/invite")]
pub async fn invite_to_workspace(
    email: String,
) -> Result<crate::model::account::CreatedInvitation, AppError> {
    let (state, admin) = admin_user().await?;
    Ok(crate::server::services::invitations::create(&state.db, &admin, None, &email).await?)
}

#[cfg(feature = "ssr")]
pub(crate) async fn admin_user() -> Result<
    (
        crate::server::state::AppState,
        crate::server::db::users::UserRecord,
    ),
    AppError,
> {
    use crate::model::account::WorkspaceRole;
    let (state, user) = crate::server::auth::server_fn_user().await?;
    if user.role != WorkspaceRole::Admin {
        return Err(AppError::Forbidden {
            message: "only workspace admins can open the admin area".into(),
        });
    }
    Ok((state, user))
}
