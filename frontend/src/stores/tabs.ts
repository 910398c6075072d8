import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef, watch } from 'vue'
import { LOCAL, isUnauthorized, onEvents, type AppStatus, type AppViewEvent, type OpenedApp, type PortholeApi, type SavedTab } from '@/api'
import { FrameHistory } from '@/lib/frameHistory'
import { kindFromTitle } from '@/lib/apps'
import { pathOf, withoutToken } from '@/lib/urls'
import { errorText, useServersStore } from './servers'

export type TabKind = 'start' | 'server' | 'app'

/**
 * opening: asking the backend for the endpoint (OpenApp); ready: the frame loads the app;
 * needs-connect: the server is not connected (the tab offers to connect); error: OpenApp failed.
 */
export type AppTabState = 'opening' | 'ready' | 'needs-connect' | 'error'

/** What an app tab knows about its app. */
export interface AppTab {
  port: number
  /** The path on the server it was opened at ("/lab"); what a restart opens again. */
  path: string
  localUrl: string
  localOrigin: string
  /** The same page as the server sees it, shown in the URL bar. */
  remoteUrl: string
  /** What the frame loads. Only the shell sets it: opening, the URL bar. */
  src: string
  /** Bumped to reload the frame. */
  reloads: number
  /** Bumped to re-create the frame (a reload the frame refused). */
  frameKey: number
  state: AppTabState
  error?: string
  notice?: string
  /** Discovery's kind ("jupyter-lab"), for the icon; '' when opened by port or URL. */
  kind: string
  /** The frame is loading a page. */
  loading: boolean
  /** Creation order: frames render in it, so that an open frame is never moved (moving reloads it). */
  seq: number
  /** App views (the Linux window): the view's own history state. */
  viewBack?: boolean
  viewForward?: boolean
}

export interface Tab {
  id: string
  kind: TabKind
  title: string
  closable: boolean
  /** For kinds 'server' and 'app': the server (profile) id; 'local' is This computer. */
  serverId?: string
  app?: AppTab
}

/** A tab whose app is known (kind 'app'). */
export type AppTabRef = Tab & { kind: 'app'; serverId: string; app: AppTab }

export function isAppTab(t: Tab | undefined | null): t is AppTabRef {
  return !!t && t.kind === 'app' && !!t.app && typeof t.serverId === 'string'
}

const START: Tab = { id: 'start', kind: 'start', title: 'Start', closable: false }

/** How many closed tabs "Reopen closed tab" remembers. */
export const CLOSED_MAX = 25
export const SAVE_DELAY_MS = 400

export function serverTabId(serverId: string): string {
  return `server-${serverId}`
}

let counter = 0
function newTabId(): string {
  counter++
  return `app-${Date.now().toString(36)}-${counter.toString(36)}`
}

export interface TabsEnv {
  /** The window whose joint session history Back and Forward move. */
  history?: Pick<History, 'back' | 'forward'>
  saveDelayMs?: number
  now?: () => number
}

export interface OpenHint {
  /** Discovery's title, shown until OpenApp answers. */
  title?: string
  kind?: string
  /** Open another tab even if one shows this app already. */
  newTab?: boolean
}

interface ClosedTab {
  saved: SavedTab
  kind: string
  index: number
}

/**
 * The tab strip: Start (always first, not closable), server pages, and app tabs. App tabs are
 * saved (debounced) on every change and restored at start; a closed app tab can be reopened.
 */
