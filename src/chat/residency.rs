//! Which conversations hold a live sequence in the KV pool between turns. A held sequence
//! keeps every token of the conversation, its open last block included; the pool's prefix
//! index keeps the full blocks of every sequence ever run, held or not. A turn takes the
//! better of the two: its own sequence's common prefix with the new prompt, or the longest
//! prefix the index has (computed by any conversation — a shared system prompt, or its own
//! blocks after its sequence was let go). When a turn needs room, the least recently used
//! other conversations let their sequences go (their full blocks stay cached until evicted).

use std::collections::{HashMap, HashSet};

use crate::kv::{Found, Owner, SeqId};

use super::reuse::common_prefix;
use super::sequence::SequenceModel;

#[derive(Debug)]
struct Resident {
    seq: SeqId,
    last_used: u64,
}

/// How a turn found its conversation's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Its sequence was still in the pool.
    Resident,
    /// Its sequence was let go to make room for another conversation.
    Evicted,
    /// It has not run since the model was loaded (or the cache was cleared).
    New,
}

/// What [`Residency::check_out`] found for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkout {
    pub arrival: Arrival,
    /// Tokens the conversation's own sequence held before this turn (0 when not resident).
    pub held: usize,
    /// Tokens of the new prompt the current sequence now holds (own or from the index).
    pub reused: usize,
    /// Where the acquired part came from (all GPU when the own sequence was kept).
    pub found: Found,
}

/// Every slot is taken by the asking conversation itself (cannot happen with ≥ 1 slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSlot;

/// A conversation id no conversation has: `make_room` for work that belongs to none.
pub const NO_CONVERSATION: i64 = i64::MIN;

#[derive(Debug, Default)]
pub struct Residency {
    by_conversation: HashMap<i64, Resident>,
    evicted: HashSet<i64>,
    clock: u64,
}

impl Residency {
    /// Makes current a sequence holding the longest available prefix of `tokens` for
    /// `conversation`, and says where it came from. The sequence is the conversation's from
    /// then on.
    pub fn check_out(
        &mut self,
        conversation: i64,
        tokens: &[u32],
        model: &mut dyn SequenceModel,
    ) -> Result<Checkout, NoSlot> {
        self.clock += 1;
        if let Some(r) = self.by_conversation.get_mut(&conversation) {
            if model.select(r.seq) {
                r.last_used = self.clock;
                let own = model.tokens();
                let keep = common_prefix(&own, tokens);
                // Whole blocks only: the index cannot beat a keep within the last block.
                if keep + model.block_size() > tokens.len() || keep >= model.cached_prefix(tokens) {
                    model.truncate(keep);
                    return Ok(Checkout {
                        arrival: Arrival::Resident,
                        held: own.len(),
                        reused: keep,
                        found: Found {
                            gpu: keep,
                            ..Found::default()
                        },
                    });
                }
                // The index has more (the template re-rendered history, say): start over
                // from it. Letting our sequence go first keeps its blocks cached.
                let seq = r.seq;
                self.by_conversation.remove(&conversation);
                model.free(seq);
                let found = self.acquire(conversation, tokens, model)?;
                return Ok(Checkout {
                    arrival: Arrival::Resident,
                    held: own.len(),
                    reused: found.total(),
                    found,
                });
            }
            self.by_conversation.remove(&conversation);
        }
        let arrival = if self.evicted.remove(&conversation) {
            Arrival::Evicted
        } else {
            Arrival::New
        };
        // The sequence the model was loaded with, or one nobody owns any more.
        let current = model.current();
        if !self.owns(current) {
            model.free(current);
        }
        // Room for the prompt first, so blocks found in RAM or on disk can be uploaded.
        self.make_room(conversation, tokens.len(), model);
        let found = self.acquire(conversation, tokens, model)?;
        Ok(Checkout {
            arrival,
            held: 0,
            reused: found.total(),
            found,
        })
    }

    fn acquire(
        &mut self,
        conversation: i64,
        tokens: &[u32],
        model: &mut dyn SequenceModel,
    ) -> Result<Found, NoSlot> {
        let (seq, found) = loop {
            if let Some(got) = model.acquire(tokens) {
                break got;
            }
            if !self.evict_oldest(conversation, model) {
                return Err(NoSlot);
            }
        };
        model.set_owner(Owner::Conversation(conversation));
        self.by_conversation.insert(
            conversation,
            Resident {
                seq,
                last_used: self.clock,
            },
        );
        Ok(found)
    }

