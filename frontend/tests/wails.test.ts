import { describe, expect, it, vi } from 'vitest'
import { ApiError } from '@/api/errors'
import { createWailsApi, GO_PACKAGE, isWails, WAILS_EVENT, type WailsGlobals } from '@/api/wails'
import type { ConnectionState, PortholeEvent } from '@/api/types'

function fakeWails(app: Record<string, (...a: unknown[]) => Promise<unknown>>, opts: { offReturned?: boolean } = {}) {
  const listeners = new Map<string, ((...d: unknown[]) => void)[]>()
  const off = vi.fn()
  const w: WailsGlobals = {
    go: { [GO_PACKAGE]: { App: app } },
    runtime: {
      EventsOn(name, cb) {
        listeners.set(name, [...(listeners.get(name) ?? []), cb])
        return opts.offReturned === false ? undefined : off
      },
      EventsOff: vi.fn(),
    },
  }
  const emit = (data: unknown) => listeners.get(WAILS_EVENT)?.forEach((cb) => cb(data))
  return { w, emit, off, listeners }
}

describe('wails transport', () => {
  it('is detected by window.go.<GO_PACKAGE>.App, and only there', () => {
    expect(GO_PACKAGE).toBe('ui')
    expect(isWails({})).toBe(false)
    expect(isWails({ go: {} })).toBe(false)
    expect(isWails({ go: { main: { App: {} } } })).toBe(false) // the App's package before it moved out of main
    expect(isWails(fakeWails({}).w)).toBe(true)
  })

  it('calls the methods bound under GO_PACKAGE, not those of another package', async () => {
    const Version = vi.fn(async () => ({ version: '1' }))
    const w: WailsGlobals = { go: { main: { App: { Version } }, [GO_PACKAGE]: { App: {} } } }
    await expect(createWailsApi(w).version()).rejects.toThrow(/no method Version/)
    expect(Version).not.toHaveBeenCalled()
  })

  it('calls bound methods with their arguments', async () => {
    const SetTheme = vi.fn(async (t: unknown) => ({ theme: t }))
    const api = createWailsApi(fakeWails({ SetTheme }).w)
    expect(api.kind).toBe('wails')
    await expect(api.setTheme('dark')).resolves.toEqual({ theme: 'dark' })
    expect(SetTheme).toHaveBeenCalledWith('dark')
  })

  it('maps a rejected string to ApiError and a missing method to a clear error', async () => {
    const api = createWailsApi(
      fakeWails({
        GetSettings: () => Promise.reject('settings file is corrupt: fix or delete ~/.config/porthole/settings.json'),
      }).w,
    )
    const err = (await api.getSettings().catch((e: unknown) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err.message).toBe('settings file is corrupt: fix or delete ~/.config/porthole/settings.json')
    await expect(api.version()).rejects.toThrow(/no method Version/)
  })

  it('UIReady names the transport', async () => {
    const UIReady = vi.fn(async () => null)
    await createWailsApi(fakeWails({ UIReady }).w).uiReady()
    expect(UIReady).toHaveBeenCalledWith('wails')
  })

  it('ListServers null (a Go nil slice) is an empty list', async () => {
    const api = createWailsApi(fakeWails({ ListServers: async () => null }).w)
    await expect(api.listServers()).resolves.toEqual([])
  })

  it('delivers the snapshot before events that raced it', async () => {
    let resolveSnap!: (v: PortholeEvent[]) => void
    const f = fakeWails({ Snapshot: () => new Promise((r) => (resolveSnap = r as (v: PortholeEvent[]) => void)) })
    const api = createWailsApi(f.w)
    const states: ConnectionState[] = []
    api.onConnection!((s) => states.push(s))
    const got: PortholeEvent[] = []
    const off = api.onEvent((e) => got.push(e))
    expect(states).toEqual(['closed', 'connecting'])

    f.emit({ topic: 'settings', data: { theme: 'dark' } }) // arrives before Snapshot returns
    expect(got).toEqual([])
    resolveSnap([
      { topic: 'app.status', data: { mode: 'desktop' } },
      { topic: 'settings', data: { theme: 'light' } },
    ])
    await vi.waitFor(() => expect(got).toHaveLength(3))
    expect(got.map((e) => e.data)).toEqual([{ mode: 'desktop' }, { theme: 'light' }, { theme: 'dark' }])
    expect(states.at(-1)).toBe('open')

    f.emit({ topic: 'app.status', data: { mode: 'desktop', forwards: 1 } })
    expect(got).toHaveLength(4)

    off()
    expect(f.off).toHaveBeenCalledOnce()
    expect(states.at(-1)).toBe('closed')
  })

  it('falls back to EventsOff on runtimes whose EventsOn returns nothing', async () => {
    const f = fakeWails({ Snapshot: async () => [] }, { offReturned: false })
    const api = createWailsApi(f.w)
    const off = api.onEvent(() => {})
    off()
    expect(f.w.runtime!.EventsOff).toHaveBeenCalledWith(WAILS_EVENT)
  })

  it('a failed Snapshot leaves the connection closed', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const api = createWailsApi(fakeWails({ Snapshot: () => Promise.reject('boom') }).w)
    const states: ConnectionState[] = []
    api.onConnection!((s) => states.push(s))
    api.onEvent(() => {})
    await vi.waitFor(() => expect(states).toEqual(['closed', 'connecting', 'closed']))
  })
})
