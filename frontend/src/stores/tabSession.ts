import type { PortholeApi } from '@/api'
import { useAppViewsStore } from './appViews'
import { useTabHistoryStore, type TabHistoryEnv } from './tabHistory'
import { useTabLoadingStore } from './tabLoading'
import { useTabRestoreStore, type TabRestoreEnv } from './tabRestore'

export type TabsEnv = TabHistoryEnv & TabRestoreEnv

/**
 * Starts the tab stores on a backend, in order: Back/Forward, loading, whether tabs are app views
 * (before any tab renders, so that the Linux window never makes an iframe first), then the saved
 * tabs come back. Resolves when they are restored.
 */
export async function startTabs(api: PortholeApi, env: TabsEnv = {}): Promise<void> {
  useTabHistoryStore().configure(env)
  useTabLoadingStore().start(api)
  await useAppViewsStore().start(api)
  await useTabRestoreStore().start(api, env)
}

/** Undoes startTabs: no more events, saves or page-hide listener (call flush first to save). */
export function stopTabs(): void {
  useAppViewsStore().stop()
  useTabRestoreStore().stop()
  useTabLoadingStore().stop()
}
