// @ts-check
// End-to-end: server logins through a real `porthole serve`, against a real OpenSSH sshd
// (internal/testrig/cmd/testsshd: password auth through pam_wrapper), driven in Debian's chromium.
//
//   npm run e2e                                   # both specs, inside e2e/keyring-session.sh
//   sh e2e/keyring-session.sh node --test e2e/servers.spec.mjs
//
// Needs an unlocked Secret Service keyring on DBUS_SESSION_BUS_ADDRESS (keyring-session.sh makes a
// throw-away one) for "remember in keychain"; PORTHOLE_BIN (default ../build/bin/porthole);
// TESTSSHD_BIN (default: built from ../internal/testrig/cmd/testsshd with `go build`).
// UPDATE_SCREENSHOTS=1 also writes the README's screenshots to docs/screenshots/.
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, nextJsonLine, rigBinary, startPortholeServe, startTestSshd, stop } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const DOC_SHOTS = join(repo, 'docs/screenshots')
const START_TIMEOUT_MS = 60_000
const UI_TIMEOUT_MS = 20_000
const PASSWORD = 'porthole-e2e-Pa55'

/** @typedef {{addr: string, host: string, port: number, user: string, password: string, hostKeys: {type: string, fingerprint: string}[], hostKeyFingerprints: string[], event: string}} SshdInfo */

/** @type {import('node:child_process').ChildProcess | undefined} */
let sshd
/** @type {import('node:readline').Interface | undefined} */
let sshdLines
/** @type {SshdInfo} */
let sshdInfo
/** @type {import('node:child_process').ChildProcess | undefined} */
let serve
let serveStderr = () => ''
let sshdStderr = () => ''
let home = ''
let tmp = ''
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
/** @type {import('playwright-core').Browser | undefined} */
let browser

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
})

/** The next JSON line testsshd prints. */
function nextSshdInfo() {
  return /** @type {Promise<SshdInfo>} */ (nextJsonLine(sshdLines, START_TIMEOUT_MS, sshdStderr))
}

async function startSshd() {
  const bin = rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN)
  const s = await startTestSshd({ bin, args: ['-password', PASSWORD], timeoutMs: START_TIMEOUT_MS })
  ;({ child: sshd, lines: sshdLines, stderr: sshdStderr } = s)
  return /** @type {SshdInfo} */ (s.info)
}

/** Asks testsshd to give sshd new host keys (a "reinstalled server") and returns the new info. */
async function rekeySshd() {
  const next = nextSshdInfo()
  sshd?.stdin?.write('rekey\n')
  const info = await next
  assert.equal(info.event, 'rekeyed')
  return info
}

/** Starts `porthole serve` with the shared throwaway HOME (so a restart sees the same profiles). */
async function startServe() {
  // No agent: the password is what logs in.
  const s = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS, stderrMax: 60_000 })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

/** Calls an App method over HTTP, as a script would. */
async function api(/** @type {string} */ method, /** @type {unknown[]} */ ...args) {
  return callApi(porthole, method, ...args)
}

/** @param {import('playwright-core').Page} page @param {string} name @param {() => Promise<void>} body */
async function withFailureShot(page, name, body) {
  try {
    await body()
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, `failed-servers-${name}.png`) }).catch(() => {})
    throw err
  }
}

/** The screenshots the README shows. */
const DOC_SHOT_NAMES = new Set(['add-server.png', 'host-key.png', 'host-key-changed.png'])

/** Saves a screenshot to artifacts/ and, with UPDATE_SCREENSHOTS=1, the README's ones to docs/screenshots/. */
async function shot(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ name) {
  // Let dialogs finish their entrance animation first.
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity))
  const path = join(ARTIFACTS, name)
  await page.screenshot({ path })
  if (process.env.UPDATE_SCREENSHOTS === '1' && DOC_SHOT_NAMES.has(name)) {
    mkdirSync(DOC_SHOTS, { recursive: true })
    copyFileSync(path, join(DOC_SHOTS, name))
  }
}

