import { vi } from 'vitest'
import type {
  AppList,
  AppService,
  ConnectionState,
  OpenedApp,
  PortholeApi,
  PortholeEvent,
  Profile,
  Prompt,
  RuleList,
  RuleStatus,
  SavedTab,
  ServerDefaults,
  ServerSummary,
  Settings,
  Theme,
  Tunnel,
} from '@/api/types'

/** The server-login part of PortholeApi, as vi.fn()s with harmless defaults. */
export function serverMethods() {
  return {
    listServers: vi.fn<PortholeApi['listServers']>(async () => []),
    reloadServers: vi.fn<PortholeApi['reloadServers']>(async () => ({ servers: [], path: '/tmp/profiles.json', readOnly: false })),
    getServer: vi.fn<PortholeApi['getServer']>(async (id) => ({ id, name: 'n', host: 'h', port: 22, options: {} })),
    validateServer: vi.fn<PortholeApi['validateServer']>(async () => ({ valid: true, fields: [] })),
    addServer: vi.fn<PortholeApi['addServer']>(async (p: Profile) => ({ ...p, id: 'new-id' })),
    updateServer: vi.fn<PortholeApi['updateServer']>(async (p: Profile) => p),
    deleteServer: vi.fn<PortholeApi['deleteServer']>(async () => {}),
    duplicateServer: vi.fn<PortholeApi['duplicateServer']>(async (id) => ({ id: `${id}-copy`, name: 'copy', host: 'h', port: 22, options: {} })),
    importCandidates: vi.fn<PortholeApi['importCandidates']>(async () => ({ configPath: '/home/u/.ssh/config', exists: true, candidates: [] })),
    importServers: vi.fn<PortholeApi['importServers']>(async () => ({ added: [], skipped: [] })),
    connect: vi.fn<PortholeApi['connect']>(async (id): Promise<ServerSummary> => ({ id, name: 'n', host: 'h', state: 'connected' })),
    disconnect: vi.fn<PortholeApi['disconnect']>(async (id): Promise<ServerSummary> => ({ id, name: 'n', host: 'h', state: 'disconnected' })),
    prewarm: vi.fn<PortholeApi['prewarm']>(async () => undefined),
    prompts: vi.fn<PortholeApi['prompts']>(async () => []),
    answerPrompt: vi.fn<PortholeApi['answerPrompt']>(async () => {}),
    cancelPrompt: vi.fn<PortholeApi['cancelPrompt']>(async () => {}),
    serverLog: vi.fn<PortholeApi['serverLog']>(async (id) => ({ id, lines: [], seq: 0 })),
    keyringStatus: vi.fn<PortholeApi['keyringStatus']>(async () => ({ available: true, service: 'porthole', backend: 'Secret Service' })),
  }
}

/** A discovered app; override what a test needs. */
export function service(over: Partial<AppService> = {}): AppService {
  return {
    port: 8888,
    kind: 'jupyter-lab',
    kindName: 'Jupyter Lab',
    title: 'Jupyter Lab — ~/project',
    isWeb: true,
    openPath: '/lab',
    process: { pid: 4242, name: 'jupyter-lab', cmdline: 'jupyter lab --no-browser', cwd: '/home/alice/project', started: new Date(Date.now() - 2 * 3600_000).toISOString() },
    local: false,
    ...over,
  }
}

export function appList(serverId: string, services: AppService[], over: Partial<AppList> = {}): AppList {
  return { serverId, services, scannedAt: new Date().toISOString(), ...over }
}

/** The loopback address the fake gives each server's endpoints (a login gets its own, as portmap does). */
export function fakeLoopback(serverId: string): string {
  return serverId === 'local' ? '127.0.0.1' : `127.0.0.${2 + ([...serverId].reduce((n, c) => n + c.charCodeAt(0), 0) % 200)}`
}

/** What OpenApp answers for a server port and path. */
export function opened(serverId: string, port: number, path = '/', over: Partial<OpenedApp> = {}): OpenedApp {
  const origin = `http://${fakeLoopback(serverId)}:${port}`
  return { serverId, port, localUrl: `${origin}${path}`, localOrigin: origin, remoteUrl: `http://localhost:${port}${path}`, title: `App on ${port}`, ...over }
}

export function savedTab(over: Partial<SavedTab> = {}): SavedTab {
  const o = opened(over.serverId ?? 's1', over.port ?? 8888, over.path ?? '/lab')
  return { id: 'saved-1', serverId: o.serverId, port: o.port, path: '/lab', title: 'Jupyter Lab — ~/project', localUrl: o.localUrl, remoteUrl: o.remoteUrl, ...over }
}

