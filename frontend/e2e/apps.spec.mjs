// @ts-check
// End-to-end: web apps of a server through a real `porthole serve`, a real OpenSSH sshd
// (internal/testrig/cmd/testsshd) and the test web app on the "server side"
// (internal/testrig/cmd/testwebapp: X-Frame-Options: DENY, a websocket echo and a cookie), in
// Debian's chromium. The server is this machine: the app listens on 127.0.0.1 and the browser
// reaches it only through the login's endpoint (127.0.0.2:…), over SSH.
//
//   npm run e2e
//   sh e2e/keyring-session.sh node --test e2e/apps.spec.mjs
//
// The UI is driven through its API (OpenApp, ParseAppURL, …) and the app's localUrl is loaded in
// a page, as a tab would. Needs PORTHOLE_BIN (default ../build/bin/porthole); TESTSSHD_BIN and
// TESTWEBAPP_BIN default to `go build`s of the test rig's commands.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, nextJsonLine, rigBinary, startPortholeServe, startTestSshd, stop } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const START_TIMEOUT_MS = 60_000
const PAGE_TIMEOUT_MS = 20_000
const APP_TITLE = 'Porthole test app'

/** @typedef {{addr: string, host: string, port: number, user: string, knownHosts: string, clientKey: string, event: string}} SshdInfo */

/** @type {import('node:child_process').ChildProcess | undefined} */ let sshd
/** @type {import('node:readline').Interface | undefined} */ let sshdLines
/** @type {SshdInfo} */ let sshdInfo
/** @type {import('node:child_process').ChildProcess | undefined} */ let webapp
/** @type {import('node:child_process').ChildProcess | undefined} */ let serve
/** @type {import('node:http').Server | undefined} */ let foreign
let foreignOrigin = ''
let webPort = 0
let serveStderr = () => ''
let sshdStderr = () => ''
let tmp = ''
let home = ''
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
/** @type {import('playwright-core').Browser | undefined} */ let browser
/** @type {import('playwright-core').BrowserContext | undefined} */ let ctx

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
  killGroup(webapp, 'SIGKILL')
})

/** The next JSON line testsshd prints. */
function nextSshdInfo() {
  return /** @type {Promise<SshdInfo>} */ (nextJsonLine(sshdLines, START_TIMEOUT_MS, sshdStderr))
}

/** Sends testsshd a command (stop, start, restart) and waits for its answer. */
async function sshdCommand(/** @type {string} */ cmd, /** @type {string} */ event) {
  const next = nextSshdInfo()
  sshd?.stdin?.write(`${cmd}\n`)
  const info = await next
  assert.equal(info.event, event)
  return info
}

async function startSshd() {
  const s = await startTestSshd({ bin: rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN), timeoutMs: START_TIMEOUT_MS })
  ;({ child: sshd, lines: sshdLines, stderr: sshdStderr } = s)
  return /** @type {SshdInfo} */ (s.info)
}

/** The test web app on the server's loopback, in a process of its own (it dies with stdin). */
async function startWebApp() {
  const bin = rigBinary(repo, tmp, 'testwebapp', process.env.TESTWEBAPP_BIN)
  const child = spawn(bin, ['-stdin'], { stdio: ['pipe', 'pipe', 'inherit'], detached: true })
  webapp = child
  const lines = createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) })
  const first = await new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error('testwebapp printed no URL')), START_TIMEOUT_MS)
    lines.once('line', (l) => {
      clearTimeout(timer)
      resolveLine(l)
    })
    child.once('exit', (c, s) => reject(new Error(`testwebapp exited (${c ?? s})`)))
  })
  const m = /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(first).trim())
  assert.ok(m, `testwebapp printed ${first}`)
  return Number(m[1])
}

/** Starts `porthole serve` with the shared throwaway HOME (a restart sees the same files). */
async function startServe() {
  const s = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

/** Calls an App method over HTTP; a failure throws with its status. */
async function api(/** @type {string} */ method, /** @type {unknown[]} */ ...args) {
  return callApi(porthole, method, ...args)
}

/** Adds a server that logs in with testsshd's client key (no question, also when reconnecting). */
async function addServer(/** @type {string} */ name) {
  const p = await api('AddServer', { name, host: sshdInfo.host, port: sshdInfo.port, user: sshdInfo.user, keyPath: sshdInfo.clientKey, auth: ['key'], options: {} })
  return /** @type {string} */ (p.id)
}

/** The JSON the app's /cookie answers, fetched by a top-level page load (as a tab would). */
async function cookieAt(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ origin) {
  await page.goto(`${origin}/cookie`)
  return JSON.parse(await page.locator('body').innerText())
}

async function withShot(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ name, /** @type {() => Promise<void>} */ body) {
  try {
    await body()
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, `failed-apps-${name}.png`) }).catch(() => {})
    throw err
  }
}

