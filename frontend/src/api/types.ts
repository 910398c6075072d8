// The backend's JSON shapes and the one interface the UI talks to.
// Field names mirror the Go structs' json tags (see version.go, app.go).

export interface VersionInfo {
  version: string
  commit: string
  go: string
  wails: string
  os: string
  arch: string
}

export type Mode = 'desktop' | 'serve'

export interface AppStatus {
  mode: Mode
  /** RFC 3339 time the backend started. */
  startedAt: string
  servers: number
  forwards: number
}

export type Theme = 'system' | 'light' | 'dark'
export const THEMES: readonly Theme[] = ['system', 'light', 'dark']

export interface Settings {
  theme: Theme
}

export interface ServerSummary {
  id: string
  name: string
  host: string
  state: string
}

/** One backend event. `data`'s shape depends on `topic` (see EventMap). */
export interface PortholeEvent {
  topic: string
  data: unknown
}

/** The topics the UI understands today, and their payloads. */
export interface EventMap {
  'app.status': AppStatus
  settings: Settings
}

export type ConnectionState = 'connecting' | 'open' | 'closed'

export interface PortholeApi {
  readonly kind: 'wails' | 'http'
  version(): Promise<VersionInfo>
  status(): Promise<AppStatus>
  getSettings(): Promise<Settings>
  setTheme(theme: Theme): Promise<Settings>
  listServers(): Promise<ServerSummary[]>
  /** Tells the backend the UI has rendered (the desktop smoke test waits for its log line). */
  uiReady(): Promise<void>
  /** Subscribe to backend events: the current state (snapshot) first, then updates. Returns unsubscribe. */
  onEvent(handler: (e: PortholeEvent) => void): () => void
  /** The event stream's state; transports call the handler with the current state at once. */
  onConnection?(handler: (state: ConnectionState) => void): () => void
}

/** Generic RPC: calls the backend's `App.<method>(...args)`. */
export type Call = <T>(method: string, ...args: unknown[]) => Promise<T>

/**
 * The typed method table, shared by both transports: adding a backend method is one line here.
 * Method names are the Go method names on `App`.
 */
export function methods(call: Call, kind: PortholeApi['kind']) {
  return {
    version: () => call<VersionInfo>('Version'),
    status: () => call<AppStatus>('Status'),
    getSettings: () => call<Settings>('GetSettings'),
    setTheme: (theme: Theme) => call<Settings>('SetTheme', theme),
    listServers: async () => (await call<ServerSummary[] | null>('ListServers')) ?? [],
    uiReady: () => call<void>('UIReady', kind),
  } satisfies Omit<PortholeApi, 'kind' | 'onEvent' | 'onConnection'>
}
