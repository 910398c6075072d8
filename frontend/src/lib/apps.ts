import type { AppList, AppProcess, AppService, AppStatus } from '@/api/types'

/**
 * How app tabs show their apps: 'views' (web views of their own: the Linux window), 'frames'
 * (iframes: `porthole serve`, the macOS and Windows windows) or 'browser' (the system browser).
 */
export type AppTabMode = 'views' | 'frames' | 'browser'

/**
 * Decides how app tabs show apps. The Linux window never frames an app: Wails v2 trusts a binding
 * call by the window's address, and WebKit gives every frame `window.webkit.messageHandlers`, so a
 * server's page in an iframe could call Porthole itself. Without app views there, apps open in the
 * system browser. When the status cannot be read, the desktop window (`wails`) assumes the worst.
 */
export function appTabMode(st: Pick<AppStatus, 'mode' | 'appViews' | 'os'> | null, api: 'wails' | 'http'): AppTabMode {
  if (st?.appViews) return 'views'
  if (!st) return api === 'wails' ? 'browser' : 'frames'
  if (st.mode === 'desktop' && st.os === 'linux') return 'browser'
  return 'frames'
}

/** The icon families of KindIcon: one drawing per family, several discovery kinds per family. */
export type KindFamily =
  | 'jupyter'
  | 'tensorboard'
  | 'mlflow'
  | 'rstudio'
  | 'streamlit'
  | 'gradio'
  | 'code-server'
  | 'grafana'
  | 'prometheus'
  | 'ray'
  | 'dask'
  | 'airflow'
  | 'database'
  | 'ssh'
  | 'web'
  | 'port'

const FAMILY_BY_KIND: Record<string, KindFamily> = {
  'jupyter-lab': 'jupyter',
  'jupyter-notebook': 'jupyter',
  'jupyter-server': 'jupyter',
  jupyterhub: 'jupyter',
  'jupyter-kernel': 'jupyter',
  tensorboard: 'tensorboard',
  mlflow: 'mlflow',
  rstudio: 'rstudio',
  streamlit: 'streamlit',
  gradio: 'gradio',
  'code-server': 'code-server',
  grafana: 'grafana',
  prometheus: 'prometheus',
  'ray-dashboard': 'ray',
  dask: 'dask',
  airflow: 'airflow',
  postgres: 'database',
  mysql: 'database',
  redis: 'database',
  mongodb: 'database',
  ssh: 'ssh',
  http: 'web',
  https: 'web',
}

/** Which icon a discovery kind gets; kinds the UI does not know yet fall back on `isWeb`. */
export function kindFamily(kind: string, isWeb = false): KindFamily {
  const known = FAMILY_BY_KIND[kind]
  if (known) return known
  const k = kind.toLowerCase()
  for (const [prefix, fam] of [
    ['jupyter', 'jupyter'],
    ['ray', 'ray'],
    ['vscode', 'code-server'],
    ['postgres', 'database'],
    ['maria', 'database'],
    ['clickhouse', 'database'],
    ['mongo', 'database'],
  ] as const) {
    if (k.startsWith(prefix)) return fam
  }
  return isWeb ? 'web' : 'port'
}

const KIND_BY_NAME: Array<[string, string]> = [
  ['jupyter lab', 'jupyter-lab'],
  ['jupyterlab', 'jupyter-lab'],
  ['jupyter notebook', 'jupyter-notebook'],
  ['jupyterhub', 'jupyterhub'],
  ['jupyter', 'jupyter-server'],
  ['tensorboard', 'tensorboard'],
  ['mlflow', 'mlflow'],
  ['rstudio', 'rstudio'],
  ['posit', 'rstudio'],
  ['streamlit', 'streamlit'],
  ['gradio', 'gradio'],
  ['code-server', 'code-server'],
  ['grafana', 'grafana'],
  ['prometheus', 'prometheus'],
  ['ray dashboard', 'ray-dashboard'],
  ['dask', 'dask'],
  ['airflow', 'airflow'],
]

/**
 * The kind a tab's title suggests ("Jupyter Lab — ~/project" → jupyter-lab), for tabs restored
 * from disk, whose kind was not saved; '' when it says nothing.
 */
export function kindFromTitle(title: string): string {
  const t = title.trim().toLowerCase()
  for (const [name, kind] of KIND_BY_NAME) if (t.startsWith(name)) return kind
  return ''
}