describe('web apps of a server through porthole serve and a real sshd', { timeout: 300_000 }, () => {
  /** @type {import('playwright-core').Page} */
  let page
  let idA = ''
  let idB = ''
  /** @type {{localUrl: string, localOrigin: string, remoteUrl: string, title: string}} */
  let openedA = { localUrl: '', localOrigin: '', remoteUrl: '', title: '' }
  let sessionA = ''

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    tmp = mkdtempSync(join(tmpdir(), 'porthole-e2e-apps-'))
    home = join(tmp, 'home')
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    sshdInfo = await startSshd()
    // The host key is known (adding servers is tested elsewhere).
    writeFileSync(join(home, '.ssh/known_hosts'), readFileSync(sshdInfo.knownHosts), { mode: 0o600 })
    webPort = await startWebApp()
    console.log(`e2e: sshd on ${sshdInfo.addr}, test web app on the server's 127.0.0.1:${webPort}`)
    foreign = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      res.end(`<!doctype html><title>another site</title><iframe id="f" src="${decodeURIComponent((req.url || '/').slice(1))}"></iframe>`)
    })
    await new Promise((r) => foreign?.listen(0, '127.0.0.1', () => r(undefined)))
    const fa = /** @type {import('node:net').AddressInfo} */ (foreign.address())
    foreignOrigin = `http://127.0.0.1:${fa.port}`
    porthole = await startServe()
    browser = await launchChromium()
    ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } })
    ctx.setDefaultTimeout(PAGE_TIMEOUT_MS)
    page = await ctx.newPage()
  })

  after(async () => {
    try {
      await browser?.close()
    } finally {
      browser = undefined
      await stop(serve)
      sshd?.stdin?.end()
      await stop(sshd)
      webapp?.stdin?.end()
      await stop(webapp)
      await new Promise((r) => (foreign ? foreign.close(() => r(undefined)) : r(undefined)))
      writeFileSync(join(ARTIFACTS, 'apps-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('1. the server lists the app; it opens on the login\'s own address; page, websocket and cookie work', async () => {
    await withShot(page, 'open', async () => {
      idA = await addServer('lab A')
      await assert.rejects(api('ListApps', idA), (/** @type {any} */ e) => e.status === 409 && /Connect to lab A first/.test(e.message))
      await api('Connect', idA)
      const list = await api('ListApps', idA)
      const svc = list.services.find((/** @type {any} */ s) => s.port === webPort)
      assert.ok(svc, `port ${webPort} is listed: ${JSON.stringify(list.services.map((/** @type {any} */ s) => [s.port, s.kind, s.process?.name]))}`)
      assert.equal(svc.isWeb, true)
      assert.equal(svc.kind, 'http')
      assert.equal(svc.process?.name, 'testwebapp')
      assert.ok(!list.services.some((/** @type {any} */ s) => s.port === sshdInfo.port), 'the sshd Porthole came in through is not listed')

      openedA = await api('OpenApp', idA, webPort, '')
      const local = new URL(openedA.localOrigin)
      // An address of the app's own (127.N.A.1: "separate cookies per app", on by default).
      assert.match(local.hostname, /^127\.([1-9]\d*)\.\d+\.\d+$/, `a per-app loopback address, got ${local.hostname}`)
      assert.equal(openedA.remoteUrl, `http://localhost:${webPort}/`)
      console.log(`e2e: lab A's app on ${openedA.localOrigin}`)

      await page.goto(openedA.localUrl)
      assert.equal(await page.title(), APP_TITLE)
      const echo = await page.evaluate(
        () =>
          new Promise((resolveEcho, reject) => {
            const ws = new WebSocket(`ws://${location.host}/ws`)
            ws.onopen = () => ws.send('hello through porthole')
            ws.onmessage = (e) => {
              resolveEcho(e.data)
              ws.close()
            }
            ws.onerror = () => reject(new Error('websocket error'))
            setTimeout(() => reject(new Error('no echo within 10 s')), 10_000)
          }),
      )
      assert.equal(echo, 'hello through porthole')
      const c1 = await cookieAt(page, openedA.localOrigin)
      const c2 = await cookieAt(page, openedA.localOrigin)
      assert.ok(c1.session, 'the app set its session cookie')
      assert.equal(c2.received, c1.session, 'the browser sends the cookie back')
      sessionA = c1.session
      await page.goto(openedA.localUrl)
      await page.screenshot({ path: join(ARTIFACTS, 'apps-app.png') })
    })
  })

  test('2. serve\'s page may frame the app; another origin may not', async () => {
    await withShot(page, 'frame', async () => {
      // Porthole's own page (serve) frames it, as a tab does.
      await page.goto(`${porthole.origin}/`)
      await page.evaluate((src) => {
        const f = document.createElement('iframe')
        f.id = 'e2e-app-frame'
        f.src = src
        document.body.append(f)
      }, openedA.localUrl)
      const framed = page.frameLocator('#e2e-app-frame')
      await framed.locator('h1').filter({ hasText: APP_TITLE }).waitFor()
      // A tab is a cross-site frame: Chromium sends it no SameSite=Lax cookie and, by default, no
      // unpartitioned third-party cookie. The web forward makes the app's cookies partitioned
      // (SameSite=None; Secure; Partitioned), so the app in a tab keeps its login.
      const inFrame = page.frames().find((f) => f.url().startsWith(openedA.localOrigin))
      assert.ok(inFrame, 'the app is in a frame of serve\'s page')
      const first = await inFrame.evaluate(() => fetch('/cookie').then((r) => r.json()))
      const again = await inFrame.evaluate(() => fetch('/cookie').then((r) => r.json()))
      assert.ok(first.session, 'the framed app set its cookie')
      assert.equal(again.received, first.session, 'the framed app gets its cookie back')
      await inFrame.goto(`${openedA.localOrigin}/cookie`)
      const nav = JSON.parse(await page.frameLocator('#e2e-app-frame').locator('body').innerText())
      assert.equal(nav.received, first.session, 'a navigation inside the tab sends the cookie too')
      console.log(`e2e: inside serve's page, the framed app keeps its cookie ${first.session.slice(0, 8)}… (partitioned; top-level session ${sessionA.slice(0, 8)}…)`)

      // Another site cannot: the app sends X-Frame-Options: DENY itself, and Porthole replaces it
      // with frame-ancestors limited to the app, Porthole's window and serve's page.
      await page.goto(`${foreignOrigin}/${encodeURIComponent(openedA.localUrl)}`)
      await page.waitForLoadState('load')
      await page.waitForTimeout(500)
      const child = page.frames().find((f) => f !== page.mainFrame())
      assert.ok(child, 'the foreign page has its iframe')
      const childTitle = await child.title().catch(() => '')
      assert.notEqual(childTitle, APP_TITLE, 'the app must not render inside another site')
      assert.ok(!child.url().startsWith(openedA.localOrigin) || childTitle === '', `blocked frame url ${child.url()}`)
      await page.screenshot({ path: join(ARTIFACTS, 'apps-foreign-frame.png') })
    })
  })

  test('2b. a page of another local program on 127.0.0.1 cannot make the browser send the app\'s cookie', async () => {
    await withShot(page, 'partition', async () => {
      // What the browser itself sends (the web forward refuses cross-site requests before the app
      // sees them, so the app cannot tell): Playwright reports each request's headers as sent.
      const cookieSent = async (/** @type {string} */ url, /** @type {() => Promise<unknown>} */ start) => {
        const req = page.waitForRequest((r) => r.url() === url)
        await start()
        const h = await (await req).allHeaders()
        return /(?:^|;\s*)porthole_session=([^;]*)/.exec(h.cookie ?? '')?.[1] ?? ''
      }
      // Control: inside serve's page, the framed app's requests carry its partitioned cookie.
      await page.goto(`${porthole.origin}/`)
      const inServe = await cookieSent(`${openedA.localOrigin}/cookie?from=serve`, () =>
        page.evaluate((src) => {
          const f = document.createElement('iframe')
          f.src = src
          document.body.append(f)
        }, `${openedA.localOrigin}/cookie?from=serve`),
      )
      assert.ok(inServe, 'the app framed in serve\'s page gets its cookie (the observation works)')

      // Another program's page on 127.0.0.1 (a dev server): it frames the app and fetches from it
      // with credentials. The apps' cookies are partitioned by the top-level site, the page's IP
      // without its port, so with serve's page on 127.0.0.1 too (PORTHOLE_E2E_SERVE_ADDR=127.0.0.1:0)
      // the frame's request carries the cookie and this test fails. (The top-level fetch does not,
      // in Chromium 156: the partition also records that the cookie was set in a cross-site frame.)
      const framedUrl = `${openedA.localOrigin}/cookie?from=foreign-frame`
      const framed = await cookieSent(framedUrl, () => page.goto(`${foreignOrigin}/${encodeURIComponent(framedUrl)}`))
      const fetchedUrl = `${openedA.localOrigin}/cookie?from=foreign-fetch`
      const fetched = await cookieSent(fetchedUrl, () => page.evaluate((u) => fetch(u, { credentials: 'include', mode: 'no-cors' }).catch(() => {}), fetchedUrl))
      assert.deepEqual({ framed, fetched }, { framed: '', fetched: '' }, `the page on ${foreignOrigin} made the browser send the app's cookie (serve on ${porthole.origin})`)
      console.log(`e2e: serve on ${porthole.origin}; the page on ${foreignOrigin} sends no app cookie (serve's page does: ${inServe.slice(0, 8)}…)`)
    })
  })

  test('3. killing the SSH session mid-browse: the reconnecting page, then the app, by itself', async () => {
    await withShot(page, 'reconnect', async () => {
      await page.goto(openedA.localUrl)
      assert.equal(await page.title(), APP_TITLE)
      await sshdCommand('stop', 'stopped') // kills sshd and every session
      try {
        await page.goto(openedA.localUrl)
        await page.waitForFunction(() => document.title.startsWith('Reconnecting to'), null, { timeout: 30_000 })
        assert.equal(await page.title(), 'Reconnecting to lab A…')
        assert.equal(await page.locator('meta[name="porthole-error"]').getAttribute('content'), 'unreachable')
        await page.screenshot({ path: join(ARTIFACTS, 'apps-reconnecting.png') })
      } finally {
        await sshdCommand('start', 'restarted')
      }
      // The page polls and reloads itself: no click, no reload from the test.
      await page.waitForFunction((t) => document.title === t, APP_TITLE, { timeout: 60_000 })
      const c = await cookieAt(page, openedA.localOrigin)
      assert.equal(c.received, sessionA, 'same endpoint, same cookie')
    })
  })

  test('4. two logins with the app on the same remote port: two addresses, cookies apart', async () => {
    await withShot(page, 'two-logins', async () => {
      idB = await addServer('lab B')
      await api('Connect', idB)
      const openedB = await api('OpenApp', idB, webPort, '/')
      assert.notEqual(new URL(openedB.localOrigin).hostname, new URL(openedA.localOrigin).hostname)
      console.log(`e2e: lab B's app on ${openedB.localOrigin}`)
      const b1 = await cookieAt(page, openedB.localOrigin)
      assert.equal(b1.received, '', 'lab B does not get lab A\'s cookie')
      assert.notEqual(b1.session, sessionA)
      const a = await cookieAt(page, openedA.localOrigin)
      assert.equal(a.received, sessionA, 'lab A keeps its own cookie')
    })
  })

  test('5. a URL pasted from the server\'s terminal opens; a foreign one is refused in plain words', async () => {
    const o = await api('ParseAppURL', idA, `http://localhost:${webPort}/small?x=1`)
    assert.equal(o.localUrl, `${openedA.localOrigin}/small?x=1`)
    assert.equal(o.remoteUrl, `http://localhost:${webPort}/small?x=1`)
    for (const raw of [`http://127.0.0.1:${webPort}/`, `0.0.0.0:${webPort}`, `http://[::1]:${webPort}/`]) {
      assert.equal((await api('ParseAppURL', idA, raw)).localOrigin, openedA.localOrigin, raw)
    }
    await assert.rejects(api('ParseAppURL', idA, 'http://example.com/'), (/** @type {any} */ e) => e.status === 400 && /is not on lab A's localhost/.test(e.body.error))
  })

  test('6. a restart of Porthole: same endpoint, the cookie still works, the tabs come back', async () => {
    await withShot(page, 'restart', async () => {
      const tabs = [{ id: 't1', serverId: idA, port: webPort, path: '/', title: APP_TITLE, localUrl: openedA.localUrl, remoteUrl: openedA.remoteUrl }]
      await api('SaveTabs', tabs)
      await stop(serve)
      const down = await fetch(`${openedA.localOrigin}/small`).then(() => 'up', () => 'down')
      assert.equal(down, 'down', 'the endpoint closes with Porthole')
      porthole = await startServe()
      assert.deepEqual(await api('GetTabs'), tabs)
      await api('Connect', idA)
      const again = await api('OpenApp', idA, webPort, '/')
      assert.equal(again.localOrigin, openedA.localOrigin, 'the same endpoint after a restart')
      const c = await cookieAt(page, again.localOrigin)
      assert.equal(c.received, sessionA, 'the cookie survives the restart')
    })
  })
  test('7. the command palette: keyboard only, an ARIA combobox over servers, apps, actions', async () => {
    await withShot(page, 'palette', async () => {
      await page.goto(porthole.url)
      await page.getByRole('complementary', { name: 'Servers' }).getByText('lab A', { exact: true }).first().waitFor()
      await page.keyboard.press('Control+k')
      const box = page.getByRole('combobox', { name: /Search servers, apps/ })
      await box.waitFor()
      assert.equal(await box.evaluate((el) => el === document.activeElement), true, 'the field has the focus')
      assert.equal(await box.getAttribute('aria-expanded'), 'true')
      const list = page.locator(`#${await box.getAttribute('aria-controls')}`)
      assert.equal(await list.getAttribute('role'), 'listbox')
      // ↓ moves the active option, and the field says which one.
      const first = await box.getAttribute('aria-activedescendant')
      await page.keyboard.press('ArrowDown')
      const second = await box.getAttribute('aria-activedescendant')
      assert.notEqual(second, first)
      assert.equal(await page.locator(`#${second}`).getAttribute('aria-selected'), 'true')

      // A server: Enter opens its page.
      await page.keyboard.type('lab A')
      assert.equal(await page.locator(`#${await box.getAttribute('aria-activedescendant')}`).getAttribute('data-command'), `server:${idA}`)
      await page.keyboard.press('Enter')
      await box.waitFor({ state: 'hidden' })
      await page.getByRole('heading', { level: 1, name: 'lab A' }).waitFor()

      // An app of a connected server (Ctrl+Shift+P too): Enter opens it in a tab.
      await page.keyboard.press('Control+Shift+P')
      await box.waitFor()
      // The title and the server: other tests' apps on this machine share the title.
      await page.keyboard.type(`${APP_TITLE} lab A ${webPort}`)
      const appRow = page.locator(`[data-command="app:${idA}:${webPort}"]`)
      await appRow.waitFor()
      for (let i = 0; i < 30 && (await box.getAttribute('aria-activedescendant')) !== (await appRow.getAttribute('id')); i++) await page.keyboard.press('ArrowDown')
      assert.equal(await box.getAttribute('aria-activedescendant'), await appRow.getAttribute('id'))
      if (process.env.UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: join(repo, 'docs/screenshots/palette.png') })
      await page.screenshot({ path: join(ARTIFACTS, 'apps-palette.png') })
      await page.keyboard.press('Enter')
      // The app's tab (the one restored in test 6 if it is still open: a tab shows its address
      // until the page's title is known) is the selected one.
      await page.getByRole('tab', { name: new RegExp(`${APP_TITLE}|localhost:${webPort}`), selected: true }).waitFor()

      // An action: Settings.
      await page.keyboard.press('Control+k')
      await box.waitFor()
      await page.keyboard.type('settings')
      await page.keyboard.press('Enter')
      await page.getByRole('heading', { name: 'Settings' }).waitFor()
      await page.keyboard.press('Escape')
      await page.getByRole('heading', { name: 'Settings' }).waitFor({ state: 'hidden' })

      // Escape closes it and does nothing; "Disconnect lab A" disconnects.
      await page.keyboard.press('Control+k')
      await box.waitFor()
      await page.keyboard.press('Escape')
      await box.waitFor({ state: 'hidden' })
      assert.equal((await api('ListServers')).find((/** @type {any} */ s) => s.id === idA)?.state, 'connected')
      await page.keyboard.press('Control+k')
      await box.waitFor()
      await page.keyboard.type('disconnect lab A')
      await page.keyboard.press('Enter')
      for (let i = 0; i < 100; i++) {
        if ((await api('ListServers')).find((/** @type {any} */ s) => s.id === idA)?.state === 'disconnected') break
        await new Promise((r) => setTimeout(r, 100))
      }
      assert.equal((await api('ListServers')).find((/** @type {any} */ s) => s.id === idA)?.state, 'disconnected')
    })
  })
})
