// @ts-check
// Real web apps from Debian packages, started on the "server" side (this machine, bound to
// 127.0.0.1 only, each with a throwaway config directory) for realapps.spec.mjs. Every one is
// configured so that no traffic leaves loopback: no discovery, no relays, no DHT, no NAT
// traversal, no update checks, no usage reports. No system service is used or enabled.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { keepTail, killGroup } from './harness.mjs'

/**
 * @typedef {{
 *   name: string,
 *   child: import('node:child_process').ChildProcess,
 *   port: number,
 *   log: () => string,
 *   secret: string,
 *   user?: string,
 *   also?: RunningApp[],
 *   cleanup?: () => void,
 * }} RunningApp
 * cleanup: what is left to undo once child (and also) stopped; synchronous, so that it also
 * runs when the test process exits.
 * @typedef {{
 *   name: string,
 *   pkg: string,
 *   bin: string,
 *   needs?: string[],
 *   unavailable?: () => string,
 *   start: (dir: string) => Promise<RunningApp>,
 * }} RealApp
 * unavailable: why the app, though installed, cannot run on this machine, or ''.
 */

/** A free TCP port on 127.0.0.1 (listen on 0, close; the app binds it right after). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address())
      s.close(() => resolvePort(port))
    })
  })
}

/** Whether the app's programs (bin and the others it needs) are installed. */
export function installed(/** @type {RealApp} */ app) {
  try {
    for (const b of [app.bin, ...(app.needs ?? [])]) accessSync(b, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Runs cmd in a process group of its own (stop() in harness.mjs ends it all) and waits until
 * http://127.0.0.1:port/ answers anything (probe "tcp": accepts a connection). The app's output is
 * kept for failures.
 * @param {string} name
 * @param {string} cmd
 * @param {string[]} args
 * @param {{env?: Record<string, string>, cwd: string, port: number, secret?: string, user?: string, timeoutMs?: number, probe?: 'http' | 'tcp'}} o
 * @returns {Promise<RunningApp>}
 */
async function run(name, cmd, args, { env = {}, cwd, port, secret = '', user, timeoutMs = 90_000, probe = 'http' }) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const out = keepTail(child.stdout, 20_000)
  const err = keepTail(child.stderr, 20_000)
  const log = () => `--- ${name} stdout\n${out()}\n--- ${name} stderr\n${err()}`
  let exited = ''
  child.once('exit', (c, s) => (exited = `${c ?? s}`))
  child.once('error', (e) => (exited = e.message))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited) throw new Error(`${name} exited (${exited}) before it listened on 127.0.0.1:${port}\n${log()}`)
    const up =
      probe === 'tcp'
        ? await new Promise((r) => {
            const c = connect(port, '127.0.0.1', () => (c.destroy(), r(true)))
            c.once('error', () => r(false))
          })
        : await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual', signal: AbortSignal.timeout(2_000) }).then(
            () => true,
            () => false,
          )
    if (up) break
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL')
      throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000} s\n${log()}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  return { name, child, port, log, secret, user }
}

