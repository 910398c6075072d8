import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { onEvents, type PageDialog, type PageDialogAnswer, type PageDialogList, type PortholeApi } from '@/api'
import { errorText } from './servers'

/**
 * The questions pages in app views ask (alert, confirm, prompt, HTTP sign-in; `appview.dialogs`
 * events), each bound to its tab: a tab shows its own oldest question, and the rest of the shell
 * stays usable. `flood`: the page asked several in a short while, and may be stopped.
 */
export const usePageDialogsStore = defineStore('pageDialogs', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const list = ref<PageDialog[]>([])
  const error = ref('')
  let unsubscribe: (() => void) | null = null

  function onList(l: PageDialogList): void {
    list.value = l.dialogs ?? []
  }

  /** The question tab `viewId` shows now (its oldest), or null. */
  function forView(viewId: string): PageDialog | null {
    return list.value.find((d) => d.viewId === viewId) ?? null
  }

  async function answer(id: string, a: PageDialogAnswer): Promise<void> {
    if (!api.value) return
    error.value = ''
    // Gone from the list at once: the next one (a page's loop) arrives as an event.
    list.value = list.value.filter((d) => d.id !== id)
    try {
      await api.value.answerPageDialog(id, a)
    } catch (err) {
      error.value = errorText(err)
    }
  }

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
    unsubscribe = onEvents(a, { 'appview.dialogs': onList })
  }

  function stop(): void {
    unsubscribe?.()
    unsubscribe = null
    api.value = null
  }

  return { list, error, forView, answer, start, stop }
})
