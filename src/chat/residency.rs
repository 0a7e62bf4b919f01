//! Which conversations keep their KV cache between turns. Each conversation that has run since
//! the model was loaded owns a sequence in the paged pool, with a mirror of the tokens it holds;
//! the pool's blocks are shared by all of them (most conversations are far shorter than the
//! context). When a turn needs more room than is free, the least recently used other
//! conversations are evicted, and a later turn of theirs says why it recomputed.

use std::collections::{HashMap, HashSet};

use crate::kv::SeqId;

use super::sequence::SequenceModel;

/// A conversation's sequence in the pool and the tokens it holds, token for token.
#[derive(Debug)]
struct Resident {
    seq: SeqId,
    tokens: Vec<u32>,
    last_used: u64,
}

/// How a turn found its conversation's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Its sequence was still in the pool.
    Resident,
    /// Its sequence was evicted to make room for another conversation.
    Evicted,
    /// It has not run since the model was loaded (or the cache was cleared).
    New,
}

#[derive(Debug, Default)]
pub struct Residency {
    by_conversation: HashMap<i64, Resident>,
    evicted: HashSet<i64>,
    clock: u64,
}

impl Residency {
    /// Makes `conversation`'s sequence current (creating one, evicting the least recently used
    /// other conversation when every slot is taken) and returns the tokens it holds, to be
    /// kept up to date by the caller and given back with [`Residency::check_in`].
    pub fn check_out(
        &mut self,
        conversation: i64,
        model: &mut dyn SequenceModel,
    ) -> (Vec<u32>, Arrival) {
        self.clock += 1;
        if let Some(r) = self.by_conversation.get_mut(&conversation) {
            if model.select(r.seq) {
                r.last_used = self.clock;
                return (std::mem::take(&mut r.tokens), Arrival::Resident);
            }
            self.by_conversation.remove(&conversation);
        }
        let arrival = if self.evicted.remove(&conversation) {
            Arrival::Evicted
        } else {
            Arrival::New
        };
        let current = model.current();
        let seq = if !self.owns(current) {
            // The sequence the model was loaded with, or one emptied by `release`.
            current
        } else {
            loop {
                if let Some(seq) = model.new_sequence() {
                    break seq;
                }
                if !self.evict_oldest(conversation, model) {
                    // No slot and nobody else to evict: take over the current sequence.
                    self.by_conversation.retain(|_, r| r.seq != current);
                    break current;
                }
                if !self.owns(model.current()) {
                    break model.current();
                }
            }
        };
        model.select(seq);
        model.truncate(0);
        self.by_conversation.insert(
            conversation,
            Resident {
                seq,
                tokens: Vec::new(),
                last_used: self.clock,
            },
        );
        (Vec::new(), arrival)
    }

    /// Gives back the tokens [`Residency::check_out`] lent (what the sequence holds now).
    pub fn check_in(&mut self, conversation: i64, tokens: Vec<u32>) {
        if let Some(r) = self.by_conversation.get_mut(&conversation) {
            r.tokens = tokens;
        }
    }

    /// Evicts other conversations, least recently used first, until `needed` tokens of the
    /// pool are free or only `keep` is left.
    pub fn make_room(&mut self, keep: i64, needed: usize, model: &mut dyn SequenceModel) {
        while model.free_tokens() < needed && self.evict_oldest(keep, model) {}
    }

    /// Frees `conversation`'s sequence (it was deleted). The current sequence stays allocated
    /// but empty.
    pub fn forget(&mut self, conversation: i64, model: &mut dyn SequenceModel) {
        self.evicted.remove(&conversation);
        if let Some(r) = self.by_conversation.remove(&conversation) {
            release(r.seq, model);
        }
    }

    /// Frees every conversation's sequence (the next turns say "model reloaded").
    pub fn clear(&mut self, model: &mut dyn SequenceModel) {
        for (_, r) in self.by_conversation.drain() {
            release(r.seq, model);
        }
        self.evicted.clear();
    }

    /// Tokens held for all conversations.
    pub fn tokens_held(&self) -> usize {
        self.by_conversation.values().map(|r| r.tokens.len()).sum()
    }

    /// Conversations whose cache is in the pool.
    pub fn resident(&self) -> usize {
        self.by_conversation.len()
    }

    fn evict_oldest(&mut self, keep: i64, model: &mut dyn SequenceModel) -> bool {
        let Some((&id, _)) = self
            .by_conversation
            .iter()
            .filter(|(id, _)| **id != keep)
            .min_by_key(|(_, r)| r.last_used)
        else {
            return false;
        };
        if let Some(r) = self.by_conversation.remove(&id) {
            release(r.seq, model);
        }
        self.evicted.insert(id);
        true
    }

    fn owns(&self, seq: SeqId) -> bool {
        self.by_conversation.values().any(|r| r.seq == seq)
    }
}