/** Jupyter Notebook 6: its own login page (a token as password, _xsrf form), a kernel over a websocket. */
export const jupyter = /** @type {RealApp} */ ({
  name: 'Jupyter Notebook',
  pkg: 'jupyter-notebook',
  bin: '/usr/bin/jupyter-notebook',
  async start(dir) {
    const port = await freePort()
    const token = randomBytes(16).toString('hex')
    const nb = join(dir, 'notebooks')
    mkdirSync(nb, { recursive: true })
    writeFileSync(
      join(nb, 'realapps.ipynb'),
      JSON.stringify({
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
        cells: [{ cell_type: 'code', id: 'c1', metadata: {}, execution_count: null, outputs: [], source: ['x = 6 * 7\n', 'print(f"answer={x}")'] }],
      }),
    )
    return run(
      'jupyter-notebook',
      jupyter.bin,
      [
        '--no-browser',
        '--allow-root', // the test user may be root
        '--ip=127.0.0.1',
        `--port=${port}`,
        '--port-retries=0',
        `--notebook-dir=${nb}`,
        `--NotebookApp.token=${token}`,
        '--NotebookApp.open_browser=False',
      ],
      {
        cwd: dir,
        port,
        secret: token,
        env: {
          HOME: dir,
          JUPYTER_CONFIG_DIR: join(dir, 'jupyter-config'),
          JUPYTER_DATA_DIR: join(dir, 'jupyter-data'),
          JUPYTER_RUNTIME_DIR: join(dir, 'jupyter-runtime'),
          IPYTHONDIR: join(dir, 'ipython'),
          // The system's Python (the package's), not a pyenv shim found first on PATH.
          PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}`,
        },
      },
    )
  },
})

/** Syncthing 1.19: its GUI sends a CSRF token (a cookie echoed in a header) with every API call. */
export const syncthing = /** @type {RealApp} */ ({
  name: 'Syncthing',
  pkg: 'syncthing',
  bin: '/usr/bin/syncthing',
  async start(dir) {
    const port = await freePort()
    const listen = await freePort()
    const home = join(dir, 'syncthing')
    const env = { HOME: dir, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1', STNORESTART: '1' }
    await new Promise((resolveGen, reject) => {
      const g = spawn(syncthing.bin, ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
      const err = keepTail(g.stderr, 4_000)
      g.once('exit', (c) => (c === 0 ? resolveGen(undefined) : reject(new Error(`syncthing generate exited ${c}: ${err()}`))))
      g.once('error', reject)
    })
    const cfgPath = join(home, 'config.xml')
    let cfg = readFileSync(cfgPath, 'utf8')
    /** @type {[RegExp, string][]} */
    const edits = [
      // Loopback only; nothing announced or looked up anywhere; no relays, NAT, reports or upgrades.
      [/<listenAddress>[^<]*<\/listenAddress>/, `<listenAddress>tcp://127.0.0.1:${listen}</listenAddress>`],
      [/<globalAnnounceEnabled>true/, '<globalAnnounceEnabled>false'],
      [/<localAnnounceEnabled>true/, '<localAnnounceEnabled>false'],
      [/<relaysEnabled>true/, '<relaysEnabled>false'],
      [/<natEnabled>true/, '<natEnabled>false'],
      [/<startBrowser>true/, '<startBrowser>false'],
      [/<urAccepted>0/, '<urAccepted>-1'],
      [/<autoUpgradeIntervalH>\d+/, '<autoUpgradeIntervalH>0'],
      [/<crashReportingEnabled>true/, '<crashReportingEnabled>false'],
      [/(<device id="[^"]*" name=")[^"]*"/, '$1porthole-realapps"'],
    ]
    for (const [re, to] of edits) {
      assert.match(cfg, re, `syncthing's generated config has ${re}`)
      cfg = cfg.replace(re, to)
    }
    writeFileSync(cfgPath, cfg)
    return run('syncthing', syncthing.bin, ['serve', `--home=${home}`, '--no-browser', '--no-restart', '--no-upgrade', `--gui-address=http://127.0.0.1:${port}`], { cwd: dir, port, env })
  },
})

/** Transmission 3.00: HTTP basic auth, and the X-Transmission-Session-Id CSRF handshake (409, then retry). */
export const transmission = /** @type {RealApp} */ ({
  name: 'Transmission',
  pkg: 'transmission-daemon',
  bin: '/usr/bin/transmission-daemon',
  async start(dir) {
    const port = await freePort()
    const peer = await freePort()
    const cfg = join(dir, 'transmission')
    mkdirSync(join(cfg, 'downloads'), { recursive: true })
    const password = randomBytes(12).toString('hex')
    writeFileSync(
      join(cfg, 'settings.json'),
      JSON.stringify(
        {
          'rpc-enabled': true,
          'rpc-bind-address': '127.0.0.1',
          'rpc-port': port,
          'rpc-authentication-required': true,
          'rpc-username': 'porthole',
          'rpc-password': password, // transmission replaces it with its hash on exit
          'rpc-whitelist-enabled': true,
          'rpc-whitelist': '127.0.0.1,::1',
          'rpc-host-whitelist-enabled': true,
          'bind-address-ipv4': '127.0.0.1',
          'bind-address-ipv6': '::1',
          'peer-port': peer,
          'peer-port-random-on-start': false,
          'dht-enabled': false,
          'lpd-enabled': false,
          'pex-enabled': false,
          'utp-enabled': false,
          'port-forwarding-enabled': false,
          'blocklist-enabled': false,
          'download-dir': join(cfg, 'downloads'),
          'incomplete-dir-enabled': false,
          'watch-dir-enabled': false,
          'message-level': 1,
        },
        null,
        2,
      ),
    )
    return run('transmission-daemon', transmission.bin, ['--foreground', '--config-dir', cfg, '--no-portmap', '--no-dht', '--no-lpd'], {
      cwd: dir,
      port,
      secret: password,
      user: 'porthole',
      env: { HOME: dir },
    })
  },
})

/**
 * The throwaway OS user whose PAM login Cockpit is tested with. It exists only while the test
 * runs; its comment field marks it as the test's, so that a leftover of a crashed run is
 * recognized (and removed) and an account of the same name that is not the test's is never
 * touched.
 */
export const COCKPIT_USER = 'porthole-e2e-cockpit'
const COCKPIT_USER_MARK = 'porthole e2e throwaway user (frontend/e2e/realapps.mjs)'

/** Runs a system command to the end; its stdin is input (never argv: it may hold a password). */
function sys(/** @type {string} */ cmd, /** @type {string[]} */ args, input = '') {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() }
}

