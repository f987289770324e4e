//! The performance rollups (FR-008): what each chat attempt, each ended
//! chat request and each rating adds to `usage_performance_daily`,
//! `usage_errors_daily` and `usage_latency_daily`, kept in the transaction
//! that stores the rows, so the performance report reads a few thousand
//! rollup rows however many attempts a period holds. The definitions are
//! [`crate::model::performance`]'s.

use crate::model::chat::Rating;
use crate::model::costs::UsageOperation;
use crate::model::performance::LatencyHistogram;
use crate::server::db::batch::{Batch, Statement};
use crate::server::db::{col, now_ms, Db};
use crate::server::error::Result;
use crate::server::ledger::rollups::{day_of, upsert_sql};
use crate::server::ledger::rows::{self, UsageRow};
use futures::StreamExt;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Rollup rows per statement (at most 18 bind parameters each).
const ROWS_PER_STATEMENT: usize = 1000;

/// The measure of `usage_latency_daily` holding successful attempts' latency.
pub const LATENCY: &str = "latency";
/// The measure holding successful streamed attempts' time to first token.
pub const TTFT: &str = "ttft";

const MODEL_KEY: [&str; 4] = ["project_id", "day", "provider", "model"];
pub(super) const PERFORMANCE_SUMS: [&str; 10] = [
    "attempts",
    "successes",
    "success_latency_ms",
    "success_output_tokens",
    "answers",
    "asked_first",
    "went_on",
    "rescued",
    "rated_up",
    "rated_down",
];
const ERROR_KEY: [&str; 5] = ["project_id", "day", "provider", "model", "error_class"];
const LATENCY_KEY: [&str; 6] = ["project_id", "day", "provider", "model", "measure", "bin"];

/// A provider's model on a day of a project: the key every rollup shares.
/// Ordered, so concurrent writers lock rollup rows in the same order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ModelDay {
    project_id: String,
    day: i64,
    provider: String,
    model: String,
}

impl ModelDay {
    fn of(row: &UsageRow) -> ModelDay {
        ModelDay {
            project_id: row.project_id.clone(),
            day: day_of(row.created_at),
            provider: row.provider.clone(),
            model: row.model.clone(),
        }
    }
}

/// Positions in [`PerformanceSums`], in [`PERFORMANCE_SUMS`]' order.
const ATTEMPTS: usize = 0;
const SUCCESSES: usize = 1;
const SUCCESS_LATENCY_MS: usize = 2;
const SUCCESS_OUTPUT_TOKENS: usize = 3;
const ANSWERS: usize = 4;
const ASKED_FIRST: usize = 5;
const WENT_ON: usize = 6;
const RESCUED: usize = 7;
const RATED_UP: usize = 8;
const RATED_DOWN: usize = 9;

/// What one `usage_performance_daily` row sums, in [`PERFORMANCE_SUMS`]' order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PerformanceSums([i64; 10]);

impl PerformanceSums {
    fn add(&mut self, other: &PerformanceSums) {
        for (sum, value) in self.0.iter_mut().zip(other.0) {
            *sum += value;
        }
    }
}

/// How one chat request (the attempts sharing a request id) ended, as the
/// rollups count it: the model first asked, the model it belongs to (the one
/// that answered, else the one first asked), and whether it went on to
/// another model. Built from its attempts in order, by the request's sink as
/// they happen, or from stored rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTally {
    request_id: String,
    message_id: Option<String>,
    first: ModelDay,
    owner: ModelDay,
    answered: bool,
    went_on: bool,
}

impl RequestTally {
    /// A request whose first attempt is `row`.
    pub fn start(row: &UsageRow) -> RequestTally {
        let first = ModelDay::of(row);
        RequestTally {
            request_id: row.request_id.clone(),
            message_id: row.message_id.clone(),
            owner: first.clone(),
            first,
            answered: row.success,
            went_on: false,
        }
    }

    /// Adds the request's next attempt.
    pub fn add(&mut self, row: &UsageRow) {
        if row.model != self.first.model {
            self.went_on = true;
        }
        if row.success && !self.answered {
            self.answered = true;
            self.owner = ModelDay {
                day: self.first.day,
                ..ModelDay::of(row)
            };
        }
    }

