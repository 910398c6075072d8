import { THEMES, type Theme } from '@/api/types'

export type ResolvedTheme = 'light' | 'dark'

/** The last theme setting, cached so the next start paints in the right colours before the backend answers. */
export const THEME_CACHE_KEY = 'porthole.theme'

export function isTheme(x: unknown): x is Theme {
  return typeof x === 'string' && (THEMES as readonly string[]).includes(x)
}

/** 'system' follows the OS; 'light' and 'dark' override it. */
export function resolveTheme(setting: Theme, systemPrefersDark: boolean): ResolvedTheme {
  if (setting === 'system') return systemPrefersDark ? 'dark' : 'light'
  return setting
}

/** Sets `<html data-theme="light|dark">` (the CSS palettes key on it) and the native colour scheme. */
export function applyTheme(root: HTMLElement, resolved: ResolvedTheme, setting: Theme): void {
  root.dataset.theme = resolved
  root.dataset.themeSetting = setting
  root.style.colorScheme = resolved
}

export function readCachedTheme(storage: Pick<Storage, 'getItem'> | undefined): Theme | null {
  try {
    const v = storage?.getItem(THEME_CACHE_KEY)
    return isTheme(v) ? v : null
  } catch {
    return null
  }
}

export function writeCachedTheme(storage: Pick<Storage, 'setItem'> | undefined, theme: Theme): void {
  try {
    storage?.setItem(THEME_CACHE_KEY, theme)
  } catch {
    // storage disabled: nothing to cache
  }
}

type MediaSource = { matchMedia?: (q: string) => MediaQueryList }

/** Whether the OS prefers dark now, and a subscription to its changes. */
export function systemDarkQuery(w: MediaSource | undefined): {
  matches: boolean
  subscribe(cb: (dark: boolean) => void): () => void
} {
  const mql = typeof w?.matchMedia === 'function' ? w.matchMedia('(prefers-color-scheme: dark)') : undefined
  return {
    matches: mql?.matches ?? false,
    subscribe(cb) {
      if (!mql) return () => {}
      const listener = (e: MediaQueryListEvent) => cb(e.matches)
      mql.addEventListener('change', listener)
      return () => mql.removeEventListener('change', listener)
    },
  }
}
