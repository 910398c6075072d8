import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { isUnauthorized, on, type PortholeApi, type ServerStats } from '@/api'
import { MAX_SAMPLES, rateSeries, type Sample } from '@/lib/rules'
import { pageClock } from '@/lib/pageClock'
import { errorText } from './servers'

/** What the store needs of its page (replaceable in tests). */
export interface ServerStatsEnv {
  /** The clock; the sparkline and the uptime move on with it. */
  now?: () => number
  /** Milliseconds between ticks while a dashboard is on screen. */
  tickMs?: number
}

/**
 * Each server's dashboard: the latest ServerStats (`server.stats` events, batched by the agent to
 * about one a second, plus ServerStats when a page opens) and its traffic readings for the bytes/s
 * sparkline.
 */
export const useServerStatsStore = defineStore('serverStats', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const byServer = ref<Record<string, ServerStats>>({})
  const errors = ref<Record<string, string>>({})
  /** Readings by server id (not reactive: `now` drives the sparklines). */
  const history = new Map<string, Sample[]>()
  const pages = pageClock((id) => void load(id))
  const now = pages.now
  const cleanups: Array<() => void> = []

  function apply(s: ServerStats): void {
    let h = history.get(s.id)
    if (!h) {
      h = []
      history.set(s.id, h)
    }
    const at = Date.parse(s.time)
    const last = h[h.length - 1]
    if (Number.isFinite(at) && (!last || at > last.at)) {
      h.push({ at, bytes: s.bytesIn + s.bytesOut })
      if (h.length > MAX_SAMPLES) h.splice(0, h.length - MAX_SAMPLES)
    }
    byServer.value = { ...byServer.value, [s.id]: s }
    pages.tick()
  }

  function start(a: PortholeApi, env: ServerStatsEnv = {}): void {
    api.value = markRaw(a)
    pages.configure(env)
    cleanups.push(on(a, 'server.stats', apply))
    for (const id of pages.tracked()) void load(id)
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    pages.reset()
    api.value = null
  }

  /** Reads a server's dashboard now. Never throws: the error is kept for the page. */
  async function load(serverId: string): Promise<void> {
    const a = api.value
    if (!a) return
    try {
      apply(await a.serverStats(serverId))
      const { [serverId]: _, ...rest } = errors.value
      errors.value = rest
    } catch (err) {
      if (isUnauthorized(err)) return
      errors.value = { ...errors.value, [serverId]: errorText(err) }
    }
  }

  /** Keeps a server's dashboard current and its clock moving while a page shows it. */
  function track(serverId: string): () => void {
    return pages.track(serverId)
  }

  function of(serverId: string): ServerStats | null {
    return byServer.value[serverId] ?? null
  }

  /** Bytes per second through a server's forwards over the last 30 s, one value a second. */
  function rates(serverId: string): number[] {
    return rateSeries(history.get(serverId) ?? [], now.value)
  }

  return { api, byServer, errors, now, of, start, stop, load, track, rates }
})
