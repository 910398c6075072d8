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
//
// MOCK_DEMO=1 adds two servers ("gpu-box", connected, with Jupyter, TensorBoard, MLflow… and a
// database; "lab-cpu", not connected) and fake apps on This computer. OpenApp answers with pages
// served by a second listener on 127.0.0.2 (another origin, as real endpoints are), so app tabs
// load something. MOCK_TABS_FILE=path keeps SaveTabs across restarts of the mock.
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
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

// ---- Demo servers and apps (MOCK_DEMO=1) ----
const demo = process.env.MOCK_DEMO === '1'
const ago = (/** @type {number} */ min) => new Date(Date.now() - min * 60_000).toISOString()
/** @type {any[]} */
const servers = demo
  ? [
      { id: 'gpu', name: 'gpu-box', host: 'gpu.lab.example', user: 'alice', port: 22, color: '#0ea5b7', state: 'connected', since: ago(12), progress: [{ step: 'ready', elapsedMs: 412 }] },
      { id: 'cpu', name: 'lab-cpu', host: 'cpu.lab.example', user: 'alice', port: 22, state: 'disconnected' },
    ]
  : []
const serverList = () => ({ servers, path: '/tmp/porthole-mock/profiles.json', readOnly: false })
/** @param {number} port @param {string} kind @param {string} kindName @param {string} title @param {boolean} isWeb @param {string} openPath @param {any} [proc] */
const svc = (port, kind, kindName, title, isWeb, openPath, proc) => ({ port, kind, kindName, title, isWeb, openPath, process: proc, local: false })
const proc = (/** @type {number} */ pid, /** @type {string} */ name, /** @type {string} */ cmdline, /** @type {string} */ cwd, /** @type {number} */ min) => ({ pid, name, cmdline, cwd, started: ago(min) })
/** @type {Record<string, any[]>} */
const appsBy = {
  gpu: [
    svc(8888, 'jupyter-lab', 'Jupyter Lab', 'Jupyter Lab — ~/project', true, '/lab', proc(40112, 'jupyter-lab', '/home/alice/.venv/bin/python -m jupyter lab --no-browser --port 8888', '/home/alice/project', 134)),
    svc(6006, 'tensorboard', 'TensorBoard', 'TensorBoard — runs/', true, '/', proc(40877, 'tensorboard', 'tensorboard --logdir runs --port 6006', '/home/alice/project', 52)),
    svc(5000, 'mlflow', 'MLflow', 'MLflow', true, '/', proc(39021, 'mlflow', 'mlflow ui --backend-store-uri sqlite:///mlflow.db', '/home/alice/exp', 60 * 26)),
    svc(8501, 'streamlit', 'Streamlit', 'Streamlit — dashboard.py', true, '/', proc(41550, 'streamlit', 'streamlit run dashboard.py', '/home/alice/project', 7)),
    svc(3000, 'grafana', 'Grafana', 'Grafana', true, '/', proc(1201, 'grafana', '/usr/share/grafana/bin/grafana server --config /etc/grafana/grafana.ini', '/usr/share/grafana', 60 * 24 * 9)),
    svc(8265, 'ray-dashboard', 'Ray Dashboard', 'Ray Dashboard', true, '/', proc(42011, 'ray', 'ray start --head --dashboard-host 127.0.0.1', '/home/alice', 95)),
    svc(5432, 'postgres', 'PostgreSQL', 'PostgreSQL', false, '', proc(880, 'postgres', '/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main', '/var/lib/postgresql', 60 * 24 * 9)),
    svc(6379, 'redis', 'Redis', 'Redis', false, '', undefined),
  ],
  local: [
    { ...svc(8765, 'http', 'Web app', 'Directory listing for /', true, '/', proc(5120, 'python3', 'python3 -m http.server 8765', '/home/me/www', 3)), local: true },
    { ...svc(7860, 'gradio', 'Gradio', 'Gradio — demo.py', true, '/', proc(5188, 'python3', 'python3 demo.py', '/home/me/gradio', 18)), local: true },
  ],
}
/** @type {any[]} */
let savedTabs = []
const tabsFile = process.env.MOCK_TABS_FILE
if (tabsFile) {
  try {
    savedTabs = JSON.parse(readFileSync(tabsFile, 'utf8'))
  } catch {
    savedTabs = []
  }
}

