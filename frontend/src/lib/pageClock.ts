import { ref, type Ref } from 'vue'

/** What a store's pages may replace in tests. */
export interface PageClockEnv {
  /** The clock. */
  now?: () => number
  /** Milliseconds between ticks while a page tracks a server. */
  tickMs?: number
}

/**
 * The shared part of a store whose server pages show live numbers (the rules' sparklines, a
 * server's dashboard): which servers pages track (counted, so two pages of one server work), a
 * clock `now` that ticks while any page tracks one, and a load when a page starts tracking.
 */
export interface PageClock {
  now: Ref<number>
  configure(env: PageClockEnv): void
  /** Sets `now` to the clock's time (after new data arrived). */
  tick(): void
  /** Counts a page of serverId, loads it, and ticks; the returned function ends it (once). */
  track(serverId: string): () => void
  tracked(): string[]
  /** Forgets every page and stops ticking. */
  reset(): void
}

export function pageClock(load: (serverId: string) => void): PageClock {
  const now = ref(Date.now())
  let clock: () => number = () => Date.now()
  let tickMs = 1000
  let timer: ReturnType<typeof setInterval> | null = null
  const tracking = new Map<string, number>()

  function stopTimer(): void {
    if (timer) clearInterval(timer)
    timer = null
  }

  return {
    now,
    configure(env) {
      if (env.now) clock = env.now
      if (env.tickMs) tickMs = env.tickMs
    },
    tick() {
      now.value = clock()
    },
    track(serverId) {
      tracking.set(serverId, (tracking.get(serverId) ?? 0) + 1)
      load(serverId)
      if (!timer) timer = setInterval(() => (now.value = clock()), tickMs)
      let done = false
      return () => {
        if (done) return
        done = true
        const n = (tracking.get(serverId) ?? 1) - 1
        if (n <= 0) tracking.delete(serverId)
        else tracking.set(serverId, n)
        if (tracking.size === 0) stopTimer()
      }
    },
    tracked: () => [...tracking.keys()],
    reset() {
      stopTimer()
      tracking.clear()
    },
  }
}
