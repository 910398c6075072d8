// @ts-check
// End-to-end: real web apps from Debian packages (Jupyter Notebook, Syncthing, Transmission,
// Cockpit; see realapps.mjs) on the "server" side, through a real OpenSSH sshd
// (internal/testrig/cmd/testsshd) and a real `porthole serve`, in Debian's chromium. The server is
// this machine: each app listens on 127.0.0.1 only and the browser reaches it only through the
// endpoint Porthole opens for it (its address is read from the API), over SSH.
//
// Each app must load, log in where it has a login, make its own API calls without a 4xx/5xx that
// Porthole caused (every response of the app's origin is recorded; the few that the app itself
// expects are listed, with the reason, in EXPECTED), and still be logged in, in the same browser
// context, after `porthole serve` is stopped and started again.
//
//   sh e2e/keyring-session.sh node --test e2e/realapps.spec.mjs
//
// An app that is not installed is skipped with a note, except in CI (CI=true), where that fails:
// scripts/deps.sh test installs them all.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, rigBinary, startPortholeServe, startTestSshd, stop } from './harness.mjs'
import { cockpit, deluge, installed, jupyter, syncthing, transmission } from './realapps.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const START_TIMEOUT_MS = 60_000
const PAGE_TIMEOUT_MS = 30_000
const IN_CI = process.env.CI === 'true'

/** @typedef {import('./realapps.mjs').RealApp} RealApp */
/** @typedef {import('./realapps.mjs').RunningApp} RunningApp */
/**
 * A response of 400 and up from an app's endpoint; porthole is its X-Porthole-Error header (set
 * on every page the forward makes itself, e.g. "unreachable", "cross-site"), or "".
 * @typedef {{status: number, method: string, url: string, phase: string, porthole: string, headers: Record<string, string>}} BadResponse
 */

/**
 * Responses of 400 and up that an app itself sends and expects, by app. None may carry
 * X-Porthole-Error (a page the forward made); each is checked to come from the app.
 * @type {Map<RealApp, (r: BadResponse) => boolean>}
 */
const EXPECTED = new Map([
  // Transmission's RPC answers a call without a current X-Transmission-Session-Id with 409 and
  // the id in a header; its web client then repeats the call with it (its CSRF handshake). The
  // first call of every page load is a 409 by design.
  [transmission, (r) => r.status === 409 && path(r) === '/transmission/rpc' && !!r.headers['x-transmission-session-id']],
  // The notebook page loads the ipywidgets extension when it is installed and ignores its 404
  // otherwise (Debian's jupyter-notebook does not depend on it).
  [jupyter, (r) => r.status === 404 && path(r) === '/nbextensions/widgets/notebook/js/extension.js'],
  // A Syncthing built without its upgrader (Debian's, and STNOUPGRADE) answers the GUI's upgrade
  // check with 503 "upgrade unsupported"; the GUI then shows no upgrade notice.
  [syncthing, (r) => r.status === 503 && path(r) === '/rest/system/upgrade' && !!r.headers['x-syncthing-id']],
  // Cockpit's login page asks /cockpit/login whether a session exists; 401 is its "no" (after the
  // restart: the local session ended with its websocket, see cockpitAgain).
  [cockpit, (r) => r.status === 401 && path(r) === '/cockpit/login' && r.phase === 'after restart'],
])

/** The path of a recorded response's URL. */
function path(/** @type {BadResponse} */ r) {
  return new URL(r.url).pathname
}

/** @type {import('node:child_process').ChildProcess | undefined} */ let sshd
/** @type {import('node:child_process').ChildProcess | undefined} */ let serve
let serveStderr = () => ''
let tmp = ''
let home = ''
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
/** @type {any} */ let sshdInfo
/** @type {import('playwright-core').Browser | undefined} */ let browser
/** @type {import('playwright-core').BrowserContext | undefined} */ let ctx
let serverId = ''
let phase = 'first start'

