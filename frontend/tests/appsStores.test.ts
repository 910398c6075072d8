import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerList, ServerSummary } from '@/api/types'
import { useAppsStore } from '@/stores/apps'
import { useServersStore } from '@/stores/servers'
import { isAppTab, useTabsStore } from '@/stores/tabs'
import { appList, fakeApi, opened, savedTab, service } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.useRealTimers())

const gpu: ServerSummary = { id: 's1', name: 'gpu', host: 'gpu.lab', state: 'connected' }
function list(servers: ServerSummary[]): ServerList {
  return { servers, path: '/p.json', readOnly: false }
}

/** A document whose visibility the test flips. */
function fakeDoc(state: DocumentVisibilityState = 'visible') {
  const listeners = new Set<() => void>()
  const doc = {
    visibilityState: state,
    addEventListener: (_: string, l: () => void) => void listeners.add(l),
    removeEventListener: (_: string, l: () => void) => void listeners.delete(l),
  }
  return {
    doc: doc as unknown as Pick<Document, 'visibilityState' | 'addEventListener' | 'removeEventListener'>,
    set(s: DocumentVisibilityState) {
      doc.visibilityState = s
      listeners.forEach((l) => l())
    },
    listeners,
  }
}

describe('apps store', () => {
  it('scans a tracked server at once, then every interval, only while the window is visible', async () => {
    vi.useFakeTimers()
    const f = fakeApi()
    f.api.listApps.mockImplementation(async (id) => appList(id, [service()]))
    const d = fakeDoc()
    const apps = useAppsStore()
    apps.start(f.api, { doc: d.doc, intervalMs: 5000 })
    const stop = apps.track('s1')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(1)
    expect(apps.of('s1').list?.services?.[0]?.port).toBe(8888)

    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(3)

    // Hidden: no scans, however long.
    d.set('hidden')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(f.api.listApps).toHaveBeenCalledTimes(3)

    // Visible again: a scan at once, then the rhythm.
    d.set('visible')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(4)
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(5)

    // Untracked (the page left the screen): no more scans.
    stop()
    stop() // twice is harmless
    await vi.advanceTimersByTimeAsync(30_000)
    expect(f.api.listApps).toHaveBeenCalledTimes(5)
    expect(apps.tracked()).toEqual([])
    apps.stop()
    expect(d.listeners.size).toBe(0)
    expect(f.handlerCount()).toBe(0)
  })

  it('a page that tracks before the store starts is scanned when it starts', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.track('local')
    expect(f.api.listApps).not.toHaveBeenCalled()
    apps.start(f.api, { doc: fakeDoc().doc })
    await vi.waitFor(() => expect(f.api.listApps).toHaveBeenCalledWith('local'))
    apps.stop()
  })

  it('two pages on one server share one timer; the scan runs until the last one leaves', async () => {
    vi.useFakeTimers()
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc, intervalMs: 1000 })
    const a = apps.track('s1')
    const b = apps.track('s1')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(1)
    a()
    await vi.advanceTimersByTimeAsync(1000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    b()
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    apps.stop()
  })

  it('keeps the last list when a scan fails, with the reason; joins a scan in flight', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc })
    f.api.listApps.mockResolvedValueOnce(appList('s1', [service()]))
    await apps.refresh('s1')
    let release!: () => void
    f.api.listApps.mockImplementationOnce(
      () =>
        new Promise((_, reject) => {
          release = () => reject(new Error('Connect to gpu first'))
        }),
    )
    const p1 = apps.refresh('s1')
    const p2 = apps.refresh('s1')
    expect(apps.of('s1').scanning).toBe(true)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    release()
    await Promise.all([p1, p2])
    expect(apps.of('s1').scanning).toBe(false)
    expect(apps.of('s1').error).toBe('Connect to gpu first')
    expect(apps.of('s1').list?.services).toHaveLength(1)
    apps.stop()
  })

  it('takes lists from the apps event; remembers raw forwards', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc })
    f.emit({ topic: 'apps', data: appList('s1', [service({ port: 6006, kind: 'tensorboard' })], { error: 'probe of 7000 timed out' }) })
    f.emit({ topic: 'apps', data: { nonsense: true } })
    expect(apps.of('s1').list?.services?.[0]?.kind).toBe('tensorboard')
    expect(apps.of('s1').error).toBe('probe of 7000 timed out')
    const fw = await apps.forward('s1', 5432)
    expect(f.api.forwardPort).toHaveBeenCalledWith('s1', 5432)
    expect(apps.forwardOf('s1', 5432)).toEqual(fw)
    expect(apps.forwardOf('s1', 5433)).toBeUndefined()
    apps.stop()
  })
})

