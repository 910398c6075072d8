import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef } from 'vue'
import { on, type PortholeApi, type Prompt, type PromptAnswer } from '@/api'
import { errorText } from './servers'

/**
 * The questions connections wait on (host key, password, passphrase, keyboard-interactive).
 * The backend's `prompts` event is the truth: it is in every snapshot, so a reloaded page
 * still shows an open question. The UI answers or cancels by id.
 */
export const usePromptsStore = defineStore('prompts', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const prompts = ref<Prompt[]>([])
  /** The last failed answer (e.g. the question had timed out meanwhile). */
  const error = ref<string | null>(null)
  const busy = ref(false)
  const cleanups: Array<() => void> = []

  /** One question at a time, oldest first. */
  const current = computed<Prompt | null>(() => prompts.value[0] ?? null)

  function applyList(list: Prompt[]): void {
    const before = current.value?.id
    prompts.value = list
    if (current.value?.id !== before) error.value = null
  }

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
    cleanups.push(on(a, 'prompts', applyList))
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    api.value = null
  }

  function drop(id: string): void {
    prompts.value = prompts.value.filter((p) => p.id !== id)
  }

  /** Answers a question; returns false (and sets error) if the backend refused the answer. */
  async function answer(id: string, a: PromptAnswer): Promise<boolean> {
    if (!api.value) return false
    busy.value = true
    error.value = null
    try {
      await api.value.answerPrompt(id, a)
      drop(id)
      return true
    } catch (err) {
      error.value = errorText(err)
      return false
    } finally {
      busy.value = false
    }
  }

  /** Cancels a question: its connection attempt stops. A question that is already gone is fine. */
  async function cancel(id: string): Promise<void> {
    drop(id)
    error.value = null
    if (!api.value) return
    try {
      await api.value.cancelPrompt(id)
    } catch (err) {
      console.info('porthole: CancelPrompt', errorText(err))
    }
  }

  return { prompts, current, error, busy, start, stop, answer, cancel }
})
