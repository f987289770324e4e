//! Statements of one transaction whose results nobody reads (upserts of
//! rollups, ledger rows on their first try, answer endings), sent to the
//! database together: on SQLite as one multi-statement query (one hop to its
//! worker thread), on PostgreSQL as one statement whose data-modifying `with`
//! clauses run them (one round trip). The ledger's writer commits a group in
//! a handful of hops instead of one per statement, so under load it spends
//! its time storing rather than waiting for replies.
//!
//! On PostgreSQL the statements sent together see the same snapshot: none
//! may touch a row another one writes, or read what another one wrote (each
//! writes a table of its own). Only the last statement may return rows. A
//! batch with more parameters than one query takes is sent in as many hops
//! as it needs, in order.

use crate::server::db::Placeholders;
use crate::server::error::{Error, Result};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Arguments, Encode, Type};
use std::fmt::Write;

/// Parameters bound in one query after which the next statement starts
/// another: PostgreSQL takes at most 65,535 per query, and no statement the
/// ledger writes binds more than 29,000 (1,000 ledger rows), so a query stays
/// under the limit however many statements a batch holds.
const PARAMETERS_PER_QUERY: usize = 32_000;

/// Statements queued to be sent together ([`Batch::send`]).
pub struct Batch<'q> {
    style: Placeholders,
    queries: Vec<Query<'q>>,
    failed: Option<sqlx::error::BoxDynError>,
}

/// Statements sent in one hop, with their parameters.
struct Query<'q> {
    statements: Vec<String>,
    arguments: AnyArguments<'q>,
    bound: usize,
}

/// A statement just added to a [`Batch`], taking its parameters in order.
pub struct Statement<'b, 'q> {
    batch: &'b mut Batch<'q>,
}

impl<'q> Statement<'_, 'q> {
    /// Binds the statement's next parameter.
    pub fn bind<T: 'q + Encode<'q, Any> + Type<Any>>(self, value: T) -> Self {
        let batch = &mut *self.batch;
        if let Some(query) = batch.queries.last_mut() {
            if let Err(error) = query.arguments.add(value) {
                batch.failed.get_or_insert(error);
            }
            query.bound += 1;
        }
        self
    }
}

impl<'q> Batch<'q> {
    /// An empty batch for `conn`'s engine.
    pub fn new(conn: &AnyConnection) -> Batch<'q> {
        Batch {
            style: Placeholders::of(conn),
            queries: Vec::new(),
            failed: None,
        }
    }

    /// The placeholder style its statements are written in.
    pub fn style(&self) -> Placeholders {
        self.style
    }

    /// Adds a statement written in [`Batch::style`] (its own parameters
    /// numbered from `$1`, or anonymous `?` on SQLite, which binds them in
    /// order across statements); its parameters are bound next.
    pub fn add(&mut self, sql: &str) -> Statement<'_, 'q> {
        debug_assert!(
            self.style == Placeholders::Numbered || !sql.contains('$'),
            "a SQLite batch binds `?` in order; `$N` would name another statement's parameter"
        );
        if self
            .queries
            .last()
            .is_none_or(|query| query.bound >= PARAMETERS_PER_QUERY)
        {
            self.queries.push(Query {
                statements: Vec::new(),
                arguments: AnyArguments::default(),
                bound: 0,
            });
        }
        if let Some(query) = self.queries.last_mut() {
            let sql = match self.style {
                Placeholders::Numbered => shift_placeholders(sql, query.bound),
                Placeholders::Anonymous => sql.to_owned(),
            };
            query.statements.push(sql);
        }
        Statement { batch: self }
    }

    /// Runs every statement in order (inside the caller's transaction), in
    /// one hop unless it holds more parameters than one query takes;
    /// answers the rows the last one returned.
    pub async fn send(self, conn: &mut AnyConnection) -> Result<Vec<AnyRow>> {
        if let Some(error) = self.failed {
            return Err(Error::Database(sqlx::Error::Encode(error)));
        }
        let mut rows = Vec::new();
        for query in self.queries {
            let sql = query.sql(self.style);
            rows = sqlx::query_with(&sql, query.arguments)
                .fetch_all(&mut *conn)
                .await?;
        }
        Ok(rows)
    }
}

impl Query<'_> {
    /// The statements as one query: `;`-separated on SQLite, the earlier
    /// ones `with` clauses of the last on PostgreSQL.
    fn sql(&self, style: Placeholders) -> String {
        let Some((last, earlier)) = self.statements.split_last() else {
            return String::new();
        };
        match style {
            Placeholders::Anonymous => self.statements.join(";\n"),
            Placeholders::Numbered if earlier.is_empty() => last.clone(),
            Placeholders::Numbered => {
                let mut sql = String::from("with ");
                for (i, statement) in earlier.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(sql, "s{i} as ({statement})");
                }
                let _ = write!(sql, " {last}");
                sql
            }
        }
    }
}

/// `sql` with every `$N` placeholder renumbered `$(N + offset)`.
fn shift_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut shifted = String::with_capacity(sql.len() + sql.len() / 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        shifted.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(number) = rest[..digits].parse::<usize>() {
            let _ = write!(shifted, "{}", number + offset);
            rest = &rest[digits..];
        }
    }
    shifted.push_str(rest);
    shifted
}

#[cfg(test)]
mod tests {
    use super::shift_placeholders;

    #[test]
    fn placeholders_are_renumbered_after_those_already_bound() {
        assert_eq!(
            shift_placeholders("values ($1, $2), ($10, $11) where x = $2", 9),
            "values ($10, $11), ($19, $20) where x = $11"
        );
        assert_eq!(shift_placeholders("select $1", 0), "select $1");
        assert_eq!(shift_placeholders("a $ b", 3), "a $ b");
    }
}
