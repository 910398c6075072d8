// @ts-check
// Process and API helpers shared by the end-to-end specs.

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