/**
 * What each app's test left for the restart test.
 * @type {Map<RealApp, {run: RunningApp, origin: string, page: import('playwright-core').Page, bad: BadResponse[], state: any}>}
 */
const opened = new Map()
/** @type {RunningApp[]} */
const running = []

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
  for (const r of running) killGroup(r.child, 'SIGKILL')
})

async function api(/** @type {string} */ method, /** @type {unknown[]} */ ...args) {
  return callApi(porthole, method, ...args)
}

async function startServe() {
  const s = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

/**
 * Starts app on the server side (or skips the test where it is not installed and this is not CI),
 * checks the server lists its port, opens it through the API and gives it a page of its own that
 * records every response of 400 and up from the app's origin.
 * @param {import('node:test').TestContext} t
 * @param {RealApp} app
 */
async function openRealApp(t, app) {
  if (!installed(app)) {
    const why = `${app.name} is not installed (${app.bin}; apt package ${app.pkg}: scripts/deps.sh test installs it)`
    if (IN_CI) throw new Error(`${why}: CI must run every real app`)
    t.skip(why)
    return undefined
  }
  const dir = join(tmp, app.pkg)
  mkdirSync(dir, { recursive: true })
  const run = await app.start(dir)
  running.push(run, ...(run.also ?? []))
  const list = await api('ListApps', serverId)
  const svc = list.services.find((/** @type {any} */ s) => s.port === run.port)
  assert.ok(svc, `${app.name}'s port ${run.port} is listed: ${JSON.stringify(list.services.map((/** @type {any} */ s) => [s.port, s.kind, s.process?.name]))}`)
  const o = await api('OpenApp', serverId, run.port, '')
  const origin = /** @type {string} */ (o.localOrigin)
  assert.match(origin, /^http:\/\/127\.\d+\.\d+\.\d+:\d+$/, 'the app opens on a local loopback endpoint')
  console.log(`e2e: ${app.name} on the server's 127.0.0.1:${run.port} opens on ${origin} (listed as ${svc.kind}, ${svc.process?.name ?? '?'})`)
  const page = await /** @type {import('playwright-core').BrowserContext} */ (ctx).newPage()
  /** @type {BadResponse[]} */
  const bad = []
  page.on('response', (r) => {
    // URL.origin leaves out user info (Transmission's page is opened with its credentials in the URL).
    if (r.status() < 400 || new URL(r.url()).origin !== origin) return
    const headers = r.headers()
    bad.push({ status: r.status(), method: r.request().method(), url: r.url(), phase, porthole: headers['x-porthole-error'] ?? '', headers })
  })
  const entry = { run, origin, page, bad, state: /** @type {any} */ ({}) }
  opened.set(app, entry)
  return entry
}

/** The app's responses of 400 and up that it does not expect itself; logs the expected ones. */
function unexpected(/** @type {RealApp} */ app) {
  const e = opened.get(app)
  if (!e) return []
  const expected = EXPECTED.get(app) ?? (() => false)
  const ok = (/** @type {BadResponse} */ r) => r.porthole === '' && expected(r)
  const [fine, wrong] = [e.bad.filter(ok), e.bad.filter((r) => !ok(r))]
  if (fine.length) console.log(`e2e: ${app.name}: ${fine.length} answer(s) ≥ 400 the app expects, e.g. ${fine[0].status} ${fine[0].method} ${path(fine[0])}`)
  return wrong.map(({ headers, ...r }) => r)
}

function assertNoPortholeErrors(/** @type {RealApp} */ app) {
  const wrong = unexpected(app)
  assert.deepEqual(wrong, [], `${app.name} got answers ≥ 400 it does not expect (serve's log: ${join(ARTIFACTS, 'realapps-serve.log')})`)
}

async function withShot(/** @type {RealApp} */ app, /** @type {string} */ step, /** @type {() => Promise<void>} */ body) {
  try {
    await body()
  } catch (err) {
    const e = opened.get(app)
    await e?.page.screenshot({ path: join(ARTIFACTS, `failed-realapps-${app.pkg}-${step}.png`) }).catch(() => {})
    if (e) console.log(e.run.log().slice(-4_000))
    throw err
  }
}

// ---- each app: first visit (login, use) and the visit after a restart of Porthole ----

/** Jupyter: log in with the token on its own login page, then run a cell in a kernel (websocket). */
async function jupyterFirst(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin, run } = e
  await page.goto(`${origin}/tree`)
  await page.waitForURL(/\/login\?next=/)
  await page.locator('#password_input').fill(run.secret)
  await page.locator('#login_submit').click()
  await page.waitForURL(`${origin}/tree`)
  await page.locator('#notebook_list').getByText('realapps.ipynb').waitFor()
  await runCell(page, origin, null, 'answer=42')
  await page.screenshot({ path: join(ARTIFACTS, 'realapps-jupyter.png') })
}

