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
  /** App tabs are web views of their own (the Linux desktop window), not iframes: see syncAppViews. */
  appViews?: boolean
  /** The backend's system (Go's GOOS: 'linux', 'darwin', 'windows'). */
  os?: string
  /** Porthole's icon is in the system tray (the desktop window). */
  tray?: boolean
  /** Closing the window with tunnels open hides it: the setting, and a tray to come back from. */
  hideOnClose?: boolean
  /** Porthole starts (hidden) at login; whether this system supports it. */
  startAtLogin?: boolean
  startAtLoginSupported?: boolean
}

/** What a launch or the tray asks the desktop window to do (the `desktop.request` event). */
export interface DesktopRequest {
  seq: number
  kind: 'show' | 'open-url' | 'add-server' | 'focus-tab' | 'message' | 'settings'
  url?: string
  serverId?: string
  user?: string
  host?: string
  port?: number
  tabId?: string
  message?: string
}

/** One app tab's view (the Linux desktop window): what it loads, and how many reloads were asked. */
export interface AppViewItem {
  id: string
  url: string
  reloads: number
}

/** Every app view, the one that shows and where (CSS pixels of the window). */
export interface AppViewSpec {
  views: AppViewItem[]
  visible: string
  x: number
  y: number
  w: number
  h: number
}

/** What an app view reports: its page, its history; or a shortcut pressed in it; or a window it asked for. */
export interface AppViewEvent {
  id: string
  title: string
  url: string
  canGoBack: boolean
  canGoForward: boolean
  loading: boolean
  shortcut?: string
  open?: string
  /** A find in page's result (see findInAppView). */
  find?: FindResult
  /** The view's zoom level (1 is 100 %), kept per app. */
  zoom?: number
  /** The view was discarded to save memory (it reloads when it shows) or made again. */
  life?: AppViewLife
}

export type AppViewLife = 'discarded' | 'restored'


/** What a find in page found: `current` is the selected match, 1 to `matches` (0 or absent: none). */
export interface FindResult {
  text: string
  matches: number
  current?: number
  failed?: boolean
}

export type DownloadState = 'running' | 'done' | 'failed' | 'cancelled'

/** One file an app view saved (or is saving); error says what went wrong, in words. */
export interface Download {
  id: string
  viewId: string
  name: string
  dir: string
  path?: string
  url: string
  received: number
  total: number
  state: DownloadState
  error?: string
  started: string
}

/** The window's downloads, newest first. */
export interface DownloadList {
  downloads: Download[]
}

export type PageDialogKind = 'alert' | 'confirm' | 'prompt' | 'beforeunload' | 'auth'

/** A question a page in an app view asks (flood: it asked several in a short while). */
export interface PageDialog {
  id: string
  viewId: string
  kind: PageDialogKind
  origin: string
  message: string
  default?: string
  flood?: boolean
  realm?: string
  user?: string
  retry?: boolean
  remember?: boolean
}

/** Every open page dialog, oldest first. */
export interface PageDialogList {
  dialogs: PageDialog[]
}

/** The answer to a page dialog (stop: no more dialogs from that page until it loads again). */
export interface PageDialogAnswer {
  ok: boolean
  text?: string
  user?: string
  password?: string
  remember?: boolean
  stop?: boolean
}

export type FindOp = 'find' | 'next' | 'previous' | 'close'
export type ZoomOp = 'in' | 'out' | 'reset'

export type Theme = 'system' | 'light' | 'dark'
export const THEMES: readonly Theme[] = ['system', 'light', 'dark']

export interface Settings {
  theme: Theme
  /** WebKit's developer tools in the Linux window's app views (off unless turned on). */
  inspector?: boolean
  /** Closing the window with tunnels open hides it to the tray (on unless turned off). */
  hideOnClose?: boolean
  /** Which notifications Porthole sends (all on by default). */
  notify?: NotifySettings
  /** Starting at login starts the window hidden (on unless turned off). */
  startHidden?: boolean
  /** What new servers start with. */
  defaults?: ServerDefaults
  /** An app tab in the background this long (s) is discarded to save memory; 0 never (default 1800). */
  tabDiscardSec?: number
}

