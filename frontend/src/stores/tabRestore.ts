import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef, watch } from 'vue'
import type { PortholeApi, SavedTab } from '@/api'
import { kindFromTitle } from '@/lib/apps'
import { useServersStore } from './servers'
import { useTabLoadingStore } from './tabLoading'
import { makeAppTab, newTabId, toSaved, useTabsStore } from './tabs'

export const SAVE_DELAY_MS = 400

export interface TabRestoreEnv {
  saveDelayMs?: number
}

function validSaved(s: SavedTab): boolean {
  return typeof s?.serverId === 'string' && s.serverId !== '' && Number.isInteger(s.port) && s.port > 0 && s.port < 65536
}

/**
 * The app tabs across restarts: saved (SaveTabs) 400 ms after the last change and when the page
 * hides, never before the saved ones were read; read at start (GetTabs) and opened again, their
 * servers connected once each.
 */
export const useTabRestoreStore = defineStore('tabRestore', () => {
  const servers = useServersStore()
  const tabs = useTabsStore()
  const loader = useTabLoadingStore()
  const api = shallowRef<PortholeApi | null>(null)
  /** GetTabs has answered (or failed): saving may start without losing the saved tabs. */
  const restored = ref(false)
  let saveDelayMs = SAVE_DELAY_MS
  let saveTimer: ReturnType<typeof setTimeout> | null = null
  let lastSaved = ''

  const savedList = computed(() => tabs.appTabs.map(toSaved))

  async function flush(): Promise<void> {
    if (saveTimer) {
      clearTimeout(saveTimer)
      saveTimer = null
    }
    const a = api.value
    if (!a || !restored.value) return
    const list = savedList.value
    const text = JSON.stringify(list)
    if (text === lastSaved) return
    lastSaved = text
    try {
      await a.saveTabs(list)
    } catch (err) {
      lastSaved = ''
      console.warn('porthole: SaveTabs failed', err)
    }
  }

  function scheduleSave(): void {
    if (!restored.value || JSON.stringify(savedList.value) === lastSaved) return
    if (saveTimer) clearTimeout(saveTimer)
    saveTimer = setTimeout(() => void flush(), saveDelayMs)
  }

  watch(savedList, scheduleSave, { deep: true })

  /** Reads the saved tabs and opens each again (each makes its endpoint again; same address as before). */
  async function restore(): Promise<void> {
    const a = api.value
    if (!a) throw new Error('Porthole is not connected to its backend yet')
    let saved: SavedTab[] = []
    try {
      saved = await a.getTabs()
    } catch (err) {
      console.warn('porthole: GetTabs failed; starting without the saved tabs', err)
    }
    const added: string[] = []
    for (const s of saved) {
      if (!validSaved(s) || tabs.find(s.id)) continue
      const t = makeAppTab(s.id || newTabId(), s.serverId, s.title || `Port ${s.port}`, {
        port: s.port,
        path: s.path || '/',
        kind: kindFromTitle(s.title ?? ''),
        localUrl: s.localUrl,
        remoteUrl: s.remoteUrl,
        remoteHost: typeof s.remoteHost === 'string' && s.remoteHost ? s.remoteHost : undefined,
      })
      tabs.add(t)
      added.push(t.id)
    }
    // What the file holds now; tabs opened before it was read are saved with the next write.
    lastSaved = JSON.stringify(savedList.value.filter((t) => added.includes(t.id)))
    restored.value = true
    scheduleSave()
    // A connected server's connection may have closed while unused: dial it while the tabs load.
    for (const serverId of new Set(added.map((id) => tabs.findApp(id)?.serverId ?? ''))) if (serverId) servers.prewarm(serverId)
    await Promise.all(added.map((id) => loader.load(id)))
    // The restored tabs' servers connect again, as the user left them: each server once. When one
    // is up, tabLoading's watcher loads its tabs. A server that has to ask (a password that is not
    // saved) shows its question; one that fails leaves its tabs offering "Connect", with the reason.
    const waiting = new Set<string>()
    for (const id of added) {
      const t = tabs.findApp(id)
      if (t && t.app.state === 'needs-connect') waiting.add(t.serverId)
    }
    await Promise.all(
      [...waiting].map(async (serverId) => {
        const msg = await servers.connect(serverId)
        if (!msg) return
        for (const t of tabs.appTabs) if (t.serverId === serverId && t.app.state === 'needs-connect') t.app.error = msg
      }),
    )
  }

  function onPageHide(): void {
    void flush()
  }

  /** Saves on page hide from now on, and restores the saved tabs. */
  async function start(a: PortholeApi, e: TabRestoreEnv = {}): Promise<void> {
    api.value = markRaw(a)
    saveDelayMs = e.saveDelayMs ?? SAVE_DELAY_MS
    if (typeof window !== 'undefined') window.addEventListener('pagehide', onPageHide)
    await restore()
  }

  function stop(): void {
    if (typeof window !== 'undefined') window.removeEventListener('pagehide', onPageHide)
    if (saveTimer) clearTimeout(saveTimer)
    saveTimer = null
    api.value = null
  }

  return { restored, flush, restore, start, stop }
})