/** Opens the test notebook, waits for its kernel's websocket, runs the first cell (after setting its text) and waits for out. */
async function runCell(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ origin, /** @type {string | null} */ code, /** @type {string} */ out) {
  const sockets = /** @type {string[]} */ ([])
  page.on('websocket', (ws) => sockets.push(ws.url()))
  await page.goto(`${origin}/notebooks/realapps.ipynb`)
  await page.waitForFunction(() => /** @type {any} */ (window).Jupyter?.notebook?.kernel?.is_connected?.() === true, null, { timeout: 60_000 })
  if (code !== null) await page.evaluate((c) => /** @type {any} */ (window).Jupyter.notebook.get_cell(0).set_text(c), code)
  await page.locator('.code_cell .CodeMirror').first().click()
  await page.keyboard.press('Shift+Enter')
  await page.locator('.code_cell .output_area pre').first().filter({ hasText: out }).waitFor({ timeout: 60_000 })
  assert.ok(
    sockets.some((u) => u.startsWith(`${origin.replace(/^http/, 'ws')}/api/kernels/`)),
    `the kernel's channels went over a websocket to the endpoint: ${JSON.stringify(sockets)}`,
  )
}

async function jupyterAgain(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  await page.goto(`${origin}/tree`)
  await page.locator('#notebook_list').getByText('realapps.ipynb').waitFor()
  assert.equal(page.url(), `${origin}/tree`, 'still logged in: no login page')
  // The same kernel (x is still defined), reached again over a new websocket.
  await runCell(page, origin, 'print(f"again={x + 1}")', 'again=43')
}

/** Syncthing: its GUI loads, and its API calls (each with the CSRF token from its cookie) succeed. */
async function syncthingFirst(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  const status = page.waitForResponse((r) => r.url().startsWith(`${origin}/rest/system/status`) && r.status() === 200)
  await page.goto(`${origin}/`)
  await status
  await page.getByText('porthole-realapps').first().waitFor()
  const csrf = (await /** @type {import('playwright-core').BrowserContext} */ (ctx).cookies(origin)).find((c) => c.name.startsWith('CSRF-Token-'))
  assert.ok(csrf, 'syncthing set its CSRF cookie')
  e.state.csrf = csrf
  const sent = await page.evaluate(() => fetch('/rest/system/version').then((r) => r.status))
  assert.equal(sent, 403, 'control: an API call without the CSRF header is refused by syncthing itself')
  e.bad.pop() // that 403 was the test's own call
  await page.screenshot({ path: join(ARTIFACTS, 'realapps-syncthing.png') })
}

async function syncthingAgain(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  const before = await /** @type {import('playwright-core').BrowserContext} */ (ctx).cookies(origin)
  assert.deepEqual(
    before.find((c) => c.name === e.state.csrf.name)?.value,
    e.state.csrf.value,
    'the CSRF cookie is still there after the restart',
  )
  const status = page.waitForResponse((r) => r.url().startsWith(`${origin}/rest/system/status`) && r.status() === 200)
  await page.goto(`${origin}/`)
  await status
  await page.getByText('porthole-realapps').first().waitFor()
}

