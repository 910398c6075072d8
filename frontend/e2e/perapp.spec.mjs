// @ts-check
// End-to-end (issue 15): one origin per app. Two apps of one server, through a real `porthole
// serve` and a real OpenSSH sshd (internal/testrig/cmd/testsshd), in Debian's chromium: each app
// opens on a loopback address of its own, so a cookie one sets never reaches the other (browsers
// keep cookies per host and ignore the port, RFC 6265). With "separate cookies per app" off, two
// new apps share the server's address and chromium does carry one's cookie to the other: the clash
// the setting avoids. And an app bound only to [::1] on the server is listed and opens.
//
//   sh e2e/keyring-session.sh node --test e2e/perapp.spec.mjs
//
// Needs PORTHOLE_BIN (default ../build/bin/porthole); TESTSSHD_BIN and TESTWEBAPP_BIN default to
// `go build`s of the test rig's commands.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { launchChromium } from './chromium.mjs'
import { callApi, killGroup, rigBinary, sshdWithHome, startPortholeServe, stop } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const BIN = resolve(process.env.PORTHOLE_BIN || join(repo, 'build/bin/porthole'))
const ARTIFACTS = join(here, 'artifacts')
const START_TIMEOUT_MS = 60_000
const PAGE_TIMEOUT_MS = 20_000
const APP_TITLE = 'Porthole test app'

/** @type {import('node:child_process').ChildProcess | undefined} */ let sshd
/** @type {import('node:child_process').ChildProcess[]} */ const webapps = []
/** @type {import('node:child_process').ChildProcess | undefined} */ let serve
let serveStderr = () => ''
let tmp = ''
let home = ''
/** @type {any} */ let sshdInfo
/** @type {{url: string, origin: string, token: string}} */
let porthole = { url: '', origin: '', token: '' }
/** @type {import('playwright-core').Browser | undefined} */ let browser

process.on('exit', () => {
  killGroup(serve, 'SIGKILL')
  killGroup(sshd, 'SIGKILL')
  for (const w of webapps) killGroup(w, 'SIGKILL')
})

/** The test web app on the server's side, in a process of its own (it dies with stdin); its port. */
async function startWebApp(/** @type {string} */ addr = '127.0.0.1:0') {
  const bin = rigBinary(repo, tmp, 'testwebapp', process.env.TESTWEBAPP_BIN)
  const child = spawn(bin, ['-stdin', '-addr', addr], { stdio: ['pipe', 'pipe', 'inherit'], detached: true })
  webapps.push(child)
  const lines = createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) })
  const first = await new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error('testwebapp printed no URL')), START_TIMEOUT_MS)
    lines.once('line', (l) => {
      clearTimeout(timer)
      resolveLine(l)
    })
    child.once('exit', (c, s) => reject(new Error(`testwebapp exited (${c ?? s})`)))
  })
  const m = /^http:\/\/(?:127\.0\.0\.1|\[::1\]):(\d+)$/.exec(String(first).trim())
  assert.ok(m, `testwebapp printed ${first}`)
  return Number(m[1])
}

async function api(/** @type {string} */ method, /** @type {unknown[]} */ ...args) {
  return callApi(porthole, method, ...args)
}

/** The JSON the app's /cookie answers, as a top-level page load (a tab in a browser) gets it. */
async function cookieAt(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ origin) {
  await page.goto(`${origin}/cookie`)
  return JSON.parse(await page.locator('body').innerText())
}

/** The JSON /cookie answers inside a frame of serve's page (an app tab in `porthole serve`). */
async function cookieInFrame(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ origin) {
  const f = page.frames().find((x) => x.url().startsWith(origin))
  assert.ok(f, `a frame of ${origin}`)
  return f.evaluate(() => fetch('/cookie').then((r) => r.json()))
}

async function withShot(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ name, /** @type {() => Promise<void>} */ body) {
  try {
    await body()
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, `failed-perapp-${name}.png`) }).catch(() => {})
    throw err
  }
}

