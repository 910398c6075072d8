import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { AppStatus, ServerSummary } from '@/api/types'
import App from '@/App.vue'
import UrlBar from '@/components/UrlBar.vue'
import AppFrames from '@/components/apps/AppFrames.vue'
import AppsPanel from '@/components/apps/AppsPanel.vue'
import { useAppStore } from '@/stores/app'
import { useAppsStore } from '@/stores/apps'
import { useServersStore } from '@/stores/servers'
import { startTabs, stopTabs } from '@/stores/tabSession'
import { useAppViewsStore } from '@/stores/appViews'
import { useTabHistoryStore } from '@/stores/tabHistory'
import { useTabLoadingStore } from '@/stores/tabLoading'
import { isAppTab, useTabsStore } from '@/stores/tabs'
import { appList, fakeApi, opened, service } from './fakeApi'

beforeEach(() => {
  setActivePinia(createPinia())
  // happy-dom loads no frame pages, and says so on the test process's stderr for every iframe
  // attached to the document; that is expected here.
  const stderr = (globalThis as unknown as { process: { stderr: { write: (chunk: unknown, ...rest: unknown[]) => boolean } } }).process.stderr
  const write = stderr.write.bind(stderr)
  vi.spyOn(stderr, 'write').mockImplementation((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).includes('Iframe page loading is disabled') ? true : write(chunk, ...rest),
  )
})
afterEach(() => {
  vi.useRealTimers()
  document.body.innerHTML = ''
})

const gpu: ServerSummary = { id: 's1', name: 'gpu', host: 'gpu.lab', user: 'alice', state: 'connected' }

const jupyter = service()
const tensorboard = service({
  port: 6006,
  kind: 'tensorboard',
  kindName: 'TensorBoard',
  title: 'TensorBoard — runs/',
  openPath: '/',
  process: { pid: 77, name: 'tensorboard', cmdline: 'tensorboard --logdir runs', cwd: '/home/alice/project', started: new Date(Date.now() - 5 * 60_000).toISOString() },
})
const postgres = service({ port: 5432, kind: 'postgres', kindName: 'PostgreSQL', title: 'PostgreSQL', isWeb: false, openPath: '', process: undefined })

/** The stores on a fake API; `appViews`: as in the Linux window (tabs are web views, not iframes). */
async function setup(servers: ServerSummary[] = [gpu], opts: { appViews?: boolean; status?: AppStatus } = {}) {
  const f = fakeApi()
  if (opts.appViews) f.api.status.mockResolvedValue({ mode: 'desktop', startedAt: '', servers: 0, forwards: 0, appViews: true })
  if (opts.status) f.api.status.mockResolvedValue(opts.status)
  const s = useServersStore()
  await s.start(f.api)
  f.emit({ topic: 'servers', data: { servers, path: '/p.json', readOnly: false } })
  const apps = useAppsStore()
  apps.start(f.api)
  const tabs = useTabsStore()
  await startTabs(f.api, { history: { back: vi.fn(), forward: vi.fn() } })
  return { f, apps, tabs, servers: s }
}

