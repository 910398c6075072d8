import { defineStore } from 'pinia'
import { ref } from 'vue'

/** What the palette asks a server page to open: its "Open port…" or "Add rule" dialog. */
export type PageRequestKind = 'open-port' | 'add-rule'

export interface PageRequest {
  kind: PageRequestKind
  serverId: string
}

/**
 * The command palette (Ctrl+K, Ctrl+Shift+P): whether it is open, and the one request it left
 * for a server page (the page's own dialogs live in its panels; the palette opens the page and
 * the panel takes the request when it is on screen).
 */
export const usePaletteStore = defineStore('palette', () => {
  const open = ref(false)
  const request = ref<PageRequest | null>(null)

  function show(): void {
    open.value = true
  }

  function hide(): void {
    open.value = false
  }

  function ask(kind: PageRequestKind, serverId: string): void {
    request.value = { kind, serverId }
  }

  /** True once, for the panel the request is for; the request is then gone. */
  function take(kind: PageRequestKind, serverId: string): boolean {
    const r = request.value
    if (!r || r.kind !== kind || r.serverId !== serverId) return false
    request.value = null
    return true
  }

  return { open, request, show, hide, ask, take }
})
