#!/usr/bin/env node
// @ts-check
// Screenshots of the web-apps UI against the real backend:
//
//   node e2e/screenshot-apps.mjs [outdir]          (default e2e/artifacts; UPDATE_SCREENSHOTS=1: docs/screenshots too)
//
// It starts a real OpenSSH sshd (internal/testrig/cmd/testsshd; its login is this machine's
// user, so the "server" is this machine), a few apps on localhost (a static site through
// `python3 -m http.server`, the test rig's web app, and `jupyter notebook` when it is installed),
// and `porthole serve` with a throw-away HOME. It adds the sshd as a server, connects (host key,
// password) through the UI, and takes the server's Start page and an app opened in a tab.
// Everything it starts is stopped at the end.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const OUT = resolve(process.argv[2] ?? join(here, 'artifacts'))
const DOCS = join(repo, 'docs/screenshots')
const PASSWORD = 'porthole-shots-Pa55'
const SCHEME = /** @type {'light' | 'dark'} */ (process.env.SCHEME === 'dark' ? 'dark' : 'light')

/** The static site's page (served by `python3 -m http.server`). */
const SITE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Experiment notes</title>
<style>
  body { font: 15px/1.55 system-ui, sans-serif; margin: 0; color: #1f2430; background: #fbfaf7; }
  header { padding: 28px 48px 18px; border-bottom: 1px solid #e8e4dc; background: #fff; }
  h1 { margin: 0 0 4px; font-size: 24px; } header p { margin: 0; color: #6b7280; }
  main { padding: 24px 48px; max-width: 880px; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e8e4dc; }
  th, td { text-align: left; padding: 9px 14px; border-bottom: 1px solid #eee9df; font-variant-numeric: tabular-nums; }
  th { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; background: #f6f3ee; }
  .best { color: #0a7a4a; font-weight: 600; } h2 { font-size: 16px; margin: 26px 0 10px; }
</style></head>
<body><header><h1>Experiment notes</h1><p>resnet-50 fine-tuning · served by <code>python3 -m http.server</code></p></header>
<main>
<h2>Runs this week</h2>
<table><tr><th>Run</th><th>LR</th><th>Batch</th><th>Epochs</th><th>Val. accuracy</th></tr>
<tr><td>r-0412</td><td>3e-4</td><td>128</td><td>30</td><td>0.912</td></tr>
<tr><td>r-0413</td><td>1e-4</td><td>128</td><td>40</td><td class="best">0.927</td></tr>
<tr><td>r-0414</td><td>1e-4</td><td>256</td><td>40</td><td>0.921</td></tr>
<tr><td>r-0415</td><td>5e-5</td><td>256</td><td>60</td><td>0.924</td></tr></table>
<h2>Next</h2><p>Try a cosine schedule with warm-up on r-0413's settings; compare in TensorBoard.</p>
</main></body></html>`

/** @type {import('node:child_process').ChildProcess[]} */
const children = []
const tmp = mkdtempSync(join(tmpdir(), 'porthole-shots-'))

function killAll() {
  for (const c of children) {
    if (c.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(-c.pid, 'SIGTERM')
      } catch {
        c.kill('SIGTERM')
      }
    }
  }
}
process.on('exit', killAll)
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) process.on(sig, () => process.exit(1))

/**
 * Starts a command in its own process group; resolves with its first stdout line.
 * @param {string} cmd @param {string[]} args @param {{env?: NodeJS.ProcessEnv, cwd?: string, firstLine?: boolean}} [opts]
 */
function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true }) // stdin stays open: testsshd stops at its EOF
  children.push(child)
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-8000)))
  if (!opts.firstLine) return Promise.resolve('')
  const lines = createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) })
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${cmd} printed nothing in 60 s\n${stderr}`)), 60_000)
    lines.once('line', (l) => {
      clearTimeout(t)
      res(l)
    })
    child.once('exit', (c) => rej(new Error(`${cmd} exited (${c})\n${stderr}`)))
  })
}