describe('AppsPanel (a server’s Start page)', () => {
  it('shows a card per web app (title, kind icon, port, command, since when) and the other listeners apart', async () => {
    const { f, tabs } = await setup()
    f.api.listApps.mockResolvedValue(appList('s1', [postgres, jupyter, tensorboard]))
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    expect(f.api.listApps).toHaveBeenCalledWith('s1')

    const cards = w.findAll('[data-testid="app-card"]')
    expect(cards.map((c) => c.attributes('data-port'))).toEqual(['6006', '8888'])
    const jc = cards[1]!
    expect(jc.get('h3').text()).toBe('Jupyter Lab — ~/project')
    expect(jc.text()).toContain('port 8888')
    expect(jc.text()).toContain('jupyter lab --no-browser')
    expect(jc.text()).toContain('jupyter-lab · pid 4242')
    expect(jc.text()).toContain('2 h ago')
    expect(jc.text()).toContain('~/project')
    expect(jc.find('[data-family="jupyter"]').exists()).toBe(true)
    expect(cards[0]!.find('[data-family="tensorboard"]').exists()).toBe(true)
    expect(cards[0]!.text()).toContain('5 min ago')

    const listeners = w.findAll('[data-testid="listener"]')
    expect(listeners.map((l) => l.attributes('data-port'))).toEqual(['5432'])
    expect(listeners[0]!.text()).toContain('PostgreSQL')
    expect(listeners[0]!.find('[data-family="database"]').exists()).toBe(true)

    // Open: a tab, through OpenApp on the app's path.
    await jc.get('[data-testid="app-open"]').trigger('click')
    await flushPromises()
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 8888, '/lab')
    expect(isAppTab(tabs.active)).toBe(true)
    w.unmount()
  })

  it('pointing at or focusing Open prewarms the server’s connection, at most once per 5 s', async () => {
    const { f } = await setup()
    f.api.listApps.mockResolvedValue(appList('s1', [jupyter, tensorboard]))
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    let now = 1_000_000
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now)
    try {
      const opens = w.findAll('[data-testid="app-open"]').map((x) => x.element)
      // jsdom has no PointerEvent: a plain event of that type is what Vue listens to.
      const point = (el: Element) => el.dispatchEvent(new Event('pointerenter'))
      const focus = (el: Element) => el.dispatchEvent(new FocusEvent('focus'))
      point(opens[0]!)
      expect(f.api.prewarm.mock.calls).toEqual([['s1']])
      point(opens[1]!)
      focus(opens[0]!)
      now += 4_999
      point(opens[1]!)
      expect(f.api.prewarm).toHaveBeenCalledTimes(1) // throttled per server
      now += 1
      focus(opens[1]!)
      expect(f.api.prewarm).toHaveBeenCalledTimes(2)
    } finally {
      clock.mockRestore()
      w.unmount()
    }
  })

  it('notes when two apps of the server share an address, and so their cookies (issue 15)', async () => {
    const { f } = await setup()
    const a = service({ port: 8888, localUrl: 'http://127.0.0.2:8888/lab' })
    const b = service({ port: 8889, title: 'Jupyter Notebook', localUrl: 'http://127.0.0.2:8889/' })
    const c = service({ port: 6006, kind: 'tensorboard', localUrl: 'http://127.3.0.1:6006/' })
    f.api.listApps.mockResolvedValue(appList('s1', [a, b, c]))
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    const card = (port: number) => w.get(`[data-testid="app-card"][data-port="${port}"]`)
    expect(card(8888).get('[data-testid="cookie-clash"]').text()).toContain('Shares cookies with port 8889 (same address 127.0.0.2)')
    expect(card(8889).get('[data-testid="cookie-clash"]').text()).toContain('port 8888')
    expect(card(6006).find('[data-testid="cookie-clash"]').exists()).toBe(false)
    w.unmount()
  })

  it('Forward… makes a raw forward and shows how to connect, copyable', async () => {
    const { f } = await setup()
    f.api.listApps.mockResolvedValue(appList('s1', [postgres]))
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    await w.get('[data-testid="forward"]').trigger('click')
    await flushPromises()
    expect(f.api.forwardPort).toHaveBeenCalledWith('s1', 5432)
    const dialog = w.get('dialog[aria-labelledby="forward-title"]')
    expect(dialog.get('[data-testid="forward-hint"]').text()).toMatch(/^psql -h 127\.0\.0\.\d+ -p 5432$/)
    expect(dialog.findAll('button').some((b) => b.attributes('aria-label') === 'Copy')).toBe(true)
    // The listener row remembers where it is forwarded.
    expect(w.get('[data-testid="listener"]').text()).toMatch(/127\.0\.0\.\d+:5432/)
    w.unmount()
  })

  it('nothing listening: says so in plain words; Open port… opens a tab on the port and path given', async () => {
    const { f, tabs } = await setup()
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    expect(w.get('[data-testid="apps-empty"]').text()).toContain('Nothing listens on gpu’s localhost yet')

    await w.get('[data-testid="open-port-button"]').trigger('click')
    await flushPromises()
    const form = w.get('[data-testid="open-port"]')
    await form.get('#open-port-port').setValue('99999')
    await form.trigger('submit')
    expect(form.text()).toContain('A port is a number from 1 to 65535.')
    expect(f.api.openApp).not.toHaveBeenCalled()
    await form.get('#open-port-port').setValue('8050')
    await form.get('#open-port-path').setValue('dash')
    await form.trigger('submit')
    await flushPromises()
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 8050, '/dash')
    expect(isAppTab(tabs.active) && tabs.active.app.port).toBe(8050)
    w.unmount()
  })

  it('a server that is not connected: no scan, and a Connect button', async () => {
    const { f } = await setup([{ ...gpu, state: 'disconnected' }])
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    expect(f.api.listApps).not.toHaveBeenCalled()
    const box = w.get('[data-testid="apps-not-connected"]')
    expect(box.text()).toContain('Connect to see what runs on gpu')
    await box.get('[data-testid="apps-connect"]').trigger('click')
    await flushPromises()
    expect(f.api.connect).toHaveBeenCalledWith('s1')
    w.unmount()
  })

  it('a failed scan says why and offers to try again', async () => {
    const { f } = await setup()
    f.api.listApps.mockRejectedValueOnce(new Error('the listing timed out after 30 s'))
    const w = mount(AppsPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    const err = w.get('[data-testid="apps-error"]')
    expect(err.text()).toContain('Porthole could not list what runs on gpu: the listing timed out after 30 s')
    f.api.listApps.mockResolvedValueOnce(appList('s1', [jupyter]))
    await err.get('button').trigger('click')
    await flushPromises()
    expect(w.findAll('[data-testid="app-card"]')).toHaveLength(1)
    w.unmount()
  })

  it('on This computer: other listeners show their address instead of Forward…', async () => {
    const { f } = await setup()
    f.api.listApps.mockResolvedValue(appList('local', [{ ...postgres, local: true }]))
    const w = mount(AppsPanel, { props: { serverId: 'local', serverName: 'This computer' }, attachTo: document.body })
    await flushPromises()
    expect(w.find('[data-testid="forward"]').exists()).toBe(false)
    expect(w.get('[data-testid="listener"]').text()).toContain('127.0.0.1:5432')
    w.unmount()
  })
})

