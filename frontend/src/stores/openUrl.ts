import { defineStore } from 'pinia'
import { ref } from 'vue'
import { LOCAL, type OpenedApp, type PortholeApi, type ServerSummary } from '@/api'
import { parseUrlInput, serversForHost } from '@/lib/urls'
import { useAppsStore } from './apps'
import { errorText, useServersStore } from './servers'
import { useTabLoadingStore } from './tabLoading'
import { isAppTab, useTabsStore } from './tabs'

/** What the URL bar's panel asks or says after an address was entered. */
export type OpenUrlPanel =
  | { kind: 'pick'; url: string; candidates: string[] }
  /**
   * The address is on no server's localhost. `through`: the server it may be opened through (the
   * context server, for an http URL): that server resolves the name and dials it (OpenThrough).
   */
  | { kind: 'not-local'; url: string; host: string; serverId: string; through?: string }
  | { kind: 'error'; message: string; connect?: { serverId: string; retry: () => Promise<OpenedApp | null> } }

function safeHost(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/**
 * Opening an address typed or pasted into the URL bar (http://localhost:8888/lab?token=…, a port,
 * a host a server knows as its own): on the active tab's server unless the URL names another;
 * connecting that server first; trying each connected server for a host name; asking which
 * computer when it cannot tell. Each action answers what opened (null: nothing, and `panel` says why).
 */
export const useOpenUrlStore = defineStore('openUrl', () => {
  const tabs = useTabsStore()
  const loader = useTabLoadingStore()
  const servers = useServersStore()
  const apps = useAppsStore()
  const busy = ref(false)
  const panel = ref<OpenUrlPanel | null>(null)

  function api(): PortholeApi | null {
    return apps.api ?? loader.api
  }

  /** The server a pasted localhost URL belongs to, unless it names another: the active tab's. */
  function context(): string {
    return tabs.active.serverId ?? LOCAL
  }

  function show(o: OpenedApp): OpenedApp {
    const into = tabs.active
    loader.showOpened(o, isAppTab(into) ? into.id : undefined)
    return o
  }

  function connectedFirst(): ServerSummary[] {
    return [...servers.servers].sort((a, b) => Number(b.state === 'connected') - Number(a.state === 'connected'))
  }

  /**
   * Connects the server first when it is not connected: a URL typed for a server means "open it
   * there". False (and the reason, with "Connect" to try again) when connecting failed.
   */
  async function connected(serverId: string, retry: () => Promise<OpenedApp | null>): Promise<boolean> {
    if (serverId === LOCAL || servers.byId(serverId)?.state === 'connected') return true
    const msg = await servers.connect(serverId)
    if (!msg) return true
    busy.value = false
    panel.value = { kind: 'error', message: msg, connect: { serverId, retry } }
    return false
  }

  /**
   * Opens a URL on a server (ParseAppURL). `otherHost`: the URL names a host that is not
   * loopback; the context server may know it as its own name, and so may another connected
   * server; when none does, the URL is not server-local and the user chooses.
   */
  async function openOn(serverId: string, url: string, otherHost: boolean): Promise<OpenedApp | null> {
    const a = api()
    if (!a) return null
    busy.value = true
    panel.value = null
    if (!(await connected(serverId, () => openOn(serverId, url, otherHost)))) return null
    const tries = otherHost
      ? [serverId, ...servers.servers.filter((s) => s.id !== serverId && s.state === 'connected').map((s) => s.id)]
      : [serverId]
    try {
      let lastErr: unknown = null
      for (const id of tries) {
        try {
          return show(await a.parseAppURL(id, url))
        } catch (err) {
          lastErr = err
        }
      }
      const msg = errorText(lastErr)
      if (otherHost) {
        panel.value = { kind: 'not-local', url, host: safeHost(url), serverId }
        if (serverId !== LOCAL && /^http:\/\//i.test(url)) panel.value.through = serverId
      }
      else if (serverId !== LOCAL && servers.byId(serverId)?.state !== 'connected') {
        panel.value = { kind: 'error', message: msg, connect: { serverId, retry: () => openOn(serverId, url, false) } }
      } else panel.value = { kind: 'error', message: msg }
      return null
    } finally {
      busy.value = false
    }
  }

  async function openPort(serverId: string, port: number, path: string): Promise<OpenedApp | null> {
    const a = api()
    if (!a) return null
    busy.value = true
    panel.value = null
    if (!(await connected(serverId, () => openPort(serverId, port, path)))) return null
    try {
      return show(await a.openApp(serverId, port, path))
    } catch (err) {
      const msg = errorText(err)
      panel.value =
        serverId !== LOCAL && servers.byId(serverId)?.state !== 'connected'
          ? { kind: 'error', message: msg, connect: { serverId, retry: () => openPort(serverId, port, path) } }
          : { kind: 'error', message: msg }
      return null
    } finally {
      busy.value = false
    }
  }

  /** What the user entered: opens it, or asks (panel 'pick'), or says why not. */
  async function submit(text: string): Promise<OpenedApp | null> {
    const parsed = parseUrlInput(text)
    const ctx = context()
    switch (parsed.kind) {
      case 'empty':
        return null
      case 'invalid':
        panel.value = { kind: 'error', message: parsed.reason }
        return null
      case 'port':
        return openPort(ctx, parsed.port, parsed.path)
      case 'url': {
        const named = serversForHost(parsed.host, servers.servers)
        if (named.length === 1) return openOn(named[0]!.id, parsed.url, false)
        if (named.length > 1) {
          panel.value = { kind: 'pick', url: parsed.url, candidates: named.map((s) => s.id) }
          return null
        }
        if (parsed.loopback) {
          if (ctx !== LOCAL || servers.servers.length === 0) return openOn(ctx, parsed.url, false)
          panel.value = { kind: 'pick', url: parsed.url, candidates: [LOCAL, ...connectedFirst().map((s) => s.id)] }
          return null
        }
        // Another host name: the server may know it as its own (its hostname); if not, ask.
        return openOn(ctx, parsed.url, true)
      }
    }
  }

  /**
   * A URL from a launch (`porthole http://localhost:8888/lab?token=…`): on the server the launch
   * named (--server), else the URL bar's flow asks which computer (panel 'pick').
   */
  async function openLaunched(url: string, serverId?: string): Promise<OpenedApp | null> {
    const parsed = parseUrlInput(url)
    if (parsed.kind !== 'url') {
      panel.value = { kind: 'error', message: 'Porthole was asked to open an address it cannot use.' }
      return null
    }
    if (serverId) return openOn(serverId, parsed.url, !parsed.loopback)
    const named = serversForHost(parsed.host, servers.servers)
    if (named.length === 1) return openOn(named[0]!.id, parsed.url, false)
    panel.value = { kind: 'pick', url: parsed.url, candidates: [LOCAL, ...connectedFirst().map((s) => s.id)] }
    return null
  }

  /** The computer chosen in the 'pick' panel. */
  async function pick(serverId: string): Promise<OpenedApp | null> {
    const p = panel.value
    if (p?.kind !== 'pick') return null
    return openOn(serverId, p.url, false)
  }

  /**
   * "Open through <server>" for an address on no server's localhost (http://grafana.internal:3000/):
   * the server resolves the name and dials it; the tab gets a stable endpoint of its own.
   */
  async function openThrough(serverId: string, url: string): Promise<OpenedApp | null> {
    const a = api()
    if (!a) return null
    busy.value = true
    panel.value = null
    if (!(await connected(serverId, () => openThrough(serverId, url)))) return null
    try {
      return show(await a.openThrough(serverId, url))
    } catch (err) {
      panel.value = { kind: 'error', message: errorText(err) }
      return null
    } finally {
      busy.value = false
    }
  }

  /** "Open through …" in the not-local panel. */
  async function openThroughOffered(): Promise<OpenedApp | null> {
    const p = panel.value
    if (p?.kind !== 'not-local' || !p.through) return null
    return openThrough(p.through, p.url)
  }

  /** "Connect to …" in the error panel: connect, then try again what failed. */
  async function connectThenRetry(): Promise<OpenedApp | null> {
    const p = panel.value
    if (p?.kind !== 'error' || !p.connect) return null
    const c = p.connect
    busy.value = true
    if (await connected(c.serverId, c.retry)) return c.retry()
    return null
  }

  /** Opens a URL in the system browser (an address no server has, or the active app's local URL). */
  async function openExternal(url: string): Promise<void> {
    try {
      await api()?.openExternal(url)
    } catch (err) {
      panel.value = { kind: 'error', message: errorText(err) }
    }
  }

  /** "Open it in your browser" for an address that is on no server's localhost. */
  async function openAsIs(url: string): Promise<void> {
    panel.value = null
    await openExternal(url)
  }

  function dismiss(): void {
    panel.value = null
  }

  return { busy, panel, submit, openLaunched, pick, connectThenRetry, openThrough, openThroughOffered, openAsIs, openExternal, dismiss }
})
