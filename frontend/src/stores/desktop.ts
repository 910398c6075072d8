import { defineStore } from 'pinia'
import { ref } from 'vue'
import { on, type DesktopRequest, type PortholeApi } from '@/api'
import { useOpenUrlStore } from './openUrl'
import { useTabsStore } from './tabs'

/** A new-server form filled in from `porthole ssh://user@host:port`. */
export interface ServerDraft {
  user: string
  host: string
  port: number
}

const SEEN = 'porthole.desktopRequestSeq'

/**
 * What a launch or the tray asks the desktop window (`desktop.request`): open a URL, fill in a new
 * server, show a tab, say something. Each request is acted on once, also across a reload of the
 * page (the bus replays the latest event to a new page).
 */
export const useDesktopStore = defineStore('desktop', () => {
  const message = ref<string | null>(null)
  const serverDraft = ref<ServerDraft | null>(null)
  /** The tray asked for Settings (the shell opens them and sets this back to false). */
  const settingsAsked = ref(false)
  let stop: (() => void) | null = null

  function seen(seq: number): boolean {
    let last = 0
    try {
      last = Number(sessionStorage.getItem(SEEN) ?? 0)
      sessionStorage.setItem(SEEN, String(Math.max(last, seq)))
    } catch {
      // no sessionStorage: act on every request
    }
    return seq <= last
  }

  async function handle(r: DesktopRequest): Promise<void> {
    if (seen(r.seq)) return
    switch (r.kind) {
      case 'open-url':
        if (r.url) await useOpenUrlStore().openLaunched(r.url, r.serverId || undefined)
        return
      case 'add-server':
        serverDraft.value = { user: r.user ?? '', host: r.host ?? '', port: r.port || 22 }
        return
      case 'focus-tab':
        if (r.tabId) useTabsStore().activate(r.tabId)
        return
      case 'message':
        message.value = r.message ?? null
        return
      case 'settings':
        settingsAsked.value = true
        return
    }
  }

  /** Listens to the window's requests (the desktop window only: serve's page is another UI). */
  function start(api: PortholeApi): void {
    if (api.kind !== 'wails' || stop) return
    stop = on(api, 'desktop.request', (r) => void handle(r))
  }

  function stopListening(): void {
    stop?.()
    stop = null
  }

  return { message, serverDraft, settingsAsked, start, stop: stopListening, handle }
})