/** The web-apps part of PortholeApi: an empty listing everywhere, OpenApp on a per-server loopback address. */
export function appMethods() {
  return {
    listApps: vi.fn<PortholeApi['listApps']>(async (serverId) => appList(serverId, [])),
    openApp: vi.fn<PortholeApi['openApp']>(async (serverId, port, path) => opened(serverId, port, path)),
    parseAppURL: vi.fn<PortholeApi['parseAppURL']>(async (serverId, raw) => {
      const u = new URL(raw)
      if (!['localhost', '127.0.0.1', '0.0.0.0', '[::1]'].includes(u.hostname)) {
        throw new Error(`${u.host} is not on the server's localhost`)
      }
      return opened(serverId, Number(u.port || 80), `${u.pathname}${u.search}${u.hash}`)
    }),
    openThrough: vi.fn<PortholeApi['openThrough']>(async (serverId, raw) => {
      const u = new URL(raw)
      const port = Number(u.port || 80)
      const path = `${u.pathname}${u.search}${u.hash}`
      return opened(serverId, port, path, {
        localUrl: `http://${fakeLoopback(serverId)}:2${port}${path}`,
        localOrigin: `http://${fakeLoopback(serverId)}:2${port}`,
        remoteUrl: `http://${u.host}${path}`,
        title: u.host,
        remoteHost: u.hostname,
      })
    }),
    forwardPort: vi.fn<PortholeApi['forwardPort']>(async (serverId, port) => ({
      localAddr: `${fakeLoopback(serverId)}:${port}`,
      hint: `psql -h ${fakeLoopback(serverId)} -p ${port}`,
    })),
    forwardSocket: vi.fn<PortholeApi['forwardSocket']>(async (serverId, path) => ({
      path,
      localAddr: `${fakeLoopback(serverId)}:2375`,
      hint: `DOCKER_HOST=tcp://${fakeLoopback(serverId)}:2375 docker ps`,
    })),
    getTabs: vi.fn<PortholeApi['getTabs']>(async () => []),
    saveTabs: vi.fn<PortholeApi['saveTabs']>(async () => {}),
    openExternal: vi.fn<PortholeApi['openExternal']>(async () => {}),
  }
}

/** One of this user's tunnels (ListLeakedTunnels); override what a test needs. */
export function tunnel(over: Partial<Tunnel> = {}): Tunnel {
  return {
    pid: 4242,
    program: 'ssh',
    cmdline: 'ssh -N -L 127.0.0.1:8080:localhost:80 web1',
    destination: 'web1',
    parent: { pid: 1, name: 'init', exists: true },
    orphan: 'parent-init',
    leaked: true,
    orphanWhy: 'the program that started it has exited: its parent is now init (PID 1)',
    forwards: [
      {
        kind: 'local',
        spec: '127.0.0.1:8080:localhost:80',
        bindHost: '127.0.0.1',
        port: 8080,
        targetHost: 'localhost',
        targetPort: 80,
        listeners: ['127.0.0.1:8080'],
        exposes: '127.0.0.1:8080 → localhost:80, as seen from web1',
        who: 'Every user of this computer can connect to 127.0.0.1:8080 and reach localhost:80 on web1, as you: ssh does not check who connects.',
        reach: 'local-users',
      },
    ],
    otherUsers: true,
    otherMachines: false,
    summary: 'ssh (PID 4242) to web1: leaked',
    adoptable: true,
    ...over,
  }
}

/** A rule's status; override what a test needs. */
export function ruleStatus(over: Partial<RuleStatus> = {}): RuleStatus {
  return {
    rule: { id: 'r1', kind: 'local', localPort: 8080, remoteHost: 'localhost', remotePort: 80 },
    state: 'listening',
    local: '127.0.0.1:8080',
    remote: 'localhost:80',
    activeConns: 0,
    totalConns: 0,
    bytesIn: 0,
    bytesOut: 0,
    ...over,
  }
}

/** The leaked-tunnel part of PortholeApi: no tunnels by default. */
export function leakMethods() {
  return {
    listLeakedTunnels: vi.fn<PortholeApi['listLeakedTunnels']>(async () => ({ tunnels: [], leaked: 0 })),
    endTunnelProcess: vi.fn<PortholeApi['endTunnelProcess']>(async (pid) => ({ pid, signal: 'SIGTERM' as const })),
    adoptTunnelProcess: vi.fn<PortholeApi['adoptTunnelProcess']>(async (pid) => ({
      pid,
      serverId: 's-web1',
      serverName: 'web1',
      createdServer: true,
      forwards: [{ rule: { kind: 'local' as const, localHost: '127.0.0.1', localPort: 8080, remoteHost: 'localhost', remotePort: 80 }, addr: '127.0.0.1:8080' }],
      ended: { pid, signal: 'SIGTERM' as const },
    })),
  }
}

