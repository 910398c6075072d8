import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowRef, watch } from 'vue'
import { isUnauthorized, onEvents, type AppStatus, type ConnectionState, type PortholeApi, type Settings, type Theme, type VersionInfo } from '@/api'
import { applyTheme, readCachedTheme, resolveTheme, systemDarkQuery, writeCachedTheme } from '@/lib/theme'

export interface AppStoreEnv {
  root?: HTMLElement
  storage?: Pick<Storage, 'getItem' | 'setItem'>
  media?: { matchMedia?: (q: string) => MediaQueryList }
}

function defaultEnv(): AppStoreEnv {
  if (typeof window === 'undefined') return {}
  let storage: Storage | undefined
  try {
    storage = window.localStorage
  } catch {
    storage = undefined
  }
  return { root: document.documentElement, storage, media: window }
}

/** The app as a whole: backend connection, version, status, settings and the applied theme. */
export const useAppStore = defineStore('app', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const version = ref<VersionInfo | null>(null)
  const status = ref<AppStatus | null>(null)
  const connection = ref<ConnectionState>('closed')
  /** The stream was open at least once: a later 'connecting' is a reconnect. */
  const everConnected = ref(false)
  const settings = ref<Settings | null>(null)
  /** The backend refused the access token: the UI shows how to get a fresh URL. */
  const unauthorized = ref(false)
  /** The last failure worth telling the user about. */
  const notice = ref<string | null>(null)

  let env: AppStoreEnv = {}
  const systemDark = ref(false)
  const themeSetting = computed<Theme>(() => settings.value?.theme ?? cachedTheme.value ?? 'system')
  const cachedTheme = ref<Theme | null>(null)
  const resolvedTheme = computed(() => resolveTheme(themeSetting.value, systemDark.value))

  /** Undo start(): event and connection subscriptions. */
  const cleanups: Array<() => void> = []
  let themeStarted = false

  /** Applies the theme before anything else (also when there is no backend to talk to). */
  function initTheme(e: AppStoreEnv = defaultEnv()): void {
    if (themeStarted) return
    themeStarted = true
    env = e
    cachedTheme.value = readCachedTheme(env.storage)
    const q = systemDarkQuery(env.media)
    systemDark.value = q.matches
    // Lives as long as the page: the OS preference and the setting keep <html> up to date.
    q.subscribe((dark) => (systemDark.value = dark))
    watch(
      [resolvedTheme, themeSetting],
      ([resolved, setting]) => {
        if (env.root) applyTheme(env.root, resolved, setting)
      },
      { immediate: true },
    )
  }

  function fail(what: string, err: unknown): void {
    if (isUnauthorized(err)) {
      unauthorized.value = true
      return
    }
    const msg = err instanceof Error ? err.message : String(err)
    notice.value = `${what}: ${msg}`
    console.error(`porthole: ${what}`, err)
  }

  function applySettings(s: Settings): void {
    settings.value = s
    writeCachedTheme(env.storage, s.theme)
  }

  /** Connects the store to the backend: events first, then the one-off reads. */
  async function start(a: PortholeApi): Promise<void> {
    api.value = markRaw(a)
    if (a.onConnection) {
      cleanups.push(
        a.onConnection((s) => {
          connection.value = s
          if (s === 'open') everConnected.value = true
        }),
      )
    }
    cleanups.push(onEvents(a, { 'app.status': (st) => (status.value = st), settings: applySettings }))
    await Promise.all([
      a.version().then((v) => (version.value = v), (err) => fail('Could not read the version', err)),
      a.getSettings().then(applySettings, (err) => fail('Could not read the settings', err)),
    ])
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    api.value = null
  }

  /** Optimistic: the UI switches at once and goes back if the backend refuses. */
  async function setTheme(theme: Theme): Promise<void> {
    const before = settings.value
    settings.value = { ...(before ?? {}), theme }
    writeCachedTheme(env.storage, theme)
    const a = api.value
    if (!a) return
    try {
      applySettings(await a.setTheme(theme))
    } catch (err) {
      if (before) applySettings(before)
      else settings.value = null
      fail('Could not save the theme', err)
    }
  }

  function dismissNotice(): void {
    notice.value = null
  }

  return {
    api,
    version,
    status,
    connection,
    everConnected,
    settings,
    unauthorized,
    notice,
    systemDark,
    themeSetting,
    resolvedTheme,
    initTheme,
    start,
    stop,
    setTheme,
    dismissNotice,
  }
})
