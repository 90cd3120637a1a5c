//! The memory manager: loaded DataFrames by dataset id, within a byte budget.
//!
//! Each frame is tagged with the [`Contents`] it holds: the dataset version it was read or
//! written at and the object it came from. A lookup names the contents the caller resolved
//! from the database; a frame of older contents is stale (another brain, or this one, replaced
//! or appended to the dataset) and is dropped on the spot, so the caller reloads from the
//! object store. A rename bumps the version but keeps the object: the frame stays.
//!
//! Frames are immutable and shared as `Arc<DataFrame>`. A reader takes the lock only to clone
//! an `Arc` (and bump its recency); a writer builds the new frame with no lock held and takes
//! the lock only to swap the `Arc` in. Readers holding the old `Arc` finish on the old data. So
//! no reader ever waits on a writer for longer than that swap.
//!
//! Past the budget, the least recently used unpinned frames are dropped from the registry: their
//! Parquet file is the durable copy, and the next use loads it again. A frame still in use by a
//! query stays alive (the query holds an `Arc`) but no longer counts against the budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use polars::prelude::DataFrame;

use crate::metrics::Metrics;

/// Which stored contents a frame holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The dataset version it was read or written at.
    pub version: i64,
    /// The object holding those contents (`store::datasets`, `object_key`).
    pub key: String,
}

/// Where a frame [`FrameRegistry::install`] puts in comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Just read from the object store (counted as a load); `pinned` as the dataset is.
    Loaded { pinned: bool },
    /// Just written by a create, a replace or an append.
    Written,
}

/// One loaded frame as [`FrameRegistry::snapshot`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameStats {
    pub id: String,
    pub bytes: u64,
    pub pinned: bool,
}

/// Totals of [`FrameRegistry::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySnapshot {
    pub budget_bytes: u64,
    pub used_bytes: u64,
    pub loads: u64,
    pub evictions: u64,
    pub frames: Vec<FrameStats>,
}

#[derive(Debug)]
struct Slot {
    frame: Arc<DataFrame>,
    contents: Contents,
    bytes: u64,
    pinned: bool,
    last_used: u64,
}

#[derive(Debug, Default)]
struct State {
    frames: HashMap<String, Slot>,
    used_bytes: u64,
    /// A logical clock for recency: bumped on every access.
    clock: u64,
    loads: u64,
    evictions: u64,
}

/// Loaded frames, shared by every request.
#[derive(Debug)]
pub struct FrameRegistry {
    state: Mutex<State>,
    budget_bytes: u64,
    metrics: Arc<Metrics>,
}

