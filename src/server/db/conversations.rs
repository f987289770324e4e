//! The `conversation` and `message` tables. A conversation pins the
//! configuration version it started with; its messages are numbered by an
//! atomic counter on the conversation row, so concurrent questions never
//! collide on either engine.

use crate::error::AppError;
use crate::model::chat::{ChatRole, MessageStatus, Rating};
use crate::server::db::batch::Batch;
use crate::server::db::paging::{Cursor, Page};
use crate::server::db::{col, now_ms, parsed, parsed_optional, Placeholders};
use crate::server::error::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A stored conversation with what its answers cost so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    /// Conversation id.
    pub conversation_id: String,
    /// Its project.
    pub project_id: String,
    /// Title.
    pub title: String,
    /// The pinned configuration version.
    pub config_version: i64,
    /// Pinned provider id.
    pub provider: String,
    /// Pinned catalog model id.
    pub model: String,
    /// Messages so far.
    pub message_count: i64,
    /// Who started it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Sum of its answers' costs (nano-dollars); 0 for a new row.
    pub cost_nanos: i64,
    /// Whether some answer used an unpriced model.
    pub unpriced: bool,
}

/// A stored message; JSON columns still as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Message id.
    pub message_id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Position in the conversation (1, 2, …).
    pub seq: i64,
    /// Who wrote it.
    pub role: ChatRole,
    /// Text.
    pub content: String,
    /// JSON images (questions).
    pub images: Option<String>,
    /// Where it stands.
    pub status: MessageStatus,
    /// JSON `AnswerFacts`.
    pub facts: Option<String>,
    /// JSON `FallbackNotice`.
    pub fallback: Option<String>,
    /// JSON `InterruptedAnswer`.
    pub interrupted: Option<String>,
    /// Why an answer failed.
    pub error: Option<String>,
    /// Cost of every attempt (nano-dollars).
    pub cost_nanos: i64,
    /// Some attempt used an unpriced model.
    pub unpriced: bool,
    /// The thumbs up or down on an answer.
    pub rating: Option<Rating>,
    /// JSON `[Citation]`: the knowledge an answer was given.
    pub citations: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// How an answer ended, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerUpdate {
    /// How it ended.
    pub status: MessageStatus,
    /// Final (or partial) text.
    pub content: String,
    /// JSON `AnswerFacts`.
    pub facts: Option<String>,
    /// JSON `FallbackNotice`.
    pub fallback: Option<String>,
    /// JSON `InterruptedAnswer`.
    pub interrupted: Option<String>,
    /// Error text.
    pub error: Option<String>,
    /// Cost of every attempt.
    pub cost_nanos: i64,
    /// Some attempt was unpriced.
    pub unpriced: bool,
    /// JSON `[Citation]`, when knowledge was given.
    pub citations: Option<String>,
    /// JSON `[ImageAttachment]`: the pictures an image answer drew.
    pub images: Option<String>,
}

const CONVERSATION_COLUMNS: &str = "c.conversation_id, c.project_id, c.title, c.config_version, \
     c.provider, c.model, c.message_count, c.created_by, c.created_at, c.updated_at";

const MESSAGE_COLUMNS: &str = "message_id, conversation_id, seq, role, content, images, status, \
     facts, fallback, interrupted, error, cost_nanos, unpriced, rating, citations, created_at";

fn conversation_from(row: &AnyRow) -> Result<ConversationRow> {
    Ok(ConversationRow {
        cost_nanos: col(row, "cost")?,
        unpriced: col::<i64>(row, "any_unpriced")? != 0,
        ..conversation_columns(row, "")?
    })
}

/// A conversation's own columns (its cost left at zero), read under names
/// that start with `prefix`.
fn conversation_columns(row: &AnyRow, prefix: &str) -> Result<ConversationRow> {
    let named = |column: &str| format!("{prefix}{column}");
    Ok(ConversationRow {
        conversation_id: col(row, &named("conversation_id"))?,
        project_id: col(row, &named("project_id"))?,
        title: col(row, &named("title"))?,
        config_version: col(row, &named("config_version"))?,
        provider: col(row, &named("provider"))?,
        model: col(row, &named("model"))?,
        message_count: col(row, &named("message_count"))?,
        created_by: col(row, &named("created_by"))?,
        created_at: col(row, &named("created_at"))?,
        updated_at: col(row, &named("updated_at"))?,
        cost_nanos: 0,
        unpriced: false,
    })
}

