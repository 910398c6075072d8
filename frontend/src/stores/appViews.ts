import { defineStore } from 'pinia'
import { computed, markRaw, reactive, ref, shallowRef, watch } from 'vue'
import { onEvents, type AppStatus, type AppViewEvent, type AppViewSpec, type PortholeApi, type ZoomOp } from '@/api'
import { appTabMode, type AppTabMode } from '@/lib/apps'
import { errorText } from './servers'
import { pathOf, withoutToken } from '@/lib/urls'
import { useFindInPageStore } from './findInPage'
import { useTabHistoryStore } from './tabHistory'
import { useTabLoadingStore } from './tabLoading'
import { useTabsStore, type AppTabRef } from './tabs'

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

/**
 * The Linux desktop window's app views (AppStatus.appViews): app tabs are web views of their own,
 * top-level pages whose storage WebKit keeps (it keeps a framed app's localStorage and IndexedDB
 * only until Porthole quits), laid by the backend over the tab's slot. This store knows whether
 * tabs are views, takes what the views report (`appviews` events: page, title, history, a shortcut
 * pressed in one, a window one asked for), and tells the backend which views exist and which
 * shows where (SyncAppViews; AppFrames measures the slot).
 *
 * Where the Linux window has no app views, apps are not framed (see appTabMode): the tab that shows
 * opens its app in the system browser, once per page and reload, and says why.
 */
