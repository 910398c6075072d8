#!/usr/bin/env node
// @ts-check
// A stand-in for `porthole serve`, for working on the UI without the Go binary:
//
//   PORTHOLE_BIN=e2e/mock-porthole.mjs npm run e2e
//   node e2e/mock-porthole.mjs serve --addr 127.0.0.1:8080
//
// It speaks the same protocol (POST /api/<Method> with a JSON array body and a bearer token,
// GET /api/events as server-sent events with a snapshot first) and serves frontend/dist.
// The real end-to-end test targets the real binary; this file only mirrors its contract.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { extname, join, normalize, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const dist = resolve(fileURLToPath(new URL('../dist', import.meta.url)))
const args = process.argv.slice(2)
if (args[0] !== 'serve') {
  console.error('usage: mock-porthole.mjs serve [--addr HOST:PORT]')
  process.exit(2)
}
const addrAt = args.indexOf('--addr')
const [host, port] = (addrAt >= 0 ? args[addrAt + 1] ?? '' : '127.0.0.1:0').split(':')
const token = randomBytes(24).toString('base64url')

const state = {
  status: { mode: 'serve', startedAt: new Date().toISOString(), servers: 0, forwards: 0 },
  settings: { theme: 'system' },
}
const version = { version: 'mock-1.2.3', commit: 'mockcommit00', go: 'go1.26', wails: 'v2', os: process.platform, arch: process.arch }

/** @type {Set<import('node:http').ServerResponse>} */
const streams = new Set()
/** @param {string} topic @param {unknown} data */
function publish(topic, data) {
  const frame = `data: ${JSON.stringify({ topic, data })}\n\n`
  for (const s of streams) s.write(frame)
}

const snapshot = () => [
  { topic: 'app.status', data: state.status },
  { topic: 'settings', data: state.settings },
]

/** @type {Record<string, (...a: any[]) => unknown>} */
const methods = {
  Version: () => version,
  Status: () => state.status,
  GetSettings: () => state.settings,
  SetTheme: (theme) => {
    if (!['system', 'light', 'dark'].includes(theme)) throw new Error(`unknown theme ${JSON.stringify(theme)}: use system, light or dark`)
    state.settings = { theme }
    publish('settings', state.settings)
    return state.settings
  },
  ListServers: () => [],
  Snapshot: snapshot,
  UIReady: (kind) => void console.error(`ui ready transport=${kind}`),
}

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' }

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname.startsWith('/api/')) {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ error: 'missing or wrong token: open the URL printed by porthole serve' }))
    }
    if (url.pathname === '/api/events' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' })
      res.write(': hello\n\n')
      for (const e of snapshot()) res.write(`data: ${JSON.stringify(e)}\n\n`)
      streams.add(res)
      const ka = setInterval(() => res.write(': keep-alive\n\n'), 15000)
      req.on('close', () => {
        clearInterval(ka)
        streams.delete(res)
      })
      return
    }
    const name = url.pathname.slice(5)
    const fn = methods[name]
    if (req.method !== 'POST' || !fn) {
      res.writeHead(404, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ error: `no method ${name}` }))
    }
    let body = ''
    for await (const c of req) body += c
    try {
      const result = fn(...(body ? JSON.parse(body) : []))
      res.writeHead(200, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify(result ?? null))
    } catch (err) {
      res.writeHead(400, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }))
    }
  }
  const rel = normalize(url.pathname === '/' ? '/index.html' : url.pathname)
  const file = join(dist, rel)
  if (!file.startsWith(dist)) return void res.writeHead(403).end()
  try {
    const data = await readFile(file)
    res.writeHead(200, { 'Content-Type': types[/** @type {keyof typeof types} */ (extname(file))] ?? 'application/octet-stream' })
    res.end(data)
  } catch {
    res.writeHead(404).end('not found')
  }
})

server.listen(Number(port || 0), host || '127.0.0.1', () => {
  const a = /** @type {import('node:net').AddressInfo} */ (server.address())
  console.log(`http://${a.address}:${a.port}/#token=${token}`)
})
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const s of streams) s.destroy()
    server.close(() => process.exit(0))
  })
}