describe('UrlBar', () => {
  it('a localhost URL pasted on a server’s page opens there, in a new tab, and shows the server-side URL', async () => {
    const { f, tabs } = await setup()
    tabs.openServer('s1', 'gpu')
    const w = mount(UrlBar, { attachTo: document.body })
    expect(w.get('[data-testid="url-badge"]').text()).toBe('gpu')
    const input = w.get('[data-testid="url-input"]')
    await input.setValue('http://localhost:8888/lab?token=abc')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://localhost:8888/lab?token=abc')
    const t = tabs.active
    expect(isAppTab(t) && t.app.port).toBe(8888)
    expect((input.element as HTMLInputElement).value).toBe('http://localhost:8888/lab?token=abc')
    // The badge shows the local endpoint of the tunnel.
    expect(w.get('[data-testid="url-badge"]').text()).toMatch(/^127\.0\.0\.\d+:8888$/)

    // Open in the system browser, the local URL.
    await w.get('[data-testid="open-external"]').trigger('click')
    await flushPromises()
    expect(f.api.openExternal).toHaveBeenCalledWith(opened('s1', 8888, '/lab?token=abc').localUrl)
    w.unmount()
  })

  it('on This computer with servers, a localhost URL asks which computer runs it', async () => {
    const { f, tabs } = await setup()
    const w = mount(UrlBar, { attachTo: document.body })
    expect(tabs.activeId).toBe('start')
    await w.get('[data-testid="url-input"]').setValue('127.0.0.1:6006')
    await w.get('form').trigger('submit')
    await flushPromises()
    const panel = w.get('[data-testid="url-panel"]')
    expect(panel.attributes('data-kind')).toBe('pick')
    const choices = panel.findAll('.choice')
    expect(choices.map((c) => c.find('.choice-name').text())).toEqual(['This computer', 'gpu'])
    await choices[1]!.trigger('click')
    await flushPromises()
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://127.0.0.1:6006/')
    expect(w.find('[data-testid="url-panel"]').exists()).toBe(false)
    w.unmount()
  })

  it('a URL on another host from a server\'s tab: "Open through" that server opens it in a tab', async () => {
    const { f, tabs } = await setup()
    tabs.openServer('s1', 'gpu')
    const w = mount(UrlBar, { attachTo: document.body })
    await w.get('[data-testid="url-input"]').setValue('http://grafana.internal:3000/')
    await w.get('form').trigger('submit')
    await flushPromises()
    const panel = w.get('[data-testid="url-panel"]')
    expect(panel.attributes('data-kind')).toBe('not-local')
    expect(panel.text()).toContain('gpu can reach it for you')
    expect(panel.get('[data-testid="open-through"]').text()).toContain('Open through gpu')
    expect(panel.find('[data-testid="open-as-is"]').exists()).toBe(true)
    await panel.get('[data-testid="open-through"]').trigger('click')
    await flushPromises()
    expect(f.api.openThrough).toHaveBeenCalledWith('s1', 'http://grafana.internal:3000/')
    expect(w.find('[data-testid="url-panel"]').exists()).toBe(false)
    const t = tabs.active
    expect(isAppTab(t) && t.app.remoteHost).toBe('grafana.internal')
    w.unmount()
  })

  it('a URL on another host: a plain message, and the choice to open it as-is or ignore it', async () => {
    const { f } = await setup()
    const w = mount(UrlBar, { attachTo: document.body })
    await w.get('[data-testid="url-input"]').setValue('https://example.com/docs')
    await w.get('form').trigger('submit')
    await flushPromises()
    const panel = w.get('[data-testid="url-panel"]')
    expect(panel.attributes('data-kind')).toBe('not-local')
    expect(panel.text()).toContain('example.com is not on this computer’s localhost')
    // This computer first, then each connected server might know the name.
    expect(f.api.parseAppURL.mock.calls.map((c) => c[0])).toEqual(['local', 's1'])
    await panel.get('[data-testid="open-as-is"]').trigger('click')
    await flushPromises()
    expect(f.api.openExternal).toHaveBeenCalledWith('https://example.com/docs')

    await w.get('[data-testid="url-input"]').setValue('https://example.com/')
    await w.get('form').trigger('submit')
    await flushPromises()
    await w.get('[data-testid="ignore"]').trigger('click')
    expect(w.find('[data-testid="url-panel"]').exists()).toBe(false)
    expect(f.api.openExternal).toHaveBeenCalledTimes(1)
    w.unmount()
  })

  it('refuses what no server could open, and offers Connect when the server is not connected', async () => {
    const { f, tabs } = await setup([{ ...gpu, state: 'disconnected' }])
    const w = mount(UrlBar, { attachTo: document.body })
    await w.get('[data-testid="url-input"]').setValue('javascript:alert(1)')
    await w.get('form').trigger('submit')
    expect(w.get('[data-testid="url-panel"]').text()).toContain('Porthole opens http and https addresses')
    expect(f.api.parseAppURL).not.toHaveBeenCalled()

    // A URL for a server that is not connected connects it first, then opens.
    tabs.openServer('s1', 'gpu')
    await flushPromises()
    f.api.listServers.mockResolvedValue([{ ...gpu, state: 'disconnected' }])
    f.api.connect.mockRejectedValueOnce(new Error('gpu refused the password'))
    await w.get('[data-testid="url-input"]').setValue('localhost:8888')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.connect).toHaveBeenCalledWith('s1')
    expect(f.api.parseAppURL).not.toHaveBeenCalled()
    const panel = w.get('[data-testid="url-panel"]')
    expect(panel.text()).toContain('gpu refused the password')
    // "Connect to gpu" tries again: this time it connects, and the URL opens.
    const connect = panel.findAll('button').find((b) => b.text() === 'Connect to gpu')!
    await connect.trigger('click')
    await flushPromises()
    expect(f.api.connect).toHaveBeenCalledTimes(2)
    expect(f.api.parseAppURL).toHaveBeenCalledWith('s1', 'http://localhost:8888/')
    w.unmount()
  })

  it('a port number alone opens that port on the current server', async () => {
    const { f, tabs } = await setup()
    tabs.openServer('s1', 'gpu')
    const w = mount(UrlBar, { attachTo: document.body })
    await w.get('[data-testid="url-input"]').setValue(':5000/ui')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.openApp).toHaveBeenCalledWith('s1', 5000, '/ui')
    w.unmount()
  })
})

