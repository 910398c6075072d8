import { vi } from 'vitest'
import type { ConnectionState, PortholeApi, PortholeEvent, Profile, Prompt, ServerSummary, Settings, Theme } from '@/api/types'

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
    prompts: vi.fn<PortholeApi['prompts']>(async () => []),
    answerPrompt: vi.fn<PortholeApi['answerPrompt']>(async () => {}),
    cancelPrompt: vi.fn<PortholeApi['cancelPrompt']>(async () => {}),
    serverLog: vi.fn<PortholeApi['serverLog']>(async (id) => ({ id, lines: [], seq: 0 })),
    keyringStatus: vi.fn<PortholeApi['keyringStatus']>(async () => ({ available: true, service: 'porthole', backend: 'Secret Service' })),
  }
}

/** A complete fake PortholeApi whose events the test emits by hand. */
export function fakeApi(over: Partial<PortholeApi> = {}) {
  const handlers = new Set<(e: PortholeEvent) => void>()
  let connHandler: ((s: ConnectionState) => void) | null = null
  const api = {
    kind: 'http' as const,
    version: async () => ({ version: '0.4.2', commit: 'abc', go: 'go1.26', wails: 'v2.10', os: 'linux', arch: 'amd64' }),
    status: async () => ({ mode: 'serve' as const, startedAt: '', servers: 0, forwards: 0 }),
    getSettings: async () => ({ theme: 'system' as Theme }),
    setTheme: vi.fn(async (theme: Theme): Promise<Settings> => ({ theme })),
    uiReady: vi.fn(async () => {}),
    ...serverMethods(),
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
