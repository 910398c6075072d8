import { defineStore } from 'pinia'
import { markRaw, shallowRef, watch } from 'vue'
import { LOCAL, isUnauthorized, type OpenedApp, type PortholeApi } from '@/api'
import { kindFromTitle } from '@/lib/apps'
import { pathOf, throughUrl } from '@/lib/urls'
import { errorText, useServersStore } from './servers'
import { makeAppTab, newTabId, useTabsStore, type AppTabRef } from './tabs'

export interface OpenHint {
  /** Discovery's title, shown until OpenApp answers. */
  title?: string
  kind?: string
  /** Open another tab even if one shows this app already. */
  newTab?: boolean
}

/**
 * Loading app tabs: asking the backend for a tab's endpoint (OpenApp) and putting the answer in
 * the tab; opening apps in tabs (a new one, the same one, a closed one again); the states of a tab
 * that could not load ('needs-connect', 'error') and what makes it try again.
 */
export const useTabLoadingStore = defineStore('tabLoading', () => {
  const servers = useServersStore()
  const tabs = useTabsStore()
  const api = shallowRef<PortholeApi | null>(null)
  const loading = new Map<string, Promise<void>>()

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
  }

  function stop(): void {
    api.value = null
  }

  function need(): PortholeApi {
    if (!api.value) throw new Error('Porthole is not connected to its backend yet')
    return api.value
  }

  /** Puts an OpenApp/ParseAppURL answer into a tab: the frame (re)loads it. */
  function applyOpened(t: AppTabRef, o: OpenedApp): void {
    const a = t.app
    a.localUrl = o.localUrl
    a.localOrigin = o.localOrigin
    a.remoteUrl = o.remoteUrl
    a.remoteHost = o.remoteHost || undefined
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
    const t = tabs.findApp(id)
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
    const p = (
      t.app.remoteHost
        ? a.openThrough(t.serverId, throughUrl(t.app.remoteHost, t.app.port, t.app.path))
        : a.openApp(t.serverId, t.app.port, t.app.path)
    )
      .then(
        (o) => {
          const cur = tabs.findApp(id)
          if (cur) applyOpened(cur, o)
        },
        (err: unknown) => {
          const cur = tabs.findApp(id)
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
      const existing = tabs.appTabs.find((t) => t.serverId === serverId && t.app.port === port && !t.app.remoteHost)
      if (existing) {
        tabs.activate(existing.id)
        if (existing.app.state === 'error' || existing.app.state === 'needs-connect') await load(existing.id)
        return tabs.findApp(existing.id) ?? existing
      }
    }
    const t = tabs.add(makeAppTab(newTabId(), serverId, hint.title || `Port ${port}`, { port, path: path || '/', kind: hint.kind ?? '' }))
    tabs.activate(t.id)
    await load(t.id)
    return tabs.findApp(t.id) ?? t
  }

  /**
   * Shows what ParseAppURL answered (the URL bar): in tab `intoTabId` when it shows the same app
   * (same server and port), otherwise in a new tab.
   */
  function showOpened(o: OpenedApp, intoTabId?: string): AppTabRef {
    const into = intoTabId ? tabs.findApp(intoTabId) : undefined
    if (into && into.serverId === o.serverId && into.app.port === o.port && (into.app.remoteHost ?? '') === (o.remoteHost ?? '')) {
      applyOpened(into, o)
      tabs.activate(into.id)
      return into
    }
    const t = tabs.add(
      makeAppTab(newTabId(), o.serverId, o.title || `Port ${o.port}`, { port: o.port, path: pathOf(o.remoteUrl), remoteHost: o.remoteHost }),
    )
    applyOpened(t, o)
    tabs.activate(t.id)
    return t
  }

  /** Ctrl+Shift+T: the last closed app tab, where it was, opened again. */
  async function reopenClosed(): Promise<AppTabRef | null> {
    const c = tabs.takeClosed()
    if (!c) return null
    const s = c.saved
    const t = makeAppTab(newTabId(), s.serverId, s.title, {
      port: s.port,
      path: s.path || '/',
      kind: c.kind,
      localUrl: s.localUrl,
      remoteUrl: s.remoteUrl,
      remoteHost: s.remoteHost || undefined,
    })
    tabs.add(t, c.index)
    tabs.activate(t.id)
    await load(t.id)
    return tabs.findApp(t.id) ?? null
  }

  /** Reload: the frame loads its page again; a tab that failed to open tries again. */
  function reload(id: string): void {
    const t = tabs.findApp(id)
    if (!t) return
    if (t.app.state !== 'ready' || !t.app.src) {
      void load(id)
      return
    }
    tabs.reloadFrame(id)
  }

  /**
   * A discarded app tab (its view ended to save memory; see the appViews store) is about to show.
   * If its server has gone away meanwhile, the tab shows the server's state ('needs-connect', or
   * 'error' for a server no longer in the list) instead of reloading a page that cannot load; it
   * loads again, at the same page, when the server is back (the watch below). An idle server
   * (its connection closed while unused) redials on demand, so its tab just reloads.
   */
  function wakeDiscarded(id: string): void {
    const t = tabs.findApp(id)
    if (!t || t.app.state !== 'ready' || t.serverId === LOCAL) return
    const s = servers.byId(t.serverId)
    if (s && (s.state === 'connected' || s.state === 'idle')) return
    failed(t, new Error(`${s?.name ?? 'The server'} is not connected. This tab was asleep to save memory; it opens again at the same page when the server is back.`))
  }

  /** The "Connect to …" of a tab whose server is not connected: connect, then load. */
  async function connectAndLoad(id: string): Promise<void> {
    const t = tabs.findApp(id)
    if (!t) return
    const msg = await servers.connect(t.serverId)
    const cur = tabs.findApp(id)
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
      for (const t of tabs.appTabs) if (t.app.state === 'needs-connect' && up.has(t.serverId)) void load(t.id)
    },
  )

  return { api, start, stop, load, openApp, showOpened, reopenClosed, reload, connectAndLoad, wakeDiscarded }
})
