// @ts-check
// End-to-end: the built UI, served by a real `porthole serve`, driven in Debian's chromium.
//
//   npm run e2e                               # uses ../build/bin/porthole
//   PORTHOLE_BIN=/path/to/porthole npm run e2e
//
// The binary embeds frontend/dist at build time, so run `npm run build` before building it.
// Screenshots land in e2e/artifacts/.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { CHROMIUM, launchChromium } from './chromium.mjs'
import { killGroup, startPortholeServe, stop } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const BIN = resolve(process.env.PORTHOLE_BIN || join(here, '../../build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const START_TIMEOUT_MS = 30_000
const UI_TIMEOUT_MS = 15_000

/** @type {import('node:child_process').ChildProcess | undefined} */
let serve
/** @type {import('playwright-core').Browser | undefined} */
let browser
let home = ''
let url = ''
let origin = ''
let token = ''
let serveStderr = () => ''

/** Stops `porthole serve` and everything it started (its process group). */
async function stopServe() {
  const p = serve
  serve = undefined
  await stop(p)
}

// Last resort if the runner itself dies: never leave a serve process behind.
process.on('exit', () => killGroup(serve, 'SIGKILL'))

/** Starts `porthole serve` (its default address) with a throwaway HOME and returns the URL it prints. */
async function startServe() {
  home = mkdtempSync(join(tmpdir(), 'porthole-e2e-'))
  const s = await startPortholeServe({ bin: BIN, home, timeoutMs: START_TIMEOUT_MS, stderrMax: 20_000 })
  ;({ child: serve, stderr: serveStderr } = s)
  return s
}

/** @param {import('playwright-core').Page} page */
async function openShell(page) {
  await page.goto(url)
  // The sidebar's entry (the Start page and the URL bar name This computer too).
  await page.getByRole('complementary', { name: 'Servers' }).getByText('This computer', { exact: true }).waitFor()
}

/** @param {import('playwright-core').Page} page @param {string} name @param {() => Promise<void>} body */
async function withFailureShot(page, name, body) {
  try {
    await body()
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, `failed-${name}.png`) }).catch(() => {})
    throw err
  }
}

