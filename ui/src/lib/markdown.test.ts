import { describe, expect, it } from 'vitest';
import { renderMarkdown, sanitizeHtml, stableBoundary, StreamingMarkdown } from './markdown';

function dom(html: string): HTMLElement {
  const div = document.createElement('div');
  div.innerHTML = html;
  return div;
}

describe('sanitizeHtml', () => {
  it('strips scripts, handlers, javascript: links and remote content', () => {
    const out = dom(
      sanitizeHtml(
        '<p onclick="steal()">hi</p><script>alert(1)</script><img src="https://x/y.png"><a href="javascript:alert(1)">x</a><iframe src="https://x"></iframe><a href="https://ok.example">ok</a>',
      ),
    );
    expect(out.querySelector('script')).toBeNull();
    expect(out.querySelector('img')).toBeNull();
    expect(out.querySelector('iframe')).toBeNull();
    expect(out.querySelector('p')?.getAttribute('onclick')).toBeNull();
    const links = [...out.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    expect(links).not.toContain('javascript:alert(1)');
    expect(links).toContain('https://ok.example');
  });
});

describe('renderMarkdown', () => {
  it('renders Markdown and shows raw HTML from the model as text', () => {
    const out = dom(renderMarkdown('**bold** and <script>alert(1)</script> <b onmouseover="x()">b</b>'));
    expect(out.querySelector('strong')?.textContent).toBe('bold');
    expect(out.querySelector('script')).toBeNull();
    expect(out.querySelector('b')).toBeNull();
    expect(out.textContent).toContain('<script>alert(1)</script>');
  });

  it('gives code blocks a language label and a copy button, escaping the code', () => {
    const out = dom(renderMarkdown('```ts\nconst a = 1 < 2 && "x";\n```'));
    const block = out.querySelector('.code-block')!;
    expect(block).not.toBeNull();
    expect(block.querySelector('.code-lang')?.textContent).toBe('ts');
    expect(block.querySelector('button.copy-code')?.getAttribute('aria-label')).toBe('Copy code');
    expect(block.querySelector('code')?.textContent).toBe('const a = 1 < 2 && "x";');
    expect(block.querySelector('code')?.className).toBe('language-ts');
  });

  it('drops images (no remote content) but keeps their alt text', () => {
    const out = dom(renderMarkdown('![a cat](https://example.com/cat.png)'));
    expect(out.querySelector('img')).toBeNull();
    expect(out.textContent).toContain('a cat');
  });

  it('rejects a hostile language name', () => {
    const out = dom(renderMarkdown('```"><script>x</script>\nbody\n```'));
    expect(out.querySelector('script')).toBeNull();
    expect(out.querySelector('code')?.textContent).toBe('body');
  });
});

describe('stableBoundary', () => {
  it('splits after blank lines outside code fences', () => {
    expect(stableBoundary('para one\n\npara tw')).toBe('para one\n\n'.length);
    expect(stableBoundary('only one line')).toBe(0);
    const fenced = 'intro\n\n```\ncode\n\nmore code\n';
    expect(stableBoundary(fenced)).toBe('intro\n\n'.length);
    const closed = fenced + '```\n\nafter';
    expect(stableBoundary(closed)).toBe((fenced + '```\n\n').length);
  });
  it('needs the closing fence to match the opening one', () => {
    const text = '````\na\n```\n\nstill code\n';
    expect(stableBoundary(text)).toBe(0);
  });
});

describe('StreamingMarkdown', () => {
  it('renders completed blocks once and matches a full render at the end', () => {
    const md = new StreamingMarkdown();
    const full = 'First paragraph with **bold**.\n\n```js\nlet x = 1;\n\nlet y = 2;\n```\n\nLast *words* here.';
    let out = '';
    for (let i = 1; i <= full.length; i += 1) out = md.update(full.slice(0, i));
    expect(dom(out).textContent).toBe(dom(renderMarkdown(full)).textContent);
    expect(dom(out).querySelectorAll('.code-block')).toHaveLength(1);
    // Each token re-parses only the tail; completed blocks were parsed exactly once each.
    const tailRenders = full.length;
    expect(md.renders).toBeLessThanOrEqual(tailRenders + 3);
  });
  it('starts over when the text is replaced', () => {
    const md = new StreamingMarkdown();
    md.update('one\n\ntwo');
    const out = md.update('different\n\ntext');
    expect(dom(out).textContent).toBe(dom(renderMarkdown('different\n\ntext')).textContent);
    expect(out).not.toContain('one');
  });
});