fn message_from(row: &AnyRow) -> Result<MessageRow> {
    Ok(MessageRow {
        message_id: col(row, "message_id")?,
        conversation_id: col(row, "conversation_id")?,
        seq: col(row, "seq")?,
        role: parsed(row, "role", ChatRole::parse)?,
        content: col(row, "content")?,
        images: col(row, "images")?,
        status: parsed(row, "status", MessageStatus::parse)?,
        facts: col(row, "facts")?,
        fallback: col(row, "fallback")?,
        interrupted: col(row, "interrupted")?,
        error: col(row, "error")?,
        cost_nanos: col(row, "cost_nanos")?,
        unpriced: col::<i64>(row, "unpriced")? != 0,
        rating: parsed_optional(row, "rating", Rating::parse)?,
        citations: col(row, "citations")?,
        created_at: col(row, "created_at")?,
    })
}

/// Stores a new conversation; `arm` is the experiment and arm it was
/// assigned to, when one was running.
pub async fn insert(
    pool: &AnyPool,
    row: &ConversationRow,
    arm: Option<(&str, &str)>,
) -> Result<()> {
    sqlx::query(
        "insert into conversation (conversation_id, project_id, title, config_version, provider, \
         model, message_count, created_by, created_at, updated_at, experiment_id, arm) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&row.conversation_id)
    .bind(&row.project_id)
    .bind(&row.title)
    .bind(row.config_version)
    .bind(&row.provider)
    .bind(&row.model)
    .bind(row.message_count)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(arm.map(|(experiment, _)| experiment))
    .bind(arm.map(|(_, arm)| arm))
    .execute(pool)
    .await?;
    Ok(())
}

fn select_conversations(filter: &str) -> String {
    format!(
        "select {CONVERSATION_COLUMNS}, \
           cast(coalesce(sum(m.cost_nanos), 0) as bigint) as cost, \
           coalesce(max(m.unpriced), 0) as any_unpriced \
         from conversation c left join message m on m.conversation_id = c.conversation_id \
         where {filter} \
         group by {CONVERSATION_COLUMNS} \
         order by c.updated_at desc, c.conversation_id"
    )
}

/// One page of a project's conversations, most recently active first, and
/// the next page's cursor if there are more.
pub async fn list(
    pool: &AnyPool,
    project_id: &str,
    page: &Page,
) -> Result<(Vec<ConversationRow>, Option<String>)> {
    let fetch = i64::from(page.limit) + 1;
    let rows = match &page.after {
        None => {
            sqlx::query(&format!(
                "{} limit $2",
                select_conversations("c.project_id = $1")
            ))
            .bind(project_id)
            .bind(fetch)
            .fetch_all(pool)
            .await?
        }
        Some(after) => {
            let filter = "c.project_id = $1 and (c.updated_at < $2 \
                          or (c.updated_at = $2 and c.conversation_id > $3))";
            sqlx::query(&format!("{} limit $4", select_conversations(filter)))
                .bind(project_id)
                .bind(after.at_ms)
                .bind(&after.id)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        }
    };
    let rows = rows
        .iter()
        .map(conversation_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page.split(rows, |row| Cursor {
        at_ms: row.updated_at,
        id: row.conversation_id.clone(),
    }))
}

/// One conversation of a project.
pub async fn find(
    pool: &AnyPool,
    project_id: &str,
    conversation_id: &str,
) -> Result<Option<ConversationRow>> {
    let row = sqlx::query(&select_conversations(
        "c.project_id = $1 and c.conversation_id = $2",
    ))
    .bind(project_id)
    .bind(conversation_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(conversation_from).transpose()
}

/// One conversation of a project with its messages in order, read in one
/// query, so the conversation's cost (the sum of its answers') and its
/// messages always agree, even while answers are being stored.
pub async fn with_messages(
    pool: &AnyPool,
    project_id: &str,
    conversation_id: &str,
) -> Result<Option<(ConversationRow, Vec<MessageRow>)>> {
    // The conversation's columns under their own names: both tables have
    // `conversation_id` and `created_at`.
    let conversation: Vec<String> = CONVERSATION_COLUMNS
        .split(", ")
        .map(|column| format!("{column} as conv_{}", column.trim_start_matches("c.")))
        .collect();
    let messages: Vec<String> = MESSAGE_COLUMNS
        .split(", ")
        .map(|column| format!("m.{column}"))
        .collect();
    let sql = format!(
        "select {}, {} \
         from conversation c left join message m on m.conversation_id = c.conversation_id \
         where c.project_id = $1 and c.conversation_id = $2 order by m.seq",
        conversation.join(", "),
        messages.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(project_id)
        .bind(conversation_id)
        .fetch_all(pool)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut conversation = conversation_columns(first, "conv_")?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        // A conversation without messages joins to one row of nulls.
        if col::<Option<String>>(row, "message_id")?.is_some() {
            let message = message_from(row)?;
            conversation.cost_nanos += message.cost_nanos;
            conversation.unpriced |= message.unpriced;
            messages.push(message);
        }
    }
    Ok(Some((conversation, messages)))
}

/// A question and its pending answer, stored together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The question (its `seq` is assigned when stored).
    pub question: MessageRow,
    /// The id of the answer, stored as pending.
    pub answer_id: String,
    /// The conversation's title if this is its first question.
    pub title: String,
}

impl Exchange {
    /// A question asked now in `conversation_id` (`images`: their JSON, if
    /// it has any), with fresh ids for it and its pending answer; `title`
    /// names the conversation if it is its first.
    pub fn asked(
        conversation_id: &str,
        content: String,
        images: Option<String>,
        title: String,
    ) -> Exchange {
        let question = MessageRow {
            message_id: uuid::Uuid::new_v4().to_string(),
            conversation_id: conversation_id.to_owned(),
            seq: 0,
            role: ChatRole::User,
            content,
            images,
            status: MessageStatus::Complete,
            facts: None,
            fallback: None,
            interrupted: None,
            error: None,
            cost_nanos: 0,
            unpriced: false,
            rating: None,
            citations: None,
            created_at: now_ms(),
        };
        Exchange {
            question,
            answer_id: uuid::Uuid::new_v4().to_string(),
            title,
        }
    }
}

/// Exchanges (answer-id pairs) per statement: 8 parameters per message.
const EXCHANGES_PER_STATEMENT: usize = 200;

/// Stores questions with their pending answers (inside the caller's
/// transaction), in a few multi-row statements whatever their number: each
/// conversation's counter numbers its messages (several questions to one
/// conversation are numbered in order) and its first question titles it.
/// `retrying` (a group tried again after an error whose commit may have
/// happened) first leaves out questions already stored, so none is stored
/// twice. A conversation that does not exist is an error.
pub async fn insert_exchanges(
    conn: &mut AnyConnection,
    exchanges: &[&Exchange],
    retrying: bool,
) -> Result<()> {
    let mut exchanges = exchanges.to_vec();
    if retrying && !exchanges.is_empty() {
        let stored = stored_messages(
            conn,
            exchanges.iter().map(|e| e.question.message_id.as_str()),
        )
        .await?;
        exchanges.retain(|e| !stored.contains(&e.question.message_id));
    }
    if exchanges.is_empty() {
        return Ok(());
    }
    let style = Placeholders::of(conn);
    // Per conversation, in order: how many questions, the first one's title, the latest time.
    let mut counts: BTreeMap<&str, (i64, &str, i64)> = BTreeMap::new();
    for exchange in &exchanges {
        let question = &exchange.question;
        let entry = counts.entry(question.conversation_id.as_str()).or_insert((
            0,
            exchange.title.as_str(),
            question.created_at,
        ));
        entry.0 += 1;
        entry.2 = entry.2.max(question.created_at);
    }
    let counts: Vec<_> = counts.into_iter().collect();
    let mut totals: HashMap<String, i64> = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(EXCHANGES_PER_STATEMENT) {
        let sql = format!(
            "update conversation set message_count = message_count + 2 * v.column2, \
               title = case when message_count = 0 then v.column3 else title end, \
               updated_at = v.column4 \
             from (values {}) as v where conversation.conversation_id = v.column1 \
             returning conversation_id, message_count",
            style.values_list(chunk.len(), 4)
        );
        let query = chunk
            .iter()
            .fold(sqlx::query(&sql), |q, (id, (count, title, at))| {
                q.bind(*id).bind(*count).bind(*title).bind(*at)
            });
        for row in query.fetch_all(&mut *conn).await? {
            totals.insert(col(&row, "conversation_id")?, col(&row, "message_count")?);
        }
    }
    // Number each conversation's new messages after those already there.
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(counts.len());
    for (id, (count, _, _)) in &counts {
        // A conversation that is gone: its question is not found.
        let total = totals
            .get(*id)
            .copied()
            .ok_or(Error::App(AppError::NotFound))?;
        next.insert(id, total - 2 * count + 1);
    }
    let mut messages = Vec::with_capacity(exchanges.len() * 2);
    for exchange in &exchanges {
        let question = &exchange.question;
        let seq = next
            .get_mut(question.conversation_id.as_str())
            .ok_or_else(|| Error::internal("a numbered conversation went missing"))?;
        messages.push((
            question.message_id.as_str(),
            *seq,
            ChatRole::User,
            question.content.as_str(),
            question.images.as_deref(),
            MessageStatus::Complete,
            question,
        ));
        messages.push((
            exchange.answer_id.as_str(),
            *seq + 1,
            ChatRole::Assistant,
            "",
            None,
            MessageStatus::Pending,
            question,
        ));
        *seq += 2;
    }
    for chunk in messages.chunks(EXCHANGES_PER_STATEMENT * 2) {
        let sql = format!(
            "insert into message (message_id, conversation_id, seq, role, content, images, status, \
               created_at, updated_at) values {}",
            style.values_list(chunk.len(), 9)
        );
        let query = chunk.iter().fold(
            sqlx::query(&sql),
            |q, (id, seq, role, content, images, status, question)| {
                q.bind(*id)
                    .bind(&question.conversation_id)
                    .bind(*seq)
                    .bind(role.as_str())
                    .bind(*content)
                    .bind(*images)
                    .bind(status.as_str())
                    .bind(question.created_at)
                    .bind(question.created_at)
            },
        );
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Which of `ids` are stored messages.
async fn stored_messages<'a>(
    conn: &mut AnyConnection,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>> {
    let ids: Vec<&str> = ids.collect();
    let style = Placeholders::of(conn);
    let mut stored = HashSet::new();
    for chunk in ids.chunks(EXCHANGES_PER_STATEMENT) {
        let sql = format!(
            "select message_id from message where message_id in ({})",
            style.list(chunk.len())
        );
        let found: Vec<String> = chunk
            .iter()
            .fold(sqlx::query_scalar(&sql), |q, id| q.bind(*id))
            .fetch_all(&mut *conn)
            .await?;
        stored.extend(found);
    }
    Ok(stored)
}

/// Endings per statement: 12 parameters each.
const ENDINGS_PER_STATEMENT: usize = 300;

/// Stores how answers ended (in `deferred`, sent with its transaction's
/// other statements), in one statement per few hundred. Idempotent: storing
/// an ending twice changes nothing.
pub fn finish_answers<'q>(
    deferred: &mut Batch<'q>,
    endings: &[(&'q str, &'q AnswerUpdate)],
    now: i64,
) {
    let style = deferred.style();
    for chunk in endings.chunks(ENDINGS_PER_STATEMENT) {
        let sql = format!(
            "update message set status = v.column2, content = v.column3, facts = v.column4, \
               fallback = v.column5, interrupted = v.column6, error = v.column7, \
               cost_nanos = v.column8, unpriced = v.column9, updated_at = v.column10, \
               citations = v.column11, images = coalesce(v.column12, message.images) \
             from (values {}) as v where message.message_id = v.column1",
            style.values_list(chunk.len(), 12)
        );
        let mut statement = deferred.add(&sql);
        for (id, update) in chunk {
            statement = statement
                .bind(*id)
                .bind(update.status.as_str())
                .bind(&update.content)
                .bind(&update.facts)
                .bind(&update.fallback)
                .bind(&update.interrupted)
                .bind(&update.error)
                .bind(update.cost_nanos)
                .bind(i64::from(update.unpriced))
                .bind(now)
                .bind(&update.citations)
                .bind(&update.images);
        }
    }
}

/// Sets or clears the rating of an answer (inside the caller's transaction);
/// answers the rating it replaced, `None` when no such answer exists. The
/// change is made only if the rating read is still there, so two people
/// rating at once each replace what the other left.
pub async fn swap_rating(
    conn: &mut AnyConnection,
    conversation_id: &str,
    message_id: &str,
    rating: Option<Rating>,
) -> Result<Option<Option<Rating>>> {
    loop {
        let Some(before) = sqlx::query_scalar::<_, Option<String>>(
            "select rating from message \
             where conversation_id = $1 and message_id = $2 and role = 'assistant'",
        )
        .bind(conversation_id)
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let done = sqlx::query(
            "update message set rating = $3 \
             where conversation_id = $1 and message_id = $2 and coalesce(rating, '') = $4",
        )
        .bind(conversation_id)
        .bind(message_id)
        .bind(rating.map(Rating::as_str))
        .bind(before.as_deref().unwrap_or(""))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Some(before.as_deref().and_then(Rating::parse)));
        }
    }
}

/// Marks answers still pending since before `cutoff` (Unix ms) as failed: the
/// server that ran them stopped without finishing (any app server sweeps them
/// once they are older than any answer's time limit).
pub async fn fail_abandoned(conn: &mut AnyConnection, cutoff: i64, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "update message set status = 'error', \
           error = 'the server stopped before this answer finished', updated_at = $1 \
         where status = 'pending' and updated_at < $2",
    )
    .bind(now)
    .bind(cutoff)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
