//! Repeated questions are cheap: a bounded LRU of allowlist verdicts (by SQL text) and of
//! planned SQL queries (by SQL text and the exact datasets — id and version — it read).
//!
//! A plan holds the frames it scans (polars plans embed their DataFrames), so a cached plan
//! could keep a replaced or evicted frame alive behind the registry's back. Each entry
//! therefore remembers the registry's `Arc`s only weakly: it is used only while every one of
//! them is still the frame the registry serves, and [`PlanCache::sweep`] (run after every
//! registry change and on every insert) drops entries whose frames the registry let go, so
//! their memory is returned as the registry intends.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use hashlink::LruCache;
use polars::prelude::{DataFrame, LazyFrame};
use shared_types::data::DatasetRef;

use super::sql::ApprovedQuery;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    sql: String,
    tables: Vec<DatasetRef>,
}

struct PlanEntry {
    plan: LazyFrame,
    frames: Vec<Weak<DataFrame>>,
}

impl std::fmt::Debug for PlanEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanEntry")
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl PlanEntry {
    fn alive(&self) -> bool {
        self.frames.iter().all(|frame| frame.strong_count() > 0)
    }

    fn scans(&self, frames: &[Arc<DataFrame>]) -> bool {
        self.frames.len() == frames.len()
            && self
                .frames
                .iter()
                .zip(frames)
                .all(|(cached, current)| std::ptr::eq(cached.as_ptr(), Arc::as_ptr(current)))
    }
}

/// The caches; `capacity` 0 disables both.
#[derive(Debug)]
pub struct PlanCache {
    approvals: Mutex<LruCache<String, Arc<ApprovedQuery>>>,
    plans: Mutex<LruCache<PlanKey, PlanEntry>>,
    enabled: bool,
}

/// Longest SQL text kept as a key (longer queries are planned every time).
const MAX_CACHED_SQL_BYTES: usize = 64 * 1024;

