//! The `budget`, `budget_month` and `notification` tables. Every change to a
//! month's money is one conditional statement, so concurrent answers on one or
//! many app servers can neither overspend a budget nor fire an alert twice.

use crate::server::db::col;
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A project's monthly budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    /// Its project.
    pub project_id: String,
    /// The limit per calendar month (UTC), nano-dollars.
    pub limit_nanos: i64,
    /// Called on every alert, if set.
    pub webhook_url: Option<String>,
}

/// One project's month: money spent, money held for running answers, and when
/// each alert fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthRow {
    /// Settled spend, nano-dollars.
    pub spent_nanos: i64,
    /// Reservations of answers still running, nano-dollars.
    pub reserved_nanos: i64,
    /// When the 50 % alert fired (Unix ms).
    pub alert50_at: Option<i64>,
    /// When the 80 % alert fired.
    pub alert80_at: Option<i64>,
    /// When the 100 % alert fired.
    pub alert100_at: Option<i64>,
}

impl MonthRow {
    /// Whether `threshold`'s alert has fired this month.
    pub fn fired(&self, threshold: Threshold) -> bool {
        match threshold {
            Threshold::Half => self.alert50_at.is_some(),
            Threshold::FourFifths => self.alert80_at.is_some(),
            Threshold::Full => self.alert100_at.is_some(),
        }
    }
}

/// A budget alert level; each fires at most once per project and month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Half the limit spent.
    Half,
    /// 80 % spent.
    FourFifths,
    /// The budget is used up.
    Full,
}

impl Threshold {
    /// Every level, lowest first.
    pub const ALL: [Threshold; 3] = [Threshold::Half, Threshold::FourFifths, Threshold::Full];

    /// The percentage of the limit it stands for.
    pub fn percent(self) -> u8 {
        match self {
            Threshold::Half => 50,
            Threshold::FourFifths => 80,
            Threshold::Full => 100,
        }
    }

    /// The notification kind it leaves (`budget50`, …).
    pub fn kind(self) -> String {
        format!("budget{}", self.percent())
    }

    fn column(self) -> &'static str {
        match self {
            Threshold::Half => "alert50_at",
            Threshold::FourFifths => "alert80_at",
            Threshold::Full => "alert100_at",
        }
    }
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// Id.
    pub notification_id: String,
    /// Its project.
    pub project_id: String,
    /// `budget50`, `budget80` or `budget100`.
    pub kind: String,
    /// The text shown.
    pub message: String,
    /// Unix ms.
    pub created_at: i64,
    /// When it was read (Unix ms).
    pub read_at: Option<i64>,
}

const MONTH_COLUMNS: &str = "spent_nanos, reserved_nanos, alert50_at, alert80_at, alert100_at";

fn month_from(row: &AnyRow) -> Result<MonthRow> {
    Ok(MonthRow {
        spent_nanos: col(row, "spent_nanos")?,
        reserved_nanos: col(row, "reserved_nanos")?,
        alert50_at: col(row, "alert50_at")?,
        alert80_at: col(row, "alert80_at")?,
        alert100_at: col(row, "alert100_at")?,
    })
}

/// The project's budget, if it has one.
pub async fn find(pool: &AnyPool, project_id: &str) -> Result<Option<BudgetRow>> {
    let row = sqlx::query("select limit_nanos, webhook_url from budget where project_id = $1")
        .bind(project_id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(BudgetRow {
            project_id: project_id.to_owned(),
            limit_nanos: col(&row, "limit_nanos")?,
            webhook_url: col(&row, "webhook_url")?,
        })
    })
    .transpose()
}

/// Sets the project's budget (creating or replacing it).
pub async fn save(pool: &AnyPool, budget: &BudgetRow, now: i64) -> Result<()> {
    sqlx::query(
        "insert into budget (project_id, limit_nanos, webhook_url, created_at, updated_at) \
         values ($1, $2, $3, $4, $4) \
         on conflict (project_id) do update set limit_nanos = excluded.limit_nanos, \
             webhook_url = excluded.webhook_url, updated_at = excluded.updated_at",
    )
    .bind(&budget.project_id)
    .bind(budget.limit_nanos)
    .bind(&budget.webhook_url)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the project's budget (its months' figures stay).
