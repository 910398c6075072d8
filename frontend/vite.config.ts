/// <reference types="vitest/config" />
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'
import { resolve } from 'node:path'
import vue from '@vitejs/plugin-vue'
import { defineConfig, type Plugin } from 'vite'

const outDir = fileURLToPath(new URL('./dist', import.meta.url))

// Go embeds frontend/dist (//go:embed all:frontend/dist) and the repository commits only
// dist/.gitkeep, so every build must leave that placeholder behind (emptyOutDir deletes it).
function keepDistPlaceholder(): Plugin {
  return {
    name: 'porthole-keep-dist-placeholder',
    apply: 'build',
    closeBundle() {
      mkdirSync(outDir, { recursive: true })
      writeFileSync(resolve(outDir, '.gitkeep'), '')
    },
  }
}

// `PORTHOLE_SERVE=http://127.0.0.1:PORT npm run dev` proxies /api to a running `porthole serve`,
// so the dev server's page talks to the real backend (open it with #token=… from serve's URL).
// serve checks Host and Origin against its own address, so the proxy rewrites both.
const serveTarget = process.env.PORTHOLE_SERVE?.replace(/\/+$/, '')

export default defineConfig({
  base: '/',
  plugins: [vue(), keepDistPlaceholder()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2020',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 600,
  },
  server: serveTarget
    ? {
        proxy: {
          '/api': {
            target: serveTarget,
            changeOrigin: true,
            configure: (proxy) => {
              proxy.on('proxyReq', (req) => {
                if (req.getHeader('origin')) req.setHeader('origin', serveTarget)
              })
            },
          },
        },
      }
    : undefined,
  test: {
    environment: 'happy-dom',
    include: ['tests/**/*.test.ts'],
    restoreMocks: true,
  },
})
