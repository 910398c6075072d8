import { defineStore } from 'pinia'
import { markRaw, reactive, shallowRef } from 'vue'
import type { FindOp, FindResult, PortholeApi } from '@/api'

/** One tab's find bar. */
export interface FindState {
  text: string
  /** What the page reported for `text`; null until it did. */
  matches: number | null
  /** The selected match, 1 to `matches` (0: none or not known yet). */
  current: number
  failed: boolean
  /** Bumped to ask the bar to take the keyboard. */
  focus: number
}

/**
 * Find in page for app views (Ctrl+F): per tab, the bar's text and the match count and current
 * match the view reports back (appviews events' `find`). In iframes (serve) the browser's own Ctrl+F finds.
 */
export const useFindInPageStore = defineStore('findInPage', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const bars = reactive(new Map<string, FindState>())

  function send(id: string, text: string, op: FindOp): void {
    void api.value?.findInAppView(id, text, op).catch((err: unknown) => console.warn('porthole: find failed', err))
  }

  /** Opens (or focuses) tab `id`'s bar. */
  function openBar(id: string): void {
    const b = bars.get(id)
    if (b) {
      b.focus++
      return
    }
    bars.set(id, { text: '', matches: null, current: 0, failed: false, focus: 1 })
  }

  function setText(id: string, text: string): void {
    const b = bars.get(id)
    if (!b) return
    b.text = text
    b.matches = null
    b.current = 0
    b.failed = false
    send(id, text, 'find')
  }

  function step(id: string, op: 'next' | 'previous'): void {
    const b = bars.get(id)
    if (!b) {
      openBar(id)
      return
    }
    if (b.text) send(id, b.text, op)
  }

  function close(id: string): void {
    if (!bars.delete(id)) return
    send(id, '', 'close')
  }

  /** A view's report; a late one for text the bar no longer holds is dropped. */
  function onResult(id: string, r: FindResult): void {
    const b = bars.get(id)
    if (!b || r.text !== b.text) return
    b.matches = r.failed ? 0 : r.matches
    b.current = r.failed ? 0 : (r.current ?? 0)
    b.failed = !!r.failed
  }

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
  }

  return { bars, openBar, setText, step, close, onResult, start }
})
