import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '@/api/errors'
import type { ServerList, ServerSummary } from '@/api/types'
import { usePromptsStore } from '@/stores/prompts'
import { useServersStore } from '@/stores/servers'
import { useTabsStore } from '@/stores/tabs'
import { fakeApi, prompt } from './fakeApi'

const gpu: ServerSummary = { id: 's1', name: 'gpu', host: 'gpu.lab', port: 22, user: 'alice', state: 'disconnected' }

function list(servers: ServerSummary[], extra: Partial<ServerList> = {}): ServerList {
  return { servers, path: '/home/u/.config/porthole/profiles.json', readOnly: false, ...extra }
}

beforeEach(() => setActivePinia(createPinia()))

describe('servers store', () => {
  it('takes the list, the profiles file error and the keyring state from events', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    expect(f.api.keyringStatus).toHaveBeenCalledOnce()
    expect(s.keyring?.available).toBe(true)

    f.emit({ topic: 'servers', data: list([gpu]) })
    expect(s.servers.map((x) => x.name)).toEqual(['gpu'])
    expect(s.loadError).toBeNull()

    f.emit({ topic: 'servers', data: list([], { loadError: 'profiles file …, line 3, column 5: invalid character', readOnly: true }) })
    expect(s.servers).toEqual([])
    expect(s.loadError).toContain('line 3')
    expect(s.readOnly).toBe(true)

    f.emit({ topic: 'keyring', data: { available: false, service: 'porthole', backend: 'Secret Service', message: 'no D-Bus session bus' } })
    expect(s.keyring?.available).toBe(false)
    s.stop()
    expect(f.handlerCount()).toBe(0)
  })

  it('adds progress steps as they come; resolving starts a new attempt', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([{ ...gpu, state: 'connecting', progress: [{ step: 'ready', elapsedMs: 900 }] }]) })
    f.emit({ topic: 'server.progress', data: { id: 's1', step: 'resolving', elapsedMs: 0, detail: 'gpu.lab' } })
    f.emit({ topic: 'server.progress', data: { id: 's1', step: 'connecting', elapsedMs: 3 } })
    f.emit({ topic: 'server.progress', data: { id: 's1', step: 'connecting', elapsedMs: 3 } }) // repeated by the servers event
    f.emit({ topic: 'server.progress', data: { id: 'other', step: 'connecting', elapsedMs: 3 } })
    expect(s.byId('s1')?.progress?.map((p) => p.step)).toEqual(['resolving', 'connecting'])
    // A snapshot replays the last progress event after the list: nothing is reset.
    f.emit({ topic: 'server.progress', data: { id: 's1', step: 'resolving', elapsedMs: 0, detail: 'gpu.lab' } })
    expect(s.byId('s1')?.progress?.map((p) => p.step)).toEqual(['resolving', 'connecting'])
  })

  it('connect: marks the server connecting, then takes the summary Connect returns', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    let finish: (v: ServerSummary) => void = () => {}
    f.api.connect.mockImplementationOnce(() => new Promise<ServerSummary>((r) => (finish = r)))
    const done = s.connect('s1')
    expect(s.pending.s1).toBe('connect')
    expect(s.byId('s1')?.state).toBe('connecting')
    finish({ ...gpu, state: 'connected' })
    expect(await done).toBeNull()
    expect(s.pending.s1).toBeUndefined()
    expect(s.byId('s1')?.state).toBe('connected')
  })

  it('connect refused for a changed host key: the message, and the red dialog with the details', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    const hostKey = { host: '[gpu.lab]:22', keyType: 'ssh-ed25519', fingerprint: 'SHA256:new', known: [{ type: 'ssh-ed25519', fingerprint: 'SHA256:old', file: '/h/.ssh/known_hosts', line: 4 }] }
    f.api.connect.mockRejectedValueOnce(new ApiError('Porthole refused to connect: the host key of [gpu.lab]:22 has changed.', 'Connect', 409))
    f.api.listServers.mockResolvedValueOnce([
      { ...gpu, state: 'failed', lastError: { kind: 'host-key-changed', message: 'refused', hostKey, time: '' } },
    ])
    const msg = await s.connect('s1')
    expect(msg).toContain('refused to connect')
    expect(s.failures.s1).toBe(msg)
    expect(s.hostKeyRefusal?.serverName).toBe('gpu')
    expect(s.hostKeyRefusal?.error.hostKey?.known[0]?.line).toBe(4)
    s.dismissRefusal()
    expect(s.hostKeyRefusal).toBeNull()
  })

  it('a wrong password fails without the red dialog', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    f.api.connect.mockRejectedValueOnce(new ApiError('The server did not accept the login', 'Connect', 409))
    f.api.listServers.mockResolvedValueOnce([{ ...gpu, state: 'failed', lastError: { kind: 'auth', message: 'The server did not accept the login', time: '' } }])
    expect(await s.connect('s1')).toBe('The server did not accept the login')
    expect(s.hostKeyRefusal).toBeNull()
    expect(s.byId('s1')?.lastError?.kind).toBe('auth')
  })

  it('remove forgets the server and its selection', async () => {
    const f = fakeApi()
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    s.select('s1')
    await s.remove('s1')
    expect(f.api.deleteServer).toHaveBeenCalledWith('s1')
    expect(s.servers).toEqual([])
    expect(s.selected).toBe('local')
  })
})

