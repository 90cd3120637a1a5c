//! The exchanges an executor that lives outside the wasm (the JS loop) is stepping, by id.

use std::collections::HashMap;

use super::Exchange;

/// An exchange still held this long after its brain deadline was abandoned: its request was
/// cancelled mid-step (workerd drops a cancelled request's promises, so the executor's
/// `finally` that would end it never runs).
pub const ABANDONED_AFTER_MS: u64 = 5 * 60 * 1000;
/// Abandoned exchanges are looked for once this many are held.
pub const SWEEP_ABOVE: usize = 256;

/// Exchanges in flight by id. Bounded: once [`SWEEP_ABOVE`] are held, each new one first drops
/// those abandoned ([`ABANDONED_AFTER_MS`] past their deadline).
#[derive(Debug, Default)]
pub struct ExchangeSlab {
    next_id: u32,
    by_id: HashMap<u32, Exchange>,
}

impl ExchangeSlab {
    /// Holds `exchange` under a new id.
    pub fn insert(&mut self, exchange: Exchange, now_ms: u64) -> u32 {
        if self.by_id.len() >= SWEEP_ABOVE {
            self.by_id
                .retain(|_, held| held.deadline_ms().saturating_add(ABANDONED_AFTER_MS) > now_ms);
        }
        // Ids wrap after 2^32 exchanges; one still held under the next id is never replaced.
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if !self.by_id.contains_key(&self.next_id) {
                break;
            }
        }
        self.by_id.insert(self.next_id, exchange);
        self.next_id
    }

    /// Takes exchange `id` out to step it (put it back with [`ExchangeSlab::put_back`]).
    pub fn take(&mut self, id: u32) -> Option<Exchange> {
        self.by_id.remove(&id)
    }

    pub fn put_back(&mut self, id: u32, exchange: Exchange) {
        self.by_id.insert(id, exchange);
    }

    /// Forgets exchange `id` (its executor is done with it).
    pub fn end(&mut self, id: u32) {
        self.by_id.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