/** The saved-rules part of PortholeApi: no rules, everything valid. */
export function ruleMethods() {
  return {
    listRules: vi.fn<PortholeApi['listRules']>(async (serverId): Promise<RuleList> => ({ serverId, rules: [] })),
    validateRule: vi.fn<PortholeApi['validateRule']>(async () => ({ valid: true, fields: [] })),
    addRule: vi.fn<PortholeApi['addRule']>(async (_s, r) => ({ ...r, id: 'new-rule' })),
    updateRule: vi.fn<PortholeApi['updateRule']>(async (_s, r) => r),
    deleteRule: vi.fn<PortholeApi['deleteRule']>(async () => {}),
  }
}

/** A complete fake PortholeApi whose events the test emits by hand. */
export function fakeApi(over: Partial<PortholeApi> = {}) {
  const handlers = new Set<(e: PortholeEvent) => void>()
  let connHandler: ((s: ConnectionState) => void) | null = null
  const api = {
    kind: 'http' as const,
    version: async () => ({ version: '0.4.2', commit: 'abc', go: 'go1.26', wails: 'v2.10', os: 'linux', arch: 'amd64' }),
    status: vi.fn<PortholeApi['status']>(async () => ({ mode: 'serve' as const, startedAt: '', servers: 0, forwards: 0 })),
    getSettings: async () => ({ theme: 'system' as Theme }),
    setTheme: vi.fn(async (theme: Theme): Promise<Settings> => ({ theme })),
    setInspector: vi.fn(async (inspector: boolean): Promise<Settings> => ({ theme: 'system', inspector })),
    setTabDiscard: vi.fn(async (tabDiscardSec: number): Promise<Settings> => ({ theme: 'system', tabDiscardSec })),
    setNotification: vi.fn<PortholeApi['setNotification']>(async () => ({ theme: 'system' as Theme })),
    getAppAttributes: vi.fn<PortholeApi['getAppAttributes']>(async () => ({})),
    setAppAttributes: vi.fn<PortholeApi['setAppAttributes']>(async (_s, _p, attrs) => attrs),
    getAppRules: vi.fn<PortholeApi['getAppRules']>(async () => ({})),
    setIgnoredPorts: vi.fn<PortholeApi['setIgnoredPorts']>(async (_s, ranges, notifyEphemeral) => ({ ignorePorts: ranges, notifyEphemeral })),
    setHideOnClose: vi.fn(async (hideOnClose: boolean): Promise<Settings> => ({ theme: 'system', hideOnClose })),
    setStartAtLogin: vi.fn(async (): Promise<void> => {}),
    setStartHidden: vi.fn(async (startHidden: boolean): Promise<Settings> => ({ theme: 'system', startHidden })),
    setServerDefaults: vi.fn(async (defaults: ServerDefaults): Promise<Settings> => ({ theme: 'system', defaults })),
    serverStats: vi.fn<PortholeApi['serverStats']>(async (id) => ({ id, state: 'disconnected', rttMs: 0, activeConns: 0, bytesIn: 0, bytesOut: 0, reconnects: [], time: new Date(0).toISOString() })),
    syncAppViews: vi.fn<PortholeApi['syncAppViews']>(async () => {}),
    navigateAppView: vi.fn<PortholeApi['navigateAppView']>(async () => {}),
    focusShell: vi.fn(async () => {}),
    findInAppView: vi.fn(async () => {}),
    zoomAppView: vi.fn(async () => {}),
    printAppView: vi.fn(async () => {}),
    answerPageDialog: vi.fn(async () => {}),
    showDownload: vi.fn(async () => {}),
    cancelDownload: vi.fn(async () => {}),
    clearDownloads: vi.fn(async () => {}),
    quit: vi.fn(async () => {}),
    uiReady: vi.fn(async () => {}),
    ...serverMethods(),
    ...appMethods(),
    ...leakMethods(),
    ...ruleMethods(),
    onEvent: (h: (e: PortholeEvent) => void) => {
      handlers.add(h)
      return () => void handlers.delete(h)
    },
    onConnection: (h: (s: ConnectionState) => void) => {
      connHandler = h
      h('connecting')
      return () => (connHandler = null)
    },
  } satisfies PortholeApi
  Object.assign(api, over)
  return {
    api,
    emit: (e: PortholeEvent) => [...handlers].forEach((h) => h(e)),
    connect: (s: ConnectionState) => connHandler?.(s),
    handlerCount: () => handlers.size,
  }
}

/** A password prompt for server s1; override what a test needs. */
export function prompt(over: Partial<Prompt> = {}): Prompt {
  return {
    id: 'p1',
    serverId: 's1',
    serverName: 'gpu',
    kind: 'password',
    title: 'Password for alice@gpu.lab:22',
    canRemember: true,
    remember: false,
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 120_000).toISOString(),
    ...over,
  }
}
