import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { appMethods, leakMethods, ruleMethods, serverMethods } from './fakeApi'
import { ApiError } from '@/api/errors'
import type { PortholeApi, PortholeEvent, Settings, Theme } from '@/api/types'
import { isTheme, readCachedTheme, resolveTheme, THEME_CACHE_KEY } from '@/lib/theme'
import { useAppStore } from '@/stores/app'
import { nextTick } from 'vue'

describe('resolveTheme', () => {
  const cases: [Theme, boolean, 'light' | 'dark'][] = [
    ['system', false, 'light'],
    ['system', true, 'dark'],
    ['light', true, 'light'],
    ['light', false, 'light'],
    ['dark', false, 'dark'],
    ['dark', true, 'dark'],
  ]
  for (const [setting, osDark, want] of cases) {
    it(`${setting} with OS ${osDark ? 'dark' : 'light'} → ${want}`, () => {
      expect(resolveTheme(setting, osDark)).toBe(want)
    })
  }

  it('isTheme and the cache reject junk', () => {
    expect(['system', 'light', 'dark', 'blue', '', null, 3].map(isTheme)).toEqual([true, true, true, false, false, false, false])
    expect(readCachedTheme({ getItem: () => 'purple' })).toBeNull()
    expect(readCachedTheme({ getItem: () => 'dark' })).toBe('dark')
  })
})

/** A matchMedia whose answer the test can flip, like an OS switching to dark at sunset. */
function fakeMedia(dark: boolean) {
  const listeners = new Set<(e: MediaQueryListEvent) => void>()
  const mql = {
    get matches() {
      return dark
    },
    addEventListener: (_: string, l: (e: MediaQueryListEvent) => void) => listeners.add(l),
    removeEventListener: (_: string, l: (e: MediaQueryListEvent) => void) => listeners.delete(l),
  } as unknown as MediaQueryList
  return {
    media: { matchMedia: () => mql },
    flip(d: boolean) {
      dark = d
      listeners.forEach((l) => l({ matches: d } as MediaQueryListEvent))
    },
    listeners,
  }
}

function fakeApi(over: Partial<PortholeApi> = {}) {
  let handler: ((e: PortholeEvent) => void) | null = null
  const api: PortholeApi = {
    kind: 'http',
    version: async () => ({ version: '1.0.0', commit: 'c', go: 'go', wails: 'w', os: 'linux', arch: 'amd64' }),
    status: async () => ({ mode: 'serve', startedAt: '', servers: 0, forwards: 0 }),
    getSettings: async () => ({ theme: 'system' }),
    setTheme: vi.fn(async (theme: Theme): Promise<Settings> => ({ theme })),
    setInspector: vi.fn(async (inspector: boolean): Promise<Settings> => ({ theme: 'system', inspector })),
    setTabDiscard: vi.fn(async (tabDiscardSec: number): Promise<Settings> => ({ theme: 'system', tabDiscardSec })),
    setNotification: vi.fn(async (): Promise<Settings> => ({ theme: 'system' })),
    getAppAttributes: vi.fn(async () => ({})),
    setAppAttributes: vi.fn(async () => ({})),
    getAppRules: vi.fn(async () => ({})),
    setIgnoredPorts: vi.fn(async () => ({})),
    setHideOnClose: vi.fn(async (hideOnClose: boolean): Promise<Settings> => ({ theme: 'system', hideOnClose })),
    setStartAtLogin: vi.fn(async (): Promise<void> => {}),
    setStartHidden: vi.fn(async (startHidden: boolean): Promise<Settings> => ({ theme: 'system', startHidden })),
    setServerDefaults: vi.fn(async (): Promise<Settings> => ({ theme: 'system' })),
    serverStats: vi.fn(async (id: string) => ({ id, state: 'disconnected' as const, rttMs: 0, activeConns: 0, bytesIn: 0, bytesOut: 0, reconnects: [], time: '' })),
    syncAppViews: vi.fn(async () => {}),
    navigateAppView: vi.fn(async () => {}),
    focusShell: vi.fn(async () => {}),
    findInAppView: vi.fn(async () => {}),
    zoomAppView: vi.fn(async () => {}),
    printAppView: vi.fn(async () => {}),
    answerPageDialog: vi.fn(async () => {}),
    showDownload: vi.fn(async () => {}),
    cancelDownload: vi.fn(async () => {}),
    clearDownloads: vi.fn(async () => {}),
    quit: vi.fn(async () => {}),
    uiReady: vi.fn(async () => {}),
    ...serverMethods(),
    ...appMethods(),
    ...leakMethods(),
    ...ruleMethods(),
    onEvent: (h) => {
      handler = h
      return () => (handler = null)
    },
    ...over,
  }
  return { api, emit: (e: PortholeEvent) => handler?.(e) }
}

