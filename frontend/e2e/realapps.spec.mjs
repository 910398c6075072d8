// @ts-check
// End-to-end: real web apps from Debian packages (Jupyter Notebook, Syncthing, Transmission,
// Deluge, Cockpit; see realapps.mjs) on the "server" side, through a real OpenSSH sshd
// (internal/testrig/cmd/testsshd) and a real `porthole serve`, in Debian's chromium. The server is
// this machine: each app listens on 127.0.0.1 only and the browser reaches it only through the
// endpoint Porthole opens for it (its address is read from the API), over SSH. Each app is used
// as a page of its own ("window") and, where it allows, framed by serve's page ("tab").
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
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, sshdWithHome, startPortholeServe, stop } from './harness.mjs'
import { cockpit, cockpitHoldSession, deluge, installed, jupyter, syncthing, transmission } from './realapps.mjs'

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
 * on every page the forward makes itself, e.g. "unreachable", "cross-site"), or ""; authorized:
 * whether the page's request carried an Authorization header.
 * @typedef {{status: number, method: string, url: string, phase: string, porthole: string, authorized: boolean, headers: Record<string, string>}} BadResponse
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
  // A Syncthing without its upgrader (Debian's build, and STNOUPGRADE) answers the GUI's upgrade
  // check with 503 (so does curl, straight to it); the GUI then shows no upgrade notice.
  [syncthing, (r) => r.status === 503 && path(r) === '/rest/system/upgrade' && !!r.headers['x-syncthing-id']],
  // Cockpit's login page, as it loads, asks /cockpit/login without credentials whether a login
  // needs no password (a session or single sign-on: login.js sends the GET with no Authorization
  // and shows the login form on 401). So does curl, straight to cockpit-ws. Only on the first
  // visit: after the restart the page is the shell, as the session holds.
  [cockpit, (r) => r.status === 401 && r.method === 'GET' && path(r) === '/cockpit/login' && !r.authorized && r.phase === 'first start'],
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
 * One way of showing an app. "window": the app is the top-level page, as in the Linux desktop's app
 * views. "tab": the app is framed by serve's page, as a tab of Porthole in a browser (a
 * cross-site frame: its cookies are partitioned under serve's site).
 * @typedef {{mode: 'window' | 'tab', page: import('playwright-core').Page, frame: import('playwright-core').Frame, bad: BadResponse[], notes: string[]}} View
 * @typedef {{app: RealApp, run: RunningApp, origin: string, state: any}} Opened
 */

/** @type {Map<RealApp, Opened>} */
const opened = new Map()
/** @type {{o: Opened, v: View}[]} */
const views = []
/** @type {RunningApp[]} */
const running = []
/** @type {Set<RealApp>} */
const failedToOpen = new Set()

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
  for (const r of running) killGroup(r.child, 'SIGKILL')
  for (const r of running) {
    try {
      r.cleanup?.()
    } catch (err) {
      console.error(`e2e: ${r.name}: ${/** @type {Error} */ (err).message}`)
    }
  }
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
 * Starts app on the server side once (or skips the test where it is not installed and this is not
 * CI), checks the server lists its port and opens it through the API.
 * @param {import('node:test').TestContext} t
 * @param {RealApp} app
 * @returns {Promise<Opened | undefined>}
 */