describe('tabs store: app tabs', () => {
  async function started(over: Parameters<typeof fakeApi>[0] = {}, servers: ServerSummary[] = [gpu]) {
    const f = fakeApi(over)
    const s = useServersStore()
    await s.start(f.api)
    f.emit({ topic: 'servers', data: list(servers) })
    const tabs = useTabsStore()
    const history = { back: vi.fn(), forward: vi.fn() }
    await tabs.start(f.api, { history, saveDelayMs: 300 })
    return { f, tabs, history, servers: s }
  }

  it('opens an app in a tab at once (discovery’s title), then loads its endpoint; Open again focuses it', async () => {
    const { f, tabs } = await started()
    const t = await tabs.openApp('s1', 8888, '/lab', { title: 'Jupyter Lab — ~/project', kind: 'jupyter-lab' })
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 8888, '/lab')
    expect(tabs.activeId).toBe(t.id)
    expect(t.app.state).toBe('ready')
    expect(t.app.src).toBe(opened('s1', 8888, '/lab').localUrl)
    expect(t.app.remoteUrl).toBe('http://localhost:8888/lab')
    expect(t.title).toBe('App on 8888') // OpenApp's title wins over discovery's
    expect(t.app.kind).toBe('jupyter-lab')

    tabs.activate('start')
    const again = await tabs.openApp('s1', 8888, '/lab')
    expect(again.id).toBe(t.id)
    expect(tabs.activeId).toBe(t.id)
    expect(f.api.openApp).toHaveBeenCalledTimes(1)
    const other = await tabs.openApp('s1', 8888, '/tree', { newTab: true })
    expect(other.id).not.toBe(t.id)
    expect(tabs.appTabs).toHaveLength(2)
    tabs.stop()
  })

  it('close, then reopen the closed tab where it was (OpenApp again); Start stays', async () => {
    const { f, tabs } = await started()
    const a = await tabs.openApp('s1', 8888, '/lab')
    const b = await tabs.openApp('s1', 6006, '/')
    tabs.close('start') // not closable
    expect(tabs.tabs[0]!.id).toBe('start')
    tabs.close(a.id)
    expect(tabs.closed).toHaveLength(1)
    expect(tabs.tabs.map((t) => t.id)).toEqual(['start', b.id])
    expect(tabs.activeId).toBe(b.id)
    tabs.close(b.id)
    expect(tabs.activeId).toBe('start')

    const r1 = await tabs.reopenClosed()
    expect(r1?.app.port).toBe(6006)
    const r2 = await tabs.reopenClosed()
    expect(r2?.app.port).toBe(8888)
    expect(tabs.tabs.map((t) => (isAppTab(t) ? t.app.port : t.id))).toEqual(['start', 8888, 6006])
    expect(tabs.activeId).toBe(r2!.id)
    expect(f.api.openApp).toHaveBeenCalledTimes(4)
    expect(await tabs.reopenClosed()).toBeNull()
    tabs.stop()
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
    const starting = tabs.start(f.api, { history: { back: vi.fn(), forward: vi.fn() }, saveDelayMs: 300 })
    // A tab opened before GetTabs answered is not saved yet: saving now would erase the saved ones.
    f.api.openApp.mockResolvedValueOnce(opened('s1', 8888, '/lab?token=secret'))
    await tabs.openApp('s1', 8888, '/lab?token=secret')
    await vi.advanceTimersByTimeAsync(1000)
    expect(f.api.saveTabs).not.toHaveBeenCalled()
    release([])
    await starting
    // Now it is saved.
    await vi.advanceTimersByTimeAsync(300)
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    expect(f.api.saveTabs.mock.calls[0]![0].map((x) => x.port)).toEqual([8888])
    f.api.saveTabs.mockClear()

    const t = await tabs.openApp('s1', 6006, '/')
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
    tabs.stop()
  })

  it('flush saves at once (on page hide)', async () => {
    const { f, tabs } = await started()
    await tabs.openApp('s1', 8888, '/lab')
    expect(f.api.saveTabs).not.toHaveBeenCalled()
    window.dispatchEvent(new Event('pagehide'))
    await vi.waitFor(() => expect(f.api.saveTabs).toHaveBeenCalledTimes(1))
    tabs.stop()
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
    await tabs.start(f.api, { history: { back: vi.fn(), forward: vi.fn() } })

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
    tabs.stop()
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
    await tabs.start(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
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
    await tabs.connectAndLoad('t2')
    await vi.waitFor(() => expect(tabs.findApp('t2')!.app.state).toBe('ready'))
    tabs.stop()
  })

  it('a tab waiting for its server loads by itself when the server connects elsewhere', async () => {
    const down: ServerSummary = { ...gpu, state: 'disconnected' }
    const { f, tabs } = await started({}, [down])
    f.api.openApp.mockRejectedValueOnce(new Error('Connect to gpu first'))
    const t = await tabs.openApp('s1', 8888, '/lab')
    expect(t.app.state).toBe('needs-connect')
    f.emit({ topic: 'servers', data: list([{ ...down, state: 'connected' }]) })
    await vi.waitFor(() => expect(tabs.findApp(t.id)!.app.state).toBe('ready'))
    tabs.stop()
  })

  it('a failure on a connected server (or This computer) is an error with the reason; reload retries', async () => {
    const { f, tabs } = await started()
    f.api.openApp.mockRejectedValueOnce(new Error('port 1 is not a TCP port'))
    const t = await tabs.openApp('local', 1, '/')
    expect(t.app.state).toBe('error')
    expect(t.app.error).toBe('port 1 is not a TCP port')
    tabs.reload(t.id)
    await vi.waitFor(() => expect(tabs.findApp(t.id)!.app.state).toBe('ready'))
    tabs.stop()
  })

  it('showOpened navigates the tab of the same app, else opens a tab; reload of a ready tab bumps the frame', async () => {
    const { tabs } = await started()
    const t = await tabs.openApp('s1', 8888, '/lab')
    const same = tabs.showOpened(opened('s1', 8888, '/lab/tree/x.ipynb'), t.id)
    expect(same.id).toBe(t.id)
    expect(same.app.src).toBe(opened('s1', 8888, '/lab/tree/x.ipynb').localUrl)
    expect(same.app.path).toBe('/lab/tree/x.ipynb')
    const before = same.app.reloads
    tabs.showOpened(opened('s1', 8888, '/lab/tree/x.ipynb'), t.id) // the same URL again: a reload
    expect(tabs.findApp(t.id)!.app.reloads).toBe(before + 1)
    const other = tabs.showOpened(opened('s1', 6006, '/'), t.id)
    expect(other.id).not.toBe(t.id)
    expect(tabs.activeId).toBe(other.id)
    tabs.stop()
  })

  it('back and forward move the window history only for the tab that navigated last', async () => {
    const { tabs, history } = await started()
    const a = await tabs.openApp('s1', 8888, '/lab')
    const b = await tabs.openApp('s1', 6006, '/')
    tabs.frameLoaded(a.id)
    tabs.frameLoaded(b.id)
    expect(tabs.canGoBack(a.id)).toBe(false)
    tabs.back(a.id)
    expect(history.back).not.toHaveBeenCalled()
    tabs.frameLoaded(a.id) // a link in a
    expect(tabs.canGoBack(a.id)).toBe(true)
    tabs.back(a.id)
    expect(history.back).toHaveBeenCalledTimes(1)
    tabs.frameLoaded(a.id)
    expect(tabs.canGoForward(a.id)).toBe(true)
    expect(tabs.canGoForward(b.id)).toBe(false)
    tabs.forward(a.id)
    expect(history.forward).toHaveBeenCalledTimes(1)
    // Closing a tab forgets its entries.
    tabs.close(a.id)
    expect(tabs.canGoBack(a.id)).toBe(false)
    tabs.stop()
  })

  it('next/prev cycle; newTab goes to Start and asks the URL bar for the focus', async () => {
    const { tabs } = await started()
    const a = await tabs.openApp('s1', 8888, '/lab')
    const b = await tabs.openApp('s1', 6006, '/')
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
    tabs.stop()
  })

  it('a GetTabs failure starts with no saved tabs, and saving works afterwards', async () => {
    const f = fakeApi()
    f.api.getTabs.mockRejectedValue(new Error('the saved tabs cannot be read'))
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const tabs = useTabsStore()
    await tabs.start(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
    expect(tabs.restored).toBe(true)
    expect(tabs.appTabs).toHaveLength(0)
    expect(warn).toHaveBeenCalled()
    await tabs.openApp('local', 8765, '/')
    await tabs.flush()
    expect(f.api.saveTabs).toHaveBeenCalledTimes(1)
    tabs.stop()
  })
})
