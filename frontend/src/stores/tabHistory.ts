import { defineStore } from 'pinia'
import { ref } from 'vue'
import { FrameHistory } from '@/lib/frameHistory'

export type ViewNavigation = 'back' | 'forward'

export interface TabHistoryEnv {
  /** The window whose joint session history Back and Forward move (iframes). */
  history?: Pick<History, 'back' | 'forward'>
  now?: () => number
}

/**
 * Back and Forward of app tabs, from one of two sources. Iframes: the journal of which tab made
 * each navigation of the window's joint history (lib/frameHistory.ts). App views (the Linux
 * window): each view reports its own history, and navigates itself (`useViews`).
 */
export const useTabHistoryStore = defineStore('tabHistory', () => {
  /** Bumped when the journal changes (it is not reactive itself). */
  const navVersion = ref(0)
  /** What each app view said of its history (by tab id). */
  const views = ref<Record<string, { back: boolean; forward: boolean }>>({})
  let navigateView: ((id: string, nav: ViewNavigation) => void) | null = null
  let journal = new FrameHistory()
  let win: TabHistoryEnv['history']

  function configure(e: TabHistoryEnv = {}): void {
    win = e.history ?? (typeof window === 'undefined' ? undefined : window.history)
    journal = new FrameHistory(e.now)
    navVersion.value++
  }

  /** Tabs are app views that navigate themselves (`nav`), or iframes again (null). */
  function useViews(nav: ((id: string, dir: ViewNavigation) => void) | null): void {
    navigateView = nav
    navVersion.value++
  }

  /** An app view's history changed. */
  function viewReported(id: string, back: boolean, forward: boolean): void {
    views.value = { ...views.value, [id]: { back, forward } }
  }

  /** A tab's frame fired `load`. */
  function loaded(id: string): void {
    journal.loaded(id)
    navVersion.value++
  }

  /** The shell is about to replace a tab's page (reload): its next load adds no entry. */
  function replacing(id: string): void {
    journal.replacing(id)
  }

  /** A tab's frame is gone (closed, or re-created): its entries left the window's history. */
  function forget(id: string): void {
    journal.forget(id)
    if (id in views.value) {
      const { [id]: _gone, ...rest } = views.value
      void _gone
      views.value = rest
    }
    navVersion.value++
  }

  function canGoBack(id: string): boolean {
    void navVersion.value
    if (navigateView) return !!views.value[id]?.back
    return journal.canGoBack(id)
  }

  function canGoForward(id: string): boolean {
    void navVersion.value
    if (navigateView) return !!views.value[id]?.forward
    return journal.canGoForward(id)
  }

  function back(id: string): void {
    if (navigateView) {
      navigateView(id, 'back')
      return
    }
    if (journal.back(id)) {
      navVersion.value++
      win?.back()
    }
  }

  function forward(id: string): void {
    if (navigateView) {
      navigateView(id, 'forward')
      return
    }
    if (journal.forward(id)) {
      navVersion.value++
      win?.forward()
    }
  }

  return { navVersion, configure, useViews, viewReported, loaded, replacing, forget, canGoBack, canGoForward, back, forward }
})
