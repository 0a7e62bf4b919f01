/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { resolve } from 'node:path';

// `npm run build` builds index.html only (the app Tauri ships from ../ui/dist).
// `npm run build:preview` (mode "preview") also builds preview.html, a dev-only gallery of
// components with fixed props for screenshots, into dist-preview/ — never into dist/.
export default defineConfig(({ mode }) => {
  const preview = mode === 'preview';
  const input: Record<string, string> = { main: resolve(import.meta.dirname, 'index.html') };
  if (preview) input.preview = resolve(import.meta.dirname, 'preview.html');
  return {
    plugins: [svelte()],
    // Relative asset URLs work under Tauri's custom protocol and from a plain static server.
    base: './',
    clearScreen: false,
    server: { port: 1420, strictPort: true },
    build: {
      outDir: preview ? 'dist-preview' : 'dist',
      target: 'es2022',
      // No inline <script>/<style> needed by the strict CSP: Vite emits external files.
      assetsInlineLimit: 0,
      rollupOptions: {
        input,
      },
    },
    test: {
      include: ['src/**/*.test.ts'],
      environment: 'jsdom',
    },
    resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
  };
});
