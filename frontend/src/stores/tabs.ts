import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { SavedTab } from '@/api'
import { withoutToken } from '@/lib/urls'
import { useTabHistoryStore } from './tabHistory'

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
  /** The host the server dials for an app opened through it ("grafana.internal"); unset: its localhost. */
  remoteHost?: string
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

export function serverTabId(serverId: string): string {
  return `server-${serverId}`
}

let counter = 0
export function newTabId(): string {
  counter++
  return `app-${Date.now().toString(36)}-${counter.toString(36)}`
}

let seq = 0
/** A new app tab, not yet in the strip, waiting for its endpoint ('opening'). */
export function makeAppTab(id: string, serverId: string, title: string, app: Partial<AppTab> & { port: number }): AppTabRef {
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

/** An app tab as it is kept across restarts (and in the closed list): never a token. */
export function toSaved(t: AppTabRef): SavedTab {
  return {
    id: t.id,
    serverId: t.serverId,
    port: t.app.port,
    path: withoutToken(t.app.path),
    title: t.title,
    localUrl: withoutToken(t.app.localUrl),
    remoteUrl: withoutToken(t.app.remoteUrl),
    ...(t.app.remoteHost ? { remoteHost: t.app.remoteHost } : {}),
  }
}

export interface ClosedTab {
  saved: SavedTab
  kind: string
  index: number
}

/**
 * The tab strip: Start (always first, not closable), server pages, and app tabs; which one is
 * active; the closed app tabs. Loading a tab's app is in tabLoading.ts, saving and restoring in
 * tabRestore.ts, Back/Forward in tabHistory.ts, the Linux window's app views in appViews.ts.
 */
export const useTabsStore = defineStore('tabs', () => {
  const history = useTabHistoryStore()
  const tabs = ref<Tab[]>([START])
  const activeId = ref(START.id)
  const active = computed(() => tabs.value.find((t) => t.id === activeId.value) ?? START)
  const closed = ref<ClosedTab[]>([])
  /** Bumped to ask the URL bar to take the focus. */
  const urlFocus = ref(0)

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

  /** Puts an app tab into the strip (at the end, or at `index`, never before Start); returns it as the store holds it. */
  function add(t: AppTabRef, index?: number): AppTabRef {
    if (index === undefined) tabs.value.push(t)
    else tabs.value.splice(Math.min(Math.max(index, 1), tabs.value.length), 0, t)
    return findApp(t.id)!
  }

  function close(id: string): void {
    const i = tabs.value.findIndex((t) => t.id === id)
    const tab = tabs.value[i]
    if (!tab || !tab.closable) return
    if (isAppTab(tab)) {
      closed.value.push({ saved: toSaved(tab), kind: tab.app.kind, index: i })
      if (closed.value.length > CLOSED_MAX) closed.value.splice(0, closed.value.length - CLOSED_MAX)
      history.forget(id)
    }
    tabs.value.splice(i, 1)
    if (activeId.value === id) activeId.value = (tabs.value[i - 1] ?? START).id
  }

  /** The last closed app tab, taken off the closed list. */
  function takeClosed(): ClosedTab | undefined {
    return closed.value.pop()
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

  // ---- What an app tab's frame does ----

  /** The frame loads its page again (a ready tab; see tabLoading's reload for the others). */
  function reloadFrame(id: string): void {
    const t = findApp(id)
    if (!t) return
    history.replacing(id)
    t.app.loading = true
    t.app.reloads++
  }

  /** The frame refused an in-place reload: re-create it (its history entries go with it). */
  function recreateFrame(id: string): void {
    const t = findApp(id)
    if (!t) return
    history.forget(id)
    t.app.loading = true
    t.app.frameKey++
  }

  function frameLoaded(id: string, docTitle?: string | null): void {
    const t = findApp(id)
    if (!t) return
    t.app.loading = false
    if (docTitle && docTitle.trim()) t.title = docTitle.trim()
    history.loaded(id)
  }

  function dismissNotice(id: string): void {
    const t = findApp(id)
    if (t) t.app.notice = undefined
  }

  return {
    tabs,
    activeId,
    active,
    appTabs,
    closed,
    urlFocus,
    find,
    findApp,
    activate,
    add,
    close,
    takeClosed,
    openServer,
    syncServers,
    next,
    newTab,
    requestUrlFocus,
    reloadFrame,
    recreateFrame,
    frameLoaded,
    dismissNotice,
  }
})