    /// The tallies of the whole requests among `rows` (an import: every
    /// request's attempts are all there), their chat attempts in order.
    pub fn of_rows(rows: &[UsageRow]) -> Vec<RequestTally> {
        let mut requests: BTreeMap<&str, Vec<&UsageRow>> = BTreeMap::new();
        for row in rows
            .iter()
            .filter(|row| row.operation == UsageOperation::Chat)
        {
            requests.entry(&row.request_id).or_default().push(row);
        }
        requests
            .into_values()
            .filter_map(|mut attempts| {
                attempts.sort_by_key(|row| row.attempt);
                let (first, rest) = attempts.split_first()?;
                let mut tally = RequestTally::start(first);
                for row in rest {
                    tally.add(row);
                }
                Some(tally)
            })
            .collect()
    }

    fn rescued(&self) -> bool {
        self.answered && self.owner.model != self.first.model
    }
}

/// Adds freshly stored ledger rows' chat attempts and ended requests to the
/// rollups, one statement per table: attempts, successes with their
/// latency and output, failures by class, the latency and first-token
/// histograms; and each request's answer, first ask and fallbacks, once (a
/// request already stored — a group commit tried again — adds nothing).
/// The statements go into `deferred`; when `retrying`, the requests are
/// stored now, to learn which were new.
pub async fn add<'q>(
    conn: &mut AnyConnection,
    deferred: &mut Batch<'q>,
    rows: &[&UsageRow],
    tallies: &[&'q RequestTally],
    retrying: bool,
) -> Result<()> {
    let mut sums: BTreeMap<ModelDay, PerformanceSums> = BTreeMap::new();
    let mut errors: BTreeMap<(ModelDay, &str), i64> = BTreeMap::new();
    let mut bins: BTreeMap<(ModelDay, &str, i64), i64> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|row| row.operation == UsageOperation::Chat)
    {
        let key = ModelDay::of(row);
        let mut added = PerformanceSums::default();
        added.0[ATTEMPTS] = 1;
        if row.success {
            added.0[SUCCESSES] = 1;
            added.0[SUCCESS_LATENCY_MS] = row.latency_ms;
            added.0[SUCCESS_OUTPUT_TOKENS] = row.output_tokens;
            let latency = LatencyHistogram::bin_of(row.latency_ms);
            *bins.entry((key.clone(), LATENCY, latency)).or_default() += 1;
            if let Some(ttft) = row.ttft_ms.filter(|_| row.streamed) {
                let ttft = LatencyHistogram::bin_of(ttft);
                *bins.entry((key.clone(), TTFT, ttft)).or_default() += 1;
            }
        } else {
            let class = row.error_class.map_or("unknown", |class| class.as_str());
            *errors.entry((key.clone(), class)).or_default() += 1;
        }
        sums.entry(key).or_default().add(&added);
    }
    let new = store_requests(conn, deferred, tallies, retrying).await?;
    for tally in tallies
        .iter()
        .filter(|t| new.as_ref().is_none_or(|new| new.contains(&t.request_id)))
    {
        let mut owned = PerformanceSums::default();
        owned.0[ANSWERS] = 1;
        sums.entry(tally.owner.clone()).or_default().add(&owned);
        let mut asked = PerformanceSums::default();
        asked.0[ASKED_FIRST] = 1;
        asked.0[WENT_ON] = i64::from(tally.went_on);
        asked.0[RESCUED] = i64::from(tally.rescued());
        sums.entry(tally.first.clone()).or_default().add(&asked);
    }
    add_sums(deferred, sums);
    let style = deferred.style();
    let errors: Vec<_> = errors.into_iter().collect();
    for chunk in errors.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_sql(
            style,
            "usage_errors_daily",
            &ERROR_KEY,
            &["attempts"],
            chunk.len(),
        );
        let mut statement = deferred.add(&sql);
        for ((key, class), attempts) in chunk {
            statement = bind_key(statement, key).bind(*class).bind(*attempts);
        }
    }
    let bins: Vec<_> = bins.into_iter().collect();
    for chunk in bins.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_sql(
            style,
            "usage_latency_daily",
            &LATENCY_KEY,
            &["samples"],
            chunk.len(),
        );
        let mut statement = deferred.add(&sql);
        for ((key, measure, bin), samples) in chunk {
            statement = bind_key(statement, key)
                .bind(*measure)
                .bind(*bin)
                .bind(*samples);
        }
    }
    Ok(())
}

