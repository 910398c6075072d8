import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerList, ServerSummary } from '@/api/types'
import { useServersStore } from '@/stores/servers'
import { useTabHistoryStore } from '@/stores/tabHistory'
import { useTabLoadingStore } from '@/stores/tabLoading'
import { useTabRestoreStore } from '@/stores/tabRestore'
import { startTabs, stopTabs } from '@/stores/tabSession'
import { isAppTab, useTabsStore } from '@/stores/tabs'
import { fakeApi, opened, savedTab } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.useRealTimers())

const gpu: ServerSummary = { id: 's1', name: 'gpu', host: 'gpu.lab', state: 'connected' }
function list(servers: ServerSummary[]): ServerList {
  return { servers, path: '/p.json', readOnly: false }
}

describe('tab stores: app tabs', () => {
  async function started(over: Parameters<typeof fakeApi>[0] = {}, servers: ServerSummary[] = [gpu]) {
    const f = fakeApi(over)
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list(servers) })
    const tabs = useTabsStore()
    const history = { back: vi.fn(), forward: vi.fn() }
    await startTabs(f.api, { history, saveDelayMs: 300 })
    return { f, tabs, history, servers: s }
  }

  it('opens an app in a tab at once (discovery’s title), then loads its endpoint; Open again focuses it', async () => {
    const { f, tabs } = await started()
    const t = await useTabLoadingStore().openApp('s1', 8888, '/lab', { title: 'Jupyter Lab — ~/project', kind: 'jupyter-lab' })
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 8888, '/lab')
    expect(tabs.activeId).toBe(t.id)
    expect(t.app.state).toBe('ready')
    expect(t.app.src).toBe(opened('s1', 8888, '/lab').localUrl)
    expect(t.app.remoteUrl).toBe('http://localhost:8888/lab')
    expect(t.title).toBe('App on 8888') // OpenApp's title wins over discovery's
    expect(t.app.kind).toBe('jupyter-lab')

    tabs.activate('start')
    const again = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    expect(again.id).toBe(t.id)
    expect(tabs.activeId).toBe(t.id)
    expect(f.api.openApp).toHaveBeenCalledTimes(1)
    const other = await useTabLoadingStore().openApp('s1', 8888, '/tree', { newTab: true })
    expect(other.id).not.toBe(t.id)
    expect(tabs.appTabs).toHaveLength(2)
    stopTabs()
  })

  it('close, then reopen the closed tab where it was (OpenApp again); Start stays', async () => {
    const { f, tabs } = await started()
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const b = await useTabLoadingStore().openApp('s1', 6006, '/')
    tabs.close('start') // not closable
    expect(tabs.tabs[0]!.id).toBe('start')
    tabs.close(a.id)
    expect(tabs.closed).toHaveLength(1)
    expect(tabs.tabs.map((t) => t.id)).toEqual(['start', b.id])
    expect(tabs.activeId).toBe(b.id)
    tabs.close(b.id)
    expect(tabs.activeId).toBe('start')

    const r1 = await useTabLoadingStore().reopenClosed()
    expect(r1?.app.port).toBe(6006)
    const r2 = await useTabLoadingStore().reopenClosed()
    expect(r2?.app.port).toBe(8888)
    expect(tabs.tabs.map((t) => (isAppTab(t) ? t.app.port : t.id))).toEqual(['start', 8888, 6006])
    expect(tabs.activeId).toBe(r2!.id)
    expect(f.api.openApp).toHaveBeenCalledTimes(4)
    expect(await useTabLoadingStore().reopenClosed()).toBeNull()
    stopTabs()
  })

  it('saves on every change, debounced, without tokens; never before the saved tabs were read', async () => {
    vi.useFakeTimers()
    let release!: (v: never[]) => void
    const f = fakeApi({})
    f.api.getTabs.mockImplementation(() => new Promise((r) => (release = r)))
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    const tabs = useTabsStore()
    const starting = startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() }, saveDelayMs: 300 })
    // A tab opened before GetTabs answered is not saved yet: saving now would erase the saved ones.
    f.api.openApp.mockResolvedValueOnce(opened('s1', 8888, '/lab?token=secret'))
    await useTabLoadingStore().openApp('s1', 8888, '/lab?token=secret')
    await vi.advanceTimersByTimeAsync(1000)
    expect(f.api.saveTabs).not.toHaveBeenCalled()
    release([])
    await starting
    // Now it is saved.
    await vi.advanceTimersByTimeAsync(300)
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    expect(f.api.saveTabs.mock.calls[0]![0].map((x) => x.port)).toEqual([8888])
    f.api.saveTabs.mockClear()

    const t = await useTabLoadingStore().openApp('s1', 6006, '/')
    tabs.frameLoaded(t.id, 'TensorBoard')
    tabs.frameLoaded(t.id, 'TensorBoard — scalars')
    await vi.advanceTimersByTimeAsync(100)
    expect(f.api.saveTabs).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(300)
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    const saved = f.api.saveTabs.mock.calls[0]![0]
    expect(saved.map((x) => [x.port, x.path, x.title])).toEqual([
      [8888, '/lab', 'App on 8888'],
      [6006, '/', 'TensorBoard — scalars'],
    ])
    expect(JSON.stringify(saved)).not.toContain('secret')

    // No change, no save; a close saves.
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    tabs.close(t.id)
    await vi.advanceTimersByTimeAsync(300)
    expect(f.api.saveTabs).toHaveBeenCalledTimes(2)
    expect(f.api.saveTabs.mock.calls[1]![0]).toHaveLength(1)
    stopTabs()
  })

  it('flush saves at once (on page hide)', async () => {
    const { f } = await started()
    await useTabLoadingStore().openApp('s1', 8888, '/lab')
    expect(f.api.saveTabs).not.toHaveBeenCalled()
    window.dispatchEvent(new Event('pagehide'))
    await vi.waitFor(() => expect(f.api.saveTabs).toHaveBeenCalledTimes(1))
    stopTabs()
  })

  it('restores saved tabs: OpenApp again per tab; a server not connected is connected again, then its tabs load', async () => {
    const down: ServerSummary = { id: 's2', name: 'cpu', host: 'cpu.lab', state: 'disconnected' }
    const f = fakeApi()
    f.api.getTabs.mockResolvedValue([
      savedTab({ id: 't1', serverId: 's1', port: 8888, path: '/lab', title: 'Jupyter Lab — ~/project' }),
      savedTab({ id: 't2', serverId: 's2', port: 6006, path: '/', title: 'TensorBoard' }),
      savedTab({ id: 't3', serverId: 's2', port: 5000, path: '/', title: 'MLflow' }),
      savedTab({ id: 'bad', serverId: '', port: 0 }),
    ])
    f.api.openApp.mockImplementation(async (id, port, path) => {
      if (id === 's2' && useServersStore().byId('s2')?.state !== 'connected') throw new Error('Connect to cpu first')
      return opened(id, port, path, { title: '' })
    })
    f.api.connect.mockImplementation(async () => {
      const up = { ...down, state: 'connected' as const }
      f.emit({ topic: 'servers', data: list([gpu, up]) })
      return up
    })
    const servers = useServersStore()
    await servers.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu, down]) })
    const tabs = useTabsStore()
    await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() } })

    expect(tabs.appTabs.map((t) => t.id)).toEqual(['t1', 't2', 't3'])
    expect(tabs.activeId).toBe('start')
    const t1 = tabs.findApp('t1')!
    expect(t1.app.state).toBe('ready')
    expect(t1.title).toBe('Jupyter Lab — ~/project') // kept: OpenApp gave no title
    expect(t1.app.src).toBe(opened('s1', 8888, '/lab').localUrl)
    // cpu is connected once (not once per tab), then both of its tabs load.
    expect(f.api.connect).toHaveBeenCalledTimes(1)
    expect(f.api.connect).toHaveBeenCalledWith('s2')
    await vi.waitFor(() => expect(tabs.findApp('t2')!.app.state).toBe('ready'))
    await vi.waitFor(() => expect(tabs.findApp('t3')!.app.state).toBe('ready'))
    expect(f.api.openApp).toHaveBeenCalledWith('s2', 6006, '/')
    // gpu was connected: its connection, maybe closed while unused, is dialed while its tab loads;
    // cpu was not (Connect does it), so it is not prewarmed.
    expect(f.api.prewarm.mock.calls).toEqual([['s1']])
    stopTabs()
  })

  it('a tab opened through its server keeps the route: saved with remoteHost, restored through the same server', async () => {
    const f = fakeApi()
    f.api.getTabs.mockResolvedValue([
      savedTab({
        id: 'g1',
        serverId: 's1',
        port: 3000,
        path: '/d/x?orgId=1',
        title: 'grafana.internal:3000',
        remoteUrl: 'http://grafana.internal:3000/d/x?orgId=1',
        remoteHost: 'grafana.internal',
      }),
      savedTab({ id: 'v6', serverId: 's1', port: 80, path: '/', remoteHost: 'fd00::7' }),
    ])
    const servers = useServersStore()
    await servers.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu]) })
    const tabs = useTabsStore()
    await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() }, saveDelayMs: 10 })
    expect(f.api.openThrough).toHaveBeenCalledWith('s1', 'http://grafana.internal:3000/d/x?orgId=1')
    expect(f.api.openThrough).toHaveBeenCalledWith('s1', 'http://[fd00::7]:80/')
    expect(f.api.openApp).not.toHaveBeenCalled()
    const g = tabs.findApp('g1')!
    expect([g.app.state, g.app.remoteHost]).toEqual(['ready', 'grafana.internal'])
    // Opening the server's own localhost:3000 is another tab, not this one.
    const own = await useTabLoadingStore().openApp('s1', 3000, '/')
    expect(own.id).not.toBe('g1')
    await vi.waitFor(() => expect(f.api.saveTabs).toHaveBeenCalled())
    const saved = f.api.saveTabs.mock.calls.at(-1)![0]
    expect(saved.find((t) => t.id === 'g1')?.remoteHost).toBe('grafana.internal')
    expect(saved.find((t) => t.id === own.id)).not.toHaveProperty('remoteHost')
    stopTabs()
  })

  it('a restored tab whose server cannot connect offers Connect, with the reason', async () => {
    const down: ServerSummary = { id: 's2', name: 'cpu', host: 'cpu.lab', state: 'disconnected' }
    const f = fakeApi()
    f.api.getTabs.mockResolvedValue([savedTab({ id: 't2', serverId: 's2', port: 6006, path: '/', title: 'TensorBoard' })])
    f.api.openApp.mockImplementation(async (id, port, path) => {
      if (id === 's2' && useServersStore().byId('s2')?.state !== 'connected') throw new Error('Connect to cpu first')
      return opened(id, port, path, { title: '' })
    })
    f.api.connect.mockRejectedValueOnce(new Error('cpu.lab: no route to host'))
    const servers = useServersStore()
    await servers.start(f.api)
    f.emit({ topic: 'servers', data: list([gpu, down]) })
    const tabs = useTabsStore()
    await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
    const t2 = tabs.findApp('t2')!
    expect(t2.app.state).toBe('needs-connect')
    expect(t2.app.error).toContain('no route to host')
    expect(t2.app.src).toBe('')

    // "Connect to cpu" in the tab: connects, then loads.
    f.api.connect.mockImplementationOnce(async () => {
      const up = { ...down, state: 'connected' as const }
      f.emit({ topic: 'servers', data: list([gpu, up]) })
      return up
    })
    await useTabLoadingStore().connectAndLoad('t2')
    await vi.waitFor(() => expect(tabs.findApp('t2')!.app.state).toBe('ready'))
    stopTabs()
  })

  it('a tab waiting for its server loads by itself when the server connects elsewhere', async () => {
    const down: ServerSummary = { ...gpu, state: 'disconnected' }
    const { f, tabs } = await started({}, [down])
    f.api.openApp.mockRejectedValueOnce(new Error('Connect to gpu first'))
    const t = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    expect(t.app.state).toBe('needs-connect')
    f.emit({ topic: 'servers', data: list([{ ...down, state: 'connected' }]) })
    await vi.waitFor(() => expect(tabs.findApp(t.id)!.app.state).toBe('ready'))
    stopTabs()
  })

  it('a failure on a connected server (or This computer) is an error with the reason; reload retries', async () => {
    const { f, tabs } = await started()
    f.api.openApp.mockRejectedValueOnce(new Error('port 1 is not a TCP port'))
    const t = await useTabLoadingStore().openApp('local', 1, '/')
    expect(t.app.state).toBe('error')
    expect(t.app.error).toBe('port 1 is not a TCP port')
    useTabLoadingStore().reload(t.id)
    await vi.waitFor(() => expect(tabs.findApp(t.id)!.app.state).toBe('ready'))
    stopTabs()
  })

  it('showOpened navigates the tab of the same app, else opens a tab; reload of a ready tab bumps the frame', async () => {
    const { tabs } = await started()
    const t = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const same = useTabLoadingStore().showOpened(opened('s1', 8888, '/lab/tree/x.ipynb'), t.id)
    expect(same.id).toBe(t.id)
    expect(same.app.src).toBe(opened('s1', 8888, '/lab/tree/x.ipynb').localUrl)
    expect(same.app.path).toBe('/lab/tree/x.ipynb')
    const before = same.app.reloads
    useTabLoadingStore().showOpened(opened('s1', 8888, '/lab/tree/x.ipynb'), t.id) // the same URL again: a reload
    expect(tabs.findApp(t.id)!.app.reloads).toBe(before + 1)
    const other = useTabLoadingStore().showOpened(opened('s1', 6006, '/'), t.id)
    expect(other.id).not.toBe(t.id)
    expect(tabs.activeId).toBe(other.id)
    stopTabs()
  })

  it('back and forward move the window history only for the tab that navigated last', async () => {
    const { tabs, history } = await started()
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const b = await useTabLoadingStore().openApp('s1', 6006, '/')
    tabs.frameLoaded(a.id)
    tabs.frameLoaded(b.id)
    expect(useTabHistoryStore().canGoBack(a.id)).toBe(false)
    useTabHistoryStore().back(a.id)
    expect(history.back).not.toHaveBeenCalled()
    tabs.frameLoaded(a.id) // a link in a
    expect(useTabHistoryStore().canGoBack(a.id)).toBe(true)
    useTabHistoryStore().back(a.id)
    expect(history.back).toHaveBeenCalledTimes(1)
    tabs.frameLoaded(a.id)
    expect(useTabHistoryStore().canGoForward(a.id)).toBe(true)
    expect(useTabHistoryStore().canGoForward(b.id)).toBe(false)
    useTabHistoryStore().forward(a.id)
    expect(history.forward).toHaveBeenCalledTimes(1)
    // Closing a tab forgets its entries.
    tabs.close(a.id)
    expect(useTabHistoryStore().canGoBack(a.id)).toBe(false)
    stopTabs()
  })

  it('next/prev cycle; newTab goes to Start and asks the URL bar for the focus', async () => {
    const { tabs } = await started()
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const b = await useTabLoadingStore().openApp('s1', 6006, '/')
    tabs.next(1)
    expect(tabs.activeId).toBe('start')
    tabs.next(1)
    expect(tabs.activeId).toBe(a.id)
    tabs.next(-1)
    tabs.next(-1)
    expect(tabs.activeId).toBe(b.id)
    const focus = tabs.urlFocus
    tabs.newTab()
    expect(tabs.activeId).toBe('start')
    expect(tabs.urlFocus).toBe(focus + 1)
    stopTabs()
  })

  it('a GetTabs failure starts with no saved tabs, and saving works afterwards', async () => {
    const f = fakeApi()
    f.api.getTabs.mockRejectedValue(new Error('the saved tabs cannot be read'))
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const tabs = useTabsStore()
    await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
    expect(useTabRestoreStore().restored).toBe(true)
    expect(tabs.appTabs).toHaveLength(0)
    expect(warn).toHaveBeenCalled()
    await useTabLoadingStore().openApp('local', 8765, '/')
    await useTabRestoreStore().flush()
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    stopTabs()
  })
})