/** The passwd entry of name, split into its fields, or undefined. */
function passwdEntry(/** @type {string} */ name) {
  const r = sys('getent', ['passwd', name])
  return r.code === 0 ? r.out.split('\n')[0].split(':') : undefined
}

/** The ids of the processes whose real uid is uid (read from /proc). */
function processesOf(/** @type {number} */ uid) {
  /** @type {number[]} */
  const pids = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))
      if (m && Number(m[1]) === uid) pids.push(Number(d))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/**
 * Removes the throwaway user and its home (userdel -r), after ending its processes (Cockpit's
 * session: cockpit-bridge and the D-Bus daemon it starts), which userdel refuses to leave. No-op
 * when the user does not exist; throws when an account of that name is not the test's.
 */
export function removeCockpitUser() {
  const e = passwdEntry(COCKPIT_USER)
  if (!e) return
  if (e[4] !== COCKPIT_USER_MARK) {
    throw new Error(`an account ${COCKPIT_USER} exists that this test did not make (its comment is ${JSON.stringify(e[4])}): the test leaves it alone; remove or rename it to run Cockpit's test`)
  }
  const uid = Number(e[2])
  let last = ''
  for (let i = 0; i < 50; i++) {
    for (const pid of processesOf(uid)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
    const r = sys('userdel', ['-r', COCKPIT_USER])
    if (r.code === 0) return
    last = `userdel -r exited ${r.code}: ${r.out}`
    if (!passwdEntry(COCKPIT_USER)) break // the account went, its home did not
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100) // killed processes are reaped
  }
  throw new Error(`could not remove the throwaway user ${COCKPIT_USER}: ${last}`)
}

/**
 * Why Cockpit's login cannot be tested on this machine ('' when it can): it needs root, to make
 * the throwaway user, and the account Cockpit's web service runs as.
 */
export function cockpitUnavailable() {
  if (process.getuid?.() !== 0) return `Cockpit's test logs in as a throwaway OS user (PAM), which only root can create; run the test as root (CI does)`
  for (const t of ['/usr/sbin/useradd', '/usr/sbin/chpasswd', '/usr/sbin/userdel', '/usr/bin/setpriv', '/usr/lib/cockpit/cockpit-session']) {
    try {
      accessSync(t, constants.X_OK)
    } catch {
      return `${t} is missing (the passwd, util-linux and cockpit-ws packages)`
    }
  }
  if (!passwdEntry('cockpit-wsinstance')) return 'the account cockpit-wsinstance (made by the cockpit-ws package) is missing'
  return ''
}

/**
 * Makes the throwaway user (first removing a leftover of a crashed run) with a new random
 * password, given to chpasswd on its stdin; returns the password. It lives in this process only.
 */
