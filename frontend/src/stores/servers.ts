import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { PortholeApi, ServerSummary } from '@/api'

/** The saved servers (empty until adding servers lands). */
export const useServersStore = defineStore('servers', () => {
  const servers = ref<ServerSummary[]>([])
  const loaded = ref(false)
  const error = ref<string | null>(null)
  /** What the sidebar has selected: 'local' is This computer, otherwise a server id. */
  const selected = ref<string>('local')

  async function load(api: PortholeApi): Promise<void> {
    try {
      servers.value = await api.listServers()
      error.value = null
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
    } finally {
      loaded.value = true
    }
  }

  function select(id: string): void {
    selected.value = id
  }

  return { servers, loaded, error, selected, load, select }
})
