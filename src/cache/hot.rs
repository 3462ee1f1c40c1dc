//! Parsed answers of recently served entries, in memory, bounded by their stored size.
//!
//! An exact hit then costs a catalog lookup and a clone, with no thread hop to read redb and no
//! JSON parse. Entries are keyed by id; ids are never reused within a process, and a deleted or
//! expired entry is no longer found by the catalog, so a stale answer here is never served (it
//! ages out, and a purge clears the tier).

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::chat::ChatResponse;

/// Bytes of stored JSON kept parsed in memory.
pub const HOT_BYTES: u64 = 64 << 20;
/// Answers the tier is sized for (a hint, not a limit).
const HOT_ITEMS_HINT: usize = 16_384;

/// (stored JSON size, parsed answer)
type Slot = (u64, Arc<ChatResponse>);

#[derive(Clone)]
struct BySize;

impl Weighter<u64, Slot> for BySize {
    fn weight(&self, _id: &u64, slot: &Slot) -> u64 {
        slot.0.max(1)
    }
}

pub struct Hot {
    answers: Cache<u64, Slot, BySize>,
}

impl Default for Hot {
    fn default() -> Self {
        Hot {
            answers: Cache::with_weighter(HOT_ITEMS_HINT, HOT_BYTES, BySize),
        }
    }
}

impl Hot {
    pub fn get(&self, id: u64) -> Option<Arc<ChatResponse>> {
        self.answers.get(&id).map(|(_, r)| r)
    }

    pub fn put(&self, id: u64, stored_len: usize, response: Arc<ChatResponse>) {
        self.answers.insert(id, (stored_len as u64, response));
    }

    pub fn clear(&self) {
        self.answers.clear();
    }
}
