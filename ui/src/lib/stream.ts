// Assembles one streaming reply from the ChatEvents of `send_message`, and batches token
// updates to animation frames so the page re-renders at most once per frame.
import type { ChatEvent, Message } from './types';

export type StreamPhase = 'waiting' | 'prefill' | 'generating' | 'done' | 'error';

export interface StreamState {
  phase: StreamPhase;
  /** The user's message as saved by the backend (from `started`). */
  userMessage: Message | null;
  promptTokens: number;
  reusedTokens: number;
  /** Progress while a long prompt is computed. */
  prefill: { done: number; total: number } | null;
  /** Reply text streamed so far. */
  text: string;
  tokenCount: number;
  /** The saved assistant message with stats (from `done`). */
  final: Message | null;
  error: string | null;
}

export function initialStream(): StreamState {
  return {
    phase: 'waiting',
    userMessage: null,
    promptTokens: 0,
    reusedTokens: 0,
    prefill: null,
    text: '',
    tokenCount: 0,
    final: null,
    error: null,
  };
}

/** Pure reducer: the state after `event`. Events after `done`/`error` are ignored. */
export function applyChatEvent(state: StreamState, event: ChatEvent): StreamState {
  if (state.phase === 'done' || state.phase === 'error') return state;
  switch (event.type) {
    case 'started':
      return {
        ...state,
        userMessage: event.userMessage,
        promptTokens: event.promptTokens,
        reusedTokens: event.reusedTokens,
      };
    case 'prefill':
      return { ...state, phase: 'prefill', prefill: { done: event.done, total: event.total } };
    case 'token':
      return {
        ...state,
        phase: 'generating',
        prefill: null,
        text: state.text + event.text,
        tokenCount: state.tokenCount + 1,
      };
    case 'done':
      return { ...state, phase: 'done', prefill: null, final: event.message, text: event.message.content };
    case 'error':
      return { ...state, phase: 'error', prefill: null, error: event.message };
    default:
      return state;
  }
}

/** Prefill progress as a fraction in [0, 1], or null when no prefill is running. */
export function prefillFraction(state: StreamState): number | null {
  if (!state.prefill) return null;
  const { done, total } = state.prefill;
  if (!(total > 0)) return 0;
  return Math.min(1, Math.max(0, done / total));
}

type Scheduler = (flush: () => void) => void;

const frameScheduler: Scheduler = (flush) => {
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => flush());
  else setTimeout(flush, 16);
};

/**
 * Applies events as they arrive but publishes the state at most once per frame; terminal events
 * (`done`, `error`) publish at once so stats and errors never wait on a frame.
 */
export class StreamBatcher {
  private state = initialStream();
  private pending = false;

  constructor(
    private readonly publish: (state: StreamState) => void,
    private readonly schedule: Scheduler = frameScheduler,
  ) {}

  get current(): StreamState {
    return this.state;
  }

  push(event: ChatEvent): void {
    this.state = applyChatEvent(this.state, event);
    if (event.type === 'done' || event.type === 'error' || event.type === 'started') {
      this.pending = false;
      this.publish(this.state);
      return;
    }
    if (this.pending) return;
    this.pending = true;
    this.schedule(() => {
      if (!this.pending) return;
      this.pending = false;
      this.publish(this.state);
    });
  }

  /** Publishes whatever is pending now (e.g. when the command resolves). */
  flush(): void {
    this.pending = false;
    this.publish(this.state);
  }
}
