import { describe, expect, it } from 'vitest';
import { applyChatEvent, initialStream, prefillFraction, StreamBatcher, type StreamState } from './stream';
import type { ChatEvent, Message } from './types';

const user: Message = { id: 10, conversationId: 1, role: 'user', content: 'Once upon a time', createdAt: '2025-01-01T00:00:00Z' };
const reply: Message = {
  id: 11,
  conversationId: 1,
  role: 'assistant',
  content: 'there was a cat.',
  createdAt: '2025-01-01T00:00:01Z',
  stats: { promptTokens: 20, reusedTokens: 0, computedTokens: 20, generatedTokens: 5, ttftMs: 12, decodeTokS: 80, stopReason: 'eog' },
};

function run(events: ChatEvent[]): StreamState {
  return events.reduce(applyChatEvent, initialStream());
}

describe('applyChatEvent', () => {
  it('assembles tokens in order and ends with the saved message', () => {
    const s1 = run([
      { type: 'started', userMessage: user, promptTokens: 20, reusedTokens: 0 },
      { type: 'prefill', done: 8, total: 20 },
    ]);
    expect(s1.phase).toBe('prefill');
    expect(prefillFraction(s1)).toBeCloseTo(0.4);
    expect(s1.userMessage).toEqual(user);

    const s2 = [
      { type: 'token', text: ' there' },
      { type: 'token', text: ' was' },
      { type: 'token', text: ' a cat' },
    ].reduce((s, e) => applyChatEvent(s, e as ChatEvent), s1);
    expect(s2.phase).toBe('generating');
    expect(s2.prefill).toBeNull();
    expect(prefillFraction(s2)).toBeNull();
    expect(s2.text).toBe(' there was a cat');
    expect(s2.tokenCount).toBe(3);

    const s3 = applyChatEvent(s2, { type: 'done', message: reply });
    expect(s3.phase).toBe('done');
    expect(s3.final).toEqual(reply);
    expect(s3.text).toBe(reply.content);
  });

  it('keeps the partial text on error and ignores later events', () => {
    const s = run([
      { type: 'started', userMessage: user, promptTokens: 3, reusedTokens: 1 },
      { type: 'token', text: 'Hel' },
      { type: 'error', message: 'the GPU device was lost' },
      { type: 'token', text: 'lo' },
      { type: 'done', message: reply },
    ]);
    expect(s.phase).toBe('error');
    expect(s.error).toBe('the GPU device was lost');
    expect(s.text).toBe('Hel');
    expect(s.final).toBeNull();
  });

  it('reports a zero-length prefill as 0 and clamps overshoot', () => {
    expect(prefillFraction(run([{ type: 'prefill', done: 0, total: 0 }]))).toBe(0);
    expect(prefillFraction(run([{ type: 'prefill', done: 30, total: 20 }]))).toBe(1);
  });
});

describe('StreamBatcher', () => {
  it('publishes tokens at most once per frame and terminal events at once', () => {
    const frames: (() => void)[] = [];
    const published: StreamState[] = [];
    const b = new StreamBatcher((s) => published.push(s), (f) => frames.push(f));

    b.push({ type: 'started', userMessage: user, promptTokens: 3, reusedTokens: 0 });
    expect(published).toHaveLength(1);
    for (const t of ['a', 'b', 'c', 'd']) b.push({ type: 'token', text: t });
    expect(published).toHaveLength(1);
    expect(frames).toHaveLength(1);
    frames[0]();
    expect(published).toHaveLength(2);
    expect(published[1].text).toBe('abcd');

    b.push({ type: 'token', text: 'e' });
    b.push({ type: 'done', message: reply });
    expect(published).toHaveLength(3);
    expect(published[2].phase).toBe('done');
    frames[1](); // the stale frame must not publish again
    expect(published).toHaveLength(3);
  });
});
