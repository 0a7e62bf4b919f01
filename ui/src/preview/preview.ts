// Dev-only gallery (preview.html, built by `npm run build:preview` into dist-preview/, never into
// dist/): renders the real App with a store filled with fixed props, for screenshots.
// ?screen=welcome|nogpu|chat|streaming|model|settings  &theme=light|dark
import { mount } from 'svelte';
import '../app.css';
import App from '../App.svelte';
import { AppStore } from '../lib/app.svelte';
import { applyChatEvent, initialStream } from '../lib/stream';
import type { AdapterInfo, AppState, ConversationSummary, Message, ModelInfo, Settings } from '../lib/types';

const params = new URLSearchParams(location.search);
const screen = params.get('screen') ?? 'chat';
const theme = (params.get('theme') ?? 'light') as Settings['theme'];

const now = Date.now();
const ago = (min: number) => new Date(now - min * 60_000).toISOString();

const settings: Settings = {
  contextLength: 8192, temperature: 0.7, topP: 0.95, topK: 40, minP: 0.05, repeatPenalty: 1.1,
  seed: 0, systemPrompt: 'You are a concise assistant.', theme, maxTokens: 1024,
  lastModelPath: '/home/sam/Models/Qwen2.5-7B-Instruct-Q4_K_M.gguf',
};
const adapter: AdapterInfo = { name: 'AMD Radeon RX 7800 XT', backend: 'Vulkan', deviceType: 'DiscreteGpu', memoryBytes: 16 * 1024 ** 3, f16: true, subgroups: true };
const model: ModelInfo = {
  path: '/home/sam/Models/Qwen2.5-7B-Instruct-Q4_K_M.gguf', name: 'Qwen2.5 7B Instruct', architecture: 'qwen2',
  parameterLabel: '7B', quantization: 'Q4_K_M', contextLength: 32_768, fileBytes: 4_683_074_048,
};
const conversations: ConversationSummary[] = [
  { id: 4, title: 'How the KV cache saves time', createdAt: ago(30), updatedAt: ago(2), messageCount: 4, preview: 'Each turn only prefills the new tokens…' },
  { id: 3, title: 'Rust borrow checker question', createdAt: ago(200), updatedAt: ago(190), messageCount: 6, preview: 'Why does this closure need move?' },
  { id: 2, title: 'Trip plan for Lyon', createdAt: ago(1500), updatedAt: ago(1490), messageCount: 8, preview: 'Three days, by train from Paris' },
  { id: 1, title: 'Bread recipe, 70% hydration', createdAt: ago(9000), updatedAt: ago(8000), messageCount: 2, preview: 'Flour, water, salt, levain' },
];
const msg = (id: number, role: Message['role'], content: string, stats?: Message['stats']): Message => ({
  id, conversationId: 4, role, content, createdAt: ago(10 - id), stats: stats ?? null,
});
const messages: Message[] = [
  msg(1, 'user', 'Why is the second message in a chat faster than the first?'),
  msg(2, 'assistant',
    'Because the model has already **read** everything before it. While writing a reply, the model stores a key and a value for every token it has seen — the *KV cache*. On the next turn Hearth keeps that cache and only computes the tokens you added:\n\n1. Your new message is tokenized.\n2. Only those tokens are run through the model.\n3. The reply starts as soon as they are done.\n\nThe line under each reply shows how many prompt tokens were reused.',
    { promptTokens: 412, reusedTokens: 0, computedTokens: 412, generatedTokens: 96, ttftMs: 640, decodeTokS: 41.7, stopReason: 'eog', recomputeReason: null }),
  msg(3, 'user', 'Show me how that looks in code.'),
  msg(4, 'assistant',
    'A minimal sketch of the idea:\n\n```rust\nfn next_turn(cache: &mut KvCache, new_tokens: &[u32]) -> Logits {\n    // Tokens already in the cache are skipped.\n    model.forward(cache, new_tokens)\n}\n```\n\nWith a 500-token history and a 12-token question, only `12` tokens are computed.',
    { promptTokens: 531, reusedTokens: 508, computedTokens: 23, generatedTokens: 58, ttftMs: 48, decodeTokS: 42.3, stopReason: 'eog', recomputeReason: null }),
];