describe('AppFrames (app tabs)', () => {
  it('keeps every app’s iframe alive across tab switches; only the active one shows', async () => {
    const { tabs } = await setup()
    const w = mount(AppFrames, { attachTo: document.body })
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const b = await useTabLoadingStore().openApp('s1', 6006, '/')
    await flushPromises()
    const frames = () => w.findAll('iframe[data-testid="app-frame"]')
    expect(frames()).toHaveLength(2)
    const elA = frames()[0]!.element
    const views = () => w.findAll('[data-testid="app-view"]')
    expect((views()[0]!.element as HTMLElement).style.display).toBe('none')
    expect((views()[1]!.element as HTMLElement).style.display).toBe('')

    tabs.activate(a.id)
    await flushPromises()
    expect(frames()[0]!.element).toBe(elA) // the same element: not reloaded
    expect((views()[0]!.element as HTMLElement).style.display).toBe('')
    expect((views()[1]!.element as HTMLElement).style.display).toBe('none')

    // Start: every frame hidden, none removed.
    tabs.activate('start')
    await flushPromises()
    expect((w.get('[data-testid="app-frames"]').element as HTMLElement).style.display).toBe('none')
    expect(frames()).toHaveLength(2)

    // Closing the first tab leaves the second frame where it was.
    const elB = frames()[1]!.element
    tabs.close(a.id)
    await flushPromises()
    expect(frames()).toHaveLength(1)
    expect(frames()[0]!.element).toBe(elB)
    expect(b.id).toBeTruthy()
    w.unmount()
  })

  it('in the Linux window, tabs are app views: slots, not iframes; the backend is told which shows where', async () => {
    const { f, tabs } = await setup([gpu], { appViews: true })
    expect(useAppViewsStore().enabled).toBe(true)
    vi.spyOn(HTMLElement.prototype, 'getBoundingClientRect').mockImplementation(function (this: HTMLElement) {
      return this.dataset.nativeSlot ? ({ left: 248, top: 82, width: 1032.4, height: 712, right: 0, bottom: 0, x: 0, y: 0, toJSON: () => ({}) } as DOMRect) : new DOMRect()
    })
    const w = mount(AppFrames, { attachTo: document.body })
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    await flushPromises()
    expect(w.findAll('iframe')).toHaveLength(0)
    expect(w.findAll('[data-testid="app-slot"]')).toHaveLength(1)
    const last = () => f.api.syncAppViews.mock.calls.at(-1)?.[0]
    await vi.waitFor(() => expect(last()?.visible).toBe(a.id))
    expect(last()).toEqual({ views: [{ id: a.id, url: opened('s1', 8888, '/lab').localUrl, reloads: 0 }], visible: a.id, x: 248, y: 82, w: 1032, h: 712 })

    // A dialog (or the URL bar's panel) covers the content: no view shows, none closes.
    const cover = document.createElement('div')
    cover.setAttribute('data-covers-app', '')
    document.body.append(cover)
    await vi.waitFor(() => expect(last()?.visible).toBe(''))
    expect(last()?.views).toHaveLength(1)
    cover.remove()
    await vi.waitFor(() => expect(last()?.visible).toBe(a.id))

    // Reload: the count goes up, and the backend reloads that view.
    useTabLoadingStore().reload(a.id)
    await vi.waitFor(() => expect(last()?.views[0]?.reloads).toBe(1))

    // Start shows: the view hides but stays; closing the tab closes it.
    tabs.activate('start')
    await vi.waitFor(() => expect(last()?.visible).toBe(''))
    tabs.close(a.id)
    await vi.waitFor(() => expect(last()?.views).toEqual([]))
    w.unmount()
    stopTabs()
  })

  it('a discarded tab whose server went away shows the server’s state when it shows, and reloads when the server is back', async () => {
    const { f, tabs } = await setup([gpu], { appViews: true })
    const views = useAppViewsStore()
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const b = await useTabLoadingStore().openApp('s1', 6006, '/', { newTab: true })
    expect(tabs.activeId).toBe(b.id)
    const blank = { title: '', url: '', canGoBack: false, canGoForward: false, loading: false }
    f.emit({ topic: 'appviews', data: { ...blank, id: a.id, life: 'discarded' } })
    expect(views.asleep.has(a.id)).toBe(true)
    // The server goes away while tab a sleeps; a is focused: needs-connect, not a page that cannot load.
    f.emit({ topic: 'servers', data: { servers: [{ ...gpu, state: 'disconnected' }], path: '/p.json', readOnly: false } })
    tabs.activate(a.id)
    await flushPromises()
    const t = tabs.findApp(a.id)!
    expect(t.app.state).toBe('needs-connect')
    expect(t.app.error).toContain('gpu is not connected')
    // A tab that is awake keeps its page when its server goes (its view still has it).
    expect(tabs.findApp(b.id)!.app.state).toBe('ready')
    // The server is back: the tab loads again (the backend wakes its view at the kept page).
    const calls = f.api.openApp.mock.calls.length
    f.emit({ topic: 'servers', data: { servers: [gpu], path: '/p.json', readOnly: false } })
    await vi.waitFor(() => expect(tabs.findApp(a.id)!.app.state).toBe('ready'))
    expect(f.api.openApp.mock.calls.length).toBe(calls + 1)
    f.emit({ topic: 'appviews', data: { ...blank, id: a.id, life: 'restored' } })
    expect(views.asleep.has(a.id)).toBe(false)
    // A discarded tab of a connected server just shows (and reloads).
    f.emit({ topic: 'appviews', data: { ...blank, id: b.id, life: 'discarded' } })
    tabs.activate(b.id)
    await flushPromises()
    expect(tabs.findApp(b.id)!.app.state).toBe('ready')
    stopTabs()
  })

  it('an app view reports its page: title, the server-side URL, history; Back and Forward move the view', async () => {
    const { f, tabs } = await setup([gpu], { appViews: true })
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    const local = opened('s1', 8888, '/lab').localOrigin
    expect(useTabHistoryStore().canGoBack(a.id)).toBe(false)
    f.emit({ topic: 'appviews', data: { id: a.id, title: 'Untitled.ipynb', url: `${local}/lab/tree/Untitled.ipynb?token=x`, canGoBack: true, canGoForward: false, loading: false } })
    const t = tabs.findApp(a.id)!
    expect(t.title).toBe('Untitled.ipynb')
    expect(t.app.remoteUrl).toBe('http://localhost:8888/lab/tree/Untitled.ipynb?token=x')
    expect(t.app.path).toBe('/lab/tree/Untitled.ipynb') // what a restart opens; no token in files
    expect(useTabHistoryStore().canGoBack(a.id)).toBe(true)
    useTabHistoryStore().back(a.id)
    expect(f.api.navigateAppView).toHaveBeenCalledWith(a.id, 'back')
    useTabHistoryStore().forward(a.id)
    expect(f.api.navigateAppView).toHaveBeenCalledWith(a.id, 'forward')

    // A shortcut pressed in the view goes to the shell; a window the page opens on the same app is a new tab.
    f.emit({ topic: 'appviews', data: { id: a.id, title: '', url: '', canGoBack: false, canGoForward: false, loading: false, shortcut: 'focus-url' } })
    expect(useAppViewsStore().shortcut?.action).toBe('focus-url')
    f.emit({ topic: 'appviews', data: { id: a.id, title: '', url: '', canGoBack: false, canGoForward: false, loading: false, open: `${local}/notebooks/x.ipynb` } })
    await vi.waitFor(() => expect(tabs.appTabs).toHaveLength(2))
    expect(f.api.openApp).toHaveBeenLastCalledWith('s1', 8888, '/notebooks/x.ipynb')
    f.emit({ topic: 'appviews', data: { id: a.id, title: '', url: '', canGoBack: false, canGoForward: false, loading: false, open: 'https://docs.example.org/' } })
    await vi.waitFor(() => expect(f.api.openExternal).toHaveBeenCalledWith('https://docs.example.org/'))

    // The window could not take views after all: the tabs fall back to iframes.
    f.emit({ topic: 'app.status', data: { mode: 'desktop', startedAt: '', servers: 1, forwards: 1, appViews: false } })
    expect(useAppViewsStore().enabled).toBe(false)
    const w = mount(AppFrames, { attachTo: document.body })
    await flushPromises()
    expect(w.findAll('iframe[data-testid="app-frame"]')).toHaveLength(2)
    w.unmount()
    stopTabs()
  })

  // Issue 14, finding 7: in the Linux window a framed app could call Porthole's bindings.
  it('in the Linux window without app views, an app is never framed: it opens in the browser and the tab says why', async () => {
    const { f, tabs } = await setup([gpu], { status: { mode: 'desktop', os: 'linux', startedAt: '', servers: 0, forwards: 0, appViews: false } })
    const w = mount(AppFrames, { attachTo: document.body })
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    await flushPromises()
    const url = opened('s1', 8888, '/lab').localUrl
    expect(w.find('iframe').exists()).toBe(false)
    expect(w.get('[data-testid="app-external"]').text()).toContain('opened in your web browser')
    expect(w.get('[data-testid="app-external"]').text()).toContain('could use Porthole itself')
    expect(f.api.openExternal).toHaveBeenCalledTimes(1)
    expect(f.api.openExternal).toHaveBeenLastCalledWith(url)

    // Switching away and back does not open it again; a reload or the button does.
    tabs.activate('start')
    await flushPromises()
    tabs.activate(a.id)
    await flushPromises()
    expect(f.api.openExternal).toHaveBeenCalledTimes(1)
    useTabLoadingStore().reload(a.id)
    await vi.waitFor(() => expect(f.api.openExternal).toHaveBeenCalledTimes(2))
    f.api.openExternal.mockRejectedValueOnce(new Error('no browser found'))
    await w.get('[data-testid="app-open-browser"]').trigger('click')
    await flushPromises()
    expect(f.api.openExternal).toHaveBeenCalledTimes(3)
    expect(w.get('[data-testid="app-external"]').text()).toContain('no browser found')
    w.unmount()
    stopTabs()
  })

  it('the Linux window whose app views fail does not fall back to iframes', async () => {
    const { f } = await setup([gpu], { appViews: true })
    const a = await useTabLoadingStore().openApp('s1', 8888, '/lab')
    f.emit({ topic: 'app.status', data: { mode: 'desktop', os: 'linux', startedAt: '', servers: 1, forwards: 1, appViews: false } })
    expect(useAppViewsStore().enabled).toBe(false)
    expect(useAppViewsStore().external).toBe(true)
    const w = mount(AppFrames, { attachTo: document.body })
    await flushPromises()
    expect(w.find('iframe').exists()).toBe(false)
    await vi.waitFor(() => expect(f.api.openExternal).toHaveBeenCalledWith(useTabsStore().findApp(a.id)!.app.src))
    w.unmount()
    stopTabs()
  })

  it('a tab whose server is not connected shows “Connect to …”, which connects and loads', async () => {
    const { f, tabs } = await setup([{ ...gpu, state: 'disconnected' }])
    f.api.openApp.mockRejectedValueOnce(new Error('Connect to gpu first'))
    const w = mount(AppFrames, { attachTo: document.body })
    const t = await useTabLoadingStore().openApp('s1', 8888, '/lab', { title: 'Jupyter Lab — ~/project' })
    await flushPromises()
    expect(w.find('iframe').exists()).toBe(false)
    const overlay = w.get('[data-testid="app-overlay"]')
    expect(overlay.text()).toContain('gpu is not connected')
    f.api.connect.mockImplementationOnce(async (id) => {
      f.emit({ topic: 'servers', data: { servers: [gpu], path: '/p.json', readOnly: false } })
      return { ...gpu, id }
    })
    await overlay.get('[data-testid="app-connect"]').trigger('click')
    await flushPromises()
    expect(f.api.connect).toHaveBeenCalledWith('s1')
    expect(tabs.findApp(t.id)!.app.state).toBe('ready')
    expect(w.find('iframe').exists()).toBe(true)
    expect(w.find('[data-testid="app-overlay"]').exists()).toBe(false)
    w.unmount()
  })

  it('shows OpenApp’s notice, dismissible; an error offers Try again and Close', async () => {
    const { f, tabs } = await setup()
    f.api.openApp.mockResolvedValueOnce(opened('s1', 8888, '/lab', { notice: '127.0.0.2:8888 is taken by nginx (pid 812); this time it is on 127.0.0.2:18888' }))
    const w = mount(AppFrames, { attachTo: document.body })
    await useTabLoadingStore().openApp('s1', 8888, '/lab')
    await flushPromises()
    expect(w.get('[data-testid="app-notice"]').text()).toContain('taken by nginx')
    await w.get('[data-testid="app-notice"] button').trigger('click')
    expect(w.find('[data-testid="app-notice"]').exists()).toBe(false)

    f.api.openApp.mockRejectedValueOnce(new Error('nothing listens on port 7000'))
    const t = await useTabLoadingStore().openApp('s1', 7000, '/')
    await flushPromises()
    const view = w.get(`[data-tab="${t.id}"]`)
    expect(view.text()).toContain('nothing listens on port 7000')
    await view.get('[data-testid="app-retry"]').trigger('click')
    await flushPromises()
    expect(tabs.findApp(t.id)!.app.state).toBe('ready')
    w.unmount()
  })
})