describe('prompts store', () => {
  it('shows the oldest open question; answering sends it and drops it', async () => {
    const f = fakeApi()
    const p = usePromptsStore()
    p.start(f.api)
    f.emit({ topic: 'prompts', data: [prompt(), prompt({ id: 'p2', kind: 'host-key' })] })
    expect(p.current?.id).toBe('p1')
    expect(await p.answer('p1', { secret: 'pw', remember: true })).toBe(true)
    expect(f.api.answerPrompt).toHaveBeenCalledWith('p1', { secret: 'pw', remember: true })
    expect(p.current?.id).toBe('p2')
    f.emit({ topic: 'prompts', data: [] })
    expect(p.current).toBeNull()
  })

  it('a refused answer keeps the question and says why', async () => {
    const f = fakeApi()
    f.api.answerPrompt.mockRejectedValueOnce(new ApiError('the question is no longer open', 'AnswerPrompt', 404))
    const p = usePromptsStore()
    p.start(f.api)
    f.emit({ topic: 'prompts', data: [prompt()] })
    expect(await p.answer('p1', { secret: 'x' })).toBe(false)
    expect(p.error).toContain('no longer open')
    expect(p.current?.id).toBe('p1')
  })

  it('cancel drops the question at once and never throws', async () => {
    const f = fakeApi()
    f.api.cancelPrompt.mockRejectedValueOnce(new ApiError('gone', 'CancelPrompt', 404))
    const p = usePromptsStore()
    p.start(f.api)
    f.emit({ topic: 'prompts', data: [prompt()] })
    await expect(p.cancel('p1')).resolves.toBeUndefined()
    expect(f.api.cancelPrompt).toHaveBeenCalledWith('p1')
    expect(p.current).toBeNull()
  })

  it('ignores malformed events', () => {
    const f = fakeApi()
    const p = usePromptsStore()
    p.start(f.api)
    f.emit({ topic: 'prompts', data: [{ nope: 1 }] })
    f.emit({ topic: 'prompts', data: 'x' })
    expect(p.prompts).toEqual([])
  })
})

describe('tabs store with servers', () => {
  it('opens a server as a tab once, renames it and closes it when the server goes', () => {
    const t = useTabsStore()
    t.openServer('s1', 'gpu')
    t.openServer('s1', 'gpu')
    expect(t.tabs.map((x) => x.id)).toEqual(['start', 'server-s1'])
    expect(t.active.serverId).toBe('s1')
    t.syncServers([{ id: 's1', name: 'gpu box' }])
    expect(t.tabs[1]?.title).toBe('gpu box')
    t.syncServers([])
    expect(t.tabs.map((x) => x.id)).toEqual(['start'])
    expect(t.activeId).toBe('start')
  })
})