function state(m: ModelInfo | null, a: AdapterInfo | null, err: string | null): AppState {
  return { model: m, adapter: a, adapterError: err, settings, version: '0.1.0' };
}

const store = new AppStore();
store.backend = 'ready';
store.conversations = conversations;
switch (screen) {
  case 'welcome':
    store.state = state(null, adapter, null);
    break;
  case 'nogpu':
    store.state = state(null, null, 'wgpu: no adapter found (Vulkan, GL) — is a GPU driver installed?');
    store.conversations = [];
    break;
  case 'model':
    store.state = state(model, adapter, null);
    store.view = 'model';
    store.pickedPath = '/home/sam/Models/Meta-Llama-3-8B-Instruct-Q4_K_M.gguf';
    store.planContext = 8192;
    store.plan = { weightsBytes: 4_920_000_000, kvBytes: 1_073_741_824, scratchBytes: 310_000_000, totalBytes: 6_303_741_824, adapterLimitBytes: 16 * 1024 ** 3, fits: true, suggestion: null, contextLength: 8192 };
    break;
  case 'nofit':
    store.state = state(null, { ...adapter, name: 'Intel UHD Graphics 620', deviceType: 'IntegratedGpu', memoryBytes: 3 * 1024 ** 3 }, null);
    store.view = 'model';
    store.pickedPath = '/home/sam/Models/Meta-Llama-3-8B-Instruct-Q4_K_M.gguf';
    store.planContext = 32_768;
    store.plan = { weightsBytes: 4_920_000_000, kvBytes: 4_294_967_296, scratchBytes: 310_000_000, totalBytes: 9_524_967_296, adapterLimitBytes: 3 * 1024 ** 3, fits: false, suggestion: 'Try a context of 4,096 tokens with a q8_0 KV cache, or a smaller model.', contextLength: 32_768 };
    store.loadError = 'not a GGUF file: the first four bytes are 0x504B0304, expected "GGUF"';
    break;
  case 'settings':
    store.state = state(model, adapter, null);
    store.view = 'settings';
    store.stats = { promptTokensTotal: 18_240, reusedTokensTotal: 15_902, computedTokensTotal: 2338, generatedTokensTotal: 3120, repliesTotal: 27, kvBytesHeld: 402_653_184, kvTokensHeld: 7012, kvConversationsHeld: 3, ttftMsP50: 52, decodeTokSMean: 41.9 };
    break;
  case 'streaming': {
    store.state = state(model, adapter, null);
    store.activeId = 4;
    store.messages = messages.slice(0, 2);
    let s = initialStream();
    s = applyChatEvent(s, { type: 'started', userMessage: msg(3, 'user', 'Show me how that looks in code.'), promptTokens: 531, reusedTokens: 508 });
    s = applyChatEvent(s, { type: 'token', text: 'A minimal sketch of the idea:\n\n```rust\nfn next_turn(cache: &mut KvCache, new_tokens: &[u32]) -> Logits {\n    // Tokens already in the cache' });
    store.pending = { conversationId: 4, userText: 'Show me how that looks in code.', stream: s };
    break;
  }
  case 'prefill': {
    store.state = state(model, adapter, null);
    store.activeId = 4;
    store.messages = messages.slice(0, 2);
    let s = initialStream();
    s = applyChatEvent(s, { type: 'started', userMessage: msg(3, 'user', 'Summarise the attached notes.'), promptTokens: 5200, reusedTokens: 508 });
    s = applyChatEvent(s, { type: 'prefill', done: 2900, total: 4692 });
    store.pending = { conversationId: 4, userText: 'Summarise the attached notes.', stream: s };
    break;
  }
  default:
    store.state = state(model, adapter, null);
    store.activeId = 4;
    store.messages = messages;
}

const target = document.getElementById('app')!;
mount(App, { target, props: { store, start: false } });