describe('server logins through porthole serve against a real sshd', { timeout: 300_000 }, () => {
  /** @type {import('playwright-core').BrowserContext} */
  let ctx
  /** @type {import('playwright-core').Page} */
  let page
  const serverName = 'lab sshd'
  let serverId = ''
  let firstFingerprint = ''

  async function openPage() {
    await ctx?.close().catch(() => {})
    ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
    ctx.setDefaultTimeout(UI_TIMEOUT_MS)
    page = await ctx.newPage()
    await page.goto(porthole.url)
    await page.getByRole('complementary', { name: 'Servers' }).getByText('This computer', { exact: true }).waitFor()
    await page.getByTestId('connection').filter({ hasText: /^\s*Connected\s*$/ }).waitFor()
  }

  /** The server's page: click it in the sidebar. */
  async function openServer(/** @type {string} */ name) {
    await page
      .getByRole('complementary', { name: 'Servers' })
      .locator('button.item')
      .filter({ has: page.getByText(name, { exact: true }) })
      .click()
    await page.getByRole('heading', { level: 1, name }).waitFor()
  }

  const serverState = () => page.getByTestId('server-state')
  const promptDialog = () => page.getByTestId('prompt')

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    tmp = mkdtempSync(join(tmpdir(), 'porthole-e2e-servers-'))
    home = join(tmp, 'home')
    mkdirSync(home, { recursive: true })
    sshdInfo = await startSshd()
    firstFingerprint = sshdInfo.hostKeyFingerprints[0] ?? ''
    console.log(`e2e: sshd on ${sshdInfo.addr} (user ${sshdInfo.user}, host key ${firstFingerprint})`)
    porthole = await startServe()
    const keyring = await api('KeyringStatus')
    console.log(`e2e: keyring ${keyring.available ? 'available' : `NOT available: ${keyring.message}`}`)
    browser = await launchChromium()
    await openPage()
  })

  after(async () => {
    try {
      if (serve && porthole.origin) {
        // Leave nothing in the keyring: deleting a server deletes its secrets.
        for (const s of await api('ListServers').catch(() => [])) await api('DeleteServer', s.id).catch(() => {})
      }
      await browser?.close()
    } finally {
      browser = undefined
      await stop(serve)
      sshd?.stdin?.end()
      await stop(sshd)
      writeFileSync(join(ARTIFACTS, 'servers-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('1. add a server (validated as you type) and accept its host key', async () => {
    await withFailureShot(page, 'add', async () => {
      await page.getByRole('complementary', { name: 'Servers' }).getByRole('button', { name: 'Add server' }).first().click()
      const form = page.getByTestId('server-form')
      await form.waitFor()
      // Validation as you type: a bad port and a missing key file are named before saving.
      await form.getByLabel('Host', { exact: true }).fill('127.0.0.1')
      await form.getByLabel('Port', { exact: true }).fill('70000')
      await form.getByText('must be between 1 and 65535').waitFor()
      await form.getByLabel(/^Key file/).fill('/nonexistent/id_ed25519')
      await form.getByLabel(/^Key file/).blur()
      await form.getByText('does not exist; choose an existing private key').waitFor()
      await form.getByLabel(/^Key file/).fill('')
      await form.getByLabel('Host', { exact: true }).fill('')
      await form.getByLabel('Host', { exact: true }).blur()
      await form.getByText('is required').waitFor()

      await form.getByLabel('Host', { exact: true }).fill(sshdInfo.host)
      await form.getByLabel('Port', { exact: true }).fill(String(sshdInfo.port))
      await form.getByLabel(/^Name/).fill(serverName)
      await form.getByLabel(/^User/).fill(sshdInfo.user)
      await form.getByRole('radio', { name: 'Colour #0ea5b7' }).click()
      await form.getByText('must be between 1 and 65535').waitFor({ state: 'detached' })
      await form.getByText('is required').waitFor({ state: 'detached' })
      await page.waitForTimeout(400) // the debounced check settles
      await shot(page, 'add-server.png')
      await form.getByTestId('server-form-save').click()
      await form.waitFor({ state: 'detached' })

      await page.getByRole('heading', { level: 1, name: serverName }).waitFor()
      const list = await api('ListServers')
      assert.equal(list.length, 1)
      serverId = list[0].id
      assert.equal(list[0].port, sshdInfo.port)

      await page.getByTestId('connect').click()
      const prompt = promptDialog()
      await prompt.and(page.locator('[data-kind="host-key"]')).waitFor()
      await prompt.getByText('Is this the right server?').waitFor()
      assert.equal((await prompt.getByTestId('host-key-fingerprint').innerText()).trim(), firstFingerprint)
      assert.equal((await prompt.getByTestId('host-key-type').innerText()).trim(), sshdInfo.hostKeys[0]?.type)
      // The progress shows the step it waits on.
      await page.locator('[data-step="host key"][data-status="current"]').waitFor()
      await shot(page, 'host-key.png')
      await prompt.getByRole('button', { name: 'Always accept' }).click()
      await prompt.and(page.locator('[data-kind="password"]')).waitFor()
    })
  })

  test('2. the password with "remember in keychain" ticked: it shows connected', async () => {
    await withFailureShot(page, 'password', async () => {
      const prompt = promptDialog()
      await prompt.getByText(`Password for ${sshdInfo.user}@${sshdInfo.addr}`).waitFor()
      await prompt.getByLabel('Password').fill(PASSWORD)
      const remember = prompt.getByLabel('Remember in keychain')
      assert.ok(await remember.isEnabled(), 'the keyring is available (run inside e2e/keyring-session.sh or an unlocked desktop keyring)')
      await remember.check()
      await shot(page, 'password.png')
      await prompt.getByRole('button', { name: 'Log in' }).click()
      await serverState().filter({ hasText: 'Connected' }).waitFor()
      // An answered dialog stays up until the next prompts event, which can
      // land just after the servers event: wait (bounded) for it to go.
      await promptDialog().first().waitFor({ state: 'detached', timeout: 5000 })
      assert.equal(await promptDialog().count(), 0)
      for (const step of ['resolving', 'connecting', 'host key', 'authenticating', 'ready']) {
        await page.locator(`[data-step="${step}"][data-status="done"]`).waitFor()
      }
      await page.getByRole('complementary', { name: 'Servers' }).getByTestId('state-dot').and(page.locator('[data-state="connected"]')).waitFor()
      const log = await api('ServerLog', serverId)
      assert.ok(log.lines.some((/** @type {string} */ l) => l.includes('saved the password in the keyring')), `the log says the password was saved:\n${log.lines.join('\n')}`)
      assert.ok(!log.lines.some((/** @type {string} */ l) => l.includes(PASSWORD)), 'the password is not in the log')
      const profilesJson = readFileSync(join(home, '.config/porthole/profiles.json'), 'utf8')
      assert.ok(!profilesJson.includes(PASSWORD), 'the password is not in profiles.json')
      await shot(page, 'server-connected.png')
    })
  })

  test('3. restart Porthole and connect again: no question at all', async () => {
    await ctx.close()
    await stop(serve)
    porthole = await startServe()
    await openPage()
    await withFailureShot(page, 'restart', async () => {
      await openServer(serverName)
      await serverState().filter({ hasText: 'Not connected' }).waitFor()
      await page.getByTestId('connect').click()
      await serverState().filter({ hasText: 'Connected' }).waitFor()
      assert.equal(await promptDialog().count(), 0, 'no dialog is open')
      const log = await api('ServerLog', serverId)
      const text = log.lines.join('\n')
      assert.match(text, /using the password saved in the keyring/)
      assert.doesNotMatch(text, /asking for the|host key answer/, `nothing was asked:\n${text}`)
    })
  })

  test('4. a wrong password says so clearly, and the retry works', async () => {
    await withFailureShot(page, 'wrong-password', async () => {
      const second = await api('AddServer', { name: 'lab sshd (no saved password)', host: sshdInfo.host, port: sshdInfo.port, user: sshdInfo.user, options: {} })
      await openServer(second.name)
      await page.getByTestId('connect').click()
      const prompt = promptDialog()
      // The host key is known from test 1: the first question is the password.
      await prompt.and(page.locator('[data-kind="password"]')).waitFor()
      await prompt.getByLabel('Password').fill('not-the-password')
      await prompt.getByRole('button', { name: 'Log in' }).click()
      await prompt.getByTestId('prompt-notice').filter({ hasText: 'That password was not accepted. Try again.' }).waitFor()
      await shot(page, 'wrong-password.png')
      await prompt.getByLabel('Password').fill(PASSWORD)
      await prompt.getByRole('button', { name: 'Log in' }).click()
      await serverState().filter({ hasText: 'Connected' }).waitFor()
      // An answered dialog stays up until the next prompts event, which can
      // land just after the servers event: wait (bounded) for it to go.
      await promptDialog().first().waitFor({ state: 'detached', timeout: 5000 })
      assert.equal(await promptDialog().count(), 0)
    })
  })

  test('5. a changed host key is refused and shows both fingerprints', async () => {
    await withFailureShot(page, 'host-key-changed', async () => {
      const rekeyed = await rekeySshd()
      const newFingerprint = rekeyed.hostKeyFingerprints[0] ?? ''
      assert.notEqual(newFingerprint, firstFingerprint)
      console.log(`e2e: sshd has a new host key ${newFingerprint}`)
      await openServer(serverName)
      // The restart dropped the connection; connecting again meets the new key.
      await page.getByTestId('connect').click()
      const dialog = page.getByTestId('host-key-changed')
      await dialog.waitFor()
      await dialog.getByText('Connection refused: the host key has changed').waitFor()
      assert.equal((await dialog.getByTestId('host-key-new').innerText()).trim(), newFingerprint)
      assert.equal((await dialog.getByTestId('host-key-old').innerText()).trim(), firstFingerprint)
      const knownHosts = join(home, '.ssh/known_hosts')
      await dialog.getByText(`line 1 of ${knownHosts}`).first().waitFor({ state: 'attached' })
      await shot(page, 'host-key-changed.png')
      assert.equal(await promptDialog().count(), 0, 'a changed key is refused, never asked about')
      await dialog.getByRole('button', { name: 'Close' }).last().click()
      await page.getByTestId('server-error').and(page.locator('[data-kind="host-key-changed"]')).waitFor()
      await serverState().filter({ hasText: 'Failed' }).waitFor()
    })
  })
})