/// Stores the requests' `usage_request` rows. On a first try they are all
/// new and go into `deferred` (answers `None`: every one is new); when
/// `retrying`, they are stored now and the ids not stored before answered.
async fn store_requests<'q>(
    conn: &mut AnyConnection,
    deferred: &mut Batch<'q>,
    tallies: &[&'q RequestTally],
    retrying: bool,
) -> Result<Option<HashSet<String>>> {
    if !retrying {
        for chunk in tallies.chunks(ROWS_PER_STATEMENT) {
            add_requests(deferred, chunk, "");
        }
        return Ok(None);
    }
    let mut new: HashSet<String> = HashSet::new();
    for chunk in tallies.chunks(ROWS_PER_STATEMENT) {
        let mut now = Batch::new(conn);
        add_requests(
            &mut now,
            chunk,
            " on conflict (request_id) do nothing returning request_id",
        );
        for row in now.send(conn).await? {
            new.insert(col(&row, "request_id")?);
        }
    }
    Ok(Some(new))
}

/// Adds one multi-row insert of `usage_request` rows to `batch`, `tail`
/// after its values.
fn add_requests<'q>(batch: &mut Batch<'q>, tallies: &[&'q RequestTally], tail: &str) {
    let sql = format!(
        "insert into usage_request \
         (request_id, project_id, message_id, day, owner_provider, owner_model) values {}{tail}",
        batch.style().values_list(tallies.len(), 6)
    );
    let mut statement = batch.add(&sql);
    for tally in tallies {
        statement = statement
            .bind(&tally.request_id)
            .bind(&tally.owner.project_id)
            .bind(&tally.message_id)
            .bind(tally.owner.day)
            .bind(&tally.owner.provider)
            .bind(&tally.owner.model);
    }
}

/// The model and day a `usage_request` row's request belongs to.
fn owner_of(row: &sqlx::any::AnyRow) -> Result<ModelDay> {
    Ok(ModelDay {
        project_id: col(row, "project_id")?,
        day: col(row, "day")?,
        provider: col(row, "owner_provider")?,
        model: col(row, "owner_model")?,
    })
}

/// Moves a rated answer's thumbs in the rollups from `before` to `after`,
/// on the model and day of every request that answered it (inside the
/// transaction that stores the rating).
pub async fn rerate(
    conn: &mut AnyConnection,
    message_id: &str,
    before: Option<Rating>,
    after: Option<Rating>,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let owners = sqlx::query(
        "select project_id, day, owner_provider, owner_model from usage_request \
         where message_id = $1",
    )
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?;
    let thumbs = |rating: Option<Rating>| match rating {
        Some(Rating::Up) => (1, 0),
        Some(Rating::Down) => (0, 1),
        None => (0, 0),
    };
    let (up_before, down_before) = thumbs(before);
    let (up_after, down_after) = thumbs(after);
    let mut sums = BTreeMap::new();
    for row in owners {
        let mut change = PerformanceSums::default();
        change.0[RATED_UP] = up_after - up_before;
        change.0[RATED_DOWN] = down_after - down_before;
        sums.entry(owner_of(&row)?)
            .or_insert_with(PerformanceSums::default)
            .add(&change);
    }
    let mut batch = Batch::new(conn);
    add_sums(&mut batch, sums);
    batch.send(conn).await?;
    Ok(())
}

/// Adds performance sums to their rollup rows (in `batch`).
fn add_sums(batch: &mut Batch<'_>, sums: BTreeMap<ModelDay, PerformanceSums>) {
    let style = batch.style();
    let sums: Vec<_> = sums.into_iter().collect();
    for chunk in sums.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_sql(
            style,
            "usage_performance_daily",
            &MODEL_KEY,
            &PERFORMANCE_SUMS,
            chunk.len(),
        );
        let mut statement = batch.add(&sql);
        for (key, sums) in chunk {
            statement = bind_key(statement, key);
            for value in sums.0 {
                statement = statement.bind(value);
            }
        }
    }
}

/// Binds a [`ModelDay`]'s columns, in [`MODEL_KEY`]'s order.
fn bind_key<'b, 'q>(statement: Statement<'b, 'q>, key: &ModelDay) -> Statement<'b, 'q> {
    statement
        .bind(key.project_id.clone())
        .bind(key.day)
        .bind(key.provider.clone())
        .bind(key.model.clone())
}

