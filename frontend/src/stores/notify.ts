import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { on, type Notification, type NotifyKind, type OpenRequest, type PortholeApi } from '@/api'
import { errorText } from './servers'

/** How long a toast stays on screen. */
export const TOAST_MS = 10_000
/** Events older than this when they arrive (the snapshot keeps the latest) are not acted on. */
export const STALE_MS = 15_000
/** At most this many toasts at once; the oldest goes first. */
export const MAX_TOASTS = 4

/** What the store does for a click (wired by App.vue, replaceable in tests). */
export interface NotifyEnv {
  /** Opens an app of a server in a tab. */
  openApp?: (serverId: string, port: number, path: string, title: string) => unknown
  /** Shows a server's page. */
  showServer?: (serverId: string) => void
  now?: () => number
}

/**
 * Notifications in the window: the backend's `notify.toast` (a notification the desktop could
 * not show) as toasts, and `notify.open` (a click on a desktop notification, or a port set to
 * open in a tab) as an opened tab.
 */
export const useNotifyStore = defineStore('notify', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const toasts = ref<Notification[]>([])
  /** The last failed settings change. */
  const error = ref<string | null>(null)
  let env: NotifyEnv = {}
  const handled = new Set<string>()
  const timers = new Map<number, ReturnType<typeof setTimeout>>()
  const cleanups: Array<() => void> = []

  function now(): number {
    return env.now ? env.now() : Date.now()
  }

  /** True for an event seen for the first time and recent enough to act on. */
  function fresh(key: string, time: string): boolean {
    if (handled.has(key)) return false
    handled.add(key)
    const t = Date.parse(time)
    return Number.isFinite(t) && now() - t < STALE_MS
  }

  function show(n: Notification): void {
    if (!fresh(`toast:${n.id}`, n.time)) return
    toasts.value = [...toasts.value, n].slice(-MAX_TOASTS)
    timers.set(
      n.id,
      setTimeout(() => dismiss(n.id), TOAST_MS),
    )
  }

  function open(o: OpenRequest): void {
    if (!fresh(`open:${o.id}`, o.time)) return
    if (o.port) void env.openApp?.(o.serverId, o.port, o.path || '/', `Port ${o.port}`)
    else env.showServer?.(o.serverId)
  }

  function dismiss(id: number): void {
    const t = timers.get(id)
    if (t) clearTimeout(t)
    timers.delete(id)
    toasts.value = toasts.value.filter((n) => n.id !== id)
  }

  /** The toast's button: opens the app, or shows the server. */
  function act(n: Notification): void {
    dismiss(n.id)
    if (n.kind === 'new-app' && n.port) {
      const title = n.body.replace(/ appeared on .*$/, '') || `Port ${n.port}`
      void env.openApp?.(n.serverId, n.port, n.path || '/', title)
    } else env.showServer?.(n.serverId)
  }

  function start(a: PortholeApi, e: NotifyEnv = {}): void {
    api.value = markRaw(a)
    env = e
    cleanups.push(on(a, 'notify.toast', show), on(a, 'notify.open', open))
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    for (const t of timers.values()) clearTimeout(t)
    timers.clear()
    api.value = null
  }

  /** Switches a kind of notification on or off; the `settings` event brings the result. */
  async function setKind(kind: NotifyKind, enabled: boolean): Promise<void> {
    const a = api.value
    if (!a) return
    error.value = null
    try {
      await a.setNotification(kind, enabled)
    } catch (err) {
      error.value = errorText(err)
    }
  }

  return { toasts, error, start, stop, dismiss, act, setKind }
})