describe('porthole serve in chromium', { timeout: 180_000 }, () => {
  /** @type {import('playwright-core').BrowserContext} */
  let ctx
  /** @type {import('playwright-core').Page} */
  let page
  /** @type {string[]} */
  const pageErrors = []

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    for (const f of readdirSync(ARTIFACTS)) if (f.startsWith('failed-')) rmSync(join(ARTIFACTS, f))
    ;({ url, origin, token } = await startServe())
    console.log(`e2e: porthole serve from ${BIN} listening on ${origin}`)
    browser = await launchChromium()
    console.log(`e2e: browser chromium ${browser.version()} (${CHROMIUM})`)
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
    ctx.setDefaultTimeout(UI_TIMEOUT_MS)
    page = await ctx.newPage()
    page.on('pageerror', (e) => pageErrors.push(String(e)))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text())
    })
  })

  after(async () => {
    try {
      await browser?.close()
    } finally {
      browser = undefined
      await stopServe()
      writeFileSync(join(ARTIFACTS, 'serve.log'), serveStderr())
      if (home) rmSync(home, { recursive: true, force: true })
    }
  })

  test('the page loads the shell with This computer and the Add server empty state', async () => {
    await withFailureShot(page, 'load', async () => {
      await openShell(page)
      const sidebar = page.getByRole('complementary', { name: 'Servers' })
      await sidebar.getByText('No servers yet').waitFor()
      await sidebar.getByTestId('servers-empty').getByRole('button', { name: 'Add server' }).waitFor()
      await page.getByRole('tab', { name: 'Start' }).waitFor()
      await page.getByRole('heading', { name: 'Welcome to Porthole' }).waitFor()
      // The token moved from the address bar into sessionStorage.
      assert.equal(new URL(page.url()).hash, '', 'the token is scrubbed from the visible URL')
      assert.equal(await page.evaluate(() => sessionStorage.getItem('porthole.token')), token)
    })
  })

  test('an App method round-trips: the status bar shows what Version() returns', async () => {
    await withFailureShot(page, 'version', async () => {
      const res = await fetch(`${origin}/api/Version`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: '[]',
      })
      assert.equal(res.status, 200, 'POST /api/Version with the token')
      const v = /** @type {{version: string}} */ (await res.json())
      assert.ok(v.version, 'Version() returns a version string')
      const shown = page.getByTestId('version')
      await shown.filter({ hasText: v.version }).waitFor()
      console.log(`e2e: status bar shows "${await shown.innerText()}" (Version().version = ${v.version})`)

      const denied = await fetch(`${origin}/api/Version`, { method: 'POST', body: '[]' })
      assert.ok(denied.status === 401 || denied.status === 403, `a call without the token is refused (got ${denied.status})`)
    })
  })

  test('events arrive: the app.status event sets Connected and mode serve', async () => {
    await withFailureShot(page, 'events', async () => {
      await page.getByTestId('connection').filter({ hasText: /^\s*Connected\s*$/ }).waitFor()
      await page.getByTestId('mode').filter({ hasText: /^\s*serve\s*$/ }).waitFor()
      await page.screenshot({ path: join(ARTIFACTS, 'serve-shell.png') })
    })
  })

  test('a theme change calls SetTheme and reaches a second page through its event stream', async () => {
    const ctx2 = await /** @type {import('playwright-core').Browser} */ (browser).newContext({
      viewport: { width: 1280, height: 800 },
      colorScheme: 'light',
    })
    ctx2.setDefaultTimeout(UI_TIMEOUT_MS)
    const page2 = await ctx2.newPage()
    try {
      await withFailureShot(page2, 'theme-second-page', async () => {
        await openShell(page2)
        await page2.getByTestId('connection').filter({ hasText: /^\s*Connected\s*$/ }).waitFor()
        const html2 = page2.locator('html')
        assert.equal(await html2.getAttribute('data-theme'), 'light')

        // The theme is in Settings (the status bar's gear).
        await page.getByTestId('open-settings').click()
        await page.getByRole('radiogroup', { name: 'Theme' }).getByRole('radio', { name: 'Dark' }).click()
        await page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' })
        await page.keyboard.press('Escape')

        // The second page did nothing: only its event stream can have told it.
        await page2.locator('html[data-theme="dark"]').waitFor({ state: 'attached' })
        await page2.getByTestId('open-settings').click()
        await page2.getByRole('radio', { name: 'Dark' }).and(page2.locator('[aria-checked="true"]')).waitFor()

        const res = await fetch(`${origin}/api/GetSettings`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '[]',
        })
        assert.equal((await res.json()).theme, 'dark', 'SetTheme reached the backend')
        await page2.screenshot({ path: join(ARTIFACTS, 'serve-shell-dark.png') })
      })
    } finally {
      await ctx2.close()
    }
  })

  test('without the token the page says which URL to open', async () => {
    const ctx3 = await /** @type {import('playwright-core').Browser} */ (browser).newContext({ viewport: { width: 1280, height: 800 } })
    ctx3.setDefaultTimeout(UI_TIMEOUT_MS)
    const page3 = await ctx3.newPage()
    try {
      await withFailureShot(page3, 'no-token', async () => {
        await page3.goto(`${origin}/`)
        await page3.getByText('(it carries the access token)').waitFor()
        const heading = await page3.getByRole('heading', { level: 1 }).innerText()
        assert.equal(heading.replace(/\s+/g, ' ').trim(), 'Open the URL that porthole serve printed (it carries the access token).')
        assert.equal(await page3.getByText('This computer', { exact: true }).count(), 0, 'no shell without a token')
        await page3.screenshot({ path: join(ARTIFACTS, 'serve-no-token.png') })
      })
    } finally {
      await ctx3.close()
    }
  })

  test('no errors in the page console', () => {
    assert.deepEqual(pageErrors, [])
  })
})