describe('one origin per app: two apps of one server keep their cookies apart', { timeout: 600_000 }, () => {
  let id = ''
  /** @type {number[]} */ let ports = []

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    ;({ tmp, home, sshd, info: sshdInfo } = await sshdWithHome({ repo, prefix: 'porthole-e2e-perapp-', timeoutMs: START_TIMEOUT_MS }))
    ports = [await startWebApp(), await startWebApp()]
    const srv = await startPortholeServe({ bin: BIN, home, env: { SSH_AUTH_SOCK: '', PORTHOLE_LOG: 'debug' }, timeoutMs: START_TIMEOUT_MS })
    ;({ child: serve, stderr: serveStderr } = srv)
    porthole = srv
    browser = await launchChromium()
    const p = await api('AddServer', { name: 'gpu', host: sshdInfo.host, port: sshdInfo.port, user: sshdInfo.user, keyPath: sshdInfo.clientKey, auth: ['key'], options: {} })
    id = p.id
    await api('Connect', id)
  })

  after(async () => {
    try {
      await browser?.close()
    } finally {
      browser = undefined
      await stop(serve)
      sshd?.stdin?.end()
      await stop(sshd)
      for (const w of webapps) {
        w.stdin?.end()
        await stop(w)
      }
      writeFileSync(join(ARTIFACTS, 'perapp-serve.log'), serveStderr())
      if (tmp) rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('1. each app on an address of its own; A\'s cookie never reaches B, in a tab or a page', async () => {
    assert.equal((await api('GetSettings')).defaults.cookiesPerApp, true, '"separate cookies per app" is on by default')
    const [a, b] = [await api('OpenApp', id, ports[0], '/'), await api('OpenApp', id, ports[1], '/')]
    const [ha, hb] = [new URL(a.localOrigin).hostname, new URL(b.localOrigin).hostname]
    console.log(`e2e: app A on ${a.localOrigin}, app B on ${b.localOrigin}`)
    assert.notEqual(ha, hb, 'two apps of one server on two addresses')
    for (const h of [ha, hb]) assert.match(h, /^127\.[1-9]\d*\.\d+\.1$/, `a per-app address 127.N.A.1, got ${h}`)
    assert.equal(ha.split('.')[1], hb.split('.')[1], 'both in the server\'s block 127.N.0.0/16')

    const ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext()
    ctx.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const page = await ctx.newPage()
    await withShot(page, 'pages', async () => {
      const ca = await cookieAt(page, a.localOrigin)
      assert.ok(ca.session, 'A set its session cookie')
      const cb = await cookieAt(page, b.localOrigin)
      assert.equal(cb.received, '', `B received A's cookie: ${cb.cookie}`)
      assert.ok(!cb.cookie.includes(ca.session), `B's Cookie header ${cb.cookie} holds A's session`)
      assert.notEqual(cb.session, ca.session)
      const ca2 = await cookieAt(page, a.localOrigin)
      assert.equal(ca2.received, ca.session, 'A keeps its own cookie, not B\'s')
      const jar = await ctx.cookies(b.localOrigin)
      assert.ok(!jar.some((c) => c.value === ca.session), 'chromium keeps no A cookie for B')
    })

    // As tabs of `porthole serve`: both apps framed in serve's page (partitioned cookies).
    await withShot(page, 'tabs', async () => {
      await page.goto(`${porthole.origin}/`)
      for (const [i, o] of [a, b].entries()) {
        await page.evaluate(
          ([src, fid]) => {
            const f = document.createElement('iframe')
            f.id = fid
            f.src = src
            document.body.append(f)
          },
          [o.localUrl, `e2e-perapp-${i}`],
        )
        await page.frameLocator(`#e2e-perapp-${i}`).locator('h1').filter({ hasText: APP_TITLE }).waitFor()
      }
      const fa = await cookieInFrame(page, a.localOrigin)
      assert.ok(fa.session, 'the framed A set its cookie')
      const fb = await cookieInFrame(page, b.localOrigin)
      assert.ok(!fb.cookie.includes(fa.session), `the framed B received A's cookie: ${fb.cookie}`)
      assert.equal((await cookieInFrame(page, a.localOrigin)).received, fa.session, 'the framed A keeps its cookie')
      await page.screenshot({ path: join(ARTIFACTS, 'perapp-tabs.png'), fullPage: true })
    })
    await ctx.close()
  })

  test('2. setting off: two new apps share the server\'s address, and chromium mixes their cookies', async () => {
    const d = (await api('GetSettings')).defaults
    await api('SetServerDefaults', { ...d, cookiesPerApp: false })
    const more = [await startWebApp(), await startWebApp()]
    const [c, dd] = [await api('OpenApp', id, more[0], '/'), await api('OpenApp', id, more[1], '/')]
    const [hc, hd] = [new URL(c.localOrigin).hostname, new URL(dd.localOrigin).hostname]
    assert.equal(hc, hd, 'with the setting off a server\'s new apps share its address')
    assert.notEqual(hc, '127.0.0.1')
    const ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext()
    ctx.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const page = await ctx.newPage()
    await withShot(page, 'shared', async () => {
      const cc = await cookieAt(page, c.localOrigin)
      const cd = await cookieAt(page, dd.localOrigin)
      assert.equal(cd.received, cc.session, 'one address, one cookie: the clash per-app addresses avoid')
      // The apps opened with the setting on keep their addresses.
      const again = await api('OpenApp', id, ports[0], '/')
      assert.match(new URL(again.localOrigin).hostname, /^127\.[1-9]\d*\.\d+\.1$/)
    })
    await ctx.close()
    await api('SetServerDefaults', d)
  })

  test('3. an app bound only to [::1] on the server is listed and opens', async () => {
    const v6 = await startWebApp('[::1]:0')
    const ctx = await /** @type {import('playwright-core').Browser} */ (browser).newContext()
    ctx.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const page = await ctx.newPage()
    await withShot(page, 'v6', async () => {
      // Listed first: here the "server" is this machine, so once Porthole's endpoint listens on the
      // same port number a listing counts the port as Porthole's own (opening before any listing
      // is covered by the Go test TestAppsOnlyOnIPv6Loopback).
      // A loaded machine may fail a listing (the agent's exec times out; the answer is then the
      // list from before, with its error): list again, for up to two minutes.
      let list = await api('ListApps', id)
      for (let i = 0; i < 12 && !list.services.some((/** @type {any} */ s) => s.port === v6); i++) {
        console.log(`e2e: port ${v6} not listed yet${list.error ? ` (${list.error})` : ''}; listing again`)
        await new Promise((r) => setTimeout(r, 2000))
        list = await api('ListApps', id)
      }
      const svc = list.services.find((/** @type {any} */ s) => s.port === v6)
      assert.ok(svc && svc.isWeb, `the [::1]-only app (port ${v6}) is listed: ${JSON.stringify(list.services.map((/** @type {any} */ s) => [s.port, s.kind]))}`)
      const o = await api('OpenApp', id, v6, '/')
      await page.goto(o.localUrl)
      assert.equal(await page.title(), APP_TITLE)
      const c = await cookieAt(page, o.localOrigin)
      assert.ok(c.session, 'the [::1] app\'s cookie works through the forward')
    })
    await ctx.close()
  })
})
