// @ts-check
// End-to-end: a web app on "another computer" that only the server reaches by name opens in a tab
// through the server, from the URL bar ("Open through <server>"), through a real `porthole serve`,
// a real OpenSSH sshd and Debian's chromium.
//
// The name (grafana.porthole-e2e.test) resolves only for sshd: testsshd -hosts runs sshd in a
// private mount namespace whose /etc/hosts lists it (testrig.SshdOptions.Hosts; needs root). This
// machine, Porthole and the browser cannot resolve it, so the tab works only if the server
// resolves and dials it. The app itself listens on this machine's 127.0.0.1 (the network is
// shared), sets a cookie for its parent domain and redirects to its own name.
//
//   sh e2e/keyring-session.sh node --test e2e/through.spec.mjs
//
// PORTHOLE_BIN (default ../build/bin/porthole); TESTSSHD_BIN (default: built with `go build`).
import assert from 'node:assert/strict'
import { lookup } from 'node:dns/promises'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, rigBinary, startPortholeServe, startTestSshd, stop } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const START_TIMEOUT_MS = 60_000
const UI_TIMEOUT_MS = 30_000
const NAME = 'grafana.porthole-e2e.test'
const TITLE = 'Dashboards on the server side'
const ROOT = process.getuid?.() === 0

/** @type {import('node:child_process').ChildProcess | undefined} */ let sshd
/** @type {import('node:child_process').ChildProcess | undefined} */ let serve
/** @type {import('node:http').Server | undefined} */ let app
/** @type {import('playwright-core').Browser | undefined} */ let browser
/** @type {import('playwright-core').BrowserContext | undefined} */ let ctx
/** @type {import('playwright-core').Page} */ let page
let serveStderr = () => ''
let tmp = ''
let home = ''
let appPort = 0
let serverId = ''
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
const serverName = 'jump box'

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
})

async function startServe() {
  const s = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS, stderrMax: 60_000 })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

async function openPage() {
  await ctx?.close().catch(() => {})
  ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext({ viewport: { width: 1200, height: 860 } })
  ctx.setDefaultTimeout(UI_TIMEOUT_MS)
  page = await ctx.newPage()
  await page.goto(porthole.url)
  await page.getByTestId('connection').filter({ hasText: /^\s*Connected\s*$/ }).waitFor()
}

/** @param {string} name @param {() => Promise<void>} body */
async function withShot(name, body) {
  try {
    await body()
  } catch (err) {
    await page?.screenshot({ path: join(ARTIFACTS, `failed-through-${name}.png`) }).catch(() => {})
    throw err
  }
}

/** The active tab's frame. */
function appFrame() {
  return page.frameLocator('[data-testid="app-frames"] iframe.frame')
}