/// The workspace setting saying the rollups hold every row stored before
/// they existed.
const FILLED: &str = "performance_rollups_filled";
/// Ledger rows added to the rollups per statement group while filling.
const FILL_CHUNK: usize = 5_000;
/// A request's attempts all start within this of its first (far above any
/// answer's time limit), so a request not seen for this long has ended.
const REQUEST_SPAN_MS: i64 = 6 * 3_600_000;

/// Fills the rollups from the rows stored before they existed (the first
/// start after the upgrade, before serving: the ledger is not written
/// meanwhile), once per database: the first app server to get here does it,
/// in one transaction, and marks it done. Answers how many rows it read.
pub async fn fill_from_ledger(db: &Db) -> Result<u64> {
    let mut tx = db.writer.begin().await?;
    let claimed = sqlx::query(
        "insert into workspace_setting (name, value, updated_at) values ($1, '1', $2) \
         on conflict (name) do nothing",
    )
    .bind(FILLED)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(0);
    }
    let select = format!(
        "select {} from llm_usage where operation = 'chat' order by created_at, attempt",
        rows::select_list()
    );
    let mut stream = sqlx::query(&select).fetch(&db.pool);
    let mut read = 0_u64;
    let mut chunk: Vec<UsageRow> = Vec::with_capacity(FILL_CHUNK);
    let mut open: HashMap<String, RequestTally> = HashMap::new();
    let mut started: VecDeque<(i64, String)> = VecDeque::new();
    let mut ended: Vec<RequestTally> = Vec::new();
    while let Some(row) = stream.next().await {
        let row = rows::from_row(&row?)?;
        read += 1;
        while let Some((at, _)) = started.front() {
            if *at >= row.created_at - REQUEST_SPAN_MS {
                break;
            }
            let (_, id) = started.pop_front().unwrap_or_default();
            ended.extend(open.remove(&id));
        }
        match open.get_mut(&row.request_id) {
            Some(tally) => tally.add(&row),
            None => {
                started.push_back((row.created_at, row.request_id.clone()));
                open.insert(row.request_id.clone(), RequestTally::start(&row));
            }
        }
        chunk.push(row);
        if chunk.len() == FILL_CHUNK {
            add_now(
                &mut tx,
                &chunk.iter().collect::<Vec<_>>(),
                &ended.iter().collect::<Vec<_>>(),
            )
            .await?;
            chunk.clear();
            ended.clear();
        }
    }
    drop(stream);
    ended.extend(open.into_values());
    add_now(
        &mut tx,
        &chunk.iter().collect::<Vec<_>>(),
        &ended.iter().collect::<Vec<_>>(),
    )
    .await?;
    // The ratings given so far, on the requests that answered them.
    let rated = sqlx::query(
        "select r.project_id, r.day, r.owner_provider, r.owner_model, m.rating, \
                cast(count(*) as bigint) as rated \
         from usage_request r join message m on m.message_id = r.message_id \
         where m.rating is not null \
         group by r.project_id, r.day, r.owner_provider, r.owner_model, m.rating",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sums: BTreeMap<ModelDay, PerformanceSums> = BTreeMap::new();
    for row in rated {
        let mut thumbs = PerformanceSums::default();
        let index = if col::<String>(&row, "rating")? == Rating::Up.as_str() {
            RATED_UP
        } else {
            RATED_DOWN
        };
        thumbs.0[index] = col(&row, "rated")?;
        sums.entry(owner_of(&row)?).or_default().add(&thumbs);
    }
    let mut batch = Batch::new(&tx);
    add_sums(&mut batch, sums);
    batch.send(&mut tx).await?;
    tx.commit().await?;
    Ok(read)
}

/// [`add`] of rows that may have been added before (their requests are
/// checked), its statements sent at once, inside the caller's transaction.
async fn add_now(
    conn: &mut AnyConnection,
    rows: &[&UsageRow],
    tallies: &[&RequestTally],
) -> Result<()> {
    let mut batch = Batch::new(conn);
    add(conn, &mut batch, rows, tallies, true).await?;
    batch.send(conn).await?;
    Ok(())
}