/** Transmission: basic auth (credentials given once, as a user types them), then its RPC (409 handshake). */
async function transmissionFirst(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin, run } = e
  const u = new URL(`${origin}/transmission/web/`)
  u.username = run.user ?? ''
  u.password = run.secret
  const rpc = page.waitForResponse((r) => new URL(r.url()).origin === origin && new URL(r.url()).pathname === '/transmission/rpc' && r.status() === 200)
  await page.goto(u.href)
  await rpc
  assert.equal(await page.title(), 'Transmission Web Interface')
  await page.locator('#filter-count').filter({ hasText: /Transfer/ }).waitFor()
  await page.screenshot({ path: join(ARTIFACTS, 'realapps-transmission.png') })
}

async function transmissionAgain(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  const rpc = page.waitForResponse((r) => new URL(r.url()).origin === origin && new URL(r.url()).pathname === '/transmission/rpc' && r.status() === 200)
  const res = await page.goto(`${origin}/transmission/web/`)
  assert.equal(res?.status(), 200, 'the browser still has the basic-auth login for the endpoint (same origin after the restart)')
  await rpc
  await page.locator('#filter-count').filter({ hasText: /Transfer/ }).waitFor()
}

/**
 * Waits for the answer to the page's own JSON-RPC call of method (Deluge) with HTTP 200 and a
 * result that ok accepts; resolves to that result.
 * @param {import('playwright-core').Page} page
 * @param {string} origin
 * @param {string} method
 * @param {(result: any) => boolean} ok
 */
async function delugeCall(page, origin, method, ok) {
  /** @type {any} */ let result
  await page.waitForResponse(
    async (r) => {
      const u = new URL(r.url())
      if (u.origin !== origin || u.pathname !== '/json' || r.status() !== 200 || r.request().postDataJSON()?.method !== method) return false
      const body = await r.json().catch(() => ({}))
      if (!ok(body.result)) return false
      result = body.result
      return true
    },
    { timeout: 60_000 },
  )
  return result
}

/** Deluge: its own login page (a password; a session cookie), then its UI connected to deluged. */
async function delugeFirst(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin, run } = e
  await page.goto(`${origin}/`)
  await page.locator('#_password').fill(run.secret)
  const login = delugeCall(page, origin, 'auth.login', (r) => r === true)
  const connected = delugeCall(page, origin, 'web.update_ui', (r) => r?.connected === true)
  await page.locator('#_password').press('Enter')
  await login
  await connected
  const session = (await /** @type {import('playwright-core').BrowserContext} */ (ctx).cookies(`${origin}/json`)).find((c) => c.name === '_session_id')
  assert.ok(session, 'deluge-web set its session cookie')
  e.state.session = session.value
  await page.screenshot({ path: join(ARTIFACTS, 'realapps-deluge.png') })
}

async function delugeAgain(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  const checked = delugeCall(page, origin, 'auth.check_session', () => true)
  const connected = delugeCall(page, origin, 'web.update_ui', (r) => r?.connected === true)
  await page.goto(`${origin}/`)
  assert.equal(await checked, true, 'still logged in: deluge-web knows the session cookie')
  await connected
  assert.equal(await page.locator('#_password').isVisible(), false, 'no login window')
}

/** Cockpit: its shell loads and talks to its bridge over the websocket (strict Origin check). */
async function cockpitFirst(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  await cockpitLoads(e)
  await e.page.screenshot({ path: join(ARTIFACTS, 'realapps-cockpit.png') })
}