/** What new servers start with (SetServerDefaults validates the ranges). */
export interface ServerDefaults {
  /** A connection idle this long is pinged before use: 1 s – 10 min. */
  pingThresholdSec: number
  /** An unused connection is closed after this long: 0 (never) – 24 h. */
  idleTimeoutSec: number
  /** Pre-opened channels per hot target: 0 (Porthole's default) – 32. */
  poolSize: number
  /** New endpoints get a loopback address per server (127.0.0.2, …); off: 127.0.0.1 with distinct ports. */
  loopbackPerServer: boolean
  /** "Separate cookies per app": with loopbackPerServer, each new app endpoint gets an address of its own (127.N.A.1). */
  cookiesPerApp: boolean
}

export const DEFAULT_SERVER_DEFAULTS: ServerDefaults = { pingThresholdSec: 30, idleTimeoutSec: 0, poolSize: 0, loopbackPerServer: true, cookiesPerApp: true }

// ---- Notifications (backend/notify) ----

export interface NotifySettings {
  serverDown: boolean
  needsYou: boolean
  agentCrash: boolean
  newApp: boolean
}

/** The switch names SetNotification takes, by NotifySettings field. */
export const NOTIFY_KINDS = {
  serverDown: 'server-down',
  needsYou: 'needs-you',
  agentCrash: 'agent-crash',
  newApp: 'new-app',
} as const satisfies Record<keyof NotifySettings, string>
export type NotifyKind = (typeof NOTIFY_KINDS)[keyof NotifySettings]

export type NotificationKind = 'server-unreachable' | 'server-back' | 'needs-you' | 'agent-crash-loop' | 'new-app' | 'running-in-background'

/** A notification the desktop could not show: the `notify.toast` event. */
export interface Notification {
  id: number
  kind: NotificationKind
  serverId: string
  port?: number
  path?: string
  title: string
  body: string
  /** The button's label ("Open", "Show"). */
  action?: string
  time: string
}

/** The `notify.open` event: open an app in a tab (port 0/absent: show the server). */
export interface OpenRequest {
  id: number
  serverId: string
  port?: number
  path?: string
  /** The person clicked a notification: bring the window forward. */
  show: boolean
  time: string
}

export type OnAppear = 'auto' | 'notify' | 'open-tab' | 'ignore'

/** What the user set for one port of a server. */
export interface AppAttributes {
  label?: string
  onAppear?: OnAppear
}

/** A server's rules for apps that appear on it. */
export interface ServerRules {
  ignorePorts?: string
  notifyEphemeral?: boolean
  ports?: Record<string, AppAttributes>
}

// ---- Server logins (servers.go, prompts.go, backend/profiles) ----

export type AuthMethod = 'agent' | 'key' | 'password' | 'keyboard-interactive'
export const AUTH_METHODS: readonly AuthMethod[] = ['agent', 'key', 'keyboard-interactive', 'password']

export type ForwardKind = 'local' | 'web' | 'remote' | 'dynamic'

export interface ForwardRule {
  /** Assigned by AddRule; '' or absent for a new one. */
  id?: string
  kind: ForwardKind
  label?: string
  localHost?: string
  localPort?: number
  remoteHost?: string
  remotePort?: number
  /** Connect the server when Porthole starts, so the rule is up without a click. */
  connectAtStart?: boolean
}

// ---- Saved forward rules (backend/rules) ----

export type RuleState = 'waiting' | 'starting' | 'listening' | 'refused' | 'failed'

