//! KV reuse between turns: the longest common prefix of the cached tokens and the new prompt,
//! and, when reuse is partial, the reason the person sees under the reply.

use super::residency::Arrival;

pub const REASON_FIRST_TURN: &str = "first turn";
pub const REASON_EVICTED: &str = "its cache was freed to make room for another conversation";
pub const REASON_TEMPLATE: &str = "the chat template re-rendered earlier turns";
pub const REASON_CONTEXT_FULL: &str = "context full: older turns dropped";
pub const REASON_MODEL_RELOADED: &str = "model reloaded";

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Why a turn could not reuse everything the cache held for its conversation (None when it
/// did). `has_history`: the conversation had messages before this turn; `history_len`: the
/// exact ids of that history, when the prompt extends them, and the block size: reusing all
/// its whole blocks — from any tier, after a restart too — needs no reason (only whole
/// blocks are shared and persisted; the open last one is recomputed).
pub fn recompute_reason(
    arrival: Arrival,
    has_history: bool,
    dropped_messages: usize,
    cached_len: usize,
    reused: usize,
    history_len: Option<(usize, usize)>,
) -> Option<String> {
    if dropped_messages > 0 {
        let s = if dropped_messages == 1 { "" } else { "s" };
        return Some(format!(
            "{REASON_CONTEXT_FULL} ({dropped_messages} message{s})"
        ));
    }
    if !has_history {
        return Some(REASON_FIRST_TURN.into());
    }
    if history_len.is_some_and(|(n, block)| reused + 1 >= n / block.max(1) * block) {
        return None;
    }
    match arrival {
        Arrival::New => Some(REASON_MODEL_RELOADED.into()),
        Arrival::Evicted => Some(REASON_EVICTED.into()),
        Arrival::Resident if reused < cached_len => Some(REASON_TEMPLATE.into()),
        Arrival::Resident => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_stops_at_the_first_difference() {
        assert_eq!(common_prefix(&[1, 2, 3, 4], &[1, 2, 9]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
    }

    #[test]
    fn reasons_in_order_of_precedence() {
        let r = Arrival::Resident;
        assert!(
            recompute_reason(r, true, 2, 10, 3, None)
                .unwrap()
                .starts_with(REASON_CONTEXT_FULL)
        );
        assert_eq!(
            recompute_reason(Arrival::New, false, 0, 0, 0, None).as_deref(),
            Some(REASON_FIRST_TURN)
        );
        assert_eq!(
            recompute_reason(Arrival::New, true, 0, 0, 0, None).as_deref(),
            Some(REASON_MODEL_RELOADED)
        );
        assert_eq!(
            recompute_reason(Arrival::Evicted, true, 0, 0, 2, None).as_deref(),
            Some(REASON_EVICTED)
        );
        assert_eq!(
            recompute_reason(r, true, 0, 10, 9, None).as_deref(),
            Some(REASON_TEMPLATE)
        );
        assert_eq!(recompute_reason(r, true, 0, 10, 10, None), None);
        assert_eq!(
            recompute_reason(Arrival::New, true, 0, 0, 48, Some((60, 16))),
            None,
            "a restored history needs no reason"
        );
        assert!(recompute_reason(Arrival::New, true, 0, 0, 32, Some((60, 16))).is_some());
    }
}
