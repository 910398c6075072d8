import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerSummary } from '@/api/types'
import { useAppsStore } from '@/stores/apps'
import { useOpenUrlStore } from '@/stores/openUrl'
import { useServersStore } from '@/stores/servers'
import { startTabs } from '@/stores/tabSession'
import { isAppTab, useTabsStore } from '@/stores/tabs'
import { fakeApi, opened } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))

const gpu: ServerSummary = { id: 's1', name: 'gpu', host: 'gpu.lab', state: 'connected' }
const cpu: ServerSummary = { id: 's2', name: 'cpu', host: 'cpu.lab', state: 'connected' }

async function setup(servers: ServerSummary[] = [gpu]) {
  const f = fakeApi()
  await useServersStore().start(f.api)
  f.emit({ topic: 'servers', data: { servers, path: '/p.json', readOnly: false } })
  useAppsStore().start(f.api)
  await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
  return { f, tabs: useTabsStore(), open: useOpenUrlStore() }
}

describe('openUrl store', () => {
  it('a localhost URL opens on the active tab’s server, in a tab, and answers what opened', async () => {
    const { f, tabs, open } = await setup()
    tabs.openServer('s1', 'gpu')
    const o = await open.submit('http://localhost:8888/lab?token=abc')
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://localhost:8888/lab?token=abc')
    expect(o?.remoteUrl).toBe('http://localhost:8888/lab?token=abc')
    const t = tabs.active
    expect(isAppTab(t) && [t.serverId, t.app.port, t.app.src]).toEqual(['s1', 8888, opened('s1', 8888, '/lab?token=abc').localUrl])
    expect(open.panel).toBeNull()
    expect(open.busy).toBe(false)
  })

  it('the same app again navigates its tab instead of opening another', async () => {
    const { tabs, open } = await setup()
    tabs.openServer('s1', 'gpu')
    await open.submit('localhost:8888/lab')
    const first = tabs.activeId
    await open.submit('localhost:8888/tree')
    expect(tabs.activeId).toBe(first)
    expect(tabs.appTabs).toHaveLength(1)
    expect(tabs.appTabs[0]!.app.path).toBe('/tree')
  })

  it('on This computer with servers, a localhost URL asks which computer (connected servers first); pick opens there', async () => {
    const { f, open } = await setup([{ ...cpu, state: 'disconnected' }, gpu])
    expect(await open.submit('127.0.0.1:6006')).toBeNull()
    expect(open.panel).toEqual({ kind: 'pick', url: 'http://127.0.0.1:6006/', candidates: ['local', 's1', 's2'] })
    expect(f.api.parseAppURL).not.toHaveBeenCalled()
    const o = await open.pick('s1')
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://127.0.0.1:6006/')
    expect(o?.serverId).toBe('s1')
    expect(open.panel).toBeNull()
  })

  it('another host: tries the context, then each connected server; none knows it: not-local, and openAsIs', async () => {
    const { f, open } = await setup([gpu, cpu, { id: 's3', name: 'off', host: 'off.lab', state: 'disconnected' }])
    expect(await open.submit('https://example.com/docs')).toBeNull()
    expect(f.api.parseAppURL.mock.calls.map((c) => c[0])).toEqual(['local', 's1', 's2'])
    expect(open.panel).toEqual({ kind: 'not-local', url: 'https://example.com/docs', host: 'example.com', serverId: 'local' })
    await open.openAsIs('https://example.com/docs')
    expect(f.api.openExternal).toHaveBeenCalledWith('https://example.com/docs')
    expect(open.panel).toBeNull()
  })

  it('another host with a server as the context: not-local offers "Open through" that server, which opens a tab through it', async () => {
    const { f, tabs, open } = await setup([gpu])
    tabs.openServer('s1', 'gpu')
    expect(await open.submit('http://grafana.internal:3000/d/abc?orgId=1')).toBeNull()
    expect(f.api.openThrough).not.toHaveBeenCalled() // never without asking
    expect(open.panel).toEqual({
      kind: 'not-local',
      url: 'http://grafana.internal:3000/d/abc?orgId=1',
      host: 'grafana.internal:3000',
      serverId: 's1',
      through: 's1',
    })
    const o = await open.openThroughOffered()
    expect(f.api.openThrough).toHaveBeenCalledWith('s1', 'http://grafana.internal:3000/d/abc?orgId=1')
    expect(o?.remoteHost).toBe('grafana.internal')
    const t = tabs.active
    expect(isAppTab(t) && [t.serverId, t.app.port, t.app.remoteHost, t.app.remoteUrl, t.app.src]).toEqual([
      's1',
      3000,
      'grafana.internal',
      'http://grafana.internal:3000/d/abc?orgId=1',
      o!.localUrl,
    ])
    expect(open.panel).toBeNull()
    expect(open.busy).toBe(false)

    // The server's own localhost:3000 is another app: another tab.
    await open.submit('http://localhost:3000/')
    expect(tabs.appTabs).toHaveLength(2)
    expect(isAppTab(tabs.active) && tabs.active.app.remoteHost).toBeUndefined()
  })

  it('"Open through" is offered only for http and a server; its failure is an error panel', async () => {
    const { f, tabs, open } = await setup([gpu])
    await open.submit('http://grafana.internal:3000/') // This computer is the context
    expect(open.panel?.kind === 'not-local' && open.panel.through).toBeFalsy()
    tabs.openServer('s1', 'gpu')
    await open.submit('https://grafana.internal/')
    expect(open.panel?.kind === 'not-local' && open.panel.through).toBeFalsy()
    expect(await open.openThroughOffered()).toBeNull()
    await open.submit('http://nowhere.internal:3000/')
    f.api.openThrough.mockRejectedValueOnce(new Error('set up the forward to nowhere.internal:3000 through gpu: refused'))
    expect(await open.openThroughOffered()).toBeNull()
    expect(open.panel).toEqual({ kind: 'error', message: 'set up the forward to nowhere.internal:3000 through gpu: refused' })
  })

  it('another host a connected server knows as its own opens there', async () => {
    const { f, tabs, open } = await setup([gpu, cpu])
    f.api.parseAppURL.mockImplementation(async (id, raw) => {
      if (id !== 's2') throw new Error('not here')
      return opened('s2', Number(new URL(raw).port), '/')
    })
    const o = await open.submit('http://cpu-node7:5000/')
    expect(o?.serverId).toBe('s2')
    expect(isAppTab(tabs.active) && tabs.active.serverId).toBe('s2')
  })

  it('a server that is not connected is connected first; when that fails, the reason and Connect, which retries', async () => {
    const down = { ...gpu, state: 'disconnected' as const }
    const { f, tabs, open } = await setup([down])
    tabs.openServer('s1', 'gpu')
    f.api.listServers.mockResolvedValue([down])
    f.api.connect.mockRejectedValueOnce(new Error('gpu refused the password'))
    expect(await open.submit('localhost:8888')).toBeNull()
    expect(f.api.connect).toHaveBeenCalledWith('s1')
    expect(f.api.parseAppURL).not.toHaveBeenCalled()
    const p = open.panel
    expect(p?.kind === 'error' && [p.message, p.connect?.serverId]).toEqual(['gpu refused the password', 's1'])
    expect(open.busy).toBe(false)

    const o = await open.connectThenRetry()
    expect(f.api.connect).toHaveBeenCalledTimes(2)
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://localhost:8888/')
    expect(o?.port).toBe(8888)
    expect(open.panel).toBeNull()
  })

  it('a port alone opens that port on the context server; a failure there is an error without Connect', async () => {
    const { f, tabs, open } = await setup()
    tabs.openServer('s1', 'gpu')
    await open.submit(':5000/ui')
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 5000, '/ui')
    f.api.openApp.mockRejectedValueOnce(new Error('nothing listens on port 7000'))
    tabs.openServer('s1', 'gpu')
    expect(await open.submit('7000')).toBeNull()
    expect(open.panel).toEqual({ kind: 'error', message: 'nothing listens on port 7000' })
  })

  it('what is not an address says why and calls nothing; empty does nothing', async () => {
    const { f, open } = await setup()
    expect(await open.submit('javascript:alert(1)')).toBeNull()
    expect(open.panel?.kind).toBe('error')
    expect(open.panel?.kind === 'error' && open.panel.message).toContain('Porthole opens http and https addresses')
    open.dismiss()
    expect(await open.submit('   ')).toBeNull()
    expect(open.panel).toBeNull()
    expect(f.api.parseAppURL).not.toHaveBeenCalled()
    expect(f.api.openApp).not.toHaveBeenCalled()
  })

  it('a failed openExternal shows its reason', async () => {
    const { f, open } = await setup()
    f.api.openExternal.mockRejectedValueOnce(new Error('no browser configured'))
    await open.openExternal('http://127.0.0.2:8888/')
    expect(open.panel).toEqual({ kind: 'error', message: 'no browser configured' })
  })
})