impl FrameRegistry {
    pub fn new(budget_bytes: u64, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            budget_bytes,
            metrics,
        }
    }

    /// The registry never holds its lock while doing anything that can panic, so a poisoned
    /// lock still guards consistent data: keep serving.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loaded frame of `id` if it holds `contents`, marked as just used. A frame of older
    /// contents is dropped (stale); one of newer contents (the caller read the database before
    /// a write that this brain already applied) stays, and the caller loads what it asked for.
    pub fn get(&self, id: &str, contents: &Contents) -> Option<Arc<DataFrame>> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let slot = state.frames.get_mut(id)?;
        if slot.contents.key == contents.key {
            slot.last_used = now;
            // A rename since it was loaded: same object, newer version.
            slot.contents.version = slot.contents.version.max(contents.version);
            return Some(Arc::clone(&slot.frame));
        }
        if slot.contents.version >= contents.version {
            return None;
        }
        let stale = state.frames.remove(id);
        if let Some(slot) = &stale {
            state.used_bytes -= slot.bytes;
            tracing::debug!(
                dataset = %id,
                loaded = slot.contents.version,
                current = contents.version,
                "dropped a stale frame (the dataset changed)"
            );
        }
        self.publish(&state);
        drop(state);
        drop(stale);
        None
    }

    /// Whether `id` is loaded (without touching its recency).
    pub fn is_loaded(&self, id: &str) -> bool {
        self.lock().frames.contains_key(id)
    }

    /// Installs `frame` as the contents of `id` (a load, a replace or an append), then evicts
    /// down to the budget. A frame already installed keeps its pin. If the same contents are
    /// installed already (another request loaded them meanwhile), that frame wins; if newer
    /// contents are, they stay and this frame is only served to its caller. Returns the frame
    /// to serve, which stays usable even if it had to be evicted at once (larger than the
    /// budget).
    pub fn install(
        &self,
        id: &str,
        contents: &Contents,
        frame: Arc<DataFrame>,
        origin: Origin,
    ) -> Arc<DataFrame> {
        // Measured before taking the lock: it walks every buffer.
        let bytes = frame.estimated_size() as u64;
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let mut pinned = match origin {
            Origin::Loaded { pinned } => {
                self.metrics.frame_loads.inc();
                state.loads += 1;
                pinned
            }
            Origin::Written => false,
        };
        if let Some(slot) = state.frames.get_mut(id) {
            if slot.contents.key == contents.key {
                slot.last_used = now;
                return Arc::clone(&slot.frame);
            }
            if slot.contents.version > contents.version {
                return frame;
            }
            pinned |= slot.pinned;
        }
        let old = state.frames.insert(
            id.to_owned(),
            Slot {
                frame: Arc::clone(&frame),
                contents: contents.clone(),
                bytes,
                pinned,
                last_used: now,
            },
        );
        state.used_bytes = state.used_bytes + bytes - old.as_ref().map_or(0, |slot| slot.bytes);
        let evicted = self.evict_over_budget(&mut state);
        self.publish(&state);
        drop(state);
        // Freeing a large frame takes time: done after the lock is released (and only if no
        // reader still holds it).
        drop(old);
        drop(evicted);
        frame
    }

    /// Pins (never evicted) or unpins a loaded frame; unpinning may evict at once.
    pub fn set_pinned(&self, id: &str, pinned: bool) {
        let mut state = self.lock();
        if let Some(slot) = state.frames.get_mut(id) {
            slot.pinned = pinned;
        }
        let evicted = self.evict_over_budget(&mut state);
        self.publish(&state);
        drop(state);
        drop(evicted);
    }

    /// Forgets `id` (its dataset was deleted).
    pub fn remove(&self, id: &str) {
        let mut state = self.lock();
        let removed = state.frames.remove(id);
        if let Some(slot) = &removed {
            state.used_bytes -= slot.bytes;
        }
        self.publish(&state);
        drop(state);
        drop(removed);
    }

    pub fn snapshot(&self) -> RegistrySnapshot {
        let state = self.lock();
        let mut frames: Vec<FrameStats> = state
            .frames
            .iter()
            .map(|(id, slot)| FrameStats {
                id: id.clone(),
                bytes: slot.bytes,
                pinned: slot.pinned,
            })
            .collect();
        frames.sort_by(|a, b| a.id.cmp(&b.id));
        RegistrySnapshot {
            budget_bytes: self.budget_bytes,
            used_bytes: state.used_bytes,
            loads: state.loads,
            evictions: state.evictions,
            frames,
        }
    }

    /// Takes least recently used unpinned frames out until the total fits the budget (or only
    /// pinned frames are left); the caller drops them once the lock is released.
    fn evict_over_budget(&self, state: &mut State) -> Vec<Slot> {
        let mut evicted = Vec::new();
        while state.used_bytes > self.budget_bytes {
            let victim = state
                .frames
                .iter()
                .filter(|(_, slot)| !slot.pinned)
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(id, _)| id.clone());
            let Some(victim) = victim else { break };
            if let Some(slot) = state.frames.remove(&victim) {
                state.used_bytes -= slot.bytes;
                state.evictions += 1;
                self.metrics.frame_evictions.inc();
                tracing::debug!(dataset = %victim, bytes = slot.bytes, "evicted frame");
                evicted.push(slot);
            }
        }
        evicted
    }

    fn publish(&self, state: &State) {
        self.metrics
            .frames_bytes
            .set(i64::try_from(state.used_bytes).unwrap_or(i64::MAX));
        self.metrics
            .frames_loaded
            .set(i64::try_from(state.frames.len()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use polars::prelude::*;

    use super::*;

    fn frame(rows: i64) -> Arc<DataFrame> {
        Arc::new(df!("x" => (0..rows).collect::<Vec<i64>>()).unwrap())
    }

    fn v(version: i64) -> Contents {
        Contents {
            version,
            key: format!("datasets/x/v{version}.parquet"),
        }
    }

    /// Read from the object store, of an unpinned dataset.
    const LOADED: Origin = Origin::Loaded { pinned: false };

    fn registry(budget: u64) -> FrameRegistry {
        FrameRegistry::new(budget, Arc::new(Metrics::new().unwrap()))
    }

    #[test]
    fn least_recently_used_unpinned_frames_are_evicted_first() {
        let one = frame(1000).estimated_size() as u64;
        let registry = registry(2 * one);
        registry.install("a", &v(1), frame(1000), LOADED);
        registry.install("b", &v(1), frame(1000), LOADED);
        // `a` becomes the most recent; loading `c` must evict `b`.
        assert!(registry.get("a", &v(1)).is_some());
        registry.install("c", &v(1), frame(1000), LOADED);
        assert!(registry.is_loaded("a"));
        assert!(!registry.is_loaded("b"));
        assert!(registry.is_loaded("c"));
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.evictions, 1);
        assert_eq!(snapshot.loads, 3);
        assert_eq!(snapshot.used_bytes, 2 * one);
    }

    #[test]
    fn pinned_frames_survive_pressure_and_unpinning_releases_them() {
        let one = frame(1000).estimated_size() as u64;
        let registry = registry(one);
        registry.install(
            "pinned",
            &v(1),
            frame(1000),
            Origin::Loaded { pinned: true },
        );
        registry.install("other", &v(1), frame(1000), LOADED);
        assert!(registry.is_loaded("pinned"));
        assert!(!registry.is_loaded("other"));
        registry.set_pinned("pinned", false);
        // Unpinned, it is an ordinary frame again: the next load evicts it (least recent).
        registry.install("third", &v(1), frame(1000), LOADED);
        assert!(!registry.is_loaded("pinned"));
        assert!(registry.is_loaded("third"));
        assert_eq!(registry.snapshot().used_bytes, one);
    }

    #[test]
    fn a_frame_larger_than_the_budget_is_still_served_but_not_kept() {
        let registry = registry(10);
        let served = registry.install("big", &v(1), frame(1000), LOADED);
        assert_eq!(served.height(), 1000);
        assert!(!registry.is_loaded("big"));
        assert_eq!(registry.snapshot().used_bytes, 0);
    }

    #[test]
    fn readers_keep_the_frame_they_took_across_a_swap() {
        let registry = registry(u64::MAX);
        registry.install("a", &v(1), frame(3), LOADED);
        let before = registry.get("a", &v(1)).unwrap();
        registry.install("a", &v(2), frame(5), Origin::Written);
        assert_eq!(before.height(), 3);
        assert_eq!(registry.get("a", &v(2)).unwrap().height(), 5);
        registry.remove("a");
        assert_eq!(registry.snapshot().used_bytes, 0);
    }

    #[test]
    fn frames_of_older_contents_are_dropped_and_newer_ones_kept() {
        let registry = registry(u64::MAX);
        registry.install("a", &v(1), frame(3), LOADED);
        // Another brain wrote version 2: the lookup misses and the stale frame is gone.
        assert!(registry.get("a", &v(2)).is_none());
        assert!(!registry.is_loaded("a"));
        assert_eq!(registry.snapshot().used_bytes, 0);
        // A reader that resolved version 1 before this brain installed version 2 misses, and
        // its late load of version 1 does not replace version 2.
        registry.install("a", &v(2), frame(5), Origin::Written);
        assert!(registry.get("a", &v(1)).is_none());
        assert_eq!(registry.install("a", &v(1), frame(3), LOADED).height(), 3);
        assert_eq!(registry.get("a", &v(2)).unwrap().height(), 5);
        // A rename: same object, newer version — still a hit.
        let renamed = Contents {
            version: 3,
            key: v(2).key,
        };
        assert_eq!(registry.get("a", &renamed).unwrap().height(), 5);
        assert!(registry.get("a", &v(2)).is_some());
    }
}