/** One saved rule as the server page shows it (rules.RuleStatus). */
export interface RuleStatus {
  rule: ForwardRule
  state: RuleState
  /** The state in plain words (a refusal names the sshd_config setting). */
  reason?: string
  /** This computer's end: where -L/-D listen, or the target of -R. */
  local: string
  /** The server's end: the target of -L, where the server listens for -R; '' for -D. */
  remote?: string
  activeConns: number
  totalConns: number
  bytesIn: number
  bytesOut: number
  /** When the counters were read (RFC 3339); absent before the rule ran. */
  at?: string
  lastError?: string
  lastErrorAt?: string
}

/** A server's rules (ListRules, and the `rules` event). */
export interface RuleList {
  serverId: string
  rules: RuleStatus[] | null
}

export interface ProfileOptions {
  /** Go duration string ("30s"); '' or absent = Porthole's default. */
  pingThreshold?: string
  poolSize?: number
  idleTimeout?: string
}

/** A saved server login (profiles.Profile). It never holds a secret. */
export interface Profile {
  /** Assigned by AddServer; '' for a new one. */
  id: string
  name: string
  host: string
  port: number
  user?: string
  auth?: AuthMethod[]
  keyPath?: string
  jumpHosts?: string[]
  forwards?: ForwardRule[]
  options: ProfileOptions
  color?: string
  icon?: string
  /** Linked to this ~/.ssh/config Host alias, resolved again at every connection. */
  sshConfigAlias?: string
}

export interface FieldError {
  /** JSON path of the field: "host", "options.poolSize", "jumpHosts[0]". */
  field: string
  reason: string
}

export interface ValidationResult {
  valid: boolean
  fields: FieldError[]
  notes?: FieldError[]
}

export type ServerState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'idle' | 'failed'

export type ErrorKind =
  | 'other'
  | 'host-key-changed'
  | 'host-key-rejected'
  | 'host-key-unknown'
  | 'host-key-revoked'
  | 'auth'
  | 'unreachable'
  | 'timeout'
  | 'canceled'
  | 'prompt-timeout'
  | 'config'
  | 'connection-lost'
  | 'drops-after-login'

export interface KnownHostKey {
  type: string
  fingerprint: string
  file: string
  line: number
}

export interface HostKeyChange {
  host: string
  keyType: string
  /** SHA256 fingerprint of the key the server sent now. */
  fingerprint: string
  /** The recorded key(s) that disagree, with the known_hosts line to remove. */
  known: KnownHostKey[]
  removeCommand?: string
}

export interface ServerError {
  kind: ErrorKind
  /** In plain words, for people. */
  message: string
  /** The technical error. */
  detail?: string
  hostKey?: HostKeyChange
  time: string
}

export interface ProgressStep {
  step: string
  detail?: string
  elapsedMs: number
}

/** One outage a login recovered from on its own. */
export interface Reconnect {
  time: string
  downtimeMs: number
}

/** A server's dashboard (ServerStats, the `server.stats` event). */
export interface ServerStats {
  id: string
  state: ServerState
  /** When the current connection came up; absent while not connected. */
  connectedSince?: string
  /** The last ping's round-trip time; 0 unknown. */
  rttMs: number
  /** Summed over the login's forwards. */
  activeConns: number
  bytesIn: number
  bytesOut: number
  /** The last 24 h's, oldest first. */
  reconnects: Reconnect[] | null
  time: string
}

export interface ServerSummary {
  id: string
  name: string
  host: string
  port?: number
  user?: string
  color?: string
  icon?: string
  sshConfigAlias?: string
  jumpHosts?: string[]
  state: ServerState
  stateReason?: string
  since?: string
  lastError?: ServerError
  progress?: ProgressStep[]
}

/** The `servers` event. */
export interface ServerList {
  servers: ServerSummary[]
  /** profiles.json */
  path: string
  /** The profiles file could not be read; it is kept as it was and changes are refused. */
  loadError?: string
  readOnly: boolean
}

/** The `server.progress` event. */
export interface ServerProgress {
  id: string
  step: string
  elapsedMs: number
  detail?: string
}

/** The `server.log` event. */
export interface ServerLogLine {
  id: string
  seq: number
  line: string
}