export const useAppViewsStore = defineStore('appViews', () => {
  const tabs = useTabsStore()
  const loader = useTabLoadingStore()
  const history = useTabHistoryStore()
  const find = useFindInPageStore()
  const api = shallowRef<PortholeApi | null>(null)
  /** How app tabs show apps: views, iframes, or the system browser. */
  const mode = ref<AppTabMode>('frames')
  /** App tabs are views (true). */
  const enabled = computed(() => mode.value === 'views')
  /** App tabs open their apps in the system browser (the Linux window without app views). */
  const external = computed(() => mode.value === 'browser')
  /** In 'browser' mode: per tab, what was last opened (tab, page, reloads) and why it failed, if it did. */
  const opened = reactive(new Map<string, { key: string; error?: string }>())
  let stopWatch: (() => void) | null = null
  /** A shell shortcut pressed inside an app view, for the shell to run (n: to tell repeats apart). */
  const shortcut = ref<{ action: string; n: number } | null>(null)
  let unsubscribe: (() => void) | null = null
  let lastSent = ''
  /** Each view's zoom level (1 is 100 %), kept per app by the backend. */
  const zoom = reactive(new Map<string, number>())
  /** Tabs whose view the backend discarded to save memory (each reloads its page when it shows). */
  const asleep = reactive(new Set<string>())

  // A discarded tab about to show whose server has gone away shows the server's state, not a page
  // that cannot load (tabLoading.wakeDiscarded).
  watch(
    () => {
      const t = tabs.findApp(tabs.activeId)
      return t && asleep.has(t.id) && t.app.state === 'ready' ? t.id : ''
    },
    (id) => {
      if (id) loader.wakeDiscarded(id)
    },
  )

  function setMode(m: AppTabMode): void {
    mode.value = m
    history.useViews(m === 'views' ? (id, nav) => void api.value?.navigateAppView(id, nav) : null)
  }

  // The window could not take app views after all: the tabs become iframes, or in the Linux window
  // open in the system browser.
  function onStatus(st: AppStatus): void {
    if (enabled.value && st.appViews === false) setMode(appTabMode(st, api.value?.kind ?? 'wails'))
  }

  /** The key of what tab `id` would open in the browser now; '' when it has nothing to open. */
  function browserKey(t: AppTabRef | undefined): string {
    return t && t.app.state === 'ready' && t.app.src ? `${t.app.src}\n${t.app.reloads}` : ''
  }

  /** Opens tab `id`'s app in the system browser (again, with `force`). */
  async function openInBrowser(id: string, force = false): Promise<void> {
    const t = tabs.findApp(id)
    const key = browserKey(t)
    if (!t || !key || !api.value || (!force && opened.get(id)?.key === key)) return
    opened.set(id, { key })
    try {
      await api.value.openExternal(t.app.src)
    } catch (err) {
      opened.set(id, { key, error: errorText(err) })
    }
  }

  /** In 'browser' mode, the app of the tab that shows opens in the browser: once per page and reload. */
  function watchBrowser(): void {
    stopWatch?.()
    stopWatch = watch(
      () => (external.value ? `${tabs.activeId}\n${browserKey(tabs.findApp(tabs.activeId))}` : ''),
      () => {
        if (external.value) void openInBrowser(tabs.activeId)
      },
      { immediate: true },
    )
  }

  /** A page in an app view asked for a new window: the same app opens in a new tab; elsewhere, the system browser. */
  async function openFromView(fromId: string, url: string): Promise<void> {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return
    }
    const same = tabs.appTabs.find((t) => t.app.localOrigin === u.origin)
    if (same) {
      await loader.openApp(same.serverId, same.app.port, `${u.pathname}${u.search}${u.hash}`, { newTab: true, kind: same.app.kind })
      return
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return
    await api.value?.openExternal(url).catch((err: unknown) => console.warn(`porthole: cannot open ${url} from ${fromId}`, err))
  }

  function onViewEvent(v: AppViewEvent): void {
    if (v.shortcut) {
      shortcut.value = { action: v.shortcut, n: (shortcut.value?.n ?? 0) + 1 }
      return
    }
    if (v.open) {
      void openFromView(v.id, v.open)
      return
    }
    if (v.find) {
      find.onResult(v.id, v.find)
      return
    }
    if (v.zoom) {
      zoom.set(v.id, v.zoom)
      return
    }
    if (v.life) {
      if (v.life === 'discarded') asleep.add(v.id)
      else asleep.delete(v.id)
      return
    }
    const t = tabs.findApp(v.id)
    if (!t) return
    history.viewReported(v.id, v.canGoBack, v.canGoForward)
    t.app.loading = v.loading
    if (v.title && v.title.trim()) t.title = v.title.trim()
    const remote = v.url ? remoteOf(t, v.url) : null
    if (remote) {
      t.app.remoteUrl = remote
      // Where the user is now is what a restart opens again, as a browser restores a tab.
      t.app.path = withoutToken(pathOf(remote))
    }
  }

  /** Tells the backend what the views should be, when it differs from what it was told last. */
  function sync(spec: AppViewSpec): void {
    if (!enabled.value || !api.value) return
    for (const id of asleep) if (!spec.views.some((v) => v.id === id)) asleep.delete(id) // closed tabs
    const text = JSON.stringify(spec)
    if (text === lastSent) return
    lastSent = text
    api.value.syncAppViews(spec).catch((err: unknown) => {
      lastSent = ''
      console.warn('porthole: SyncAppViews failed', err)
    })
  }

  /** Asks the backend whether tabs are views, and listens to what they report. */
  async function start(a: PortholeApi): Promise<void> {
    api.value = markRaw(a)
    find.start(a)
    let st: AppStatus | null = null
    try {
      st = await a.status()
    } catch {
      st = null
    }
    setMode(appTabMode(st, a.kind))
    unsubscribe = onEvents(a, { 'app.status': onStatus, appviews: onViewEvent })
    watchBrowser()
  }

  function stop(): void {
    unsubscribe?.()
    unsubscribe = null
    stopWatch?.()
    stopWatch = null
    api.value = null
  }

  /** Zooms tab `id`'s app in, out or back to 100 % (kept for the app). */
  function zoomView(id: string, op: ZoomOp): void {
    void api.value?.zoomAppView(id, op).catch((err: unknown) => console.warn('porthole: zoom failed', err))
  }

  function printView(id: string): void {
    void api.value?.printAppView(id).catch((err: unknown) => console.warn('porthole: print failed', err))
  }

  return { api, mode, enabled, external, opened, shortcut, zoom, asleep, openInBrowser, sync, zoomView, printView, start, stop }
})
