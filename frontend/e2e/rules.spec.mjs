// @ts-check
// End-to-end: a saved -L rule through a real `porthole serve`, against a real OpenSSH sshd
// (internal/testrig/cmd/testsshd; the login uses its client key, so nothing is asked), in chromium:
// added in the server's page (validated as typed), listening and forwarding, and back after a
// restart of Porthole (the rule connects its server at start).
//
//   sh e2e/keyring-session.sh node --test e2e/rules.spec.mjs
//
// PORTHOLE_BIN (default ../build/bin/porthole); TESTSSHD_BIN (default: built with `go build`).
// UPDATE_SCREENSHOTS=1 also writes docs/screenshots/rules.png.
import assert from 'node:assert/strict'
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
const GREETING = 'hello from the server side'

/** @type {import('node:child_process').ChildProcess | undefined} */
let sshd
/** @type {import('node:child_process').ChildProcess | undefined} */
let serve
let serveStderr = () => ''
let tmp = ''
let home = ''
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
/** @type {import('playwright-core').Browser | undefined} */
let browser
/** @type {import('node:http').Server | undefined} */
let target

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
})

/** A free loopback port (listen on 0, close). */
async function freePort() {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', () => r(undefined)))
  const port = /** @type {import('node:net').AddressInfo} */ (s.address()).port
  await new Promise((r) => s.close(() => r(undefined)))
  return port
}

/** GETs url until it answers 200 (30 s), returns the body. */
async function fetchThrough(/** @type {string} */ url) {
  const deadline = Date.now() + 30_000
  let last = ''
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
      const body = await res.text()
      if (res.ok) return body
      last = `HTTP ${res.status}`
    } catch (err) {
      last = String(err)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`GET ${url} kept failing: ${last}`)
}

async function startServe() {
  const s = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS, stderrMax: 60_000 })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

describe('saved rules through porthole serve against a real sshd', { timeout: 300_000 }, () => {
  /** @type {import('playwright-core').BrowserContext | undefined} */
  let ctx
  /** @type {import('playwright-core').Page} */
  let page
  const serverName = 'rules sshd'
  let serverId = ''
  let targetPort = 0
  let localPort = 0

  async function openPage() {
    await ctx?.close().catch(() => {})
    ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' })
    ctx.setDefaultTimeout(UI_TIMEOUT_MS)
    page = await ctx.newPage()
    await page.goto(porthole.url)
    await page.getByTestId('connection').filter({ hasText: /^\s*Connected\s*$/ }).waitFor()
  }

  async function openServer() {
    await page
      .getByRole('complementary', { name: 'Servers' })
      .locator('button.item')
      .filter({ has: page.getByText(serverName, { exact: true }) })
      .click()
    await page.getByRole('heading', { level: 1, name: serverName }).waitFor()
  }

  /** @param {string} name @param {() => Promise<void>} body */
  async function withFailureShot(name, body) {
    try {
      await body()
    } catch (err) {
      await page?.screenshot({ path: join(ARTIFACTS, `failed-rules-${name}.png`) }).catch(() => {})
      throw err
    }
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    tmp = mkdtempSync(join(tmpdir(), 'porthole-e2e-rules-'))
    home = join(tmp, 'home')
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    const bin = rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN)
    const s = await startTestSshd({ bin, timeoutMs: START_TIMEOUT_MS })
    sshd = s.child
    const info = /** @type {{host: string, port: number, user: string, knownHosts: string, clientKey: string}} */ (s.info)
    // The server's host key is known and the login uses the rig's client key: nothing is asked.
    copyFileSync(info.knownHosts, join(home, '.ssh', 'known_hosts'))
    // "The server side": a web server on this machine's loopback, which sshd reaches.
    target = createServer((_, res) => res.end(GREETING))
    await new Promise((r) => target?.listen(0, '127.0.0.1', () => r(undefined)))
    targetPort = /** @type {import('node:net').AddressInfo} */ (target.address()).port
    localPort = await freePort()
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
      target?.close()
      writeFileSync(join(ARTIFACTS, 'rules-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('1. add a -L rule in the server page: it listens and forwards once the server connects', async () => {
    await withFailureShot('add', async () => {
      await openServer()
      const panel = page.getByTestId('rules-panel')
      await panel.getByText('No rules yet').waitFor()
      await panel.getByTestId('rule-add').click()
      const form = page.getByTestId('rule-form')
      // Validated as typed: a port out of range says so.
      await form.getByTestId('rule-localPort').fill('70000')
      await form.getByTestId('rule-localPort').blur()
      await form.getByTestId('rule-error-localPort').filter({ hasText: 'must be between 1 and 65535' }).waitFor()
      await form.getByTestId('rule-localPort').fill(String(localPort))
      await form.getByTestId('rule-remoteHost').fill('127.0.0.1')
      await form.getByTestId('rule-remotePort').fill(String(targetPort))
      await form.getByTestId('rule-label').fill('web')
      await form.getByTestId('rule-connect-at-start').check()
      await form.getByTestId('rule-error-localPort').waitFor({ state: 'detached' })
      await form.getByTestId('rule-preview').filter({ hasText: `ssh -L ${localPort}:127.0.0.1:${targetPort}` }).waitFor()
      await form.getByTestId('rule-save').click()
      await form.waitFor({ state: 'hidden' })

      const rule = panel.getByTestId('rule')
      await rule.and(page.locator('[data-state="waiting"]')).waitFor()
      await page.getByTestId('connect').click()
      await page.getByTestId('server-state').and(page.locator('[data-state="connected"]')).waitFor()
      await rule.and(page.locator('[data-state="listening"]')).waitFor()
      await rule.getByTestId('rule-ends').filter({ hasText: `127.0.0.1:${localPort} → 127.0.0.1:${targetPort} on ${serverName}` }).waitFor()
      assert.equal(await fetchThrough(`http://127.0.0.1:${localPort}/`), GREETING)
      // The agent's batched stats reach the page: the bytes went through.
      await page.waitForFunction(() => {
        const el = document.querySelector('[data-testid="rule"] [data-testid="rule-rate"]')
        return !!el && Number(el.getAttribute('data-rate')) > 0
      })
      const path = join(ARTIFACTS, 'rules.png')
      await page.getByTestId('rules-panel').screenshot({ path })
      if (process.env.UPDATE_SCREENSHOTS === '1') {
        mkdirSync(join(repo, 'docs/screenshots'), { recursive: true })
        copyFileSync(path, join(repo, 'docs/screenshots/rules.png'))
      }
      const saved = await callApi(porthole, 'GetServer', serverId)
      assert.equal(saved.forwards?.length, 1, 'the rule is in the profile')
      assert.equal(saved.forwards[0].connectAtStart, true)
    })
  })

  test('2. restart Porthole: the rule is back, connects its server at start and forwards', async () => {
    await withFailureShot('restart', async () => {
      await ctx?.close().catch(() => {})
      ctx = undefined
      await stop(serve)
      porthole = await startServe()
      await openPage()
      await openServer()
      const rule = page.getByTestId('rules-panel').getByTestId('rule')
      await rule.filter({ hasText: 'web' }).waitFor()
      await rule.and(page.locator('[data-state="listening"]')).waitFor()
      await page.getByTestId('server-state').and(page.locator('[data-state="connected"]')).waitFor()
      assert.equal(await fetchThrough(`http://127.0.0.1:${localPort}/`), GREETING)
    })
  })
})
