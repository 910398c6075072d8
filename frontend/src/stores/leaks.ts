import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef } from 'vue'
import type { AdoptedTunnel, EndedTunnel, PortholeApi, Tunnel } from '@/api'
import { errorText } from './servers'

/**
 * Leaked tunnels: this user's ssh/autossh processes that hold forwards (ListLeakedTunnels),
 * and the two things the UI does with one: end it (EndTunnelProcess) or adopt it
 * (AdoptTunnelProcess). The list is read when asked (refresh), and again after each action.
 */
export const useLeaksStore = defineStore('leaks', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const tunnels = ref<Tunnel[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  /** Why the list could not be read. */
  const error = ref<string | null>(null)
  /** The PID an action is running on. */
  const busyPid = ref<number | null>(null)
  /** Why the last End/Adopt failed (shown in its dialog). */
  const actionError = ref<string | null>(null)
  /** What the last action did, in one sentence. */
  const notice = ref<string | null>(null)

  const leaked = computed(() => tunnels.value.filter((t) => t.leaked))

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
  }

  function stop(): void {
    api.value = null
  }

  async function refresh(): Promise<void> {
    if (!api.value) return
    loading.value = true
    try {
      const l = await api.value.listLeakedTunnels()
      tunnels.value = l.tunnels
      error.value = null
      loaded.value = true
    } catch (err) {
      error.value = errorText(err)
    } finally {
      loading.value = false
    }
  }

  /** Runs an action on pid; false (and actionError) when it failed. The list is read again either way. */
  async function act<T>(pid: number, f: (a: PortholeApi) => Promise<T>, done: (r: T) => string): Promise<boolean> {
    if (!api.value || busyPid.value !== null) return false
    busyPid.value = pid
    actionError.value = null
    notice.value = null
    try {
      notice.value = done(await f(api.value))
      return true
    } catch (err) {
      actionError.value = errorText(err)
      return false
    } finally {
      busyPid.value = null
      await refresh()
    }
  }

  function end(pid: number): Promise<boolean> {
    return act<EndedTunnel>(
      pid,
      (a) => a.endTunnelProcess(pid),
      (r) => `Ended PID ${r.pid}${r.signal === 'SIGKILL' ? ' (it ignored SIGTERM, so it was killed)' : ''}.`,
    )
  }

  function adopt(pid: number): Promise<boolean> {
    return act<AdoptedTunnel>(
      pid,
      (a) => a.adoptTunnelProcess(pid),
      (r) => {
        const where = r.forwards.map((f) => f.addr).filter(Boolean).join(', ')
        return `Porthole now runs the tunnel on ${where || 'its ports'} through ${r.serverName}${r.createdServer ? ' (a new server)' : ''}; PID ${r.pid} was ended.`
      },
    )
  }

  function clearActionError(): void {
    actionError.value = null
  }

  return { tunnels, leaked, loaded, loading, error, busyPid, actionError, notice, start, stop, refresh, end, adopt, clearActionError }
})
