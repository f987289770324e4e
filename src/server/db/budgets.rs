//! The `budget`, `budget_month`, `workspace_month` and `notification`
//! tables. Every change to a month's money is one conditional statement, so
//! concurrent answers on one or many app servers can neither overspend a
//! budget (nor the workspace's cap on managed keys) nor fire an alert twice.

use crate::model::costs::NotificationKind;
use crate::server::db::{col, parsed, Placeholders};
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;

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

/// The workspace's month on Cover's managed keys: what every project spent
/// with them, and what running answers hold against the admin's cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceMonthRow {
    /// Settled managed-key spend, nano-dollars.
    pub spent_nanos: i64,
    /// Held against the cap by running answers, nano-dollars.
    pub reserved_nanos: i64,
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

    /// The notification it leaves.
    pub fn kind(self) -> NotificationKind {
        match self {
            Threshold::Half => NotificationKind::Budget50,
            Threshold::FourFifths => NotificationKind::Budget80,
            Threshold::Full => NotificationKind::Budget100,
        }
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
    /// What it is about.
    pub kind: NotificationKind,
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

/// What the budget gate reads of a project's month: its budget, if it has
/// one, its figures and the workspace's managed-key figures.
#[derive(Debug, Clone)]
pub struct BudgetFigures {
    /// The project's own budget.
    pub budget: Option<BudgetRow>,
    /// The project's month (zero when nothing happened in it yet).
    pub month: MonthRow,
    /// The workspace's managed-key month.
    pub workspace: WorkspaceMonthRow,
}

/// The project's budget, if it has one, its figures for `month` (`YYYY-MM`;
/// zero when nothing happened in it yet) and the workspace's managed-key
/// figures for the month, in one query.
pub async fn find_with_month(
    pool: &AnyPool,
    project_id: &str,
    month: &str,
) -> Result<BudgetFigures> {
    let row = sqlx::query(
        "select b.limit_nanos, b.webhook_url, m.spent_nanos, m.reserved_nanos, \
                m.alert50_at, m.alert80_at, m.alert100_at, \
                w.spent_nanos as workspace_spent, w.reserved_nanos as workspace_reserved \
         from (select cast($1 as text) as project_id, cast($2 as text) as month) k \
         left join budget b on b.project_id = k.project_id \
         left join budget_month m on m.project_id = k.project_id and m.month = k.month \
         left join workspace_month w on w.month = k.month",
    )
    .bind(project_id)
    .bind(month)
    .fetch_one(pool)
    .await?;
    let budget = match col::<Option<i64>>(&row, "limit_nanos")? {
        None => None,
        Some(limit_nanos) => Some(BudgetRow {
            project_id: project_id.to_owned(),
            limit_nanos,
            webhook_url: col(&row, "webhook_url")?,
        }),
    };
    let month = match col::<Option<i64>>(&row, "spent_nanos")? {
        None => MonthRow::default(),
        Some(_) => month_from(&row)?,
    };
    let workspace = WorkspaceMonthRow {
        spent_nanos: col::<Option<i64>>(&row, "workspace_spent")?.unwrap_or(0),
        reserved_nanos: col::<Option<i64>>(&row, "workspace_reserved")?.unwrap_or(0),
    };
    Ok(BudgetFigures {
        budget,
        month,
        workspace,
    })
}

/// The workspace's managed-key figures for `month` (zero when nothing was
/// spent with them yet).
pub async fn workspace_month(pool: &AnyPool, month: &str) -> Result<WorkspaceMonthRow> {
    let row =
        sqlx::query("select spent_nanos, reserved_nanos from workspace_month where month = $1")
            .bind(month)
            .fetch_optional(pool)
            .await?;
    row.map(|row| {
        Ok(WorkspaceMonthRow {
            spent_nanos: col(&row, "spent_nanos")?,
            reserved_nanos: col(&row, "reserved_nanos")?,
        })
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

/// The project's figures for `month` (`YYYY-MM`), if anything happened in it
/// (through a pool, or inside the caller's transaction).
pub async fn month<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    project_id: &str,
    month: &str,
) -> Result<Option<MonthRow>> {
    let row = sqlx::query(&format!(
        "select {MONTH_COLUMNS} from budget_month where project_id = $1 and month = $2"
    ))
    .bind(project_id)
    .bind(month)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(month_from).transpose()
}

/// A running answer's hold on its month's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    /// Id (one per admitted answer).
    pub hold_id: String,
    /// The project.
    pub project_id: String,
    /// The month held (`YYYY-MM`, UTC).
    pub month: String,
    /// Nano-dollars held.
    pub reserved_nanos: i64,
    /// Of them, nano-dollars held against the workspace's cap on managed
    /// keys (0 when the answer spends none, or no cap is set).
    pub workspace_nanos: i64,
    /// When it was taken (Unix ms).
    pub created_at: i64,
}

/// A hold to take: it must fit under its project's limit and, when it holds
/// anything against the workspace's cap, under that cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// The hold.
    pub hold: HoldRow,
    /// The project's monthly limit, nano-dollars.
    pub limit_nanos: i64,
    /// The workspace's monthly cap on managed keys (read only when the hold
    /// has a `workspace_nanos` share).
    pub cap_nanos: i64,
}

/// A project's month: `(project_id, month)`.
pub type MonthKey = (String, String);

/// The month (`YYYY-MM`, UTC) of a time in Unix ms.
pub fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m")
        .to_string()
}