function makeCockpitUser() {
  removeCockpitUser()
  const add = sys('useradd', ['--create-home', '--comment', COCKPIT_USER_MARK, '--shell', '/bin/sh', '--user-group', COCKPIT_USER])
  if (add.code !== 0) throw new Error(`useradd ${COCKPIT_USER} exited ${add.code}: ${add.out}`)
  const password = randomBytes(18).toString('base64url')
  const set = sys('chpasswd', [], `${COCKPIT_USER}:${password}\n`)
  if (set.code !== 0) {
    removeCockpitUser()
    throw new Error(`chpasswd for ${COCKPIT_USER} exited ${set.code}: ${set.out}`)
  }
  return password
}

/**
 * Cockpit 287: its own login page (a PAM login of a real OS user, run by its setuid
 * cockpit-session), then a shell whose every call goes over one websocket, with strict Origin
 * checks (the socket's Origin must be http:// + the Host it was asked for) and a CSP naming the
 * app's own origin. cockpit-ws serves plain HTTP (--no-tls) on 127.0.0.1 for the length of the
 * test, as the account Cockpit's own units run it as (cockpit-wsinstance, whose group may run
 * cockpit-session), with /etc/cockpit/cockpit.conf ignored (PAM still reads
 * /etc/cockpit/disallowed-users). The login is the throwaway user's (COCKPIT_USER); its password
 * is the app's secret.
 */
export const cockpit = /** @type {RealApp} */ ({
  name: 'Cockpit',
  pkg: 'cockpit-ws',
  bin: '/usr/lib/cockpit/cockpit-ws',
  needs: ['/usr/bin/cockpit-bridge'],
  unavailable: cockpitUnavailable,
  async start(dir) {
    const port = await freePort()
    const cfg = join(dir, 'cockpit')
    mkdirSync(cfg, { recursive: true })
    const password = makeCockpitUser()
    try {
      const args = ['--no-tls', '--port', String(port), '--address', '127.0.0.1']
      // Where this process may not gain privileges (no_new_privs, as in some containers), the
      // setuid cockpit-session could not either: cockpit-ws then stays root, which runs it as is.
      const noNewPrivs = /^NoNewPrivs:\s*1$/m.test(readFileSync('/proc/self/status', 'utf8'))
      const [cmd, argv] = noNewPrivs ? [cockpit.bin, args] : ['setpriv', ['--reuid=cockpit-wsinstance', '--regid=cockpit-wsinstance', '--init-groups', cockpit.bin, ...args]]
      if (noNewPrivs) console.log('e2e: no_new_privs is set: cockpit-ws runs as root, not as cockpit-wsinstance')
      const env = { HOME: '/nonexistent', XDG_CONFIG_DIRS: cfg }
      const ws = await run('cockpit-ws', cmd, argv, { cwd: '/', port, env, secret: password, user: COCKPIT_USER })
      return { ...ws, cleanup: removeCockpitUser }
    } catch (err) {
      removeCockpitUser()
      throw err
    }
  },
})

/**
 * Keeps Cockpit's session of cookie alive: a websocket of that session straight to cockpit-ws on
 * 127.0.0.1:port (not through Porthole), which answers Cockpit's "init" and then only listens.
 * Cockpit ends a login's session 15 s after its last websocket closed (cockpit-ws's
 * cockpit_ws_service_idle, fixed but for its own tests; see realapps.spec.mjs, cockpitAgain),
 * and a restart of Porthole closes the page's socket, as any network outage would. Resolves once
 * Cockpit accepted the socket (its init names no problem); close() ends it.
 * @param {number} port
 * @param {string} cookie "cockpit=..."
 * @returns {Promise<{close: () => void}>}
 */
