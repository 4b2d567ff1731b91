// The Vite configuration of the bundler test's app. The book's chapter "Using a bundler"
// shows it to users (the part between the ANCHOR comments), so keep it what an app needs.

// ANCHOR: config
import { defineConfig } from 'vite';

// Wasmgrind's threads share memory (a SharedArrayBuffer), which browsers allow only on a
// cross-origin isolated page: every response must carry these two headers.
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  server: { headers: crossOriginIsolation }, // `vite` (the dev server)
  preview: { headers: crossOriginIsolation }, // `vite preview` (the production build)
});
// ANCHOR_END: config
