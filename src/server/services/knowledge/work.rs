//! What the knowledge base keeps in memory on one server: its builders,
//! the status changes live listeners follow, and the serving indexes'
//! vectors. Apart from the service so the application state can hold it
//! without depending on the service.

use crate::server::db::knowledge::StoredVector;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::broadcast;

/// Status changes a slow listener may fall behind before it skips to the latest.
const CHANGES_BUFFERED: usize = 256;

/// The knowledge base's running work on this server: one builder per
/// project, the status changes live listeners follow, and the serving
/// indexes' vectors held for retrieval.
#[derive(Debug)]
pub struct KnowledgeWork {
    builds: Mutex<HashMap<String, Build>>,
    changes: broadcast::Sender<String>,
    /// Serving indexes' vectors by index id.
    pub(super) cache: Mutex<HashMap<String, Arc<LoadedIndex>>>,
}

impl Default for KnowledgeWork {
    fn default() -> Self {
        KnowledgeWork {
            builds: Mutex::new(HashMap::new()),
            changes: broadcast::channel(CHANGES_BUFFERED).0,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

/// A project's builder, while it runs.
#[derive(Debug, Default)]
pub(super) struct Build {
    /// Work arrived while it ran: it goes round once more.
    pub(super) again: bool,
    /// Its pace on the index it builds, for the ETA.
    pub(super) pace: Option<Pace>,
}

/// How fast a build goes: chunks done when it (re)started here, and when.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    pub(super) index_id: String,
    pub(super) since: Instant,
    pub(super) done_then: i64,
}

/// An index's vectors as retrieval reads them.
#[derive(Debug)]
pub(super) struct LoadedIndex {
    /// How many vectors it had when loaded (a different count means stale).
    pub(super) count: i64,
    /// When it was loaded or last found current.
    pub(super) checked: Mutex<Instant>,
    /// Each vector's chunk, in the order of `flat`'s rows.
    pub(super) chunks: Vec<StoredVector>,
    /// The vectors, one row of `dimensions` after another.
    pub(super) flat: Vec<f32>,
    /// The length of one vector.
    pub(super) dimensions: usize,
}

impl KnowledgeWork {
    /// Project ids whose knowledge status changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Tells the listeners the project's status changed.
    pub(super) fn announce(&self, project_id: &str) {
        let _ = self.changes.send(project_id.to_owned());
    }

    /// The running builders.
    pub(super) fn builds(&self) -> std::sync::MutexGuard<'_, HashMap<String, Build>> {
        self.builds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the cached vectors of `index_id` (they changed here).
    pub(super) fn forget(&self, index_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(index_id);
    }

    /// Drops every cached index (a document went, from some index).
    pub(super) fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The project's build's pace, while one runs here.
    pub(super) fn pace(&self, project_id: &str) -> Option<Pace> {
        self.builds().get(project_id).and_then(|b| b.pace.clone())
    }
}
