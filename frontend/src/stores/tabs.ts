import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

export type TabKind = 'start' | 'server'

export interface Tab {
  id: string
  kind: TabKind
  title: string
  closable: boolean
  /** For kind 'server': the server (profile) id. */
  serverId?: string
}

const START: Tab = { id: 'start', kind: 'start', title: 'Start', closable: false }

export function serverTabId(serverId: string): string {
  return `server-${serverId}`
}

/** The tab strip. The Start tab is always first and cannot be closed; a server's page opens as a tab. */
export const useTabsStore = defineStore('tabs', () => {
  const tabs = ref<Tab[]>([START])
  const activeId = ref(START.id)
  const active = computed(() => tabs.value.find((t) => t.id === activeId.value) ?? START)

  function activate(id: string): void {
    if (tabs.value.some((t) => t.id === id)) activeId.value = id
  }

  function close(id: string): void {
    const i = tabs.value.findIndex((t) => t.id === id)
    const tab = tabs.value[i]
    if (!tab || !tab.closable) return
    tabs.value.splice(i, 1)
    if (activeId.value === id) activeId.value = (tabs.value[i - 1] ?? START).id
  }

  /** Opens (or focuses) the page of a server. */
  function openServer(serverId: string, title: string): void {
    const id = serverTabId(serverId)
    const t = tabs.value.find((x) => x.id === id)
    if (t) t.title = title
    else tabs.value.push({ id, kind: 'server', title, closable: true, serverId })
    activeId.value = id
  }

  /** Keeps server tabs in step with the server list: renamed titles, deleted servers closed. */
  function syncServers(servers: { id: string; name: string }[]): void {
    for (const t of [...tabs.value]) {
      if (t.kind !== 'server' || !t.serverId) continue
      const s = servers.find((x) => x.id === t.serverId)
      if (!s) close(t.id)
      else t.title = s.name
    }
  }

  return { tabs, activeId, active, activate, close, openServer, syncServers }
})