pub async fn remove(pool: &AnyPool, project_id: &str) -> Result<()> {
    sqlx::query("delete from budget where project_id = $1")
        .bind(project_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The project's figures for `month` (`YYYY-MM`), if anything happened in it.
pub async fn month(pool: &AnyPool, project_id: &str, month: &str) -> Result<Option<MonthRow>> {
    let row = sqlx::query(&format!(
        "select {MONTH_COLUMNS} from budget_month where project_id = $1 and month = $2"
    ))
    .bind(project_id)
    .bind(month)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(month_from).transpose()
}

/// Creates the month's row if it does not exist yet (reservations update it).
pub async fn open_month(pool: &AnyPool, project_id: &str, month: &str) -> Result<()> {
    sqlx::query(
        "insert into budget_month (project_id, month) values ($1, $2) \
         on conflict (project_id, month) do nothing",
    )
    .bind(project_id)
    .bind(month)
    .execute(pool)
    .await?;
    Ok(())
}

/// Holds `nanos` of the month for a running answer, only if spent + reserved
/// stays within `limit_nanos`; `false` when it does not fit. One statement, so
/// concurrent reservations can never together exceed the limit.
pub async fn reserve(
    pool: &AnyPool,
    project_id: &str,
    month: &str,
    nanos: i64,
    limit_nanos: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "update budget_month set reserved_nanos = reserved_nanos + $3 \
         where project_id = $1 and month = $2 and spent_nanos + reserved_nanos + $3 <= $4",
    )
    .bind(project_id)
    .bind(month)
    .bind(nanos)
    .bind(limit_nanos)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends an answer in one statement: releases its reservation and adds what it
/// cost. Returns the month as it stands afterwards.
pub async fn settle(
    pool: &AnyPool,
    project_id: &str,
    month: &str,
    reserved_nanos: i64,
    cost_nanos: i64,
) -> Result<MonthRow> {
    let row = sqlx::query(&format!(
        "insert into budget_month (project_id, month, spent_nanos) values ($1, $2, $3) \
         on conflict (project_id, month) do update \
             set spent_nanos = budget_month.spent_nanos + excluded.spent_nanos, \
                 reserved_nanos = budget_month.reserved_nanos - $4 \
         returning {MONTH_COLUMNS}"
    ))
    .bind(project_id)
    .bind(month)
    .bind(cost_nanos)
    .bind(reserved_nanos)
    .fetch_one(pool)
    .await?;
    month_from(&row)
}

/// Marks `threshold` fired for the month and stores its notification, in one
/// transaction; `false` (and nothing stored) when it had already fired.
pub async fn fire_alert(
    pool: &AnyPool,
    month: &str,
    threshold: Threshold,
    notification: &NotificationRow,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let column = threshold.column();
    let marked = sqlx::query(&format!(
        "update budget_month set {column} = $3 \
         where project_id = $1 and month = $2 and {column} is null"
    ))
    .bind(&notification.project_id)
    .bind(month)
    .bind(notification.created_at)
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "insert into notification (notification_id, project_id, kind, message, created_at, read_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&notification.notification_id)
    .bind(&notification.project_id)
    .bind(&notification.kind)
    .bind(&notification.message)
    .bind(notification.created_at)
    .bind(notification.read_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The project's latest `limit` notifications, newest first (alerts fired in
/// the same millisecond: the higher threshold first, as it fired last).
pub async fn notifications(
    pool: &AnyPool,
    project_id: &str,
    limit: i64,
) -> Result<Vec<NotificationRow>> {
    let rows = sqlx::query(
        "select notification_id, project_id, kind, message, created_at, read_at \
         from notification where project_id = $1 \
         order by created_at desc, length(kind) desc, kind desc limit $2",
    )
    .bind(project_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NotificationRow {
                notification_id: col(row, "notification_id")?,
                project_id: col(row, "project_id")?,
                kind: col(row, "kind")?,
                message: col(row, "message")?,
                created_at: col(row, "created_at")?,
                read_at: col(row, "read_at")?,
            })
        })
        .collect()
}

/// Marks every unread notification of the project read at `now`.
pub async fn mark_read(pool: &AnyPool, project_id: &str, now: i64) -> Result<()> {
    sqlx::query("update notification set read_at = $2 where project_id = $1 and read_at is null")
        .bind(project_id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}
