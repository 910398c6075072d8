// What people paste into the URL bar, sorted before anything is asked of the backend.
// The backend (ParseAppURL) has the last word on what a server's localhost is; this only
// decides which server to ask, and catches what no server could open.

export type UrlInput =
  | { kind: 'empty' }
  /** "8888", ":8888/lab": a port on the current server. */
  | { kind: 'port'; port: number; path: string }
  /** An http(s) URL, with the scheme added when it was left out. */
  | { kind: 'url'; url: string; host: string; port: number; path: string; loopback: boolean }
  | { kind: 'invalid'; reason: string }

const PORT_ONLY = /^:?(\d{1,5})(\/.*|\?.*|#.*)?$/
const HAS_SCHEME = /^[a-z][a-z\d+.-]*:\/\//i
/** "mailto:", "javascript:", "file:" … (a scheme not followed by a port number). */
const OTHER_SCHEME = /^([a-z][a-z\d+.-]*):(?!\d)/i

export function validPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535
}

/** Loopback and "all interfaces" as apps print them: localhost, 127.x, 0.0.0.0, [::1], [::]. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'ip6-localhost' || h === 'ip6-loopback') return true
  if (h === '0.0.0.0' || h === '[::]' || h === '[::1]') return true
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true
  // IPv4-mapped loopback, as the URL parser normalises it: [::ffff:7f00:1].
  if (/^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(h)) return true
  return false
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80
}

export function parseUrlInput(raw: string): UrlInput {
  const s = raw.trim()
  if (s === '') return { kind: 'empty' }
  const portOnly = PORT_ONLY.exec(s)
  if (portOnly) {
    const port = Number(portOnly[1])
    if (!validPort(port)) return { kind: 'invalid', reason: `${port} is not a port number (1–65535).` }
    const rest = portOnly[2] ?? ''
    return { kind: 'port', port, path: rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}` }
  }
  let text = s
  if (!HAS_SCHEME.test(text)) {
    const other = OTHER_SCHEME.exec(text)
    if (other && !/^[\w.-]+$/.test(text.slice(other[0].length))) {
      // "localhost:" followed by a non-number is still a host with a bad port; anything else is a scheme.
      return { kind: 'invalid', reason: `Porthole opens http and https addresses, not ${other[1]!.toLowerCase()}: ones.` }
    }
    text = `http://${text}`
  }
  let u: URL
  try {
    u = new URL(text)
  } catch {
    return { kind: 'invalid', reason: 'That does not look like an address. Paste a URL such as http://localhost:8888/lab.' }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { kind: 'invalid', reason: `Porthole opens http and https addresses, not ${u.protocol.replace(/:$/, '')}: ones.` }
  }
  if (!u.hostname) return { kind: 'invalid', reason: 'That address has no host name.' }
  return {
    kind: 'url',
    url: u.href,
    host: u.hostname,
    port: u.port ? Number(u.port) : defaultPort(u.protocol),
    path: `${u.pathname}${u.search}${u.hash}`,
    loopback: isLoopbackHost(u.hostname),
  }
}

/** The servers a URL's host names (by host name or name, case-insensitively). */
export function serversForHost<S extends { id: string; host: string; name: string }>(hostname: string, servers: readonly S[]): S[] {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '')
  return servers.filter((s) => s.host.toLowerCase().replace(/^\[|\]$/g, '') === h || s.name.toLowerCase() === h)
}

/** "/lab?x=1#y" of a URL; '/' when it cannot be parsed. */
export function pathOf(url: string): string {
  try {
    const u = new URL(url)
    return `${u.pathname}${u.search}${u.hash}`
  } catch {
    return '/'
  }
}

/**
 * A path without its `token` query parameter: what is saved for a restored tab. The app's
 * cookie (or Porthole's auto-login) logs it in again; a token does not belong in a file.
 */
export function withoutToken(path: string): string {
  const q = path.indexOf('?')
  if (q < 0) return path
  const hashAt = path.indexOf('#', q)
  const base = path.slice(0, q)
  const query = path.slice(q + 1, hashAt < 0 ? undefined : hashAt)
  const hash = hashAt < 0 ? '' : path.slice(hashAt)
  const kept = query.split('&').filter((kv) => kv !== '' && kv.split('=')[0] !== 'token')
  return `${base}${kept.length ? `?${kept.join('&')}` : ''}${hash}`
}

/** "127.0.0.2:8888" of "http://127.0.0.2:8888/…". */
export function hostPort(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/** The URL OpenThrough opens again for a tab through a server: http://host:port/path (IPv6 in brackets). */
export function throughUrl(host: string, port: number, path: string): string {
  const h = host.includes(':') ? `[${host}]` : host
  return `http://${h}:${port}${path.startsWith('/') ? path : `/${path}`}`
}
