//! The cache panel's controls over the engine: clearing a tier or one owner's blocks, and
//! pinning owners.
//!
//! Clearing never deletes a conversation or a document, only cached K/V: the next turn
//! recomputes what is gone. Clearing one owner frees the GPU blocks only it used (blocks
//! another conversation's sequence uses, or another owner also holds, stay), drops its RAM
//! copies the GPU no longer holds, and deletes its disk rows no other owner holds (rows it
//! shared on the GPU with others pass to them first).
//!
//! A pinned conversation's whole blocks are pinned in the GPU pool after each of its turns
//! (the pin grows with it), so pressure from other conversations never evicts them; the
//! pins together may take at most half the pool. A document is pinned while attached
//! anyway (`doc_turn`); pinning it keeps it pinned after it is detached. The set of pinned
//! owners outlives a model load: the app restores it at start from its store.

use crate::kv::{CacheTier, Owner};
use crate::store::kv_blocks::ClearFilter;

use super::super::error::ChatError;
use super::{ChatEngine, LoadedModel, doc_turn};

impl ChatEngine {
    /// Sets the KV cache's element type for the next load (f16: true; f32 holds half the
    /// tokens in the same budget). The disk tier's blocks are per type: the other type's
    /// blocks are simply not found.
    pub fn set_kv_f16(&mut self, f16: bool) {
        self.kv_f16 = f16;
    }

    /// "f16" or "f32": the loaded model's KV cache element type.
    pub fn kv_type(&self) -> Option<&'static str> {
        self.model.as_ref().map(|m| m.kv_type)
    }

    /// Changes the disk tier's budget now (enforced after its next write).
    pub fn set_disk_budget(&mut self, bytes: u64) {
        if let Some(d) = &self.kv_disk {
            d.set_budget(bytes);
        }
    }

    /// Forgets every cached block on every tier (the next turns recompute; their reason is
    /// "model reloaded"). Pins stay wanted and are applied again by the owners' next turns.
    pub fn clear_cache(&mut self) {
        for tier in [CacheTier::Gpu, CacheTier::Ram, CacheTier::Disk] {
            let _ = self.clear_tier(tier);
        }
    }

    /// Empties one tier: the GPU pool's sequences and cached blocks (pins released), the RAM
    /// tier, or the disk tier (every model's blocks, even with no model loaded).
    pub fn clear_tier(&mut self, tier: CacheTier) -> Result<(), ChatError> {
        let out = match (tier, self.model.as_mut()) {
            (CacheTier::Gpu, Some(m)) => {
                for (_, tokens) in m.conversation_pins.drain() {
                    m.sequence.unpin_prefix(&tokens);
                }
                for d in doc_turn::pinned_documents(m) {
                    doc_turn::unpin_document(m, d);
                }
                m.documents = Default::default();
                m.residency.clear(&mut *m.sequence);
                Ok(())
            }
            (CacheTier::Gpu, None) => Ok(()),
            (CacheTier::Ram, Some(m)) => m.sequence.clear_lower(true, false).map_err(Into::into),
            (CacheTier::Ram, None) => Ok(()),
            (CacheTier::Disk, Some(m)) => m.sequence.clear_lower(false, true).map_err(Into::into),
            (CacheTier::Disk, None) => match &self.kv_disk {
                Some(d) => d.clear(ClearFilter::All).map(|_| ()).map_err(Into::into),
                None => Ok(()),
            },
        };
        self.update_kv_held();
        out
    }

    /// Clears one conversation's or document's cached blocks on every tier (see the module
    /// doc); it stays pinned if it was, from its next turn on.
    pub fn clear_owner(&mut self, owner: Owner) -> Result<(), ChatError> {
        let out = match self.model.as_mut() {
            Some(m) => {
                match owner {
                    Owner::Conversation(id) => {
                        if let Some(tokens) = m.conversation_pins.remove(&id) {
                            m.sequence.unpin_prefix(&tokens);
                        }
                        m.residency.release(id, &mut *m.sequence);
                    }
                    Owner::Document(id) => doc_turn::unpin_document(m, id),
                    Owner::Request(_) => {}
                }
                m.sequence.clear_owner(owner).map_err(Into::into)
            }
            None => match &self.kv_disk {
                Some(d) => d
                    .flush()
                    .and_then(|()| d.clear(ClearFilter::SoleOwner(crate::kv::owner_key(owner))))
                    .map(|_| ())
                    .map_err(Into::into),
                None => Ok(()),
            },
        };
        self.update_kv_held();
        out
    }

    /// Frees a deleted document's KV cache (GPU blocks only it used, and its disk rows).
    pub fn forget_document(&mut self, document_id: i64) {
        self.pins.remove(&Owner::Document(document_id));
        if let Some(m) = self.model.as_mut() {
            doc_turn::unpin_document(m, document_id);
            m.sequence.remove_owner(Owner::Document(document_id));
        }
        self.update_kv_held();
    }

    /// Frees a deleted conversation's KV cache.
    pub fn forget_conversation(&mut self, conversation_id: i64) {
        self.pins.remove(&Owner::Conversation(conversation_id));
        if let Some(m) = self.model.as_mut() {
            if let Some(tokens) = m.conversation_pins.remove(&conversation_id) {
                m.sequence.unpin_prefix(&tokens);
            }
            m.residency.forget(conversation_id, &mut *m.sequence);
        }
        self.update_kv_held();
    }

    /// Lets go of a document's pinned prefixes (it was detached from its last conversation),
    /// unless the person pinned it; its blocks stay cached until evicted.
    pub fn unpin_document(&mut self, document_id: i64) {
        if self.pins.contains(&Owner::Document(document_id)) {
            return;
        }
        if let Some(m) = self.model.as_mut() {
            doc_turn::unpin_document(m, document_id);
        }
    }

    /// Replaces the pinned owners (the app's saved pins, at start). Applied as each owner
    /// next runs.
    pub fn set_pins(&mut self, owners: impl IntoIterator<Item = Owner>) {
        self.pins = owners.into_iter().collect();
    }

    /// The pinned owners.
    pub fn pins(&self) -> impl Iterator<Item = Owner> + '_ {
        self.pins.iter().copied()
    }

    pub fn is_pinned(&self, owner: Owner) -> bool {
        self.pins.contains(&owner)
    }

    /// Pins `owner`: a conversation held in the pool is pinned now (refused past the pin
    /// limit), one that is not from its next turn on; a document stays pinned after it is
    /// detached. Returns the tokens pinned now.
    pub fn pin_owner(&mut self, owner: Owner) -> Result<usize, ChatError> {
        let pinned = match (owner, self.model.as_mut()) {
            (Owner::Conversation(id), Some(m)) => pin_conversation(m, id)?,
            _ => 0,
        };
        self.pins.insert(owner);
        self.update_kv_held();
        Ok(pinned)
    }

    /// Unpins `owner`: a conversation's blocks become evictable now; a document's once it is
    /// no longer attached (the caller then calls [`ChatEngine::unpin_document`]).
    pub fn unpin_owner(&mut self, owner: Owner) {
        self.pins.remove(&owner);
        if let (Owner::Conversation(id), Some(m)) = (owner, self.model.as_mut())
            && let Some(tokens) = m.conversation_pins.remove(&id)
        {
            m.sequence.unpin_prefix(&tokens);
        }
    }

    /// Tokens the GPU pool holds in pinned blocks, and the most pins may take.
    pub fn pinned_tokens(&self) -> Option<(usize, usize)> {
        self.model
            .as_ref()
            .map(|m| (m.sequence.pinned_tokens(), pin_limit(m)))
    }
}