describe('app store theme', () => {
  let root: HTMLElement
  let storage: Map<string, string>
  const env = (media: { matchMedia: () => MediaQueryList }) => ({
    root,
    media,
    storage: { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => void storage.set(k, v) },
  })

  beforeEach(() => {
    setActivePinia(createPinia())
    root = document.createElement('html')
    storage = new Map()
  })

  it('follows the OS while the setting is system', async () => {
    const m = fakeMedia(false)
    const store = useAppStore()
    store.initTheme(env(m.media))
    expect(root.dataset.theme).toBe('light')
    m.flip(true)
    await nextTick()
    expect(root.dataset.theme).toBe('dark')
    expect(root.style.colorScheme).toBe('dark')
  })

  it('an explicit setting overrides the OS, and is cached for the next start', async () => {
    const m = fakeMedia(true)
    const store = useAppStore()
    store.initTheme(env(m.media))
    const { api } = fakeApi()
    await store.start(api)
    await store.setTheme('light')
    expect(api.setTheme).toHaveBeenCalledWith('light')
    expect(root.dataset.theme).toBe('light')
    expect(root.dataset.themeSetting).toBe('light')
    expect(storage.get(THEME_CACHE_KEY)).toBe('light')
    m.flip(false)
    m.flip(true)
    await nextTick()
    expect(root.dataset.theme).toBe('light')
  })

  it('starts from the cached theme before the backend answers', () => {
    storage.set(THEME_CACHE_KEY, 'dark')
    const store = useAppStore()
    store.initTheme(env(fakeMedia(false).media))
    expect(store.themeSetting).toBe('dark')
    expect(root.dataset.theme).toBe('dark')
  })

  it('a settings event from the backend (another window) changes the theme', async () => {
    const store = useAppStore()
    store.initTheme(env(fakeMedia(false).media))
    const { api, emit } = fakeApi()
    await store.start(api)
    emit({ topic: 'settings', data: { theme: 'dark' } })
    await nextTick()
    expect(root.dataset.theme).toBe('dark')
    emit({ topic: 'settings', data: { theme: 'neon' } }) // invalid: ignored
    await nextTick()
    expect(store.themeSetting).toBe('dark')
  })

  it('goes back and says why when the backend refuses the change', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const store = useAppStore()
    store.initTheme(env(fakeMedia(false).media))
    const { api } = fakeApi({
      getSettings: async () => ({ theme: 'light' }),
      setTheme: async () => {
        throw new ApiError('settings are read-only: check the permissions of ~/.config/porthole', 'SetTheme', 500)
      },
    })
    await store.start(api)
    await store.setTheme('dark')
    expect(store.themeSetting).toBe('light')
    expect(root.dataset.theme).toBe('light')
    expect(store.notice).toMatch(/Could not save the theme: settings are read-only/)
  })

  it('a 401 switches to the token page instead of a notice', async () => {
    const store = useAppStore()
    store.initTheme(env(fakeMedia(false).media))
    await store.start(
      fakeApi({
        version: async () => {
          throw new ApiError('wrong token', 'Version', 401)
        },
      }).api,
    )
    expect(store.unauthorized).toBe(true)
    expect(store.notice).toBeNull()
  })

  it('app.status events set the status; stop() unsubscribes', async () => {
    const store = useAppStore()
    store.initTheme(env(fakeMedia(false).media))
    const { api, emit } = fakeApi()
    await store.start(api)
    emit({ topic: 'app.status', data: { mode: 'serve', startedAt: 'x', servers: 0, forwards: 0 } })
    expect(store.status?.mode).toBe('serve')
    store.stop()
    emit({ topic: 'app.status', data: { mode: 'desktop', startedAt: 'x', servers: 0, forwards: 0 } })
    expect(store.status?.mode).toBe('serve')
  })
})

describe('app store lifecycle', () => {
  it('stop() leaves the theme following the OS', async () => {
    setActivePinia(createPinia())
    const root = document.createElement('html')
    const m = fakeMedia(false)
    const store = useAppStore()
    store.initTheme({ root, media: m.media })
    await store.start(fakeApi().api)
    store.stop()
    m.flip(true)
    await nextTick()
    expect(root.dataset.theme).toBe('dark')
  })
})