async function openRealApp(t, app) {
  const known = opened.get(app)
  if (known) return known
  if (failedToOpen.has(app)) throw new Error(`${app.name} did not open in an earlier test (its error is there)`)
  const why = !installed(app) ? `${app.name} is not installed (${[app.bin, ...(app.needs ?? [])].join(', ')}; scripts/deps.sh test installs it)` : app.unavailable?.()
  if (why) {
    if (IN_CI) throw new Error(`${why}: CI must run every real app`)
    t.skip(why)
    return undefined
  }
  failedToOpen.add(app) // until it opened
  const dir = join(tmp, app.pkg)
  mkdirSync(dir, { recursive: true })
  const run = await app.start(dir)
  running.push(run, ...(run.also ?? []))
  // Listed: asked again while a listing fails (it then answers the last good one, with its error;
  // on a loaded machine the scan can time out) or is older than the app.
  /** @type {any} */ let list
  /** @type {any} */ let svc
  for (const deadline = Date.now() + START_TIMEOUT_MS; !svc; ) {
    list = await api('ListApps', serverId)
    svc = list.services.find((/** @type {any} */ s) => s.port === run.port)
    if (svc || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 1_000))
  }
  const listed = JSON.stringify(list.services.map((/** @type {any} */ s) => [s.port, s.kind, s.process?.name]))
  if (!svc && list.error) {
    // The listing itself failed (on a machine at load 20 and more, the login's shell can take
    // longer than the scan may): apps.spec.mjs tests listing; here the app opens by its port.
    console.log(`e2e: WARNING: ${app.name}'s port ${run.port} could not be listed: ${list.error}`)
  } else {
    assert.ok(svc, `${app.name}'s port ${run.port} is listed: ${listed}`)
  }
  const o = await api('OpenApp', serverId, run.port, '')
  const origin = /** @type {string} */ (o.localOrigin)
  assert.match(origin, /^http:\/\/127\.\d+\.\d+\.\d+:\d+$/, 'the app opens on a local loopback endpoint')
  console.log(`e2e: ${app.name} on the server's 127.0.0.1:${run.port} opens on ${origin}${svc ? ` (listed as ${svc.kind}, ${svc.process?.name ?? '?'})` : ''}`)
  const entry = { app, run, origin, state: {} }
  opened.set(app, entry)
  failedToOpen.delete(app)
  return entry
}

/**
 * A page of its own for o in mode, recording every response of 400 and up from the app's origin.
 * @param {Opened} o
 * @param {'window' | 'tab'} mode
 */
async function newView(o, mode) {
  const page = await /** @type {import('playwright-core').BrowserContext} */ (ctx).newPage()
  /** @type {View} */
  const v = { mode, page, frame: page.mainFrame(), bad: [], notes: [] }
  // Kept for a failure's report: the page's errors and every answer from the app.
  page.on('console', (m) => m.type() === 'error' && v.notes.push(`console: ${m.text()}`))
  page.on('pageerror', (err) => v.notes.push(`page error: ${err.message}`))
  page.on('requestfailed', (r) => v.notes.push(`failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`))
  page.on('response', (r) => v.notes.push(`${r.status()} ${r.request().method()} ${r.url()}`))
  page.on('response', (r) => {
    // URL.origin leaves out user info (Transmission's page is opened with its credentials in the URL).
    if (r.status() < 400 || new URL(r.url()).origin !== o.origin) return
    const headers = r.headers()
    const authorized = 'authorization' in r.request().headers()
    v.bad.push({ status: r.status(), method: r.request().method(), url: r.url(), phase, porthole: headers['x-porthole-error'] ?? '', authorized, headers })
  })
  await mount(v)
  views.push({ o, v })
  return v
}

/**
 * A browser context of its own for o, that answers the browser's HTTP auth prompt for o's endpoint
 * (its origin only, and only when the endpoint asks) with the app's login, as a user types it into
 * the prompt. The shared context never has it.
 */
async function promptContext(/** @type {Opened} */ o) {
  const c = await /** @type {import('playwright-core').Browser} */ (browser).newContext({
    viewport: { width: 1200, height: 800 },
    httpCredentials: { username: o.run.user ?? '', password: o.run.secret, origin: o.origin, send: 'unauthorized' },
  })
  c.setDefaultTimeout(PAGE_TIMEOUT_MS)
  return c
}

/** For a tab: serve's page (at serve's current address) with an empty frame that fills it. */
async function mount(/** @type {View} */ v) {
  if (v.mode === 'window') return
  await v.page.goto(`${porthole.origin}/`)
  await v.page.evaluate(() => {
    document.body.replaceChildren()
    const f = document.createElement('iframe')
    f.name = 'porthole-e2e-tab'
    f.style.cssText = 'position:fixed;inset:0;width:100vw;height:100vh;border:0'
    document.body.append(f)
  })
  const f = v.page.frame({ name: 'porthole-e2e-tab' })
  assert.ok(f, 'the tab frame is there')
  v.frame = f
}

