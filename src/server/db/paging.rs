//! Keyset pagination of lists that grow without bound (a project's
//! conversations): a page is at most [`MAX_PAGE`] items, and the cursor
//! names the last item shown by its sort key and id, so a page costs the
//! same however deep it is and items arriving meanwhile shift nothing.

use crate::error::AppError;

/// The most items a page holds.
pub const MAX_PAGE: u32 = 100;
/// Items per page when the caller names no limit.
pub const DEFAULT_PAGE: u32 = 50;

/// Where a page starts: after the item with this sort key (Unix ms) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last item's sort key.
    pub at_ms: i64,
    /// The last item's id (ties on the key are ordered by id).
    pub id: String,
}

impl Cursor {
    /// The cursor as the API hands it out (`<ms>.<id>`; opaque to callers).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at_ms, self.id)
    }

    /// Reads a cursor the API handed out; a 422 on `cursor` otherwise.
    pub fn decode(text: &str) -> Result<Cursor, AppError> {
        text.split_once('.')
            .and_then(|(at, id)| {
                let at_ms = at.parse().ok()?;
                (!id.is_empty() && id.len() <= 200).then(|| Cursor {
                    at_ms,
                    id: id.to_owned(),
                })
            })
            .ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor this API handed out (nextCursor)")
            })
    }
}

/// One page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items at most (1 to [`MAX_PAGE`]).
    pub limit: u32,
    /// Start after this item; `None`: the first page.
    pub after: Option<Cursor>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_PAGE,
            after: None,
        }
    }
}

impl Page {
    /// The first [`MAX_PAGE`] items: what the app's own pages list (the API
    /// pages through the rest).
    pub const FIRST_FULL: Page = Page {
        limit: MAX_PAGE,
        after: None,
    };

    /// The page a query string asks for (`limit`, `cursor`; blank means not
    /// given); a 422 naming the field otherwise.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Page, AppError> {
        let limit = match limit.map(str::trim).filter(|text| !text.is_empty()) {
            None => DEFAULT_PAGE,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    AppError::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        let after = cursor
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(Cursor::decode)
            .transpose()?;
        Ok(Page { limit, after })
    }

    /// The items of a page fetched with one more than the limit (so a
    /// further page is known to exist without counting), and the cursor of
    /// the next page if there is one.
    pub fn split<T>(
        &self,
        mut items: Vec<T>,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        if items.len() <= limit {
            return (items, None);
        }
        items.truncate(limit);
        let next = items.last().map(|last| cursor_of(last).encode());
        (items, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked_by_field() {
        assert_eq!(Page::parse(None, Some(" ")).unwrap(), Page::default());
        let page = Page::parse(Some("100"), Some("1700.conv.with.dots")).unwrap();
        assert_eq!(page.limit, 100);
        assert_eq!(
            page.after,
            Some(Cursor {
                at_ms: 1700,
                id: "conv.with.dots".into()
            })
        );
        for (limit, cursor, field) in [
            (Some("0"), None, "limit"),
            (Some("101"), None, "limit"),
            (Some("ten"), None, "limit"),
            (None, Some("nodot"), "cursor"),
            (None, Some("x.id"), "cursor"),
            (None, Some("12."), "cursor"),
        ] {
            let error = Page::parse(limit, cursor).unwrap_err();
            assert_eq!(error.field(), Some(field), "{limit:?} {cursor:?}");
        }
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_items_were_found() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let cursor = |n: &i64| Cursor {
            at_ms: *n,
            id: format!("c{n}"),
        };
        assert_eq!(page.split(vec![3, 2], cursor), (vec![3, 2], None));
        assert_eq!(
            page.split(vec![3, 2, 1], cursor),
            (vec![3, 2], Some("2.c2".to_owned()))
        );
    }
}