export interface ServerLogView {
  id: string
  lines: string[]
  seq: number
}

export type PromptKind = 'password' | 'passphrase' | 'keyboard-interactive' | 'host-key'

export interface PromptQuestion {
  prompt: string
  /** false: a secret, typed into a password field. */
  echo: boolean
}

export interface HostKeyInfo {
  host: string
  address: string
  keyType: string
  fingerprint: string
  knownHostsFile?: string
  otherKnownTypes?: string[]
}

/** A question a connection waits on (the `prompts` event lists the open ones). */
export interface Prompt {
  id: string
  serverId: string
  serverName: string
  kind: PromptKind
  title: string
  message?: string
  notice?: string
  user?: string
  host?: string
  hop?: string
  keyPath?: string
  attempt?: number
  name?: string
  instruction?: string
  questions?: PromptQuestion[]
  hostKey?: HostKeyInfo
  canRemember: boolean
  remember: boolean
  keyringMessage?: string
  createdAt: string
  expiresAt: string
}

export type HostKeyChoice = 'accept-once' | 'accept-always' | 'reject'

export interface PromptAnswer {
  secret?: string
  answers?: string[]
  remember?: boolean
  hostKey?: HostKeyChoice
}

export interface ResolvedAlias {
  hostName: string
  user: string
  port: number
  identityFiles: string[] | null
  proxyJump: string
}

export interface ImportCandidate {
  alias: string
  resolved: ResolvedAlias
  sourceFile: string
  line: number
  resolveError?: string
  alreadyImported: boolean
}

export interface ImportList {
  configPath: string
  exists: boolean
  candidates: ImportCandidate[]
}

export interface ImportResult {
  added: Profile[]
  skipped: { alias: string; reason: string }[]
}

export interface KeyringStatus {
  available: boolean
  service: string
  backend: string
  message?: string
}

// ---- Web apps on a server (apps.go, backend/discovery, backend/portmap) ----

/** The server id of "This computer" in the apps methods. */
export const LOCAL = 'local'

/**
 * Discovery's identifiers (discovery.Kind's JSON). The UI keys icons on them and falls back to
 * "web app" / "port" for kinds it does not know yet, so this list may lag behind the backend's.
 */
export type KnownAppKind =
  | 'http'
  | 'https'
  | 'not-http'
  | 'unknown'
  | 'jupyter-lab'
  | 'jupyter-notebook'
  | 'jupyter-server'
  | 'jupyterhub'
  | 'jupyter-kernel'
  | 'tensorboard'
  | 'mlflow'
  | 'rstudio'
  | 'streamlit'
  | 'gradio'
  | 'code-server'
  | 'grafana'
  | 'prometheus'
  | 'ray-dashboard'
  | 'dask'
  | 'airflow'
  | 'postgres'
  | 'mysql'
  | 'redis'
  | 'mongodb'
  | 'ssh'

export interface AppProcess {
  pid: number
  /** The command name ("jupyter-lab", "python3"). */
  name: string
  cmdline: string
  /** Working directory; '' when unknown. */
  cwd: string
  /** RFC 3339; absent (or Go's zero time) when unknown. */
  started?: string
}

/** One listening port on a server, identified. */
export interface AppService {
  port: number
  kind: KnownAppKind | (string & {})
  /** "Jupyter Lab". */
  kindName: string
  /** "Jupyter Lab — ~/project". */
  title: string
  /** Opens in a tab; false: a database, an SSH server, something not HTTP ("Forward…"). */
  isWeb: boolean
  /** Where to open it ("/lab"). */
  openPath: string
  process?: AppProcess
  /** On This computer: opens directly, no tunnel. */
  local: boolean
  localUrl?: string
}

/** ListApps' answer, and the `apps` event. */
/** A Unix socket on a server that its login may use (Docker's, PostgreSQL's, MySQL's, the user's own). */
export interface AppSocket {
  path: string
  /** 'docker' | 'postgres' | 'mysql' | 'socket' */
  kind: string
  kindName: string
  title: string
  /** Where it is forwarded, once it is. */
  localAddr?: string
}