/** Fails on the view's responses of 400 and up that the app does not expect; logs the expected ones. */
function assertNoPortholeErrors(/** @type {Opened} */ o, /** @type {View} */ v) {
  const expected = EXPECTED.get(o.app) ?? (() => false)
  const ok = (/** @type {BadResponse} */ r) => r.porthole === '' && expected(r)
  const fine = v.bad.filter(ok)
  const wrong = v.bad.filter((r) => !ok(r)).map(({ headers, ...r }) => r)
  if (fine.length) console.log(`e2e: ${o.app.name} (${v.mode}): ${fine.length} answer(s) ≥ 400 the app expects, e.g. ${fine[0].status} ${fine[0].method} ${path(fine[0])}`)
  assert.deepEqual(wrong, [], `${o.app.name} in a ${v.mode} got answers ≥ 400 it does not expect (serve's log: ${join(ARTIFACTS, 'realapps-serve.log')})`)
}

async function withShot(/** @type {Opened} */ o, /** @type {View} */ v, /** @type {string} */ step, /** @type {() => Promise<void>} */ body) {
  try {
    await body()
  } catch (err) {
    await v.page.screenshot({ path: join(ARTIFACTS, `failed-realapps-${o.app.pkg}-${v.mode}-${step}.png`) }).catch(() => {})
    console.log(`${o.run.log().slice(-4_000)}\n--- the ${v.mode}'s last events\n${v.notes.slice(-40).join('\n')}`)
    throw err
  }
}

/** A response of the app at origin with this path and status 200. */
function ok200(/** @type {import('playwright-core').Response} */ r, /** @type {string} */ origin, /** @type {string} */ pathname) {
  const u = new URL(r.url())
  return u.origin === origin && u.pathname === pathname && r.status() === 200
}

// ---- each app: first visit (login, use) and the visit after a restart of Porthole ----

/** Jupyter: log in with the token on its own login page, then run a cell in a kernel (websocket). */
async function jupyterFirst(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { frame } = v
  await frame.goto(`${o.origin}/tree`)
  await frame.waitForURL(/\/login\?next=/)
  await frame.locator('#password_input').fill(o.run.secret)
  await frame.locator('#login_submit').click()
  await frame.waitForURL(`${o.origin}/tree`)
  await frame.locator('#notebook_list').getByText('realapps.ipynb').waitFor()
  // The kernel keeps x between runs and views: each run adds one.
  o.state.x = (o.state.x ?? 41) + 1
  await runCell(o, v, `x = ${o.state.x}\nprint(f"answer={x}")`, `answer=${o.state.x}`)
}

/** Opens the test notebook, waits for its kernel's websocket, sets the first cell's text, runs it with Shift+Enter and waits for out. */
async function runCell(/** @type {Opened} */ o, /** @type {View} */ v, /** @type {string} */ code, /** @type {string} */ out) {
  const { page, frame } = v
  const sockets = /** @type {string[]} */ ([])
  const onSocket = (/** @type {import('playwright-core').WebSocket} */ ws) => sockets.push(ws.url())
  page.on('websocket', onSocket)
  await frame.goto(`${o.origin}/notebooks/realapps.ipynb`)
  await frame.waitForFunction(() => /** @type {any} */ (window).Jupyter?.notebook?.kernel?.is_connected?.() === true, null, { timeout: 60_000 })
  await frame.evaluate((c) => /** @type {any} */ (window).Jupyter.notebook.get_cell(0).set_text(c), code)
  await frame.locator('.code_cell .CodeMirror').first().click()
  await page.keyboard.press('Shift+Enter')
  await frame.locator('.code_cell .output_area pre').first().filter({ hasText: out }).waitFor({ timeout: 60_000 })
  page.off('websocket', onSocket)
  assert.ok(
    sockets.some((u) => u.startsWith(`${o.origin.replace(/^http/, 'ws')}/api/kernels/`)),
    `the kernel's channels went over a websocket to the endpoint: ${JSON.stringify(sockets)}`,
  )
}