/// Holds per statement: 6 parameters each.
const HOLDS_PER_STATEMENT: usize = 500;

/// Takes holds (inside the caller's transaction), each only if its month's
/// spend and holds stay within its project's limit and, for a share held
/// against the workspace's cap on managed keys, within that cap too; answers
/// which were taken, in order. The conditional updates of the month rows
/// serialise reservations on every app server, so together they can never
/// exceed a limit. A month's holds are tried together first (one update for
/// their sum: the usual case, far from the limit), then one by one in order
/// when together they do not fit. `retrying`: holds already stored (a group
/// tried again) count as taken and are not added twice.
pub async fn reserve(
    conn: &mut AnyConnection,
    requests: &[&HoldRequest],
    retrying: bool,
) -> Result<Vec<bool>> {
    let mut taken = vec![false; requests.len()];
    if requests.is_empty() {
        return Ok(taken);
    }
    let style = Placeholders::of(conn);
    let mut stored = std::collections::HashSet::new();
    if retrying {
        for chunk in requests.chunks(HOLDS_PER_STATEMENT) {
            let sql = format!(
                "select hold_id from budget_hold where hold_id in ({})",
                style.list(chunk.len())
            );
            let found: Vec<String> = chunk
                .iter()
                .fold(sqlx::query_scalar(&sql), |q, request| {
                    q.bind(&request.hold.hold_id)
                })
                .fetch_all(&mut *conn)
                .await?;
            stored.extend(found);
        }
    }
    // Each month's requests, months in order: a consistent lock order
    // (project months, then the workspace's) on every app server.
    let mut months: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, request) in requests.iter().enumerate() {
        if stored.contains(&request.hold.hold_id) {
            taken[i] = true;
        } else {
            months
                .entry((
                    request.hold.project_id.as_str(),
                    request.hold.month.as_str(),
                ))
                .or_default()
                .push(i);
        }
    }
    let mut capped: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (&(project_id, month), indices) in &months {
        let pot = Pot::Project(project_id);
        for i in hold_in(conn, pot, month, indices, requests).await? {
            taken[i] = true;
            if requests[i].hold.workspace_nanos > 0 {
                capped.entry(month).or_default().push(i);
            }
        }
    }
    for (month, indices) in &capped {
        let held = hold_in(conn, Pot::Workspace, month, indices, requests).await?;
        for &i in indices.iter().filter(|i| !held.contains(i)) {
            // Within its project's limit but not the workspace's cap: the
            // project's share is given back, and the hold is not taken.
            let hold = &requests[i].hold;
            sqlx::query(
                "update budget_month set reserved_nanos = reserved_nanos - $3 \
                 where project_id = $1 and month = $2",
            )
            .bind(&hold.project_id)
            .bind(&hold.month)
            .bind(hold.reserved_nanos)
            .execute(&mut *conn)
            .await?;
            taken[i] = false;
        }
    }
    let new_holds: Vec<&HoldRow> = requests
        .iter()
        .zip(&taken)
        .filter(|(request, &taken)| taken && !stored.contains(&request.hold.hold_id))
        .map(|(request, _)| &request.hold)
        .collect();
    for chunk in new_holds.chunks(HOLDS_PER_STATEMENT) {
        let sql = format!(
            "insert into budget_hold \
                 (hold_id, project_id, month, reserved_nanos, workspace_nanos, created_at) \
             values {}",
            style.values_list(chunk.len(), 6)
        );
        chunk
            .iter()
            .fold(sqlx::query(&sql), |q, hold| {
                q.bind(&hold.hold_id)
                    .bind(&hold.project_id)
                    .bind(&hold.month)
                    .bind(hold.reserved_nanos)
                    .bind(hold.workspace_nanos)
                    .bind(hold.created_at)
            })
            .execute(&mut *conn)
            .await?;
    }
    Ok(taken)
}

