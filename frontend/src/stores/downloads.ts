import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef } from 'vue'
import { onEvents, type Download, type DownloadList, type PortholeApi } from '@/api'
import { errorText } from './servers'

/**
 * The window's downloads (the Linux window's app views save files themselves; `downloads` events):
 * the list, newest first, and whether its panel is open. A new download opens the panel, as a
 * browser shows its downloads bubble. In `porthole serve` the browser downloads on its own.
 */
export const useDownloadsStore = defineStore('downloads', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const list = ref<Download[]>([])
  const open = ref(false)
  /** What the last action on the list could not do, in words. */
  const error = ref('')
  let known = new Set<string>()
  let unsubscribe: (() => void) | null = null

  const running = computed(() => list.value.filter((d) => d.state === 'running').length)
  const failed = computed(() => list.value.filter((d) => d.state === 'failed').length)

  function onList(l: DownloadList): void {
    const items = l.downloads ?? []
    if (items.some((d) => !known.has(d.id))) open.value = true
    known = new Set(items.map((d) => d.id))
    list.value = items
  }

  /** 0…1, or null while the size is unknown. */
  function progress(d: Download): number | null {
    if (d.state === 'done') return 1
    return d.total > 0 ? Math.min(1, d.received / d.total) : null
  }

  async function act(f: (a: PortholeApi) => Promise<void>): Promise<void> {
    if (!api.value) return
    error.value = ''
    try {
      await f(api.value)
    } catch (err) {
      error.value = errorText(err)
    }
  }

  const show = (id: string) => act((a) => a.showDownload(id))
  const cancel = (id: string) => act((a) => a.cancelDownload(id))
  const clear = () => act((a) => a.clearDownloads())

  function toggle(on = !open.value): void {
    open.value = on
  }

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
    unsubscribe = onEvents(a, { downloads: onList })
  }

  function stop(): void {
    unsubscribe?.()
    unsubscribe = null
    api.value = null
  }

  return { list, open, error, running, failed, progress, show, cancel, clear, toggle, start, stop }
})