describe('shell shortcuts', () => {
  function key(k: string, mods: KeyboardEventInit = {}) {
    window.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true, ...mods }))
  }

  it('Ctrl+W closes, Ctrl+Shift+T reopens, Ctrl+Tab cycles, Ctrl+T goes to Start and focuses the URL bar', async () => {
    const f = fakeApi()
    useAppStore().initTheme({ root: document.createElement('html') })
    const w = mount(App, { props: { api: f.api }, attachTo: document.body })
    await flushPromises()
    const tabs = useTabsStore()
    const a = await useTabLoadingStore().openApp('local', 8765, '/')
    const b = await useTabLoadingStore().openApp('local', 7860, '/')
    await flushPromises()
    expect(w.findAll('iframe')).toHaveLength(2)
    expect(tabs.activeId).toBe(b.id)

    key('w', { ctrlKey: true })
    expect(tabs.appTabs.map((t) => t.id)).toEqual([a.id])
    key('T', { ctrlKey: true, shiftKey: true })
    await flushPromises()
    expect(tabs.appTabs.map((t) => isAppTab(t) && t.app.port)).toEqual([8765, 7860])

    const order = tabs.tabs.map((t) => t.id)
    key('Tab', { ctrlKey: true })
    expect(tabs.activeId).toBe(order[0]) // from the last to Start
    key('Tab', { ctrlKey: true, shiftKey: true })
    expect(tabs.activeId).toBe(order[2])

    key('t', { ctrlKey: true })
    await flushPromises()
    expect(tabs.activeId).toBe('start')
    expect(document.activeElement?.getAttribute('data-testid')).toBe('url-input')

    // Ctrl+W on Start closes nothing (and never the window).
    key('w', { ctrlKey: true })
    expect(tabs.tabs).toHaveLength(3)
    w.unmount()
  })
})