impl PlanCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            approvals: Mutex::new(LruCache::new(capacity.max(1))),
            plans: Mutex::new(LruCache::new(capacity.max(1))),
            enabled: capacity > 0,
        }
    }

    fn cacheable(&self, sql: &str) -> bool {
        self.enabled && sql.len() <= MAX_CACHED_SQL_BYTES
    }

    /// The allowlist's verdict on `sql`, computed by `approve` on a miss (refusals are not
    /// kept: they are cheap to repeat and carry caller-specific text).
    pub fn approval<E>(
        &self,
        sql: &str,
        approve: impl FnOnce() -> Result<ApprovedQuery, E>,
    ) -> Result<Arc<ApprovedQuery>, E> {
        if !self.cacheable(sql) {
            return approve().map(Arc::new);
        }
        if let Some(hit) = lock(&self.approvals).get(sql) {
            return Ok(Arc::clone(hit));
        }
        let approved = Arc::new(approve()?);
        lock(&self.approvals).insert(sql.to_owned(), Arc::clone(&approved));
        Ok(approved)
    }

    /// The cached plan of `sql` over exactly these tables and frames, if any.
    pub fn plan(
        &self,
        sql: &str,
        tables: &[DatasetRef],
        frames: &[Arc<DataFrame>],
    ) -> Option<LazyFrame> {
        if !self.cacheable(sql) {
            return None;
        }
        let key = PlanKey {
            sql: sql.to_owned(),
            tables: tables.to_vec(),
        };
        let mut plans = lock(&self.plans);
        let entry = plans.get(&key)?;
        if entry.scans(frames) {
            return Some(entry.plan.clone());
        }
        // Same versions but another frame (reloaded after an eviction): replan.
        plans.remove(&key);
        None
    }

    pub fn insert(
        &self,
        sql: &str,
        tables: &[DatasetRef],
        frames: &[Arc<DataFrame>],
        plan: LazyFrame,
    ) {
        if !self.cacheable(sql) {
            return;
        }
        let entry = PlanEntry {
            plan,
            frames: frames.iter().map(Arc::downgrade).collect(),
        };
        let key = PlanKey {
            sql: sql.to_owned(),
            tables: tables.to_vec(),
        };
        let evicted = {
            let mut plans = lock(&self.plans);
            let evicted = take_dead(&mut plans);
            plans.insert(key, entry);
            evicted
        };
        // Plans (and the frame columns they hold) are freed outside the lock.
        drop(evicted);
    }

    /// Drops plans whose frames the registry no longer holds (replaced, deleted, evicted).
    pub fn sweep(&self) {
        let evicted = take_dead(&mut lock(&self.plans));
        drop(evicted);
    }

    pub fn len(&self) -> usize {
        lock(&self.plans).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn take_dead(plans: &mut LruCache<PlanKey, PlanEntry>) -> Vec<PlanEntry> {
    let dead: Vec<PlanKey> = plans
        .iter()
        .filter(|(_, entry)| !entry.alive())
        .map(|(key, _)| key.clone())
        .collect();
    dead.iter().filter_map(|key| plans.remove(key)).collect()
}

/// Nothing panics while holding these locks, so a poisoned one still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use polars::prelude::*;

    use super::*;

    fn frame() -> Arc<DataFrame> {
        Arc::new(df!("x" => [1i64, 2, 3]).unwrap())
    }

    fn table(version: u64) -> Vec<DatasetRef> {
        vec![DatasetRef {
            name: "t".to_owned(),
            id: "id-1".to_owned(),
            version,
        }]
    }

    #[test]
    fn a_plan_is_reused_only_for_the_same_sql_versions_and_frames() {
        let cache = PlanCache::new(8);
        let current = frame();
        let plan = current.as_ref().clone().lazy();
        cache.insert("SELECT x FROM t", &table(1), &[Arc::clone(&current)], plan);
        assert!(
            cache
                .plan("SELECT x FROM t", &table(1), &[Arc::clone(&current)])
                .is_some()
        );
        assert!(
            cache
                .plan("SELECT x FROM t", &table(2), &[Arc::clone(&current)])
                .is_none()
        );
        assert!(
            cache
                .plan("SELECT x  FROM t", &table(1), &[Arc::clone(&current)])
                .is_none()
        );
        // Same version, but the registry reloaded the frame (another Arc): not reused.
        assert!(
            cache
                .plan("SELECT x FROM t", &table(1), &[frame()])
                .is_none()
        );
    }

    #[test]
    fn plans_of_frames_the_registry_dropped_are_swept() {
        let cache = PlanCache::new(8);
        let current = frame();
        cache.insert(
            "SELECT x FROM t",
            &table(1),
            &[Arc::clone(&current)],
            current.as_ref().clone().lazy(),
        );
        assert_eq!(cache.len(), 1);
        drop(current);
        cache.sweep();
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_can_be_disabled() {
        let cache = PlanCache::new(2);
        let current = frame();
        for sql in ["SELECT 1", "SELECT 2", "SELECT 3"] {
            cache.insert(
                sql,
                &table(1),
                &[Arc::clone(&current)],
                current.as_ref().clone().lazy(),
            );
        }
        assert_eq!(cache.len(), 2);
        assert!(
            cache
                .plan("SELECT 1", &table(1), &[Arc::clone(&current)])
                .is_none()
        );
        let disabled = PlanCache::new(0);
        disabled.insert(
            "SELECT 1",
            &table(1),
            &[Arc::clone(&current)],
            current.as_ref().clone().lazy(),
        );
        assert!(disabled.is_empty());
        let mut calls = 0;
        for _ in 0..2 {
            disabled
                .approval("SELECT 1", || {
                    calls += 1;
                    super::super::sql::approve("SELECT 1")
                })
                .unwrap();
        }
        assert_eq!(calls, 2);
    }
}
