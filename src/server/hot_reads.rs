//! What every answer and gateway call reads before it can start — its API
//! token, its project's current configuration, the project's own provider
//! keys (still sealed), its running experiment and the knowledge index its
//! retrieval reads, and its budget's limit and month figures — kept for a
//! moment instead of read from the database on each request. A change made
//! on this server takes effect at once (the code that stores it forgets the
//! copy); a change made by another app server on the same database, within
//! [`FRESH_FOR`]. A budget's copy only ever lets an answer through: the hold
//! itself is a conditional update in the database, and stepping down the
//! ladder or refusing is decided on figures read afresh.

use crate::server::db::api_tokens::TokenRow;
use crate::server::db::budgets::BudgetFigures;
use crate::server::db::experiments::{ArmRow, ExperimentRow};
use crate::server::db::knowledge::IndexRow;
use crate::server::db::llm_configs::ConfigRow;
use crate::server::db::provider_keys::StoredKey;
use crate::server::error::Result;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a copy is used before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries one cache holds at most; past it the stale ones go, then all.
const MAX_ENTRIES: usize = 50_000;

/// A project's running experiment and its arms.
pub type RunningExperiment = Option<(ExperimentRow, Arc<Vec<ArmRow>>)>;

/// The caches of [`HotReads`]; cheap to share.
#[derive(Debug, Default)]
pub struct HotReads {
    /// Live tokens by the SHA-256 of the token.
    pub tokens: Recent<String, TokenRow>,
    /// The newest configuration row of each project.
    pub configs: Recent<String, ConfigRow>,
    /// Each project's own key per provider (sealed), or none.
    pub keys: Recent<(String, String), Option<StoredKey>>,
    /// Each project's running experiment, or none.
    pub experiments: Recent<String, RunningExperiment>,
    /// The knowledge index each project's retrieval reads, or none.
    pub serving_indexes: Recent<String, Option<IndexRow>>,
    /// Each project's budget and month figures, by project and month.
    pub budgets: Recent<(String, String), BudgetFigures>,
}

struct Entries<K, V> {
    values: HashMap<K, (Instant, V)>,
    /// Bumped by every forget: a read that started before it is not kept.
    generation: u64,
}

/// Values read recently, each used for [`FRESH_FOR`] after its read.
pub struct Recent<K, V> {
    entries: Mutex<Entries<K, V>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            entries: Mutex::new(Entries {
                values: HashMap::new(),
                generation: 0,
            }),
        }
    }
}

impl<K, V> std::fmt::Debug for Recent<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recent").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Recent<K, V> {
    fn entries(&self) -> MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The copy of `key` read less than [`FRESH_FOR`] ago, else `load`'s
    /// answer (kept unless a forget came while it was read). Errors are not kept.
    pub async fn get_or_load<F, Fut>(&self, key: &K, load: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        {
            let entries = self.entries();
            if let Some((read_at, value)) = entries.values.get(key) {
                if read_at.elapsed() < FRESH_FOR {
                    return Ok(value.clone());
                }
            }
        }
        self.refresh(key, load).await
    }

    /// `load`'s answer, whatever copy there is, kept as the new copy unless a
    /// forget came while it was read: for a decision a copy may not make.
    pub async fn refresh<F, Fut>(&self, key: &K, load: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let generation = self.entries().generation;
        let value = load().await?;
        let mut entries = self.entries();
        if entries.generation == generation {
            if entries.values.len() >= MAX_ENTRIES {
                entries
                    .values
                    .retain(|_, (read_at, _)| read_at.elapsed() < FRESH_FOR);
                if entries.values.len() >= MAX_ENTRIES {
                    entries.values.clear();
                }
            }
            entries
                .values
                .insert(key.clone(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Forgets the copies `stale` picks (a change was stored).
    pub fn forget_where(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.values.retain(|key, (_, value)| !stale(key, value));
    }

    /// Forgets the copy of `key`.
    pub fn forget(&self, key: &K) {
        self.forget_where(|k, _| k == key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_copy_is_used_until_forgotten_and_errors_are_not_kept() {
        let cache: Recent<String, u32> = Recent::default();
        let reads = AtomicU32::new(0);
        let load = || async { Ok(reads.fetch_add(1, Ordering::SeqCst) + 1) };
        let key = "p".to_owned();
        assert_eq!(cache.get_or_load(&key, load).await.unwrap(), 1);
        assert_eq!(cache.get_or_load(&key, load).await.unwrap(), 1, "the copy");
        cache.forget(&key);
        assert_eq!(
            cache.get_or_load(&key, load).await.unwrap(),
            2,
            "read again"
        );
        let failed = cache
            .get_or_load(&"q".to_owned(), || async {
                Err(crate::server::error::Error::internal("down"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(cache.get_or_load(&"q".to_owned(), load).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_read_overtaken_by_a_forget_is_not_kept() {
        let cache: Recent<String, u32> = Recent::default();
        let key = "p".to_owned();
        let value = cache
            .get_or_load(&key, || async {
                // The value changes and is forgotten while this read runs.
                cache.forget(&key);
                Ok(1)
            })
            .await
            .unwrap();
        assert_eq!(value, 1);
        assert_eq!(
            cache.get_or_load(&key, || async { Ok(2) }).await.unwrap(),
            2
        );
    }
}