/** A server's Unix socket forwarded to a local TCP endpoint (ForwardSocket). */
export interface SocketForward {
  path: string
  localAddr: string
  /** e.g. "DOCKER_HOST=tcp://127.0.0.2:2375 docker ps". */
  hint: string
  notice?: string
}

export interface AppList {
  /** 'local' is This computer. */
  serverId: string
  services: AppService[] | null
  /** The server's usable Unix sockets. */
  sockets?: AppSocket[] | null
  scannedAt: string
  /** The scan failed (partially); services may still hold the last good list. */
  error?: string
}

/** An app ready to load: the local endpoint that reaches it. */
export interface OpenedApp {
  serverId: string
  port: number
  /** What the tab loads: "http://127.0.0.2:8888/lab". */
  localUrl: string
  /** "http://127.0.0.2:8888". */
  localOrigin: string
  /** The same page as the server sees it: "http://localhost:8888/lab". */
  remoteUrl: string
  title: string
  /** Something worth saying ("127.0.0.2:8888 is taken by nginx (pid 812); using 127.0.0.2:18888"). */
  notice?: string
  /** The host the server dials for an app opened through it (OpenThrough): "grafana.internal". */
  remoteHost?: string
}

/** A raw (non-HTTP) forward to a server port. */
export interface RawForward {
  /** "127.0.0.2:5432". */
  localAddr: string
  /** How to connect: "psql -h 127.0.0.2 -p 5432". */
  hint: string
  /** Why it is not on its usual endpoint this time. */
  notice?: string
}

/** Leaked tunnels (backend/leaks): is the program that started a tunnel still there? */
export type TunnelOrphan = 'attached' | 'parent-init' | 'parent-subreaper' | 'parent-gone'
/** Who can connect to a tunnel's listener. */
export type TunnelReach = 'local-users' | 'network' | 'server-users' | 'server-network' | 'socket-owner'

export interface TunnelForward {
  kind: 'local' | 'remote' | 'dynamic'
  /** As on the command line; "" for a listener it does not name. */
  spec: string
  bindHost: string
  port: number
  targetHost?: string
  targetPort?: number
  /** The process's own listening sockets on `port` (-L/-D). */
  listeners: string[]
  /** "127.0.0.1:8080 → localhost:80, as seen from web1". */
  exposes: string
  /** Who can connect, in plain words. */
  who: string
  reach: TunnelReach
  /** One end is a Unix socket (shown, not adopted). */
  socket?: boolean
  error?: string
}

/** One of this user's ssh or autossh processes with forwards. */
export interface Tunnel {
  pid: number
  program: 'ssh' | 'autossh'
  sshPid?: number
  cmdline: string
  destination: string
  started?: string
  parent: { pid: number; name?: string; started?: string; exists: boolean }
  orphan: TunnelOrphan
  /** The program that started it is gone. */
  leaked: boolean
  orphanWhy: string
  forwards: TunnelForward[]
  otherUsers: boolean
  otherMachines: boolean
  summary: string
  parseError?: string
  /** Porthole can take its forwards over. */
  adoptable: boolean
}

export interface TunnelList {
  tunnels: Tunnel[]
  leaked: number
}

export interface EndedTunnel {
  pid: number
  signal: 'SIGTERM' | 'SIGKILL'
  children?: number[]
}

export interface AdoptedTunnel {
  pid: number
  serverId: string
  serverName: string
  createdServer: boolean
  forwards: { rule: ForwardRule; addr?: string; error?: string }[]
  ended: EndedTunnel
}

/** An app tab as it is kept across restarts. */
export interface SavedTab {
  id: string
  serverId: string
  port: number
  path: string
  title: string
  localUrl: string
  remoteUrl: string
  /** The host the server dials for a tab opened through it; absent: the server's localhost. */
  remoteHost?: string
}

