// Markdown for assistant messages: `marked` renders, DOMPurify sanitises. Raw HTML in model
// output is shown as text (never interpreted), images are dropped (no remote content), and code
// blocks get a header with the language and a copy button (handled by delegation in the view).
import DOMPurify from 'dompurify';
import { Marked, type Tokens } from 'marked';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? '').trim().split(/\s+/)[0]?.replace(/[^\w+#.-]/g, '') ?? '';
      const label = language || 'text';
      const cls = language ? ` class="language-${escapeHtml(language)}"` : '';
      return (
        `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(label)}</span>` +
        `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
        `<pre><code${cls}>${escapeHtml(text.replace(/\n$/, ''))}</code></pre></div>\n`
      );
    },
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    image({ text }: Tokens.Image): string {
      return escapeHtml(text);
    },
  },
});

const FORBID_TAGS = ['img', 'svg', 'math', 'style', 'iframe', 'object', 'embed', 'form', 'input', 'textarea', 'select', 'video', 'audio', 'source', 'link', 'meta', 'base'];

/** Removes scripts, event handlers, javascript: URLs and every tag that could load remote content. */
export function sanitizeHtml(html: string): string {
  return DOMPurify.sanitize(html, {
    FORBID_TAGS,
    FORBID_ATTR: ['style', 'srcset', 'src'],
    ALLOW_DATA_ATTR: false,
  });
}

/** Markdown → safe HTML. */
export function renderMarkdown(src: string): string {
  return sanitizeHtml(marked.parse(src, { async: false }) as string);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * The index just after the last blank line that sits outside a fenced code block; text before it
 * is a run of complete Markdown blocks that further tokens cannot change (except loose lists and
 * reference links, which the final full render repairs). 0 when there is none.
 */
export function stableBoundary(text: string): number {
  let fence: string | null = null;
  let boundary = 0;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl === -1) break; // the last line is still being written
    const line = text.slice(pos, nl);
    const m = FENCE.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1]) fence = null;
    } else if (m) {
      fence = m[1];
    } else if (line.trim() === '' && pos > 0) {
      boundary = nl + 1;
    }
    pos = nl + 1;
  }
  return boundary;
}

/**
 * Incremental renderer for a streaming reply: completed blocks are rendered once and kept; only
 * the unfinished tail is re-rendered on each update.
 */
export class StreamingMarkdown {
  private committed = 0;
  private chunks: string[] = [];
  private source = '';
  /** How many times Markdown was parsed (for tests). */
  renders = 0;

  constructor(private readonly render: (src: string) => string = renderMarkdown) {}

  update(text: string): string {
    if (!text.startsWith(this.source.slice(0, this.committed))) this.reset();
    this.source = text;
    const boundary = stableBoundary(text);
    if (boundary > this.committed) {
      this.chunks.push(this.parse(text.slice(this.committed, boundary)));
      this.committed = boundary;
    }
    const tail = text.slice(this.committed);
    return this.chunks.join('') + (tail.trim() ? this.parse(tail) : '');
  }

  reset(): void {
    this.committed = 0;
    this.chunks = [];
    this.source = '';
  }

  private parse(src: string): string {
    this.renders += 1;
    return this.render(src);
  }
}
