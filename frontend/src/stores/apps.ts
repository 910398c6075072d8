import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { isUnauthorized, on, type AppList, type PortholeApi, type RawForward, type SocketForward } from '@/api'
import { errorText } from './servers'

/** What the Start page of one server shows. */
export interface ServerApps {
  list: AppList | null
  /** A ListApps call is in flight. */
  scanning: boolean
  /** The last ListApps failed (in plain words); `list` keeps the last good answer. */
  error: string | null
}

/** What the store needs of the page it runs in (replaceable in tests). */
export interface AppsEnv {
  doc?: Pick<Document, 'visibilityState' | 'addEventListener' | 'removeEventListener'>
  /** Milliseconds between scans while a Start page is on screen. */
  intervalMs?: number
}

export const SCAN_INTERVAL_MS = 5000

function forwardKey(serverId: string, port: number): string {
  return `${serverId}:${port}`
}

interface Watch {
  count: number
  timer: ReturnType<typeof setTimeout> | null
}

/**
 * What listens on each server, refreshed every few seconds while its Start page is on screen
 * (the page tracks its server while mounted and enabled) and the window is visible.
 */
export const useAppsStore = defineStore('apps', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const byServer = ref<Record<string, ServerApps>>({})
  /** Raw forwards made from the Start page, by "server:port". */
  const forwards = ref<Record<string, RawForward>>({})

  let doc: AppsEnv['doc'] = typeof document === 'undefined' ? undefined : document
  let intervalMs = SCAN_INTERVAL_MS
  const watches = new Map<string, Watch>()
  const inflight = new Map<string, Promise<void>>()
  const cleanups: Array<() => void> = []

  function visible(): boolean {
    return !doc || doc.visibilityState !== 'hidden'
  }

  function entry(serverId: string): ServerApps {
    let e = byServer.value[serverId]
    if (!e) {
      e = { list: null, scanning: false, error: null }
      byServer.value = { ...byServer.value, [serverId]: e }
      e = byServer.value[serverId]!
    }
    return e
  }

  function of(serverId: string): ServerApps {
    return byServer.value[serverId] ?? { list: null, scanning: false, error: null }
  }

  function applyList(l: AppList): void {
    const s = entry(l.serverId)
    s.list = l
    s.error = l.error ?? null
  }

  function onVisibility(): void {
    if (!visible()) return
    // Back on screen: scan now, then keep the rhythm.
    for (const id of watches.keys()) {
      void refresh(id)
      schedule(id)
    }
  }

  function start(a: PortholeApi, env: AppsEnv = {}): void {
    api.value = markRaw(a)
    if (env.doc) doc = env.doc
    if (env.intervalMs) intervalMs = env.intervalMs
    cleanups.push(on(a, 'apps', applyList))
    if (doc) {
      const d = doc
      d.addEventListener('visibilitychange', onVisibility)
      cleanups.push(() => d.removeEventListener('visibilitychange', onVisibility))
    }
    // Pages mount before the app starts the stores: scan what they asked for.
    if (visible()) for (const id of watches.keys()) void refresh(id)
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    for (const w of watches.values()) if (w.timer) clearTimeout(w.timer)
    watches.clear()
    api.value = null
  }

  /** Scans now (joins a scan in flight). Never throws: the error is kept for the page. */
  function refresh(serverId: string): Promise<void> {
    const running = inflight.get(serverId)
    if (running) return running
    const a = api.value
    if (!a) return Promise.resolve()
    const s = entry(serverId)
    s.scanning = true
    const p = a
      .listApps(serverId)
      .then(
        (list) => {
          s.list = list
          s.error = list.error ?? null
        },
        (err: unknown) => {
          if (isUnauthorized(err)) return
          s.error = errorText(err)
        },
      )
      .finally(() => {
        s.scanning = false
        inflight.delete(serverId)
      })
    inflight.set(serverId, p)
    return p
  }

  function schedule(serverId: string): void {
    const w = watches.get(serverId)
    if (!w || w.timer || !visible()) return
    w.timer = setTimeout(async () => {
      w.timer = null
      if (watches.get(serverId) !== w || !visible()) return
      await refresh(serverId)
      schedule(serverId)
    }, intervalMs)
  }

  /**
   * Keeps a server's list fresh while the caller (a Start page on screen) wants it: one scan
   * now, then one every few seconds while the window is visible. Returns the way to stop.
   */
  function track(serverId: string): () => void {
    let w = watches.get(serverId)
    if (!w) {
      w = { count: 0, timer: null }
      watches.set(serverId, w)
    }
    w.count++
    if (w.count === 1 && visible()) void refresh(serverId)
    schedule(serverId)
    let done = false
    return () => {
      if (done) return
      done = true
      const cur = watches.get(serverId)
      if (!cur) return
      cur.count--
      if (cur.count <= 0) {
        if (cur.timer) clearTimeout(cur.timer)
        watches.delete(serverId)
      }
    }
  }

  function tracked(): string[] {
    return [...watches.keys()]
  }

  /** A raw forward for a port that is not a web app; remembered for the page. */
  async function forward(serverId: string, port: number): Promise<RawForward> {
    const a = api.value
    if (!a) throw new Error('Porthole is not connected to its backend yet')
    const f = await a.forwardPort(serverId, port)
    forwards.value = { ...forwards.value, [forwardKey(serverId, port)]: f }
    return f
  }

  /** A forward of a server's Unix socket to a local TCP endpoint. */
  async function forwardSocket(serverId: string, path: string): Promise<SocketForward> {
    const a = api.value
    if (!a) throw new Error('Porthole is not connected to its backend yet')
    return a.forwardSocket(serverId, path)
  }

  /** Discovery's kind of a server port, if a scan has seen it. */
  function kindOf(serverId: string, port: number): string {
    return byServer.value[serverId]?.list?.services?.find((x) => x.port === port)?.kind ?? ''
  }

  function forwardOf(serverId: string, port: number): RawForward | undefined {
    return forwards.value[forwardKey(serverId, port)]
  }

  return { api, byServer, forwards, of, start, stop, refresh, track, tracked, forward, forwardSocket, forwardOf, kindOf }
})