/// Frees `seq`, or empties it when it is the current one (which cannot be freed; the next
/// conversation to arrive takes it over).
fn release(seq: SeqId, model: &mut dyn SequenceModel) {
    if model.current() == seq {
        model.truncate(0);
    } else {
        model.free(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gpu_forward::GpuForwardError;

    /// Sequences as lengths in `slots`; the pool holds `capacity` tokens (1-token blocks).
    struct Fake {
        slots: Vec<Option<usize>>,
        current: SeqId,
        capacity: usize,
    }

    impl Fake {
        fn new(slots: usize, capacity: usize) -> Fake {
            let mut s = vec![None; slots];
            s[0] = Some(0);
            Fake {
                slots: s,
                current: 0,
                capacity,
            }
        }
        fn live(&self) -> usize {
            self.slots.iter().flatten().count()
        }
    }

    impl SequenceModel for Fake {
        fn current(&self) -> SeqId {
            self.current
        }
        fn new_sequence(&mut self) -> Option<SeqId> {
            let free = self.slots.iter().position(Option::is_none)?;
            self.slots[free] = Some(0);
            Some(free)
        }
        fn select(&mut self, s: SeqId) -> bool {
            let ok = self.slots.get(s).is_some_and(Option::is_some);
            if ok {
                self.current = s;
            }
            ok
        }
        fn free(&mut self, s: SeqId) {
            assert_ne!(s, self.current, "the current sequence is never freed");
            self.slots[s] = None;
        }
        fn free_tokens(&self) -> usize {
            self.capacity - self.slots.iter().flatten().sum::<usize>()
        }
        fn len(&self) -> usize {
            self.slots[self.current].unwrap()
        }
        fn truncate(&mut self, len: usize) {
            let l = self.slots[self.current].as_mut().unwrap();
            *l = (*l).min(len);
        }
        fn max_batch(&self) -> usize {
            64
        }
        fn max_ctx(&self) -> usize {
            self.capacity
        }
        fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
            *self.slots[self.current].as_mut().unwrap() += tokens.len();
            Ok(Vec::new())
        }
    }

    /// Runs a turn of `n` new tokens for `conversation`, as the engine does.
    fn run(r: &mut Residency, m: &mut Fake, conversation: i64, n: usize) -> Arrival {
        let (mut tokens, arrival) = r.check_out(conversation, m);
        r.make_room(conversation, n, m);
        m.step_last(&vec![1; n]).unwrap();
        tokens.extend(std::iter::repeat_n(1, n));
        r.check_in(conversation, tokens);
        arrival
    }

    #[test]
    fn conversations_stay_until_the_slots_run_out_then_the_oldest_goes() {
        let (mut r, mut m) = (Residency::default(), Fake::new(2, 100));
        assert_eq!(run(&mut r, &mut m, 1, 10), Arrival::New);
        assert_eq!(
            m.current, 0,
            "the first conversation takes the loaded sequence"
        );
        assert_eq!(run(&mut r, &mut m, 2, 10), Arrival::New);
        assert_eq!(run(&mut r, &mut m, 1, 5), Arrival::Resident);
        assert_eq!(r.tokens_held(), 25);
        // A third conversation: two slots, so the least recently used (2) goes.
        assert_eq!(run(&mut r, &mut m, 3, 5), Arrival::New);
        assert_eq!(r.resident(), 2);
        assert_eq!(run(&mut r, &mut m, 2, 5), Arrival::Evicted);
        // That evicted 1 (last used before 3).
        assert_eq!(run(&mut r, &mut m, 3, 1), Arrival::Resident);
        assert_eq!(run(&mut r, &mut m, 1, 1), Arrival::Evicted);
        assert_eq!(m.live(), 2);
    }

    #[test]
    fn a_turn_needing_room_evicts_others_but_never_itself() {
        let (mut r, mut m) = (Residency::default(), Fake::new(4, 100));
        run(&mut r, &mut m, 1, 40);
        run(&mut r, &mut m, 2, 40);
        run(&mut r, &mut m, 3, 10);
        assert_eq!(m.free_tokens(), 10);
        // Conversation 3 needs 50 more: 1 (oldest) goes, which is enough.
        assert_eq!(run(&mut r, &mut m, 3, 50), Arrival::Resident);
        assert_eq!(r.resident(), 2);
        assert_eq!(run(&mut r, &mut m, 1, 1), Arrival::Evicted);
        // Wanting more than the whole pool leaves only the asking conversation.
        r.make_room(1, 1000, &mut m);
        assert_eq!(r.resident(), 1);
    }

    #[test]
    fn forget_and_clear_release_the_sequences() {
        let (mut r, mut m) = (Residency::default(), Fake::new(3, 100));
        run(&mut r, &mut m, 1, 10);
        run(&mut r, &mut m, 2, 10);
        r.forget(1, &mut m);
        assert_eq!(r.resident(), 1);
        assert_eq!(m.free_tokens(), 90);
        // Forgetting the current conversation empties its sequence for the next one to take.
        r.forget(2, &mut m);
        assert_eq!(m.free_tokens(), 100);
        assert_eq!(run(&mut r, &mut m, 3, 5), Arrival::New);
        assert_eq!(
            m.live(),
            1,
            "no slot leaked: 3 took over the emptied current sequence"
        );
        run(&mut r, &mut m, 4, 5);
        assert_eq!(m.live(), 2);
        r.clear(&mut m);
        assert_eq!(
            (r.resident(), r.tokens_held(), m.free_tokens()),
            (0, 0, 100)
        );
        assert_eq!(
            run(&mut r, &mut m, 4, 1),
            Arrival::New,
            "cleared, not evicted"
        );
    }
}
