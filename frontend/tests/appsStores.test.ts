import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { useAppsStore } from '@/stores/apps'
import { appList, fakeApi, service } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.useRealTimers())


/** A document whose visibility the test flips. */
function fakeDoc(state: DocumentVisibilityState = 'visible') {
  const listeners = new Set<() => void>()
  const doc = {
    visibilityState: state,
    addEventListener: (_: string, l: () => void) => void listeners.add(l),
    removeEventListener: (_: string, l: () => void) => void listeners.delete(l),
  }
  return {
    doc: doc as unknown as Pick<Document, 'visibilityState' | 'addEventListener' | 'removeEventListener'>,
    set(s: DocumentVisibilityState) {
      doc.visibilityState = s
      listeners.forEach((l) => l())
    },
    listeners,
  }
}

describe('apps store', () => {
  it('scans a tracked server at once, then every interval, only while the window is visible', async () => {
    vi.useFakeTimers()
    const f = fakeApi()
    f.api.listApps.mockImplementation(async (id) => appList(id, [service()]))
    const d = fakeDoc()
    const apps = useAppsStore()
    apps.start(f.api, { doc: d.doc, intervalMs: 5000 })
    const stop = apps.track('s1')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(1)
    expect(apps.of('s1').list?.services?.[0]?.port).toBe(8888)

    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(3)

    // Hidden: no scans, however long.
    d.set('hidden')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(f.api.listApps).toHaveBeenCalledTimes(3)

    // Visible again: a scan at once, then the rhythm.
    d.set('visible')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(4)
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(5)

    // Untracked (the page left the screen): no more scans.
    stop()
    stop() // twice is harmless
    await vi.advanceTimersByTimeAsync(30_000)
    expect(f.api.listApps).toHaveBeenCalledTimes(5)
    expect(apps.tracked()).toEqual([])
    apps.stop()
    expect(d.listeners.size).toBe(0)
    expect(f.handlerCount()).toBe(0)
  })

  it('a page that tracks before the store starts is scanned when it starts', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.track('local')
    expect(f.api.listApps).not.toHaveBeenCalled()
    apps.start(f.api, { doc: fakeDoc().doc })
    await vi.waitFor(() => expect(f.api.listApps).toHaveBeenCalledWith('local'))
    apps.stop()
  })

  it('two pages on one server share one timer; the scan runs until the last one leaves', async () => {
    vi.useFakeTimers()
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc, intervalMs: 1000 })
    const a = apps.track('s1')
    const b = apps.track('s1')
    await vi.advanceTimersByTimeAsync(0)
    expect(f.api.listApps).toHaveBeenCalledTimes(1)
    a()
    await vi.advanceTimersByTimeAsync(1000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    b()
    await vi.advanceTimersByTimeAsync(5000)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    apps.stop()
  })

  it('keeps the last list when a scan fails, with the reason; joins a scan in flight', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc })
    f.api.listApps.mockResolvedValueOnce(appList('s1', [service()]))
    await apps.refresh('s1')
    let release!: () => void
    f.api.listApps.mockImplementationOnce(
      () =>
        new Promise((_, reject) => {
          release = () => reject(new Error('Connect to gpu first'))
        }),
    )
    const p1 = apps.refresh('s1')
    const p2 = apps.refresh('s1')
    expect(apps.of('s1').scanning).toBe(true)
    expect(f.api.listApps).toHaveBeenCalledTimes(2)
    release()
    await Promise.all([p1, p2])
    expect(apps.of('s1').scanning).toBe(false)
    expect(apps.of('s1').error).toBe('Connect to gpu first')
    expect(apps.of('s1').list?.services).toHaveLength(1)
    apps.stop()
  })

  it('takes lists from the apps event; remembers raw forwards', async () => {
    const f = fakeApi()
    const apps = useAppsStore()
    apps.start(f.api, { doc: fakeDoc().doc })
    f.emit({ topic: 'apps', data: appList('s1', [service({ port: 6006, kind: 'tensorboard' })], { error: 'probe of 7000 timed out' }) })
    f.emit({ topic: 'apps', data: { nonsense: true } })
    expect(apps.of('s1').list?.services?.[0]?.kind).toBe('tensorboard')
    expect(apps.of('s1').error).toBe('probe of 7000 timed out')
    const fw = await apps.forward('s1', 5432)
    expect(f.api.forwardPort).toHaveBeenCalledWith('s1', 5432)
    expect(apps.forwardOf('s1', 5432)).toEqual(fw)
    expect(apps.forwardOf('s1', 5433)).toBeUndefined()
    apps.stop()
  })
})
