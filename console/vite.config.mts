// The operator console's build: console/ -> dist/console (served by the API at /, client/console-static.ts).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // elkjs is large; one chunk for it keeps the page's own code small.
    chunkSizeWarningLimit: 2000,
    sourcemap: true,
  },
  // `npm run console:dev`: the API on :8080 behind the dev server.
  server: { proxy: Object.fromEntries(['/runs', '/definitions', '/versions', '/stalls', '/events', '/waits', '/correlation-rules', '/deploy', '/batches', '/attention', '/audit', '/keys', '/whoami', '/health', '/reconcile'].map((p) => [p, 'http://127.0.0.1:8080'])) },
});