export function cockpitHoldSession(port, cookie) {
  return new Promise((resolveHold, reject) => {
    let seen = ''
    let held = false
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        [
          'GET /cockpit/socket HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          `Origin: http://127.0.0.1:${port}`,
          `Cookie: ${cookie}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Version: 13',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Protocol: cockpit1',
          '',
          '',
        ].join('\r\n'),
      )
    })
    const fail = (/** @type {string} */ why) => {
      s.destroy()
      reject(new Error(`cockpit-ws refused a websocket of the session straight on 127.0.0.1:${port}: ${why}`))
    }
    s.setTimeout(30_000, () => held || fail(`no answer within 30 s; got ${JSON.stringify(seen.slice(0, 400))}`))
    s.on('error', (err) => held || fail(err.message))
    s.on('data', (d) => {
      if (held) return // pings and the like: only listened to
      seen += d.toString('latin1')
      if (!seen.startsWith('HTTP/1.1 101 ') && seen.includes('\r\n')) return fail(JSON.stringify(seen.slice(0, 400)))
      if (seen.includes('"problem"')) return fail(JSON.stringify(seen.slice(0, 400)))
      if (!/"command":"init"[^}]*"csrf-token"/.test(seen)) return
      held = true
      s.setTimeout(0)
      // The client's "init" on the control channel (an empty channel id, then a newline), as a
      // masked text frame, as every client's frames are.
      const text = Buffer.from('\n{"command":"init","version":1}')
      const mask = randomBytes(4)
      s.write(Buffer.concat([Buffer.from([0x81, 0x80 | text.length]), mask, Buffer.from(text.map((b, i) => b ^ mask[i % 4]))]))
      resolveHold({ close: () => s.destroy() })
    })
  })
}

/** Writes a Deluge config file: its version header, then the settings (Deluge adds defaults for the rest). */
function delugeConf(/** @type {string} */ file, /** @type {number} */ version, /** @type {object} */ settings) {
  writeFileSync(file, `${JSON.stringify({ file: version, format: 1 })}${JSON.stringify(settings, null, 2)}`)
}

/**
 * Deluge 2.0.3: deluge-web's own login page (a password; its session cookie) and its JSON-RPC API,
 * connected to a deluged of its own. Both share one config directory, written here first so that
 * libtorrent starts with DHT, local peer discovery, UPnP and NAT-PMP off and listens on loopback.
 */
export const deluge = /** @type {RealApp} */ ({
  name: 'Deluge',
  pkg: 'deluge-web',
  bin: '/usr/bin/deluge-web',
  needs: ['/usr/bin/deluged'],
  async start(dir) {
    const port = await freePort()
    const daemonPort = await freePort()
    const peer = await freePort()
    const cfg = join(dir, 'deluge')
    const dl = join(dir, 'deluge-downloads')
    mkdirSync(join(cfg, 'plugins'), { recursive: true })
    mkdirSync(dl, { recursive: true })
    const password = randomBytes(12).toString('hex')
    const localclient = randomBytes(20).toString('hex')
    writeFileSync(join(cfg, 'auth'), `localclient:${localclient}:10\n`, { mode: 0o600 })
    delugeConf(join(cfg, 'core.conf'), 1, {
      daemon_port: daemonPort,
      allow_remote: false,
      dht: false,
      lsd: false,
      upnp: false,
      natpmp: false,
      utpex: false,
      new_release_check: false,
      send_info: false,
      listen_interface: '127.0.0.1',
      listen_ports: [peer, peer],
      random_port: false,
      download_location: dl,
      move_completed_path: dl,
      torrentfiles_location: dl,
      plugins_location: join(cfg, 'plugins'),
      geoip_db_location: '',
    })
    const hostId = randomBytes(16).toString('hex')
    delugeConf(join(cfg, 'hostlist.conf'), 3, { hosts: [[hostId, '127.0.0.1', daemonPort, 'localclient', localclient]] })
    const salt = randomBytes(20).toString('hex')
    delugeConf(join(cfg, 'web.conf'), 2, {
      pwd_salt: salt,
      pwd_sha1: createHash('sha1').update(salt).update(password).digest('hex'),
      default_daemon: hostId, // log in, and deluge-web connects to this daemon by itself
      first_login: false,
      interface: '127.0.0.1',
      port,
      https: false,
      enabled_plugins: [],
    })
    const env = { HOME: dir, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` }
    const daemon = await run('deluged', '/usr/bin/deluged', ['--do-not-daemonize', '--config', cfg, '--ui-interface', '127.0.0.1', '--port', String(daemonPort), '--interface', '127.0.0.1', '--loglevel', 'warning'], {
      cwd: dir,
      port: daemonPort,
      env,
      probe: 'tcp',
    })
    const web = await run('deluge-web', deluge.bin, ['--do-not-daemonize', '--config', cfg, '--interface', '127.0.0.1', '--port', String(port), '--loglevel', 'warning'], { cwd: dir, port, secret: password, env })
    return { ...web, also: [daemon] }
  },
})

export const REAL_APPS = [jupyter, syncthing, transmission, deluge, cockpit]