/** Each family's colour: a tint for its tile, readable on both themes. '' uses the accent. */
export const FAMILY_TINT: Record<KindFamily, string> = {
  jupyter: '#e8702a',
  tensorboard: '#f0a30a',
  mlflow: '#0b94d8',
  rstudio: '#4f86c6',
  streamlit: '#ef4b4b',
  gradio: '#f26b1d',
  'code-server': '#2f6fde',
  grafana: '#e8590c',
  prometheus: '#d9482b',
  ray: '#2a8cf0',
  dask: '#d97a2b',
  airflow: '#11a8c2',
  database: '#5a78a8',
  ssh: '#64748b',
  web: '',
  port: '#7b8494',
}

/** Go's zero time means "unknown". */
export function knownTime(iso: string | undefined | null): Date | null {
  if (!iso || iso.startsWith('0001-01-01')) return null
  const t = new Date(iso)
  return Number.isNaN(t.getTime()) ? null : t
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", or the date. */
export function formatSince(iso: string | undefined | null, now: number = Date.now()): string {
  const t = knownTime(iso)
  if (!t) return ''
  const s = Math.max(0, Math.round((now - t.getTime()) / 1000))
  if (s < 45) return 'just now'
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.round(m / 60)
  if (h < 24) return `${h} h ago`
  const d = Math.round(h / 24)
  if (d === 1) return 'yesterday'
  if (d < 30) return `${d} days ago`
  return `on ${t.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })}`
}

/** "jupyter-lab · pid 4242". */
export function processLabel(p: AppProcess | undefined): string {
  if (!p) return ''
  const name = p.name || 'process'
  return p.pid > 0 ? `${name} · pid ${p.pid}` : name
}

/** The subtitle under a card's title: the kind, unless the title already says it. */
export function kindLine(s: AppService): string {
  if (!s.kindName || s.title.toLowerCase().startsWith(s.kindName.toLowerCase())) return ''
  return s.kindName
}

/** Web apps first (by port), then the rest (by port). */
export function splitServices(list: AppList | null | undefined): { web: AppService[]; other: AppService[] } {
  const all = [...(list?.services ?? [])].sort((a, b) => a.port - b.port)
  return { web: all.filter((s) => s.isWeb), other: all.filter((s) => !s.isWeb) }
}

/**
 * Which forwarded web apps of one server share a local address (host), and so their cookies:
 * browsers keep cookies per host, not per port (RFC 6265). It happens where each app cannot have a
 * loopback address of its own (macOS), with "separate cookies per app" off, and for apps opened
 * before it existed. Port → the other ports on the same host, for the apps that clash.
 */
export function sharedCookieHosts(services: readonly AppService[]): Map<number, { host: string; ports: number[] }> {
  const byHost = new Map<string, number[]>()
  for (const s of services) {
    if (!s.isWeb || s.local || !s.localUrl) continue
    let host: string
    try {
      host = new URL(s.localUrl).hostname
    } catch {
      continue
    }
    byHost.set(host, [...(byHost.get(host) ?? []), s.port])
  }
  const out = new Map<number, { host: string; ports: number[] }>()
  for (const [host, ports] of byHost) {
    if (ports.length < 2) continue
    for (const p of ports) out.set(p, { host, ports: ports.filter((q) => q !== p).sort((a, b) => a - b) })
  }
  return out
}

const INTERPRETER = /^(python[\d.]*|node|ruby|perl|bash|sh|java|Rscript|R)$/

function base(p: string): string {
  return p.includes('/') ? p.slice(p.lastIndexOf('/') + 1) : p
}

/**
 * A command line as people would type it: "/root/.pyenv/versions/3.11.7/bin/python3 -m http.server"
 * → "python3 -m http.server"; an interpreter's script too ("/usr/bin/python3 /usr/bin/jupyter-notebook"
 * → "python3 jupyter-notebook"). The full line stays in the tooltip.
 */
export function shortCommand(cmdline: string): string {
  const parts = cmdline.trim().split(/\s+/)
  if (parts.length === 0 || parts[0] === '') return ''
  parts[0] = base(parts[0]!)
  if (INTERPRETER.test(parts[0]) && parts[1]?.startsWith('/')) parts[1] = base(parts[1])
  return parts.join(' ')
}

/** "~/project" style: the home directory shortened, for the card's working-directory line. */
export function shortPath(path: string): string {
  return path.replace(/^\/(?:home|Users)\/[^/]+(?=\/|$)/, '~').replace(/^\/root(?=\/|$)/, '~')
}