const snapshot = () => [
  { topic: 'app.status', data: state.status },
  { topic: 'settings', data: state.settings },
  ...(demo ? [{ topic: 'servers', data: serverList() }] : []),
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
  ListServers: () => servers,
  KeyringStatus: () => ({ available: true, service: 'porthole', backend: 'mock' }),
  Prompts: () => [],
  ServerLog: (id) => ({ id, lines: [`connected to ${id} (mock)`], seq: 1 }),
  ServerStats: (id) => {
    const s = servers.find((x) => x.id === id)
    return { id, state: s?.state ?? 'disconnected', rttMs: 0, activeConns: 0, bytesIn: 0, bytesOut: 0, reconnects: [], time: new Date().toISOString() }
  },
  Connect: async (id) => {
    const s = servers.find((x) => x.id === id)
    if (!s) throw new Error(`no server ${id}`)
    s.state = 'connecting'
    publish('servers', serverList())
    await new Promise((r) => setTimeout(r, 600))
    Object.assign(s, { state: 'connected', since: new Date().toISOString(), progress: [{ step: 'ready', elapsedMs: 600 }] })
    publish('servers', serverList())
    return s
  },
  Disconnect: (id) => {
    const s = servers.find((x) => x.id === id)
    if (!s) throw new Error(`no server ${id}`)
    s.state = 'disconnected'
    publish('servers', serverList())
    return s
  },
  ListApps: (serverId) => {
    const s = servers.find((x) => x.id === serverId)
    if (serverId !== 'local' && s?.state !== 'connected') throw new Error(`${s?.name ?? serverId} is not connected; connect to it first`)
    return { serverId, services: appsBy[serverId] ?? [], scannedAt: new Date().toISOString() }
  },
  OpenApp: (serverId, port, path) => openApp(serverId, port, path),
  ParseAppURL: (serverId, raw) => {
    const u = new URL(raw)
    const local = ['localhost', '127.0.0.1', '0.0.0.0', '[::1]', '[::]'].includes(u.hostname)
    const s = servers.find((x) => x.id === serverId)
    if (!local && u.hostname !== s?.host) throw new Error(`${u.host} is not on ${s?.name ?? 'this computer'}'s localhost`)
    return openApp(serverId, Number(u.port || 80), `${u.pathname}${u.search}${u.hash}`)
  },
  OpenThrough: (serverId, raw) => {
    const u = new URL(raw)
    const o = openApp(serverId, Number(u.port || 80), `${u.pathname}${u.search}${u.hash}`)
    return { ...o, remoteUrl: `http://${u.host}${u.pathname}${u.search}${u.hash}`, title: u.host, remoteHost: u.hostname }
  },
  ForwardPort: (serverId, port) => ({ localAddr: `127.0.0.2:${port}`, hint: port === 5432 ? 'psql -h 127.0.0.2 -p 5432' : port === 6379 ? 'redis-cli -h 127.0.0.2 -p 6379' : `nc 127.0.0.2 ${port}` }),
  ListLeakedTunnels: () => ({ tunnels: [], leaked: 0 }),
  EndTunnelProcess: (pid) => {
    throw new Error(`no process with PID ${pid} (the mock runs no tunnels)`)
  },
  AdoptTunnelProcess: (pid) => {
    throw new Error(`no process with PID ${pid} (the mock runs no tunnels)`)
  },
  GetTabs: () => savedTabs,
  SaveTabs: (tabs) => {
    savedTabs = tabs ?? []
    if (tabsFile) writeFileSync(tabsFile, JSON.stringify(savedTabs, null, 2))
  },
  OpenExternal: (url) => void console.error(`open external ${url}`),
  Snapshot: snapshot,
  UIReady: (kind) => void console.error(`ui ready transport=${kind}`),
}

/** @param {string} serverId @param {number} port @param {string} path */
function openApp(serverId, port, path) {
  const s = servers.find((x) => x.id === serverId)
  if (serverId !== 'local' && s?.state !== 'connected') throw new Error(`${s?.name ?? serverId} is not connected; connect to it first`)
  const known = (appsBy[serverId] ?? []).find((x) => x.port === port)
  const origin = `http://${appHost}:${appAddr().port}`
  const p = path || '/'
  return {
    serverId,
    port,
    localUrl: `${origin}/${serverId}/${port}${p}`,
    localOrigin: origin,
    remoteUrl: `http://localhost:${port}${p}`,
    title: known?.title ?? `Port ${port}`,
  }
}

// The stand-in apps, on another origin than the UI (as a real endpoint is).
const appServer = createServer((req, res) => {
  const [, serverId = '', port = ''] = (req.url ?? '/').split('/')
  const known = (appsBy[serverId] ?? []).find((x) => String(x.port) === port)
  const title = known?.title ?? `Port ${port}`
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><title>${title}</title><body style="font:14px system-ui;margin:0;display:grid;place-items:center;height:100vh;background:#fafafa;color:#333">
<div style="text-align:center"><h1 style="font-weight:600">${title}</h1><p>Stand-in app on ${serverId}:${port} (mock)</p><p><a href="?page=${Math.random().toString(36).slice(2, 6)}">a link</a></p></div>`)
})
let appHost = '127.0.0.2'
const appAddr = () => /** @type {import('node:net').AddressInfo} */ (appServer.address())
await new Promise((resolveListen) => {
  appServer.once('error', () => {
    appHost = '127.0.0.1'
    appServer.listen(0, appHost, () => resolveListen(undefined))
  })
  appServer.listen(0, appHost, () => resolveListen(undefined))
})

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
      const result = await fn(...(body ? JSON.parse(body) : []))
      res.writeHead(200, { 'Content-Type': 'application/json' })
      return res.end(JSON.stringify(result ?? null))
    } catch (err) {
      console.error(`${name} failed: ${err instanceof Error ? err.message : String(err)}`)
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
    appServer.close()
    server.close(() => process.exit(0))
  })
}