/** @param {number} port */
async function waitPort(port) {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`)
      return
    } catch {
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  throw new Error(`nothing answers on port ${port}`)
}

try {
  mkdirSync(OUT, { recursive: true })
  // The server: a real sshd.
  const sshdBin = join(tmp, 'testsshd')
  execFileSync('go', ['build', '-o', sshdBin, './internal/testrig/cmd/testsshd'], { cwd: repo, stdio: 'inherit' })
  const info = JSON.parse(await start(sshdBin, ['-password', PASSWORD], { firstLine: true }))

  // Apps on its localhost.
  const site = join(tmp, 'site')
  mkdirSync(site)
  writeFileSync(join(site, 'index.html'), SITE)
  void start('python3', ['-m', 'http.server', '8765', '--bind', '127.0.0.1'], { cwd: site })
  const webappBin = join(tmp, 'testwebapp')
  execFileSync('go', ['build', '-o', webappBin, './internal/testrig/cmd/testwebapp'], { cwd: repo, stdio: 'inherit' })
  await start(webappBin, ['-addr', '127.0.0.1:8050'], { firstLine: true })
  const project = join(tmp, 'project')
  mkdirSync(project)
  writeFileSync(
    join(project, 'analysis.ipynb'),
    JSON.stringify({ cells: [{ cell_type: 'markdown', metadata: {}, source: ['# Analysis\n', 'Opened in a Porthole tab.'] }], metadata: {}, nbformat: 4, nbformat_minor: 5 }),
  )
  const jupyter = existsSync('/usr/bin/jupyter-notebook')
  if (jupyter) {
    const root = process.getuid?.() === 0 ? ['--allow-root'] : []
    void start('/usr/bin/jupyter-notebook', ['--no-browser', '--ip', '127.0.0.1', '--port', '8888', '--port-retries', '0', ...root], { cwd: project })
    await waitPort(8888)
  }
  await waitPort(8765)

  // Porthole.
  const home = join(tmp, 'home')
  mkdirSync(home)
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    SSH_AUTH_SOCK: '',
  }
  const url = await start(BIN, ['serve', '--addr', '127.0.0.1:0'], { env, cwd: home, firstLine: true })
  const m = /^(http:\/\/127\.0\.0\.1:\d+)\/#token=(\S+)$/.exec(url)
  if (!m) throw new Error(`unexpected serve URL ${url}`)
  /** @param {string} method @param {...unknown} args */
  const api = async (method, ...args) => {
    const r = await fetch(`${m[1]}/api/${method}`, { method: 'POST', headers: { Authorization: `Bearer ${decodeURIComponent(m[2] ?? '')}`, 'Content-Type': 'application/json' }, body: JSON.stringify(args) })
    if (!r.ok) throw new Error(`${method}: ${r.status} ${await r.text()}`)
    return r.json()
  }
  await api('AddServer', { id: '', name: 'gpu-box', host: info.host, port: info.port, user: info.user, auth: ['password'], options: {}, color: '#0ea5b7' })

  const browser = await launchChromium()
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: SCHEME })
  ctx.setDefaultTimeout(30_000)
  const page = await ctx.newPage()
  if (process.env.DEBUG) {
    page.on('console', (msg) => console.log('console:', msg.type(), msg.text()))
    page.on('response', (r) => r.status() >= 400 && console.log('response:', r.status(), r.url()))
    page.on('requestfailed', (r) => console.log('failed:', r.url(), r.failure()?.errorText))
  }
  const shots = /** @type {const} */ ([join(OUT, 'start-page.png'), join(OUT, 'app-tab.png')])
  const failShot = () => page.screenshot({ path: join(OUT, 'screenshot-apps-failure.png') }).catch(() => {})
  try {
    await page.goto(url)
    await page.getByRole('complementary', { name: 'Servers' }).getByText('gpu-box', { exact: true }).click()
    await page.getByRole('heading', { level: 1, name: 'gpu-box' }).waitFor()
    await page.getByTestId('connect').click()
    const prompt = page.getByTestId('prompt')
    await prompt.and(page.locator('[data-kind="host-key"]')).waitFor()
    await prompt.getByRole('button', { name: 'Always accept' }).click()
    await prompt.and(page.locator('[data-kind="password"]')).waitFor()
    await prompt.getByLabel('Password').fill(PASSWORD)
    await prompt.getByRole('button', { name: 'Log in' }).click()
    await page.getByTestId('server-state').filter({ hasText: 'Connected' }).waitFor()
    await page.getByTestId('app-card').first().waitFor()
    if (jupyter) await page.locator('[data-testid="app-card"][data-kind^="jupyter"]').waitFor()
    await page.mouse.move(0, 0)
    await page.waitForTimeout(800)
    await page.screenshot({ path: shots[0] })
    for (const c of await page.getByTestId('app-card').all()) {
      console.log('card:', await c.getAttribute('data-port'), await c.getAttribute('data-kind'), (await c.locator('h3').innerText()).trim())
    }

    // Jupyter when its file list shows in the tab (its API calls need the app's cookies in the
    // frame); otherwise the static site.
    let shown = false
    if (jupyter) {
      await page.locator('[data-testid="app-card"][data-kind^="jupyter"]').getByTestId('app-open').click()
      const frame = page.frameLocator('iframe[data-testid="app-frame"]')
      shown = await frame
        .getByText('analysis.ipynb')
        .waitFor({ timeout: 15_000 })
        .then(() => true, () => false)
      if (!shown && process.env.DEBUG) {
        // The same page at the top level (not framed): does the list load there?
        const src = (await page.locator('iframe[data-testid="app-frame"]').getAttribute('src')) ?? ''
        const top = await ctx.newPage()
        await top.goto(src)
        const ok = await top.getByText('analysis.ipynb').waitFor({ timeout: 15_000 }).then(() => true, () => false)
        console.log(`jupyter at the top level (${src.replace(/token=[^&]+/, 'token=…')}): file list ${ok ? 'loads' : 'does not load either'}`)
        const cookies = await ctx.cookies(src)
        console.log('cookies:', cookies.map((c) => `${c.name} sameSite=${c.sameSite} secure=${c.secure}`).join(', '))
        await top.close()
      }
      if (!shown) {
        console.log('jupyter: its file list did not load in the tab (API calls refused); showing the static site instead')
        await page.getByRole('button', { name: /^Close Jupyter/ }).click()
        await page.getByRole('tab', { name: 'gpu-box' }).click()
      }
    }
    if (!shown) {
      await page.locator('[data-testid="app-card"][data-port="8765"]').getByTestId('app-open').click()
      await page.locator('iframe[data-testid="app-frame"]:visible').contentFrame().locator('body').waitFor()
    }
    await page.mouse.move(0, 0)
    await page.waitForTimeout(1500)
    await page.screenshot({ path: shots[1] })
    console.log('url bar:', await page.getByTestId('url-input').inputValue(), '| endpoint:', (await page.getByTestId('url-badge').innerText()).trim())
  } catch (err) {
    await failShot()
    throw err
  } finally {
    await browser.close()
  }

  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS, { recursive: true })
    for (const s of shots) copyFileSync(s, join(DOCS, basename(s)))
    console.log('updated', DOCS)
  }
  console.log('screenshots in', OUT)
} finally {
  killAll()
  await new Promise((r) => setTimeout(r, 500))
  rmSync(tmp, { recursive: true, force: true })
}