async function jupyterAgain(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { frame } = v
  await frame.goto(`${o.origin}/tree`)
  await frame.locator('#notebook_list').getByText('realapps.ipynb').waitFor()
  assert.equal(frame.url(), `${o.origin}/tree`, 'still logged in: no login page')
  // The same kernel (x is still defined), reached again over a new websocket.
  o.state.x += 1
  await runCell(o, v, `x += 1\nprint(f"again={x}")`, `again=${o.state.x}`)
}

/** The CSRF cookie Syncthing's GUI reads (the view's own: a tab's is partitioned under serve's site). */
async function syncthingCsrf(/** @type {View} */ v) {
  const c = await v.frame.evaluate(() => document.cookie)
  return /(?:^|;\s*)(CSRF-Token-[^=]+=[^;]+)/.exec(c)?.[1] ?? ''
}

/** Syncthing: its GUI loads, and its API calls (each with the CSRF token from its cookie) succeed. */
async function syncthingFirst(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { page, frame } = v
  const status = page.waitForResponse((r) => ok200(r, o.origin, '/rest/system/status'))
  await frame.goto(`${o.origin}/`)
  await status
  await frame.getByText('porthole-realapps').first().waitFor()
  const csrf = await syncthingCsrf(v)
  assert.ok(csrf, 'syncthing set its CSRF cookie')
  o.state[`csrf-${v.mode}`] = csrf
  const n = v.bad.length
  const sent = await frame.evaluate(() => fetch('/rest/system/version').then((r) => r.status))
  assert.equal(sent, 403, 'control: an API call without the CSRF header is refused by syncthing itself')
  await new Promise((r) => setTimeout(r, 200))
  v.bad.splice(n) // that 403 answered the test's own call
}

async function syncthingAgain(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { page, frame } = v
  const status = page.waitForResponse((r) => ok200(r, o.origin, '/rest/system/status'))
  const nav = page.waitForRequest((r) => r.url() === `${o.origin}/` && r.isNavigationRequest())
  await frame.goto(`${o.origin}/`)
  // The browser kept the cookie and sends it (Porthole's part). Whether Syncthing keeps that token
  // or hands out a new one is its own choice (it keeps a short, reordered list of tokens; in a
  // tab after the restart it sometimes answers with a new one), so what must hold after that is
  // that its API calls succeed.
  const sent = (await (await nav).allHeaders()).cookie ?? ''
  assert.ok(sent.split(/;\s*/).includes(o.state[`csrf-${v.mode}`]), `the ${v.mode} sends its CSRF cookie after the restart: ${sent}`)
  await status
  await frame.getByText('porthole-realapps').first().waitFor()
}

/** Transmission: basic auth (credentials given once, in the URL, as a user may type them), then its RPC (409 handshake). */
async function transmissionFirst(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { page, frame } = v
  const u = new URL(`${o.origin}/transmission/web/`)
  u.username = o.run.user ?? ''
  u.password = o.run.secret
  const rpc = page.waitForResponse((r) => ok200(r, o.origin, '/transmission/rpc'))
  await frame.goto(u.href)
  await rpc
  assert.equal(await frame.title(), 'Transmission Web Interface')
  await frame.locator('#filter-count').filter({ hasText: /Transfer/ }).waitFor()
}

async function transmissionAgain(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { page, frame } = v
  const rpc = page.waitForResponse((r) => ok200(r, o.origin, '/transmission/rpc'))
  const res = await frame.goto(`${o.origin}/transmission/web/`)
  assert.equal(res?.status(), 200, 'the browser still has the basic-auth login for the endpoint (same origin after the restart)')
  await rpc
  await frame.locator('#filter-count').filter({ hasText: /Transfer/ }).waitFor()
}

/**
 * Waits for the answer to the page's own JSON-RPC call of method (Deluge) with HTTP 200 and a
 * result that ok accepts; resolves to that result.
 * @param {Opened} o
 * @param {View} v
 * @param {string} method
 * @param {(result: any) => boolean} ok
 */