    /// A new sequence holding the longest cached prefix of `tokens` that belongs to no
    /// conversation (a document's prefix being encoded; the caller frees it), letting the
    /// least recently used conversations' sequences go while no slot is free.
    pub fn acquire_detached(
        &mut self,
        tokens: &[u32],
        model: &mut dyn SequenceModel,
    ) -> Result<(SeqId, Found), NoSlot> {
        loop {
            if let Some(got) = model.acquire(tokens) {
                return Ok(got);
            }
            if !self.evict_oldest(NO_CONVERSATION, model) {
                return Err(NoSlot);
            }
        }
    }

    /// Lets other conversations' sequences go, least recently used first, until `needed`
    /// tokens of the pool are free or only `keep` is left.
    pub fn make_room(&mut self, keep: i64, needed: usize, model: &mut dyn SequenceModel) {
        while model.free_tokens() < needed && self.evict_oldest(keep, model) {}
    }

    /// Frees `conversation`'s sequence and the cached blocks only it used (it was deleted).
    pub fn forget(&mut self, conversation: i64, model: &mut dyn SequenceModel) {
        self.evicted.remove(&conversation);
        if let Some(r) = self.by_conversation.remove(&conversation) {
            model.free(r.seq);
        }
        model.remove_owner(Owner::Conversation(conversation));
    }

    /// Lets `conversation`'s sequence go without a trace (its cache is being cleared): its
    /// next turn arrives as new.
    pub fn release(&mut self, conversation: i64, model: &mut dyn SequenceModel) {
        self.evicted.remove(&conversation);
        if let Some(r) = self.by_conversation.remove(&conversation) {
            model.free(r.seq);
        }
    }

    /// The sequence `conversation` holds, if any.
    pub fn sequence_of(&self, conversation: i64) -> Option<SeqId> {
        self.by_conversation.get(&conversation).map(|r| r.seq)
    }

    /// Frees every conversation's sequence and forgets every cached block (the next turns
    /// say "model reloaded").
    pub fn clear(&mut self, model: &mut dyn SequenceModel) {
        for (_, r) in self.by_conversation.drain() {
            model.free(r.seq);
        }
        model.drop_cached();
        self.evicted.clear();
    }