/** One backend event as it arrives. `data`'s shape depends on `topic`: see EventPayloads in events.ts. */
export interface PortholeEvent {
  topic: string
  data: unknown
}

export type ConnectionState = 'connecting' | 'open' | 'closed'

export interface PortholeApi {
  readonly kind: 'wails' | 'http'
  version(): Promise<VersionInfo>
  status(): Promise<AppStatus>
  getSettings(): Promise<Settings>
  setTheme(theme: Theme): Promise<Settings>
  /** Turns the app views' developer tools (Inspect Element) on or off; the Linux window only. */
  setInspector(on: boolean): Promise<Settings>
  setTabDiscard(sec: number): Promise<Settings>
  /** Switches one kind of notification on or off. */
  setNotification(kind: NotifyKind, on: boolean): Promise<Settings>
  getAppAttributes(serverId: string, port: number): Promise<AppAttributes>
  setAppAttributes(serverId: string, port: number, attrs: AppAttributes): Promise<AppAttributes>
  getAppRules(serverId: string): Promise<ServerRules>
  /** Port ranges ("8000-8100, 9000") whose new apps do not notify, and whether ports from 32768 up do. */
  setIgnoredPorts(serverId: string, ranges: string, notifyEphemeral: boolean): Promise<ServerRules>
  /** Hide to the tray (rather than quit) when the window is closed with tunnels open. */
  setHideOnClose(on: boolean): Promise<Settings>
  /** Start Porthole, hidden, at login (the desktop window). */
  setStartAtLogin(on: boolean): Promise<void>
  /** Whether starting at login starts the window hidden (on) or shown. */
  setStartHidden(on: boolean): Promise<Settings>
  /** What new servers start with; rejects an out-of-range value with the reason. */
  setServerDefaults(d: ServerDefaults): Promise<Settings>
  /** A server's dashboard now (then `server.stats` events). */
  serverStats(id: string): Promise<ServerStats>
  listServers(): Promise<ServerSummary[]>
  reloadServers(): Promise<ServerList>
  getServer(id: string): Promise<Profile>
  validateServer(p: Profile): Promise<ValidationResult>
  addServer(p: Profile): Promise<Profile>
  updateServer(p: Profile): Promise<Profile>
  deleteServer(id: string): Promise<void>
  duplicateServer(id: string): Promise<Profile>
  importCandidates(): Promise<ImportList>
  importServers(aliases: string[], link: boolean): Promise<ImportResult>
  /** Resolves once connected; rejects with the reason in plain words. Questions arrive as `prompts` events meanwhile. */
  connect(id: string): Promise<ServerSummary>
  disconnect(id: string): Promise<ServerSummary>
  /** Dials a connected server's idle SSH connection in the background, never asking anything. */
  prewarm(id: string): Promise<void>
  prompts(): Promise<Prompt[]>
  answerPrompt(id: string, answer: PromptAnswer): Promise<void>
  cancelPrompt(id: string): Promise<void>
  serverLog(id: string): Promise<ServerLogView>
  keyringStatus(): Promise<KeyringStatus>
  /** What listens on a server ('local': This computer). Rejects with the reason (e.g. not connected). */
  listApps(serverId: string): Promise<AppList>
  /** Makes (or reuses) the stable local endpoint for a server port and says what to load. */
  openApp(serverId: string, port: number, path: string): Promise<OpenedApp>
  /** A URL as an app printed it (http://localhost:8888/lab?token=…); rejects when it is not on the server's localhost. */
  parseAppURL(serverId: string, raw: string): Promise<OpenedApp>
  /** A URL of another computer (http://grafana.internal:3000/), opened through the server: the server resolves the name. */
  openThrough(serverId: string, raw: string): Promise<OpenedApp>
  /** A raw forward (databases, anything not HTTP) on a stable endpoint. */
  forwardPort(serverId: string, port: number): Promise<RawForward>
  /** Forwards a server's Unix socket to a stable local endpoint. */
  forwardSocket(serverId: string, path: string): Promise<SocketForward>
  /** This user's ssh/autossh processes with -L/-R/-D forwards, the leaked ones first. */
  listLeakedTunnels(): Promise<TunnelList>
  /** Ends one of them (SIGTERM, then SIGKILL); another user's process is refused. */
  endTunnelProcess(pid: number): Promise<EndedTunnel>
  /** Takes one over: the same forwards in Porthole on the same ports, then the ssh is ended. */
  adoptTunnelProcess(pid: number): Promise<AdoptedTunnel>
  getTabs(): Promise<SavedTab[]>
  saveTabs(tabs: SavedTab[]): Promise<void>
  /** Opens a URL in the system browser. */
  openExternal(url: string): Promise<void>
  /** The Linux window's app views: makes them what `spec` says (see AppStatus.appViews). */
  syncAppViews(spec: AppViewSpec): Promise<void>
  /** Back, forward or stop in an app view. */
  navigateAppView(id: string, nav: 'back' | 'forward' | 'stop'): Promise<void>
  /** Gives the keyboard back to Porthole's own page (from an app view). */
  focusShell(): Promise<void>
  /** Find in an app view's page (the match count comes back in its appviews event). */
  findInAppView(id: string, text: string, op: FindOp): Promise<void>
  zoomAppView(id: string, op: ZoomOp): Promise<void>
  printAppView(id: string): Promise<void>
  answerPageDialog(id: string, answer: PageDialogAnswer): Promise<void>
  showDownload(id: string): Promise<void>
  cancelDownload(id: string): Promise<void>
  clearDownloads(): Promise<void>
  /** A server's saved rules with their state and counters. */
  listRules(serverId: string): Promise<RuleList>
  /** Checks a rule as it is typed; never saves. */
  validateRule(serverId: string, r: ForwardRule): Promise<ValidationResult>
  addRule(serverId: string, r: ForwardRule): Promise<ForwardRule>
  updateRule(serverId: string, r: ForwardRule): Promise<ForwardRule>
  deleteRule(serverId: string, ruleId: string): Promise<void>
  /** Closes the desktop window and stops Porthole (Ctrl+Q). `porthole serve` refuses: it stops from its terminal. */
  quit(): Promise<void>
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
    setInspector: (on: boolean) => call<Settings>('SetInspector', on),
    setTabDiscard: (sec: number) => call<Settings>('SetTabDiscard', sec),
    setNotification: (kind: NotifyKind, on: boolean) => call<Settings>('SetNotification', kind, on),
    getAppAttributes: (serverId: string, port: number) => call<AppAttributes>('GetAppAttributes', serverId, port),
    setAppAttributes: (serverId: string, port: number, attrs: AppAttributes) =>
      call<AppAttributes>('SetAppAttributes', serverId, port, attrs),
    getAppRules: (serverId: string) => call<ServerRules>('GetAppRules', serverId),
    setIgnoredPorts: (serverId: string, ranges: string, notifyEphemeral: boolean) =>
      call<ServerRules>('SetIgnoredPorts', serverId, ranges, notifyEphemeral),
    setHideOnClose: (on: boolean) => call<Settings>('SetHideOnClose', on),
    setStartAtLogin: (on: boolean) => call<void>('SetStartAtLogin', on),
    setStartHidden: (on: boolean) => call<Settings>('SetStartHidden', on),
    setServerDefaults: (d: ServerDefaults) => call<Settings>('SetServerDefaults', d),
    serverStats: (id: string) => call<ServerStats>('ServerStats', id),
    listServers: async () => (await call<ServerSummary[] | null>('ListServers')) ?? [],
    reloadServers: () => call<ServerList>('ReloadServers'),
    getServer: (id: string) => call<Profile>('GetServer', id),
    validateServer: (p: Profile) => call<ValidationResult>('ValidateServer', p),
    addServer: (p: Profile) => call<Profile>('AddServer', p),
    updateServer: (p: Profile) => call<Profile>('UpdateServer', p),
    deleteServer: (id: string) => call<void>('DeleteServer', id),
    duplicateServer: (id: string) => call<Profile>('DuplicateServer', id),
    importCandidates: () => call<ImportList>('ImportCandidates'),
    importServers: (aliases: string[], link: boolean) => call<ImportResult>('ImportServers', aliases, link),
    connect: (id: string) => call<ServerSummary>('Connect', id),
    disconnect: (id: string) => call<ServerSummary>('Disconnect', id),
    prewarm: (id: string) => call<void>('Prewarm', id),
    prompts: async () => (await call<Prompt[] | null>('Prompts')) ?? [],
    answerPrompt: (id: string, answer: PromptAnswer) => call<void>('AnswerPrompt', id, answer),
    cancelPrompt: (id: string) => call<void>('CancelPrompt', id),
    serverLog: (id: string) => call<ServerLogView>('ServerLog', id),
    keyringStatus: () => call<KeyringStatus>('KeyringStatus'),
    listApps: (serverId: string) => call<AppList>('ListApps', serverId),
    openApp: (serverId: string, port: number, path: string) => call<OpenedApp>('OpenApp', serverId, port, path),
    parseAppURL: (serverId: string, raw: string) => call<OpenedApp>('ParseAppURL', serverId, raw),
    openThrough: (serverId: string, raw: string) => call<OpenedApp>('OpenThrough', serverId, raw),
    forwardPort: (serverId: string, port: number) => call<RawForward>('ForwardPort', serverId, port),
    forwardSocket: (serverId: string, path: string) => call<SocketForward>('ForwardSocket', serverId, path),
    listLeakedTunnels: async () => {
      const l = await call<TunnelList>('ListLeakedTunnels')
      return { ...l, tunnels: l.tunnels ?? [] }
    },
    endTunnelProcess: (pid: number) => call<EndedTunnel>('EndTunnelProcess', pid),
    adoptTunnelProcess: (pid: number) => call<AdoptedTunnel>('AdoptTunnelProcess', pid),
    getTabs: async () => (await call<SavedTab[] | null>('GetTabs')) ?? [],
    saveTabs: (tabs: SavedTab[]) => call<void>('SaveTabs', tabs),
    openExternal: (url: string) => call<void>('OpenExternal', url),
    syncAppViews: (spec: AppViewSpec) => call<void>('SyncAppViews', spec),
    navigateAppView: (id: string, nav: 'back' | 'forward' | 'stop') => call<void>('NavigateAppView', id, nav),
    focusShell: () => call<void>('FocusShell'),
    findInAppView: (id: string, text: string, op: FindOp) => call<void>('FindInAppView', id, text, op),
    zoomAppView: (id: string, op: ZoomOp) => call<void>('ZoomAppView', id, op),
    printAppView: (id: string) => call<void>('PrintAppView', id),
    answerPageDialog: (id: string, answer: PageDialogAnswer) => call<void>('AnswerPageDialog', id, answer),
    showDownload: (id: string) => call<void>('ShowDownload', id),
    cancelDownload: (id: string) => call<void>('CancelDownload', id),
    clearDownloads: () => call<void>('ClearDownloads'),
    listRules: (serverId: string) => call<RuleList>('ListRules', serverId),
    validateRule: (serverId: string, r: ForwardRule) => call<ValidationResult>('ValidateRule', serverId, r),
    addRule: (serverId: string, r: ForwardRule) => call<ForwardRule>('AddRule', serverId, r),
    updateRule: (serverId: string, r: ForwardRule) => call<ForwardRule>('UpdateRule', serverId, r),
    deleteRule: (serverId: string, ruleId: string) => call<void>('DeleteRule', serverId, ruleId),
    quit: () => call<void>('Quit'),
    uiReady: () => call<void>('UIReady', kind),
  } satisfies Omit<PortholeApi, 'kind' | 'onEvent' | 'onConnection'>
}