describe('an app only the server can reach by name, through the URL bar', { timeout: 300_000, skip: ROOT ? false : 'needs root: sshd gets its own /etc/hosts in a mount namespace' }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    tmp = mkdtempSync(join(tmpdir(), 'porthole-e2e-through-'))
    home = join(tmp, 'home')
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    // "Another computer": a web app that knows itself by NAME.
    app = createServer((req, res) => {
      if (req.url === '/login') {
        res.writeHead(302, { Location: `http://${NAME}:${appPort}/` })
        res.end()
        return
      }
      const cookie = req.headers.cookie ?? ''
      const head = /** @type {Record<string, string>} */ ({ 'Content-Type': 'text/html; charset=utf-8' })
      if (!/sid=/.test(cookie)) head['Set-Cookie'] = 'sid=e2e-session; Domain=porthole-e2e.test; Path=/; HttpOnly; SameSite=Lax'
      res.writeHead(200, head)
      res.end(`<!doctype html><title>${TITLE}</title><h1>${TITLE}</h1><p id="host">${req.headers.host}</p><p id="cookie">${cookie}</p>`)
    })
    await new Promise((r) => app?.listen(0, '127.0.0.1', () => r(undefined)))
    appPort = /** @type {import('node:net').AddressInfo} */ (app.address()).port
    const s = await startTestSshd({ bin: rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN), args: ['-hosts', `${NAME}=127.0.0.1`], timeoutMs: START_TIMEOUT_MS })
    sshd = s.child
    const info = /** @type {{host: string, port: number, user: string, knownHosts: string, clientKey: string}} */ (s.info)
    copyFileSync(info.knownHosts, join(home, '.ssh', 'known_hosts'))
    porthole = await startServe()
    const p = await callApi(porthole, 'AddServer', { name: serverName, host: info.host, port: info.port, user: info.user, keyPath: info.clientKey, auth: ['key'], options: {} })
    serverId = p.id
    browser = await launchChromium()
    await openPage()
  })

  after(async () => {
    try {
      await browser?.close()
    } finally {
      browser = undefined
      await stop(serve)
      sshd?.stdin?.end()
      await stop(sshd)
      app?.close()
      writeFileSync(join(ARTIFACTS, 'through-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('0. the name resolves only on the server side', async () => {
    await assert.rejects(lookup(NAME), `${NAME} must not resolve on this machine`)
  })

  test('1. from the server\'s page, the URL bar offers "Open through", and the app opens in a tab', async () => {
    await withShot('open', async () => {
      await page
        .getByRole('complementary', { name: 'Servers' })
        .locator('button.item')
        .filter({ has: page.getByText(serverName, { exact: true }) })
        .click()
      await page.getByRole('heading', { level: 1, name: serverName }).waitFor()
      const url = `http://${NAME}:${appPort}/login`
      await page.getByTestId('url-input').fill(url)
      await page.getByTestId('url-input').press('Enter')
      const panel = page.locator('[data-testid="url-panel"][data-kind="not-local"]')
      await panel.waitFor()
      await panel.getByText(`${serverName} can reach it for you`).waitFor()
      await panel.getByTestId('open-through').filter({ hasText: `Open through ${serverName}` }).click()
      await panel.waitFor({ state: 'detached' })
      // /login redirected to the app's own name: the web forward kept it on the local endpoint.
      await appFrame().locator('h1').filter({ hasText: TITLE }).waitFor()
      assert.equal(await appFrame().locator('#host').innerText(), `${NAME}:${appPort}`, 'the app saw the Host the server dialed')
      await page.screenshot({ path: join(ARTIFACTS, 'through-tab.png') })
      // The cookie (set for the parent domain) sticks to the local endpoint: a reload sends it.
      await page.getByTestId('reload').click()
      await appFrame().locator('#cookie').filter({ hasText: 'sid=e2e-session' }).waitFor()
      const shown = await page.getByTestId('url-input').inputValue()
      assert.ok(shown.startsWith(`http://${NAME}:${appPort}/`), `the URL bar shows the app's own address, got ${shown}`)
    })
  })

  test('2. the tab remembers the route: a restart of Porthole opens it again through the same server', async () => {
    await withShot('restore', async () => {
      let saved = []
      for (let i = 0; i < 50 && !saved.some((/** @type {any} */ t) => t.remoteHost === NAME); i++) {
        await new Promise((r) => setTimeout(r, 100))
        saved = await callApi(porthole, 'GetTabs')
      }
      const tab = saved.find((/** @type {any} */ t) => t.remoteHost === NAME)
      assert.ok(tab, `a saved tab with remoteHost ${NAME}: ${JSON.stringify(saved)}`)
      assert.equal(tab.serverId, serverId)
      assert.equal(tab.port, appPort)
      await stop(serve)
      porthole = await startServe()
      await openPage()
      // Restored tabs load in the background (Start stays active): the frame is there, hidden.
      await appFrame().locator('h1').filter({ hasText: TITLE }).waitFor({ state: 'attached' })
      assert.equal(await appFrame().locator('#host').textContent(), `${NAME}:${appPort}`)
    })
  })
})