/// Where a hold's money is held: its project's month, or the workspace's
/// month on managed keys.
#[derive(Debug, Clone, Copy)]
enum Pot<'a> {
    Project(&'a str),
    Workspace,
}

impl Pot<'_> {
    /// What a request holds in this pot, and the limit it must fit under.
    fn share(self, request: &HoldRequest) -> (i64, i64) {
        match self {
            Pot::Project(_) => (request.hold.reserved_nanos, request.limit_nanos),
            Pot::Workspace => (request.hold.workspace_nanos, request.cap_nanos),
        }
    }
}

/// Holds the requests at `indices` in one pot's `month`: together if their
/// sum fits under the smallest limit among them, else one by one in order.
/// Answers the indices held.
async fn hold_in(
    conn: &mut AnyConnection,
    pot: Pot<'_>,
    month: &str,
    indices: &[usize],
    requests: &[&HoldRequest],
) -> Result<Vec<usize>> {
    let shares: Vec<(i64, i64)> = indices.iter().map(|&i| pot.share(requests[i])).collect();
    let total = shares.iter().map(|(nanos, _)| nanos).sum();
    let limit = shares.iter().map(|(_, limit)| *limit).min().unwrap_or(0);
    if add_hold(conn, pot, month, total, limit).await? {
        return Ok(indices.to_vec());
    }
    let mut held = Vec::new();
    for (&i, (nanos, limit)) in indices.iter().zip(shares) {
        if add_hold(conn, pot, month, nanos, limit).await? {
            held.push(i);
        }
    }
    Ok(held)
}

/// Adds `nanos` to the pot's holds for `month` if its spend and holds stay
/// within `limit_nanos`, creating the month's row (one statement).
async fn add_hold(
    conn: &mut AnyConnection,
    pot: Pot<'_>,
    month: &str,
    nanos: i64,
    limit_nanos: i64,
) -> Result<bool> {
    // A new month holds nothing yet: its row is made when `nanos` fits at
    // all. The casts type the parameters of the select list for PostgreSQL.
    let sql = match pot {
        Pot::Project(_) => {
            "insert into budget_month (month, reserved_nanos, project_id) \
             select cast($1 as text), cast($2 as bigint), cast($4 as text) \
             where cast($2 as bigint) <= cast($3 as bigint) \
             on conflict (project_id, month) do update \
                 set reserved_nanos = budget_month.reserved_nanos + excluded.reserved_nanos \
                 where budget_month.spent_nanos + budget_month.reserved_nanos \
                     + excluded.reserved_nanos <= $3"
        }
        Pot::Workspace => {
            "insert into workspace_month (month, reserved_nanos) \
             select cast($1 as text), cast($2 as bigint) \
             where cast($2 as bigint) <= cast($3 as bigint) \
             on conflict (month) do update \
                 set reserved_nanos = workspace_month.reserved_nanos + excluded.reserved_nanos \
                 where workspace_month.spent_nanos + workspace_month.reserved_nanos \
                     + excluded.reserved_nanos <= $3"
        }
    };
    let mut query = sqlx::query(sql).bind(month).bind(nanos).bind(limit_nanos);
    if let Pot::Project(project_id) = pot {
        query = query.bind(project_id);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() == 1)
}

