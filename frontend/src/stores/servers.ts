import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef } from 'vue'
import {
  isUnauthorized,
  onEvents,
  type ImportList,
  type ImportResult,
  type KeyringStatus,
  type PortholeApi,
  type Profile,
  type ServerError,
  type ServerList,
  type ServerProgress,
  type ServerSummary,
  type ValidationResult,
} from '@/api'

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A connection the backend refused because the host key changed (shown in a red dialog). */
export interface HostKeyRefusal {
  serverId: string
  serverName: string
  error: ServerError
}

/** Prewarm asks the backend at most this often per server (hovering sends many events). */
export const PREWARM_THROTTLE_MS = 5000

/** The saved servers, their connection state, and the actions on them. */
export const useServersStore = defineStore('servers', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const servers = ref<ServerSummary[]>([])
  const loaded = ref(false)
  /** ListServers failed. */
  const error = ref<string | null>(null)
  /** profiles.json could not be read: the list is empty and read-only until it is fixed. */
  const loadError = ref<string | null>(null)
  const readOnly = ref(false)
  const path = ref('')
  /** What the sidebar has selected: 'local' is This computer, otherwise a server id. */
  const selected = ref<string>('local')
  const keyring = ref<KeyringStatus | null>(null)
  /** Calls in flight per server id. */
  const pending = ref<Record<string, 'connect' | 'disconnect' | undefined>>({})
  /** The last failed call per server id (Connect's message, or a failed delete…). */
  const failures = ref<Record<string, string | undefined>>({})
  const hostKeyRefusal = ref<HostKeyRefusal | null>(null)

  const cleanups: Array<() => void> = []

  const selectedServer = computed(() => servers.value.find((s) => s.id === selected.value) ?? null)

  function byId(id: string): ServerSummary | undefined {
    return servers.value.find((s) => s.id === id)
  }

  function applyList(l: ServerList): void {
    servers.value = l.servers
    loadError.value = l.loadError ?? null
    readOnly.value = l.readOnly
    path.value = l.path
    loaded.value = true
  }

  function applyProgress(p: ServerProgress): void {
    const s = byId(p.id)
    if (!s) return
    // The `servers` event that follows carries the same step; adding it now keeps the UI live.
    // A step already listed (a replay from a snapshot) changes nothing.
    if (s.progress?.some((x) => x.step === p.step && x.elapsedMs === p.elapsedMs)) return
    const steps = p.step === 'resolving' ? [] : [...(s.progress ?? [])]
    steps.push({ step: p.step, elapsedMs: p.elapsedMs, detail: p.detail })
    s.progress = steps
  }

  /** Subscribes to the server events and reads the list and the keyring state. */
  async function start(a: PortholeApi): Promise<void> {
    api.value = markRaw(a)
    cleanups.push(
      onEvents(a, {
        servers: applyList,
        'server.progress': applyProgress,
        keyring: (k) => (keyring.value = k),
      }),
    )
    await Promise.all([
      load(a),
      a.keyringStatus().then(
        (k) => (keyring.value = k),
        (err) => console.warn('porthole: KeyringStatus failed', err),
      ),
    ])
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    api.value = null
    prewarmedAt.clear()
  }

  async function load(a: PortholeApi): Promise<void> {
    if (!api.value) api.value = markRaw(a)
    try {
      const list = await a.listServers()
      // The `servers` event may have been faster and fresher; it wins.
      if (!loaded.value) servers.value = list
      error.value = null
    } catch (err) {
      if (!isUnauthorized(err)) error.value = errorText(err)
    } finally {
      loaded.value = true
    }
  }

  function need(): PortholeApi {
    if (!api.value) throw new Error('Porthole is not connected to its backend yet')
    return api.value
  }

  function select(id: string): void {
    selected.value = id
  }

  async function refresh(): Promise<void> {
    const list = await need().listServers()
    servers.value = list
  }

  async function reload(): Promise<void> {
    applyList(await need().reloadServers())
  }

  function validate(p: Profile): Promise<ValidationResult> {
    return need().validateServer(p)
  }

  async function add(p: Profile): Promise<Profile> {
    const saved = await need().addServer(p)
    await refreshQuietly()
    return saved
  }

  async function update(p: Profile): Promise<Profile> {
    const saved = await need().updateServer(p)
    await refreshQuietly()
    return saved
  }

  async function remove(id: string): Promise<void> {
    await need().deleteServer(id)
    if (selected.value === id) selected.value = 'local'
    servers.value = servers.value.filter((s) => s.id !== id)
  }

  async function duplicate(id: string): Promise<Profile> {
    const dup = await need().duplicateServer(id)
    await refreshQuietly()
    return dup
  }

  function getProfile(id: string): Promise<Profile> {
    return need().getServer(id)
  }

  function importCandidates(): Promise<ImportList> {
    return need().importCandidates()
  }

  async function importServers(aliases: string[], link: boolean): Promise<ImportResult> {
    const res = await need().importServers(aliases, link)
    await refreshQuietly()
    return res
  }

  async function refreshQuietly(): Promise<void> {
    try {
      await refresh()
    } catch (err) {
      console.warn('porthole: ListServers failed', err)
    }
  }

  /**
   * Connects and resolves to an error message (null on success). Questions (host key, password)
   * arrive through the prompts store meanwhile. A changed host key opens the red refusal dialog.
   */
  async function connect(id: string): Promise<string | null> {
    const a = need()
    pending.value = { ...pending.value, [id]: 'connect' }
    failures.value = { ...failures.value, [id]: undefined }
    const s = byId(id)
    if (s && s.state !== 'connected') {
      s.state = 'connecting'
      s.lastError = undefined
    }
    try {
      const sum = await a.connect(id)
      replace(sum)
      return null
    } catch (err) {
      const msg = errorText(err)
      failures.value = { ...failures.value, [id]: msg }
      // The summary carries the details (kind, fingerprints); read it now rather than wait for the event.
      await refreshQuietly()
      const fresh = byId(id)
      if (fresh?.lastError?.kind === 'host-key-changed') {
        hostKeyRefusal.value = { serverId: id, serverName: fresh.name, error: fresh.lastError }
      }
      return msg
    } finally {
      pending.value = { ...pending.value, [id]: undefined }
    }
  }

  async function disconnect(id: string): Promise<void> {
    pending.value = { ...pending.value, [id]: 'disconnect' }
    try {
      replace(await need().disconnect(id))
    } finally {
      pending.value = { ...pending.value, [id]: undefined }
    }
  }

  /** When prewarm last asked the backend, per server id (Date.now()). */
  const prewarmedAt = new Map<string, number>()

  /**
   * The user is about to use server id (its page opened, an Open button hovered, a saved tab
   * restored): the backend dials its SSH connection in the background if it closed while unused.
   * Only for a server the user connected (connected or idle); at most once per PREWARM_THROTTLE_MS
   * per server; never asks anything and never throws.
   */
  function prewarm(id: string): void {
    const a = api.value
    const state = byId(id)?.state
    if (!a || (state !== 'connected' && state !== 'idle')) return
    const now = Date.now()
    const last = prewarmedAt.get(id)
    if (last !== undefined && now - last < PREWARM_THROTTLE_MS) return
    prewarmedAt.set(id, now)
    a.prewarm(id).catch((err: unknown) => console.debug('porthole: Prewarm failed', err))
  }

  function replace(sum: ServerSummary): void {
    const i = servers.value.findIndex((s) => s.id === sum.id)
    if (i >= 0 && sum.id) servers.value.splice(i, 1, sum)
  }

  async function checkKeyring(): Promise<KeyringStatus> {
    const k = await need().keyringStatus()
    keyring.value = k
    return k
  }

  function dismissRefusal(): void {
    hostKeyRefusal.value = null
  }

  return {
    api,
    servers,
    loaded,
    error,
    loadError,
    readOnly,
    path,
    selected,
    selectedServer,
    keyring,
    pending,
    failures,
    hostKeyRefusal,
    byId,
    prewarm,
    start,
    stop,
    load,
    select,
    refresh,
    reload,
    validate,
    add,
    update,
    remove,
    duplicate,
    getProfile,
    importCandidates,
    importServers,
    connect,
    disconnect,
    checkKeyring,
    dismissRefusal,
  }
})
