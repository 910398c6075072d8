import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

export type TabKind = 'start'

export interface Tab {
  id: string
  kind: TabKind
  title: string
  closable: boolean
}

const START: Tab = { id: 'start', kind: 'start', title: 'Start', closable: false }

/** The tab strip. The Start tab is always first and cannot be closed; web-app tabs come later. */
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

  return { tabs, activeId, active, activate, close }
})