    /// Conversations holding a sequence.
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
            model.free(r.seq);
        }
        self.evicted.insert(id);
        true
    }

    fn owns(&self, seq: SeqId) -> bool {
        self.by_conversation.values().any(|r| r.seq == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gpu_forward::GpuForwardError;

    /// Sequences as token lists in `slots`; the pool holds `capacity` tokens; "the index"
    /// is every prefix any sequence ever held, in whole blocks of 4.
    struct Fake {
        slots: Vec<Option<Vec<u32>>>,
        current: SeqId,
        capacity: usize,
        seen: Vec<Vec<u32>>,
    }

    const BS: usize = 4;

    impl Fake {
        fn new(slots: usize, capacity: usize) -> Fake {
            let mut s = vec![None; slots];
            s[0] = Some(Vec::new());
            Fake {
                slots: s,
                current: 0,
                capacity,
                seen: Vec::new(),
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
            self.slots[free] = Some(Vec::new());
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
            if let Some(t) = self.slots[s].take() {
                self.seen.push(t);
            }
        }
        fn acquire(&mut self, tokens: &[u32]) -> Option<(SeqId, Found)> {
            let n = self.cached_prefix(tokens);
            let s = self.new_sequence()?;
            self.slots[s] = Some(tokens[..n].to_vec());
            self.current = s;
            Some((
                s,
                Found {
                    gpu: n,
                    ..Found::default()
                },
            ))
        }
        fn persist(&mut self) {}
        fn cached_prefix(&self, tokens: &[u32]) -> usize {
            let live = self.slots.iter().flatten();
            self.seen
                .iter()
                .chain(live)
                .map(|t| common_prefix(t, tokens) / BS * BS)
                .max()
                .unwrap_or(0)
        }
        fn tokens(&self) -> Vec<u32> {
            self.slots[self.current].clone().unwrap_or_default()
        }
        fn tokens_held(&self) -> usize {
            self.slots.iter().flatten().map(Vec::len).sum()
        }
        fn drop_cached(&mut self) {
            self.seen.clear();
        }
        fn blocks_held(&self) -> (u64, u64) {
            (self.tokens_held().div_ceil(BS) as u64, 1)
        }
        fn set_owner(&mut self, _: Owner) {}
        fn remove_owner(&mut self, _: Owner) {}
        fn free_tokens(&self) -> usize {
            self.capacity - self.slots.iter().flatten().map(Vec::len).sum::<usize>()
        }
        fn len(&self) -> usize {
            self.slots[self.current].as_ref().map_or(0, Vec::len)
        }
        fn truncate(&mut self, len: usize) {
            if let Some(t) = self.slots[self.current].as_mut() {
                t.truncate(len);
            }
        }
        fn max_batch(&self) -> usize {
            64
        }
        fn block_size(&self) -> usize {
            BS
        }
        fn max_ctx(&self) -> usize {
            self.capacity
        }
        fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
            self.slots[self.current]
                .as_mut()
                .unwrap()
                .extend_from_slice(tokens);
            Ok(Vec::new())
        }
    }

    /// Runs a turn whose whole prompt is `prompt`, as the engine does; returns what
    /// check_out found.
    fn run(r: &mut Residency, m: &mut Fake, conversation: i64, prompt: &[u32]) -> Checkout {
        let c = r.check_out(conversation, prompt, m).unwrap();
        let keep = c.reused.min(prompt.len() - 1);
        m.truncate(keep);
        r.make_room(conversation, prompt.len() - keep, m);
        m.step_last(&prompt[keep..]).unwrap();
        c
    }

    fn toks(range: std::ops::Range<u32>) -> Vec<u32> {
        range.collect()
    }

    #[test]
    fn a_conversation_keeps_its_sequence_and_reuses_all_of_it() {
        let (mut r, mut m) = (Residency::default(), Fake::new(2, 100));
        let first = toks(0..10);
        assert_eq!(run(&mut r, &mut m, 1, &first).arrival, Arrival::New);
        let second = toks(0..17);
        let c = run(&mut r, &mut m, 1, &second);
        assert_eq!(
            (c.arrival, c.held, c.reused),
            (Arrival::Resident, 10, 10),
            "the open last block is kept too"
        );
    }

    #[test]
    fn a_new_conversation_shares_another_ones_prefix_through_the_index() {
        let (mut r, mut m) = (Residency::default(), Fake::new(3, 100));
        run(&mut r, &mut m, 1, &toks(0..10));
        let mut other = toks(0..9);
        other.extend([99, 98, 97]);
        let c = run(&mut r, &mut m, 2, &other);
        assert_eq!((c.arrival, c.reused), (Arrival::New, 8), "two whole blocks");
        assert_eq!(m.live(), 2, "the load-time sequence was taken over");
    }

    #[test]
    fn when_slots_run_out_the_least_recently_used_goes_and_keeps_its_blocks_cached() {
        let (mut r, mut m) = (Residency::default(), Fake::new(2, 100));
        run(&mut r, &mut m, 1, &toks(0..10));
        run(&mut r, &mut m, 2, &toks(100..110));
        run(&mut r, &mut m, 1, &toks(0..12));
        // A third conversation: two slots, so the least recently used (2) goes.
        run(&mut r, &mut m, 3, &toks(200..205));
        assert_eq!(r.resident(), 2);
        let c = run(&mut r, &mut m, 2, &toks(100..115));
        assert_eq!(c.arrival, Arrival::Evicted);
        assert_eq!(c.reused, 8, "its full blocks were still in the index");
    }

    #[test]
    fn a_turn_needing_room_lets_others_go_but_never_itself() {
        let (mut r, mut m) = (Residency::default(), Fake::new(4, 100));
        run(&mut r, &mut m, 1, &toks(0..40));
        run(&mut r, &mut m, 2, &toks(100..140));
        run(&mut r, &mut m, 3, &toks(200..210));
        assert_eq!(m.free_tokens(), 10);
        run(&mut r, &mut m, 3, &toks(200..260));
        assert_eq!(r.resident(), 2, "1 (least recent) made room");
        r.make_room(3, 1000, &mut m);
        assert_eq!(r.resident(), 1);
    }

    #[test]
    fn forget_and_clear_release_the_sequences() {
        let (mut r, mut m) = (Residency::default(), Fake::new(3, 100));
        run(&mut r, &mut m, 1, &toks(0..10));
        run(&mut r, &mut m, 2, &toks(50..60));
        r.forget(1, &mut m);
        assert_eq!((r.resident(), m.live()), (1, 1));
        r.forget(2, &mut m);
        assert_eq!(m.live(), 0);
        assert_eq!(run(&mut r, &mut m, 3, &toks(0..5)).arrival, Arrival::New);
        run(&mut r, &mut m, 4, &toks(70..75));
        r.clear(&mut m);
        assert_eq!((r.resident(), m.live()), (0, 0));
        assert_eq!(
            run(&mut r, &mut m, 4, &toks(70..76)).arrival,
            Arrival::New,
            "cleared, not evicted"
        );
    }
}
