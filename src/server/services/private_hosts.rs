//! The admin's allow-list of private hosts: stored as a workspace setting
//! (so every app server uses the same list), loaded at start, re-read every
//! few seconds, and applied to the one guarded client's address policy at
//! connect time.

use crate::error::AppError;
use crate::model::access::PrivateHosts;
use crate::server::db::{workspace_settings, Db};
use crate::server::error::Result;
use crate::server::outbound::{AddressPolicy, AllowList};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The workspace setting holding the admin's list (one entry per line).
const SETTING: &str = "allowed_private_hosts";
/// How often a server re-reads the list another server may have changed.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Entries the admin's list holds at most.
const MAX_ENTRIES: usize = 100;

/// Applies the stored list to `policy` (at start; a list that no longer
/// parses is logged and left out, never half-applied).
pub async fn load(db: &Db, policy: &AddressPolicy) -> Result<()> {
    let stored = workspace_settings::get(&db.pool, SETTING)
        .await?
        .unwrap_or_default();
    match AllowList::parse(&stored) {
        Ok(list) => policy.set_admin_list(list),
        Err(error) => tracing::error!(%error, "the stored private-host allow-list is not valid"),
    }
    Ok(())
}

/// Re-reads the list every [`REFRESH_EVERY`] until `stopping`.
pub fn spawn_refresher(db: Db, policy: Arc<AddressPolicy>, stopping: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(REFRESH_EVERY) => {}
            }
            if let Err(error) = load(&db, &policy).await {
                tracing::warn!(%error, "reading the private-host allow-list failed; trying again later");
            }
        }
    });
}

/// Both lists, as the admin page shows them.
pub fn view(policy: &AddressPolicy) -> PrivateHosts {
    PrivateHosts {
        operator: policy.operator_list().entries(),
        admin: policy.admin_list().entries(),
    }
}

/// Replaces the admin's list (entries separated by commas or lines; empty
/// for none); a 422 on `hosts` naming the entry it cannot read, and nothing
/// changes.
pub async fn set(db: &Db, policy: &AddressPolicy, hosts: &str) -> Result<PrivateHosts> {
    let list = AllowList::parse(hosts).map_err(|error| AppError::invalid("hosts", error))?;
    let entries = list.entries();
    if entries.len() > MAX_ENTRIES {
        return Err(AppError::invalid("hosts", format!("at most {MAX_ENTRIES} entries")).into());
    }
    workspace_settings::set(&db.writer, SETTING, &entries.join("\n")).await?;
    policy.set_admin_list(list);
    Ok(view(policy))
}