/// Pins the whole blocks conversation `id`'s sequence holds (replacing its older, shorter
/// pin); nothing when it holds none. Refused when the pins would pass half the pool.
pub(super) fn pin_conversation(m: &mut LoadedModel, id: i64) -> Result<usize, ChatError> {
    let Some(seq) = m.residency.sequence_of(id) else {
        return Ok(0);
    };
    let current = m.sequence.current();
    if !m.sequence.select(seq) {
        return Ok(0);
    }
    let tokens = m.sequence.tokens();
    m.sequence.select(current);
    let bs = m.sequence.block_size().max(1);
    let old = m
        .conversation_pins
        .get(&id)
        .map_or(0, |t| t.len() / bs * bs);
    let wanted = tokens.len() / bs * bs;
    let pinned = m.sequence.pinned_tokens().saturating_sub(old);
    let limit = pin_limit(m);
    if pinned + wanted > limit {
        return Err(ChatError::PinLimit {
            wanted,
            pinned,
            limit,
        });
    }
    if let Some(old) = m.conversation_pins.remove(&id) {
        m.sequence.unpin_prefix(&old);
    }
    let n = m.sequence.pin_prefix(&tokens);
    m.conversation_pins.insert(id, tokens);
    Ok(n)
}

/// The most tokens pins may take: half the pool, and never so much that a turn of a whole
/// context finds no room (a pool of one context allows no pins).
fn pin_limit(m: &LoadedModel) -> usize {
    let capacity = m.sequence.capacity_tokens();
    (capacity / 2).min(capacity.saturating_sub(m.sequence.max_ctx()))
}