export const useTabsStore = defineStore('tabs', () => {
  const servers = useServersStore()
  const api = shallowRef<PortholeApi | null>(null)
  const tabs = ref<Tab[]>([START])
  const activeId = ref(START.id)
  const active = computed(() => tabs.value.find((t) => t.id === activeId.value) ?? START)
  const closed = ref<ClosedTab[]>([])
  /** GetTabs has answered (or failed): saving may start without losing the saved tabs. */
  const restored = ref(false)
  /** Bumped to ask the URL bar to take the focus. */
  const urlFocus = ref(0)
  /** Bumped when the journal of frame navigations changes (Back/Forward availability). */
  const navVersion = ref(0)
  /**
   * App tabs are web views of their own (the Linux desktop window, AppStatus.appViews) rather
   * than iframes: top-level pages, whose storage WebKit keeps (it keeps a framed app's
   * localStorage and IndexedDB only until Porthole quits).
   */
  const appViews = ref(false)
  /** A shell shortcut pressed inside an app view, for the shell to run (n: to tell repeats apart). */
  const viewShortcut = ref<{ action: string; n: number } | null>(null)
  let unsubscribe: (() => void) | null = null

  let env: TabsEnv = {}
  let history = new FrameHistory()
  let seq = 0
  let saveTimer: ReturnType<typeof setTimeout> | null = null
  let lastSaved = ''
  const loading = new Map<string, Promise<void>>()

  const appTabs = computed(() => tabs.value.filter(isAppTab))

  function find(id: string): Tab | undefined {
    return tabs.value.find((t) => t.id === id)
  }

  function findApp(id: string): AppTabRef | undefined {
    const t = find(id)
    return isAppTab(t) ? t : undefined
  }

  function activate(id: string): void {
    if (tabs.value.some((t) => t.id === id)) activeId.value = id
  }

  function toSaved(t: AppTabRef): SavedTab {
    return {
      id: t.id,
      serverId: t.serverId,
      port: t.app.port,
      path: withoutToken(t.app.path),
      title: t.title,
      localUrl: withoutToken(t.app.localUrl),
      remoteUrl: withoutToken(t.app.remoteUrl),
    }
  }

  function close(id: string): void {
    const i = tabs.value.findIndex((t) => t.id === id)
    const tab = tabs.value[i]
    if (!tab || !tab.closable) return
    if (isAppTab(tab)) {
      closed.value.push({ saved: toSaved(tab), kind: tab.app.kind, index: i })
      if (closed.value.length > CLOSED_MAX) closed.value.splice(0, closed.value.length - CLOSED_MAX)
      history.forget(id)
      navVersion.value++
    }
    tabs.value.splice(i, 1)
    if (activeId.value === id) activeId.value = (tabs.value[i - 1] ?? START).id
  }

  /** Opens (or focuses) the page of a server. */
  function openServer(serverId: string, title: string): void {
    const id = serverTabId(serverId)
    const t = tabs.value.find((x) => x.id === id)
    if (t) t.title = title
    else tabs.value.push({ id, kind: 'server', title, closable: true, serverId })
    activeId.value = id
  }

  /** Keeps server tabs in step with the server list: renamed titles, deleted servers closed. */
  function syncServers(list: { id: string; name: string }[]): void {
    for (const t of [...tabs.value]) {
      if (t.kind !== 'server' || !t.serverId) continue
      const s = list.find((x) => x.id === t.serverId)
      if (!s) close(t.id)
      else t.title = s.name
    }
  }

  function next(step: 1 | -1): void {
    const n = tabs.value.length
    const i = tabs.value.findIndex((t) => t.id === activeId.value)
    const t = tabs.value[(i + step + n) % n]
    if (t) activeId.value = t.id
  }

  function requestUrlFocus(): void {
    urlFocus.value++
  }

  /** Ctrl/Cmd+T: the Start page, with the URL bar ready for an address. */
  function newTab(): void {
    activeId.value = START.id
    requestUrlFocus()
  }

  // ---- App tabs ----

  function need(): PortholeApi {
    if (!api.value) throw new Error('Porthole is not connected to its backend yet')
    return api.value
  }

  function makeAppTab(id: string, serverId: string, title: string, app: Partial<AppTab> & { port: number }): AppTabRef {
    return {
      id,
      kind: 'app',
      title,
      closable: true,
      serverId,
      app: {
        path: '/',
        localUrl: '',
        localOrigin: '',
        remoteUrl: '',
        src: '',
        reloads: 0,
        frameKey: 0,
        state: 'opening',
        kind: '',
        loading: false,
        seq: ++seq,
        ...app,
      },
    }
  }

  /** Puts an OpenApp/ParseAppURL answer into a tab: the frame (re)loads it. */
  function applyOpened(t: AppTabRef, o: OpenedApp): void {
    const a = t.app
    a.localUrl = o.localUrl
    a.localOrigin = o.localOrigin
    a.remoteUrl = o.remoteUrl
    if (o.remoteUrl) a.path = pathOf(o.remoteUrl)
    a.notice = o.notice || undefined
    a.error = undefined
    a.state = 'ready'
    if (o.title) t.title = o.title
    if (!a.kind) a.kind = kindFromTitle(t.title)
    if (a.src && a.src === o.localUrl) reload(t.id)
    else {
      a.src = o.localUrl
      a.loading = true
    }
  }

  function serverNotConnected(serverId: string): boolean {
    if (serverId === LOCAL) return false
    const s = servers.byId(serverId)
    return !s || s.state !== 'connected'
  }

  function failed(t: AppTabRef, err: unknown): void {
    const a = t.app
    a.error = errorText(err)
    const s = servers.byId(t.serverId)
    if (t.serverId !== LOCAL && !s && servers.loaded && !servers.loadError) {
      a.state = 'error'
      a.error = 'This server is no longer in Porthole’s list; close the tab, or add the server again.'
    } else a.state = serverNotConnected(t.serverId) ? 'needs-connect' : 'error'
  }

  /** Asks the backend for the tab's endpoint (again) and loads it. */
  function load(id: string): Promise<void> {
    const running = loading.get(id)
    if (running) return running
    const t = findApp(id)
    if (!t) return Promise.resolve()
    let a: PortholeApi
    try {
      a = need()
    } catch (err) {
      failed(t, err)
      return Promise.resolve()
    }
    t.app.state = 'opening'
    t.app.error = undefined
    const p = a
      .openApp(t.serverId, t.app.port, t.app.path)
      .then(
        (o) => {
          const cur = findApp(id)
          if (cur) applyOpened(cur, o)
        },
        (err: unknown) => {
          const cur = findApp(id)
          if (cur && !isUnauthorized(err)) failed(cur, err)
        },
      )
      .finally(() => loading.delete(id))
    loading.set(id, p)
    return p
  }

  /**
   * Opens an app in a tab: focuses a tab that shows it already (unless `hint.newTab`), otherwise
   * opens one at once (its title from discovery) and loads it when the endpoint is ready.
   */
  async function openApp(serverId: string, port: number, path: string, hint: OpenHint = {}): Promise<AppTabRef> {
    if (!hint.newTab) {
      const existing = appTabs.value.find((t) => t.serverId === serverId && t.app.port === port)
      if (existing) {
        activeId.value = existing.id
        if (existing.app.state === 'error' || existing.app.state === 'needs-connect') await load(existing.id)
        return findApp(existing.id) ?? existing
      }
    }
    const t = makeAppTab(newTabId(), serverId, hint.title || `Port ${port}`, { port, path: path || '/', kind: hint.kind ?? '' })
    tabs.value.push(t)
    activeId.value = t.id
    await load(t.id)
    return findApp(t.id) ?? t
  }

  /**
   * Shows what ParseAppURL answered (the URL bar): in tab `intoTabId` when it shows the same app
   * (same server and port), otherwise in a new tab.
   */
  function showOpened(o: OpenedApp, intoTabId?: string): AppTabRef {
    const into = intoTabId ? findApp(intoTabId) : undefined
    if (into && into.serverId === o.serverId && into.app.port === o.port) {
      applyOpened(into, o)
      activeId.value = into.id
      return into
    }
    const t = makeAppTab(newTabId(), o.serverId, o.title || `Port ${o.port}`, { port: o.port, path: pathOf(o.remoteUrl) })
    tabs.value.push(t)
    const ref = findApp(t.id)!
    applyOpened(ref, o)
    activeId.value = t.id
    return ref
  }

  /** Ctrl+Shift+T: the last closed app tab, where it was, opened again. */
  async function reopenClosed(): Promise<AppTabRef | null> {
    const c = closed.value.pop()
    if (!c) return null
    const s = c.saved
    const t = makeAppTab(newTabId(), s.serverId, s.title, {
      port: s.port,
      path: s.path || '/',
      kind: c.kind,
      localUrl: s.localUrl,
      remoteUrl: s.remoteUrl,
    })
    tabs.value.splice(Math.min(Math.max(c.index, 1), tabs.value.length), 0, t)
    activeId.value = t.id
    await load(t.id)
    return findApp(t.id) ?? null
  }

  /** Reload: the frame loads its page again; a tab that failed to open tries again. */
  function reload(id: string): void {
    const t = findApp(id)
    if (!t) return
    if (t.app.state !== 'ready' || !t.app.src) {
      void load(id)
      return
    }
    history.replacing(id)
    t.app.loading = true
    t.app.reloads++
  }

  /** The frame refused an in-place reload: re-create it (its history entries go with it). */
  function recreateFrame(id: string): void {
    const t = findApp(id)
    if (!t) return
    history.forget(id)
    navVersion.value++
    t.app.loading = true
    t.app.frameKey++
  }

  function frameLoaded(id: string, docTitle?: string | null): void {
    const t = findApp(id)
    if (!t) return
    t.app.loading = false
    if (docTitle && docTitle.trim()) t.title = docTitle.trim()
    history.loaded(id)
    navVersion.value++
  }

  function canGoBack(id: string): boolean {
    void navVersion.value
    if (appViews.value) return !!findApp(id)?.app.viewBack
    return history.canGoBack(id)
  }

  function canGoForward(id: string): boolean {
    void navVersion.value
    if (appViews.value) return !!findApp(id)?.app.viewForward
    return history.canGoForward(id)
  }

  function back(id: string): void {
    if (appViews.value) {
      void api.value?.navigateAppView(id, 'back')
      return
    }
    if (history.back(id)) {
      navVersion.value++
      env.history?.back()
    }
  }

  function forward(id: string): void {
    if (appViews.value) {
      void api.value?.navigateAppView(id, 'forward')
      return
    }
    if (history.forward(id)) {
      navVersion.value++
      env.history?.forward()
    }
  }

  function dismissNotice(id: string): void {
    const t = findApp(id)
    if (t) t.app.notice = undefined
  }

  /** The "Connect to …" of a tab whose server is not connected: connect, then load. */
  async function connectAndLoad(id: string): Promise<void> {
    const t = findApp(id)
    if (!t) return
    const msg = await servers.connect(t.serverId)
    const cur = findApp(id)
    if (!cur) return
    if (msg) {
      cur.app.error = msg
      cur.app.state = 'needs-connect'
      return
    }
    await load(id)
  }

  // A server that comes up (from the sidebar, the server page, another tab) loads its waiting tabs.
  watch(
    () =>
      servers.servers
        .filter((s) => s.state === 'connected')
        .map((s) => s.id)
        .join('\n'),
    (ids) => {
      if (!api.value) return
      const up = new Set(ids.split('\n'))
      for (const t of appTabs.value) if (t.app.state === 'needs-connect' && up.has(t.serverId)) void load(t.id)
    },
  )

  // ---- Saving and restoring ----

  const savedList = computed(() => appTabs.value.map(toSaved))

  async function flush(): Promise<void> {
    if (saveTimer) {
      clearTimeout(saveTimer)
      saveTimer = null
    }
    const a = api.value
    if (!a || !restored.value) return
    const list = savedList.value
    const text = JSON.stringify(list)
    if (text === lastSaved) return
    lastSaved = text
    try {
      await a.saveTabs(list)
    } catch (err) {
      lastSaved = ''
      console.warn('porthole: SaveTabs failed', err)
    }
  }

  function scheduleSave(): void {
    if (!restored.value || JSON.stringify(savedList.value) === lastSaved) return
    if (saveTimer) clearTimeout(saveTimer)
    saveTimer = setTimeout(() => void flush(), env.saveDelayMs ?? SAVE_DELAY_MS)
  }

  watch(savedList, scheduleSave, { deep: true })

  function validSaved(s: SavedTab): boolean {
    return typeof s?.serverId === 'string' && s.serverId !== '' && Number.isInteger(s.port) && s.port > 0 && s.port < 65536
  }

  /** Reads the saved tabs and opens each again (each makes its endpoint again; same address as before). */
  async function restore(): Promise<void> {
    const a = need()
    let saved: SavedTab[] = []
    try {
      saved = await a.getTabs()
    } catch (err) {
      console.warn('porthole: GetTabs failed; starting without the saved tabs', err)
    }
    const added: string[] = []
    for (const s of saved) {
      if (!validSaved(s) || find(s.id)) continue
      const t = makeAppTab(s.id || newTabId(), s.serverId, s.title || `Port ${s.port}`, {
        port: s.port,
        path: s.path || '/',
        kind: kindFromTitle(s.title ?? ''),
        localUrl: s.localUrl,
        remoteUrl: s.remoteUrl,
      })
      tabs.value.push(t)
      added.push(t.id)
    }
    // What the file holds now; tabs opened before it was read are saved with the next write.
    lastSaved = JSON.stringify(savedList.value.filter((t) => added.includes(t.id)))
    restored.value = true
    scheduleSave()
    await Promise.all(added.map((id) => load(id)))
    // The restored tabs' servers connect again, as the user left them: each server once. When one
    // is up, the watcher above loads its tabs. A server that has to ask (a password that is not
    // saved) shows its question; one that fails leaves its tabs offering "Connect", with the reason.
    const waiting = new Set<string>()
    for (const id of added) {
      const t = findApp(id)
      if (t && t.app.state === 'needs-connect') waiting.add(t.serverId)
    }
    await Promise.all(
      [...waiting].map(async (serverId) => {
        const msg = await servers.connect(serverId)
        if (!msg) return
        for (const t of appTabs.value) if (t.serverId === serverId && t.app.state === 'needs-connect') t.app.error = msg
      }),
    )
  }

  function onPageHide(): void {
    void flush()
  }

  /** The server-side URL of a page an app view shows (its local endpoint swapped for the server's). */
  function remoteOf(t: AppTabRef, url: string): string | null {
    const local = t.app.localOrigin
    if (!local || !url.startsWith(local)) return null
    try {
      return `${new URL(t.app.remoteUrl).origin}${url.slice(local.length) || '/'}`
    } catch {
      return null
    }
  }

  /** A page in an app view asked for a new window: the same app opens in a new tab; elsewhere, the system browser. */
  async function openFromView(fromId: string, url: string): Promise<void> {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return
    }
    const same = appTabs.value.find((t) => t.app.localOrigin === u.origin)
    if (same) {
      await openApp(same.serverId, same.app.port, `${u.pathname}${u.search}${u.hash}`, { newTab: true, kind: same.app.kind })
      return
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return
    await api.value?.openExternal(url).catch((err: unknown) => console.warn(`porthole: cannot open ${url} from ${fromId}`, err))
  }

  // The window could not take app views after all: the tabs become iframes.
  function onStatus(st: AppStatus): void {
    if (appViews.value && st.appViews === false) appViews.value = false
  }

  function onViewEvent(v: AppViewEvent): void {
    if (v.shortcut) {
      viewShortcut.value = { action: v.shortcut, n: (viewShortcut.value?.n ?? 0) + 1 }
      return
    }
    if (v.open) {
      void openFromView(v.id, v.open)
      return
    }
    const t = findApp(v.id)
    if (!t) return
    t.app.viewBack = v.canGoBack
    t.app.viewForward = v.canGoForward
    t.app.loading = v.loading
    if (v.title && v.title.trim()) t.title = v.title.trim()
    const remote = v.url ? remoteOf(t, v.url) : null
    if (remote) {
      t.app.remoteUrl = remote
      // Where the user is now is what a restart opens again, as a browser restores a tab.
      t.app.path = withoutToken(pathOf(remote))
    }
    navVersion.value++
  }

  async function start(a: PortholeApi, e: TabsEnv = {}): Promise<void> {
    api.value = markRaw(a)
    try {
      appViews.value = !!(await a.status()).appViews
    } catch {
      appViews.value = false
    }
    unsubscribe = onEvents(a, { 'app.status': onStatus, appviews: onViewEvent })
    env = { history: typeof window === 'undefined' ? undefined : window.history, ...e }
    history = new FrameHistory(e.now)
    if (typeof window !== 'undefined') window.addEventListener('pagehide', onPageHide)
    await restore()
  }

  function stop(): void {
    unsubscribe?.()
    unsubscribe = null
    if (typeof window !== 'undefined') window.removeEventListener('pagehide', onPageHide)
    if (saveTimer) clearTimeout(saveTimer)
    saveTimer = null
    api.value = null
  }

  return {
    api,
    tabs,
    activeId,
    active,
    appTabs,
    closed,
    restored,
    urlFocus,
    navVersion,
    appViews,
    viewShortcut,
    find,
    findApp,
    activate,
    close,
    openServer,
    syncServers,
    next,
    newTab,
    requestUrlFocus,
    openApp,
    showOpened,
    load,
    reopenClosed,
    reload,
    recreateFrame,
    frameLoaded,
    canGoBack,
    canGoForward,
    back,
    forward,
    dismissNotice,
    connectAndLoad,
    flush,
    restore,
    start,
    stop,
  }
})