async function cockpitLoads(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  /** @type {Promise<import('playwright-core').WebSocket>} */
  const socket = page.waitForEvent('websocket', (ws) => ws.url().startsWith(`${origin.replace(/^http/, 'ws')}/cockpit/socket`))
  await page.goto(`${origin}/`)
  const ws = await socket
  await ws.waitForEvent('framereceived')
  assert.equal(ws.isClosed(), false, 'cockpit accepted the websocket (its Origin check passed)')
  // The overview (a frame of the shell) shows the machine id, which the bridge read and sent
  // over the websocket (or, on a machine without one, its memory use, which came the same way).
  const id = existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() || 'GiB' : 'GiB'
  await page.waitForFunction(
    (want) => [...document.querySelectorAll('iframe')].some((f) => f.contentDocument?.body?.innerText.includes(want)),
    id,
    { timeout: 60_000 },
  )
}

/**
 * Cockpit runs a local session here (no login of its own: a PAM login would need an OS user with
 * a password on the test machine), and Cockpit ends a local session with its last websocket, by
 * design. So after the restart there is no login to keep: Cockpit answers again through the
 * same endpoint with its own login page.
 */
async function cockpitAgain(/** @type {NonNullable<ReturnType<typeof opened.get>>} */ e) {
  const { page, origin } = e
  await page.goto(`${origin}/`)
  await page.locator('#login-user-input').waitFor()
}

const FLOWS = new Map([
  [jupyter, { first: jupyterFirst, again: jupyterAgain }],
  [syncthing, { first: syncthingFirst, again: syncthingAgain }],
  [transmission, { first: transmissionFirst, again: transmissionAgain }],
  [deluge, { first: delugeFirst, again: delugeAgain }],
  [cockpit, { first: cockpitFirst, again: cockpitAgain }],
])

describe('real apps from Debian packages through porthole serve and a real sshd', { timeout: 900_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    tmp = mkdtempSync(join(tmpdir(), 'porthole-e2e-realapps-'))
    home = join(tmp, 'home')
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    const s = await startTestSshd({ bin: rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN), timeoutMs: START_TIMEOUT_MS })
    sshd = s.child
    sshdInfo = s.info
    writeFileSync(join(home, '.ssh/known_hosts'), readFileSync(sshdInfo.knownHosts), { mode: 0o600 })
    porthole = await startServe()
    const p = await api('AddServer', { name: 'lab', host: sshdInfo.host, port: sshdInfo.port, user: sshdInfo.user, keyPath: sshdInfo.clientKey, auth: ['key'], options: {} })
    serverId = p.id
    await api('Connect', serverId)
    browser = await launchChromium()
    ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    ctx.setDefaultTimeout(PAGE_TIMEOUT_MS)
  })

  after(async () => {
    try {
      await browser?.close()
    } finally {
      browser = undefined
      await stop(serve)
      for (const r of running) await stop(r.child)
      sshd?.stdin?.end()
      await stop(sshd)
      writeFileSync(join(ARTIFACTS, 'realapps-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  for (const [app, flow] of FLOWS) {
    test(`${app.name} loads, logs in and makes its API calls through the endpoint`, async (t) => {
      const e = await openRealApp(t, app)
      if (!e) return
      await withShot(app, 'first', async () => {
        await flow.first(e)
        assertNoPortholeErrors(app)
      })
    })
  }

  test('after a restart of porthole serve, every app is still logged in (same browser context)', async (t) => {
    if (opened.size === 0) {
      t.skip('no real app ran')
      return
    }
    // Pages that poll (Syncthing, Transmission, Cockpit) would meet the endpoint while it is
    // down; a user's tab shows the reconnecting page then. Here they wait on a blank page.
    for (const e of opened.values()) await e.page.goto('about:blank')
    await stop(serve)
    phase = 'after restart'
    porthole = await startServe()
    await api('Connect', serverId)
    for (const [app, e] of opened) {
      const o = await api('OpenApp', serverId, e.run.port, '')
      assert.equal(o.localOrigin, e.origin, `${app.name} keeps its endpoint across the restart`)
    }
    for (const [app, e] of opened) {
      await withShot(app, 'again', async () => {
        await /** @type {any} */ (FLOWS.get(app)).again(e)
        assertNoPortholeErrors(app)
      })
      console.log(`e2e: ${app.name} still logged in after the restart`)
    }
  })
})
