//! KV reuse between turns: the longest common prefix of the cached tokens and the new prompt,
//! and, when reuse is partial, the reason the person sees under the reply.

/// What the single cached sequence belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOwner {
    /// Nothing has run since the model was loaded.
    FreshModel,
    Conversation(i64),
}

pub const REASON_FIRST_TURN: &str = "first turn";
pub const REASON_OTHER_CONVERSATION: &str = "another conversation used the cache";
pub const REASON_TEMPLATE: &str = "the chat template re-rendered earlier turns";
pub const REASON_CONTEXT_FULL: &str = "context full: older turns dropped";
pub const REASON_MODEL_RELOADED: &str = "model reloaded";

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Why a turn could not reuse everything the cache held for its conversation (None when it
/// did). `has_history`: the conversation had messages before this turn.
pub fn recompute_reason(
    owner: CacheOwner,
    conversation_id: i64,
    has_history: bool,
    dropped_messages: usize,
    cached_len: usize,
    reused: usize,
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
    match owner {
        CacheOwner::FreshModel => Some(REASON_MODEL_RELOADED.into()),
        CacheOwner::Conversation(id) if id != conversation_id => {
            Some(REASON_OTHER_CONVERSATION.into())
        }
        CacheOwner::Conversation(_) if reused < cached_len => Some(REASON_TEMPLATE.into()),
        CacheOwner::Conversation(_) => None,
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
        let c = CacheOwner::Conversation(7);
        assert!(
            recompute_reason(c, 7, true, 2, 10, 3)
                .unwrap()
                .starts_with(REASON_CONTEXT_FULL)
        );
        assert_eq!(
            recompute_reason(c, 8, false, 0, 10, 0).as_deref(),
            Some(REASON_FIRST_TURN)
        );
        assert_eq!(
            recompute_reason(CacheOwner::FreshModel, 7, true, 0, 0, 0).as_deref(),
            Some(REASON_MODEL_RELOADED)
        );
        assert_eq!(
            recompute_reason(c, 8, true, 0, 10, 2).as_deref(),
            Some(REASON_OTHER_CONVERSATION)
        );
        assert_eq!(
            recompute_reason(c, 7, true, 0, 10, 9).as_deref(),
            Some(REASON_TEMPLATE)
        );
        assert_eq!(recompute_reason(c, 7, true, 0, 10, 10), None);
    }
}
