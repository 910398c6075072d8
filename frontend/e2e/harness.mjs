// @ts-check
// Process and API helpers shared by the end-to-end specs.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/** Sends sig to p's process group (p is started with detached: true), or to p alone. */
export function killGroup(/** @type {import('node:child_process').ChildProcess | undefined} */ p, /** @type {NodeJS.Signals} */ sig) {
  if (!p?.pid) return
  try {
    process.kill(-p.pid, sig)
  } catch {
    try {
      p.kill(sig)
    } catch {
      // gone
    }
  }
}

/** Stops a child we started: SIGTERM to its process group, SIGKILL after 5 s. */
export async function stop(/** @type {import('node:child_process').ChildProcess | undefined} */ p) {
  if (!p || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return
  const exited = new Promise((r) => p.once('exit', r))
  killGroup(p, 'SIGTERM')
  const timer = setTimeout(() => killGroup(p, 'SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

/**
 * Calls an App method of a running `porthole serve` through its HTTP API. A
 * non-2xx answer throws an Error carrying `status` and the JSON `body`.
 * @param {{origin: string, token: string}} porthole
 * @param {string} method
 * @param {unknown[]} args
 */
export async function callApi(porthole, method, ...args) {
  const res = await fetch(`${porthole.origin}/api/${method}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${porthole.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(args),
  })
  const body = await res.json()
  if (!res.ok) throw Object.assign(new Error(`${method}: HTTP ${res.status}: ${body.error}`), { status: res.status, body })
  return body
}

/**
 * The next line of lines, parsed as JSON (testsshd prints one JSON line per event).
 * @param {import('node:readline').Interface | undefined} lines
 * @param {number} timeoutMs
 * @param {() => string} stderr what the process wrote to stderr, for the error
 * @returns {Promise<any>}
 */
export function nextJsonLine(lines, timeoutMs, stderr) {
  return new Promise((resolveInfo, reject) => {
    const timer = setTimeout(() => reject(new Error(`testsshd printed nothing within ${timeoutMs / 1000} s\n${stderr()}`)), timeoutMs)
    lines?.once('line', (l) => {
      clearTimeout(timer)
      try {
        resolveInfo(JSON.parse(l))
      } catch (err) {
        reject(new Error(`testsshd printed ${JSON.stringify(l)}: ${err}`))
      }
    })
  })
}

/** Keeps the last max characters stream writes; returns a getter for them. */
export function keepTail(/** @type {import('node:stream').Readable | null | undefined} */ stream, /** @type {number} */ max) {
  let kept = ''
  stream?.setEncoding('utf8')
  stream?.on('data', (d) => (kept = (kept + d).slice(-max)))
  return () => kept
}

/**
 * Starts `porthole serve` in a process group of its own (so stop() reaches everything it starts),
 * with HOME and the XDG directories under home, and waits for the URL it prints first. It listens
 * where serve does by default (its own loopback address, 127.80.72.1, any port) unless addr, or
 * else $PORTHOLE_E2E_SERVE_ADDR (e.g. 127.0.0.1:0, to see what the default protects from), says
 * otherwise.
 * @param {{bin: string, home: string, env?: Record<string, string>, timeoutMs: number, stderrMax?: number, addr?: string}} o
 * @returns {Promise<{child: import('node:child_process').ChildProcess, stderr: () => string, url: string, origin: string, token: string}>}
 */
export async function startPortholeServe({ bin, home, env = {}, timeoutMs, stderrMax = 100_000, addr = process.env.PORTHOLE_E2E_SERVE_ADDR }) {
  try {
    accessSync(bin, constants.X_OK)
  } catch {
    throw new Error(`no porthole binary at ${bin}: build it (make build) or set PORTHOLE_BIN`)
  }
  const child = spawn(bin, ['serve', ...(addr ? ['--addr', addr] : [])], {
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local/share'),
      XDG_STATE_HOME: join(home, '.local/state'),
      XDG_CACHE_HOME: join(home, '.cache'),
      ...env,
    },
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const stderr = keepTail(child.stderr, stderrMax)
  const lines = createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) })
  const first = await new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`porthole serve printed no URL within ${timeoutMs / 1000} s\n${stderr()}`)), timeoutMs)
    lines.once('line', (l) => {
      clearTimeout(timer)
      resolveLine(l)
    })
    child.once('exit', (code, sig) => {
      clearTimeout(timer)
      reject(new Error(`porthole serve exited (${code ?? sig}) before printing its URL\n${stderr()}`))
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${bin}: ${err.message}`))
    })
  }).catch((err) => {
    killGroup(child, 'SIGKILL')
    throw err
  })
  lines.on('line', () => {}) // keep draining stdout
  const m = /^(https?:\/\/127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+)\/#token=([^\s&]+)\s*$/.exec(String(first))
  assert.ok(m, `the first stdout line of porthole serve is its URL, got ${JSON.stringify(first)}`)
  return { child, stderr, url: `${m[1]}/#token=${m[2]}`, origin: m[1], token: decodeURIComponent(m[2]) }
}

/** The test rig's command name: given (a *_BIN variable) if set, else a `go build` of it into dir. */
export function rigBinary(/** @type {string} */ repo, /** @type {string} */ dir, /** @type {string} */ name, /** @type {string | undefined} */ given) {
  if (given) return given
  const bin = join(dir, name)
  execFileSync('go', ['build', '-o', bin, `./internal/testrig/cmd/${name}`], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] })
  return bin
}

/**
 * Starts testsshd (a real OpenSSH sshd on loopback, driven over stdin) in a process group of its
 * own and waits for the JSON line with its address.
 * @param {{bin: string, args?: string[], timeoutMs: number}} o
 */
export async function startTestSshd({ bin, args = [], timeoutMs }) {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  const stderr = keepTail(child.stderr, 20_000)
  const lines = createInterface({ input: /** @type {NodeJS.ReadableStream} */ (child.stdout) })
  const exited = new Promise((_, reject) => {
    child.once('exit', (c, s) => reject(new Error(`testsshd exited (${c ?? s})\n${stderr()}`)))
    child.once('error', (err) => reject(new Error(`cannot run ${bin}: ${err.message}`)))
  })
  const info = await Promise.race([nextJsonLine(lines, timeoutMs, stderr), exited])
  exited.catch(() => {}) // later exits are handled by stop()
  return { child, lines, stderr, info }
}

/**
 * A temp dir with a HOME whose ~/.ssh/known_hosts knows a testsshd started for it (built from
 * repo unless TESTSSHD_BIN names one): what a spec needs before porthole serve starts.
 * @param {{repo: string, prefix: string, timeoutMs: number}} o
 */
export async function sshdWithHome({ repo, prefix, timeoutMs }) {
  const tmp = mkdtempSync(join(tmpdir(), prefix))
  const home = join(tmp, 'home')
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
  const s = await startTestSshd({ bin: rigBinary(repo, tmp, 'testsshd', process.env.TESTSSHD_BIN), timeoutMs })
  writeFileSync(join(home, '.ssh/known_hosts'), readFileSync(s.info.knownHosts), { mode: 0o600 })
  return { tmp, home, sshd: s.child, info: s.info }
}