async function delugeCall(o, v, method, ok) {
  /** @type {any} */ let result
  await v.page.waitForResponse(
    async (r) => {
      if (!ok200(r, o.origin, '/json') || r.request().postDataJSON()?.method !== method) return false
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
async function delugeFirst(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { frame } = v
  await frame.goto(`${o.origin}/`)
  await frame.locator('#_password').fill(o.run.secret)
  const login = delugeCall(o, v, 'auth.login', (r) => r === true)
  const connected = delugeCall(o, v, 'web.update_ui', (r) => r?.connected === true)
  await frame.locator('#_password').press('Enter')
  await login
  await connected
}

async function delugeAgain(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { frame } = v
  const checked = delugeCall(o, v, 'auth.check_session', () => true)
  const connected = delugeCall(o, v, 'web.update_ui', (r) => r?.connected === true)
  await frame.goto(`${o.origin}/`)
  assert.equal(await checked, true, 'still logged in: deluge-web knows the session cookie')
  await connected
  assert.equal(await frame.locator('#_password').isVisible(), false, 'no login window')
}

/**
 * The next Cockpit socket of v's page (a websocket to /cockpit/socket of o's origin) and its first
 * message, listened for from the socket's start. Fails after 60 s without one (e.g. the page
 * stayed on the login page).
 * @returns {Promise<{ws: import('playwright-core').WebSocket, first: Promise<string>}>}
 */
function cockpitSocket(/** @type {Opened} */ o, /** @type {View} */ v) {
  const want = `${o.origin.replace(/^http/, 'ws')}/cockpit/socket`
  return new Promise((resolveSocket, reject) => {
    const timer = setTimeout(() => {
      v.page.off('websocket', on)
      reject(new Error(`no websocket to ${want} within 60 s`))
    }, 60_000)
    const on = (/** @type {import('playwright-core').WebSocket} */ ws) => {
      if (!ws.url().startsWith(want)) return
      v.page.off('websocket', on)
      clearTimeout(timer)
      const first = new Promise((r) => ws.once('framereceived', (f) => r(String(f.payload))))
      resolveSocket({ ws, first: /** @type {Promise<string>} */ (first) })
    }
    v.page.on('websocket', on)
  })
}

/**
 * Waits for Cockpit's socket to answer: its first message is Cockpit's "init", which names a
 * problem ("no-session", "authentication-failed", …) when the login did not hold. Then the
 * overview (a frame of the shell) shows the machine id, which the bridge read and sent over the
 * socket (or, on a machine without one, its memory use, which came the same way).
 */
async function cockpitOverview(/** @type {View} */ v, /** @type {ReturnType<typeof cockpitSocket>} */ socket) {
  const { ws, first } = await socket
  const init = await first
  assert.match(init, /"command":"init"/, 'Cockpit\'s socket begins with its init')
  assert.doesNotMatch(init, /"problem"/, 'Cockpit\'s socket has a session (its Origin check passed, the login holds)')
  assert.equal(ws.isClosed(), false, 'cockpit kept the websocket open')
  await v.frame.waitForFunction(
    (want) => Array.from(document.querySelectorAll('iframe')).some((f) => f.contentDocument?.body?.innerText.includes(want)),
    machineIdOrMemory(),
    { timeout: 60_000 },
  )
  assert.equal(await v.frame.locator('#login-user-input').count(), 0, 'the shell, not the login page')
}

/**
 * Cockpit: its own login page (a PAM login as the throwaway user), then its shell, which talks to
 * its bridge over the websocket (strict Origin check). Then the session is held open (see
 * cockpitAgain) with its cookie, which the browser keeps for the endpoint.
 */
async function cockpitFirst(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { frame } = v
  await frame.goto(`${o.origin}/`)
  await frame.locator('#login-user-input').fill(o.run.user ?? '')
  await frame.locator('#login-password-input').fill(o.run.secret)
  const socket = cockpitSocket(o, v)
  await frame.locator('#login-button').click()
  await cockpitOverview(v, socket)
  const cookie = (await /** @type {import('playwright-core').BrowserContext} */ (ctx).cookies(o.origin)).find((c) => c.name === 'cockpit')
  assert.ok(cookie?.value, 'Cockpit set its session cookie for the endpoint')
  o.state.cookie = cookie.value
  o.state.hold = await cockpitHoldSession(o.run.port, `cockpit=${cookie.value}`)
}

/**
 * Cockpit ends a login's session 15 s after the session's last websocket closed (while one is
 * open, the session holds): cockpit-ws (src/ws/cockpitauth.c, cockpit_ws_service_idle = 15, "Timeout of authenticated
 * session when no connections"; not a setting: cockpitws.h lists it among "tunables that can be
 * set from tests"; cockpit.conf's [Session] IdleTimeout is the shell's logout after minutes of no
 * user input, another matter). Straight to cockpit-ws, without Porthole: a login with curl holds
 * while a websocket of its cookie is open (200 from /cockpit/login after 30 s), and after that
 * socket closed it still holds at 12 s and is gone at 20 s (401). Cockpit's maintainers say the
 * same (cockpit-project/cockpit discussion #16610: "the session should time out automatically
 * after some 20 seconds"). A restart of Porthole closes the page's socket like any outage, and
 * this suite parks every page for minutes before the restart: so cockpitFirst holds the session
 * with a socket straight to cockpit-ws, as another open Cockpit page of the user would, and
 * what is tested here is Porthole's part: the browser keeps the session cookie for the endpoint
 * (same origin after the restart) and sends it through the new serve, and Cockpit takes it: the
 * shell, not the login page, with a working socket. Then the control: with the holder closed
 * and the page gone, Cockpit itself ends the session (straight, by the cookie), which is why
 * the holder is there; if Cockpit stops doing that, this fails and the holder can go.
 */
async function cockpitAgain(/** @type {Opened} */ o, /** @type {View} */ v) {
  const { page, frame } = v
  const nav = page.waitForRequest((r) => r.url() === `${o.origin}/` && r.isNavigationRequest())
  const socket = cockpitSocket(o, v)
  await frame.goto(`${o.origin}/`)
  const sent = (await (await nav).allHeaders()).cookie ?? ''
  assert.ok(sent.split(/;\s*/).includes(`cockpit=${o.state.cookie}`), 'the window sends the same Cockpit cookie after the restart')
  // The shell's socket, or else Cockpit's login form (the session did not hold): whichever comes.
  const loginForm = frame
    .locator('#login-user-input')
    .waitFor({ state: 'visible', timeout: 60_000 })
    .then(
      () => Promise.reject(new Error('Cockpit shows its login page after the restart: the login did not hold')),
      () => new Promise(() => {}), // no login form: the socket decides
    )
  await cockpitOverview(v, Promise.race([socket, loginForm]))
  await page.goto('about:blank')
  o.state.hold.close()
  o.state.hold = undefined
  const straight = `http://127.0.0.1:${o.run.port}/cockpit/login`
  const t0 = Date.now()
  for (;;) {
    const res = await fetch(straight, { headers: { cookie: `cockpit=${o.state.cookie}` }, signal: AbortSignal.timeout(10_000) })
    if (res.status === 401) break
    assert.equal(res.status, 200, 'Cockpit answers the session check straight: 200 while it holds')
    assert.ok(Date.now() - t0 < 120_000, 'Cockpit ends the session by itself once no socket of it is open (within 2 min; its rule is 15 s)')
    await new Promise((r) => setTimeout(r, 1_000))
  }
  console.log(`e2e: Cockpit ended its session by itself ${Math.round((Date.now() - t0) / 1000)} s after its last socket closed (control for the holder)`)
}

/** What Cockpit's overview shows once its bridge answered: the machine id, or its memory use. */
function machineIdOrMemory() {
  return existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() || 'GiB' : 'GiB'
}

/**
 * How each app is used, and in which views. Two are opened in a window only:
 * - Transmission's login is HTTP basic auth, and Chromium gives a cross-site frame no way to
 *   log in with it: it shows no login prompt for the frame (Chromium 156, also headful and without
 *   automation: the frame shows the 401 page, while the same page at the top level or in a
 *   same-site frame gets the prompt; Chrome's policy template describes this default under
 *   AllowCrossOriginAuthPrompt: unset, "third-party sub-content" may not pop up the dialog); it
 *   keeps a login given at the top level apart from the frame (its auth cache is partitioned by
 *   the top-level site, like cookies); and a frame may not be loaded from a URL with credentials.
 *   So in a tab Porthole's forward answers the framed page's 401 with a page of its own that
 *   says so and opens the app in a browser tab of its own, where the browser asks; the test of
 *   that (below the loop) fails when Chromium changes, and then the tab belongs here.
 * - Cockpit's shell needs localStorage, which Playwright's Chromium denies to cross-site frames
 *   (it turns storage partitioning off; Chrome as users run it partitions it).
 * @type {Map<RealApp, {modes: ('window' | 'tab')[], first: (o: Opened, v: View) => Promise<void>, again: (o: Opened, v: View) => Promise<void>}>}
 */
const FLOWS = new Map([
  [jupyter, { modes: ['window', 'tab'], first: jupyterFirst, again: jupyterAgain }],
  [syncthing, { modes: ['window', 'tab'], first: syncthingFirst, again: syncthingAgain }],
  [transmission, { modes: ['window'], first: transmissionFirst, again: transmissionAgain }],
  [deluge, { modes: ['window', 'tab'], first: delugeFirst, again: delugeAgain }],
  [cockpit, { modes: ['window'], first: cockpitFirst, again: cockpitAgain }],
])

describe('real apps from Debian packages through porthole serve and a real sshd', { timeout: 900_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    ;({ tmp, home, sshd, info: sshdInfo } = await sshdWithHome({ repo, prefix: 'porthole-e2e-realapps-', timeoutMs: START_TIMEOUT_MS }))
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
      for (const o of opened.values()) o.state.hold?.close()
      await stop(serve)
      for (const r of running) await stop(r.child)
      sshd?.stdin?.end()
      await stop(sshd)
      writeFileSync(join(ARTIFACTS, 'realapps-serve.log'), serveStderr())
      for (const r of running) writeFileSync(join(ARTIFACTS, `realapps-${r.name}.log`), r.log())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
      // The throwaway user goes last (once its processes are stopped), and once only.
      for (const r of running.splice(0)) r.cleanup?.()
    }
  })

  // REALAPPS_ONLY=syncthing,cockpit-ws (apt package names) runs only those, for a quick look at
  // one app; never in CI.
  const only = IN_CI ? [] : (process.env.REALAPPS_ONLY ?? '').split(',').filter(Boolean)
  for (const [app, flow] of FLOWS) {
    if (only.length && !only.includes(app.pkg)) continue
    for (const mode of flow.modes) {
      test(`${app.name} in a ${mode}: loads, logs in and makes its API calls through the endpoint`, async (t) => {
        const o = await openRealApp(t, app)
        if (!o) return
        const v = await newView(o, mode)
        await withShot(o, v, 'first', async () => {
          await flow.first(o, v)
          assertNoPortholeErrors(o, v)
        })
        await v.page.screenshot({ path: join(ARTIFACTS, `realapps-${app.pkg}-${mode}.png`) })
        // Parked until the restart test, so that each test sees its own view's traffic only.
        // (Left polling, Syncthing's window once got 403 "CSRF Error" answers from Syncthing
        // itself while its tab was in use, in a run with a build that passed Host through
        // unchanged; Syncthing keeps only a short list of CSRF tokens. Not analyzed further.)
        await v.page.goto('about:blank')
      })
    }
  }

  // Transmission in a tab, as a user of Chrome meets it (see FLOWS): the browser context answers
  // the login prompt for the endpoint whenever Chromium shows one, as a user would. Chromium shows
  // none for a cross-site frame, so Porthole's forward answers the framed page's 401 with a page of
  // its own that says so and opens the app in a tab of its own, where the browser asks. If
  // Chromium ever asks inside the frame, the first assertion fails: then test Transmission's tab
  // in FLOWS instead.
  if (!only.length || only.includes(transmission.pkg)) {
    test('Transmission in a tab: Porthole says it asks for a login and opens it in a tab of its own, where the browser asks', async (t) => {
      const o = await openRealApp(t, transmission)
      if (!o) return
      const c = await promptContext(o)
      /** @type {View} */
      const v = { mode: 'tab', page: await c.newPage(), frame: /** @type {any} */ (undefined), bad: [], notes: [] }
      v.frame = v.page.mainFrame()
      /** @type {string[]} */
      const framedRpc = [] // RPC calls made from a frame (none: the frame never gets the web client)
      v.page.on('request', (r) => r.url() === `${o.origin}/transmission/rpc` && r.frame().parentFrame() && framedRpc.push(r.url()))
      v.page.on('response', (r) => v.notes.push(`${r.status()} ${r.request().method()} ${r.url()}`))
      try {
        await withShot(o, v, 'tab-login', async () => {
          await mount(v)
          const res = await v.frame.goto(`${o.origin}/transmission/web/`)
          const headers = res?.headers() ?? {}
          const text = await v.frame.locator('body').innerText()
          assert.equal(res?.status(), 401, `Chromium asked for the login inside the cross-site frame (then test Transmission's tab in FLOWS): ${text}`)
          assert.equal(headers['x-porthole-error'], 'login-in-frame', `Porthole's page, not Transmission's bare 401: ${text}`)
          assert.equal(headers['www-authenticate'], undefined, 'no challenge the browser would ignore here')
          assert.match(text, /asks you to log in/, 'the page says what happened')
          // The user clicks "Open in a new tab": the browser asks there (the context answers) and
          // Transmission's web client logs in and makes its RPC calls.
          const popupP = c.waitForEvent('page')
          await v.frame.locator('a.open').click()
          const popup = await popupP
          popup.on('response', (r) => v.notes.push(`${r.status()} ${r.request().method()} ${r.url()} (its tab)`))
          const called = popup.waitForResponse((r) => ok200(r, o.origin, '/transmission/rpc'))
          called.catch(() => {}) // awaited below; a failed assertion first must not hide behind it
          await popup.waitForLoadState('domcontentloaded')
          assert.equal(new URL(popup.url()).origin, o.origin, `the new tab shows the app's endpoint: ${popup.url()}`)
          await called
          await popup.locator('#filter-count').filter({ hasText: /Transfer/ }).waitFor()
          await popup.screenshot({ path: join(ARTIFACTS, `realapps-${o.app.pkg}-tab-opened.png`) })
          assert.deepEqual(framedRpc, [], 'the frame made no RPC call')
          await popup.close()
        })
        console.log(`e2e: ${o.app.name} in a tab: Porthole's page opened it in a tab of its own, which logged in and made its RPC calls`)
      } finally {
        await c.close()
      }
    })
  }

  test('after a restart of porthole serve, every app is still logged in (same browser context)', async (t) => {
    if (views.length === 0) {
      t.skip('no real app ran')
      return
    }
    // Every view waits on a blank page (see above): pages that poll would meet the endpoint while
    // it is down, where a user's tab shows the reconnecting page.
    await stop(serve)
    phase = 'after restart'
    porthole = await startServe()
    await api('Connect', serverId)
    for (const o of opened.values()) {
      const again = await api('OpenApp', serverId, o.run.port, '')
      assert.equal(again.localOrigin, o.origin, `${o.app.name} keeps its endpoint across the restart`)
    }
    for (const { o, v } of views) {
      await withShot(o, v, 'again', async () => {
        await mount(v) // a tab: serve's page at its new address
        await /** @type {any} */ (FLOWS.get(o.app)).again(o, v)
        assertNoPortholeErrors(o, v)
      })
      console.log(`e2e: ${o.app.name} in a ${v.mode}: still logged in after the restart`)
    }
  })
})