/// Adds spend to months (keys in order, so concurrent writers lock month rows
/// in the same order), creating their rows; answers every month's figures
/// afterwards.
pub async fn add_spend(
    conn: &mut AnyConnection,
    spend: &BTreeMap<MonthKey, i64>,
) -> Result<BTreeMap<MonthKey, MonthRow>> {
    let mut months = BTreeMap::new();
    for ((project_id, month), nanos) in spend {
        let row = sqlx::query(&format!(
            "insert into budget_month (project_id, month, spent_nanos) values ($1, $2, $3) \
             on conflict (project_id, month) do update \
                 set spent_nanos = budget_month.spent_nanos + excluded.spent_nanos \
             returning {MONTH_COLUMNS}"
        ))
        .bind(project_id)
        .bind(month)
        .bind(nanos)
        .fetch_one(&mut *conn)
        .await?;
        months.insert((project_id.clone(), month.clone()), month_from(&row)?);
    }
    Ok(months)
}

/// Adds managed-key spend to the workspace's months (after the projects'
/// months: the lock order every writer keeps), creating their rows.
pub async fn add_workspace_spend(
    conn: &mut AnyConnection,
    spend: &BTreeMap<String, i64>,
) -> Result<()> {
    for (month, nanos) in spend {
        sqlx::query(
            "insert into workspace_month (month, spent_nanos) values ($1, $2) \
             on conflict (month) do update \
                 set spent_nanos = workspace_month.spent_nanos + excluded.spent_nanos",
        )
        .bind(month)
        .bind(nanos)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Releases holds (those still stored: releasing twice releases nothing) and
/// answers the figures of every month that changed.
pub async fn release_holds(
    conn: &mut AnyConnection,
    hold_ids: &[&str],
) -> Result<BTreeMap<MonthKey, MonthRow>> {
    if hold_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let style = Placeholders::of(conn);
    let sql = format!(
        "delete from budget_hold where hold_id in ({}) returning {RELEASED_COLUMNS}",
        style.list(hold_ids.len())
    );
    let released = hold_ids
        .iter()
        .fold(sqlx::query(&sql), |q, id| q.bind(*id))
        .fetch_all(&mut *conn)
        .await?;
    unhold(conn, &released).await
}

/// Releases every hold taken before `cutoff` (Unix ms): answers of an app
/// server that stopped without settling them. Answers how many.
pub async fn release_holds_before(conn: &mut AnyConnection, cutoff: i64) -> Result<u64> {
    let released = sqlx::query(&format!(
        "delete from budget_hold where created_at < $1 returning {RELEASED_COLUMNS}"
    ))
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?;
    unhold(conn, &released).await?;
    Ok(released.len() as u64)
}

/// What a released hold reports, for [`unhold`].
const RELEASED_COLUMNS: &str = "project_id, month, reserved_nanos, workspace_nanos";

/// Takes deleted holds ([`RELEASED_COLUMNS`] rows) off their project's months
/// and the workspace's.
async fn unhold(
    conn: &mut AnyConnection,
    released: &[AnyRow],
) -> Result<BTreeMap<MonthKey, MonthRow>> {
    let mut totals: BTreeMap<MonthKey, i64> = BTreeMap::new();
    let mut workspace: BTreeMap<String, i64> = BTreeMap::new();
    for row in released {
        let month: String = col(row, "month")?;
        let workspace_nanos: i64 = col(row, "workspace_nanos")?;
        if workspace_nanos > 0 {
            *workspace.entry(month.clone()).or_default() += workspace_nanos;
        }
        *totals.entry((col(row, "project_id")?, month)).or_default() +=
            col::<i64>(row, "reserved_nanos")?;
    }
    let mut months = BTreeMap::new();
    for ((project_id, month), nanos) in totals {
        let row = sqlx::query(&format!(
            "update budget_month set reserved_nanos = reserved_nanos - $3 \
             where project_id = $1 and month = $2 returning {MONTH_COLUMNS}"
        ))
        .bind(&project_id)
        .bind(&month)
        .bind(nanos)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            months.insert((project_id, month), month_from(&row)?);
        }
    }
    for (month, nanos) in workspace {
        sqlx::query(
            "update workspace_month set reserved_nanos = reserved_nanos - $2 where month = $1",
        )
        .bind(month)
        .bind(nanos)
        .execute(&mut *conn)
        .await?;
    }
    Ok(months)
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
    .bind(notification.kind.as_str())
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
                kind: parsed(row, "kind", NotificationKind::parse)?,
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
