import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import type { Notification, OpenRequest } from '@/api'
import { MAX_TOASTS, STALE_MS, TOAST_MS, useNotifyStore } from '@/stores/notify'
import ToastStack from '@/components/ToastStack.vue'
import { fakeApi } from './fakeApi'

const T0 = Date.parse('2026-03-01T12:00:00Z')

function note(over: Partial<Notification> = {}): Notification {
  return {
    id: 1,
    kind: 'new-app',
    serverId: 's1',
    port: 6006,
    path: '/',
    title: 'New app on gpu1',
    body: 'TensorBoard appeared on gpu1 (port 6006)',
    action: 'Open',
    time: new Date(T0).toISOString(),
    ...over,
  }
}

function openReq(over: Partial<OpenRequest> = {}): OpenRequest {
  return { id: 2, serverId: 's1', port: 7000, path: '/lab', show: true, time: new Date(T0).toISOString(), ...over }
}

describe('notify store', () => {
  let clock = T0
  const openApp = vi.fn()
  const showServer = vi.fn()
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.useFakeTimers()
    clock = T0
    openApp.mockReset()
    showServer.mockReset()
  })
  afterEach(() => vi.useRealTimers())

  function started() {
    const f = fakeApi()
    const s = useNotifyStore()
    s.start(f.api, { openApp, showServer, now: () => clock })
    return { f, s }
  }

  it('shows a toast once, dismisses it after a while, and opens the app from its button', () => {
    const { f, s } = started()
    f.emit({ topic: 'notify.toast', data: note() })
    f.emit({ topic: 'notify.toast', data: note() }) // the same one again (a snapshot)
    expect(s.toasts.map((n) => n.id)).toEqual([1])
    s.act(s.toasts[0]!)
    expect(openApp).toHaveBeenCalledWith('s1', 6006, '/', 'TensorBoard')
    expect(s.toasts).toEqual([])

    f.emit({ topic: 'notify.toast', data: note({ id: 3, kind: 'server-unreachable', port: undefined, action: 'Show' }) })
    expect(s.toasts).toHaveLength(1)
    vi.advanceTimersByTime(TOAST_MS)
    expect(s.toasts).toEqual([])
  })

  it('ignores stale events (the snapshot of a reloaded page) and malformed ones', () => {
    const { f, s } = started()
    clock = T0 + STALE_MS + 1
    f.emit({ topic: 'notify.toast', data: note() })
    f.emit({ topic: 'notify.open', data: openReq() })
    f.emit({ topic: 'notify.toast', data: { id: 'x' } })
    expect(s.toasts).toEqual([])
    expect(openApp).not.toHaveBeenCalled()
  })

  it('keeps at most a few toasts', () => {
    const { f, s } = started()
    for (let i = 1; i <= MAX_TOASTS + 2; i++) f.emit({ topic: 'notify.toast', data: note({ id: i }) })
    expect(s.toasts.map((n) => n.id)).toEqual([3, 4, 5, 6])
  })

  it('opens a tab for notify.open, or shows the server for port 0, each once', () => {
    const { f } = started()
    f.emit({ topic: 'notify.open', data: openReq() })
    f.emit({ topic: 'notify.open', data: openReq() })
    f.emit({ topic: 'notify.open', data: openReq({ id: 9, port: 0 }) })
    expect(openApp).toHaveBeenCalledTimes(1)
    expect(openApp).toHaveBeenCalledWith('s1', 7000, '/lab', 'Port 7000')
    expect(showServer).toHaveBeenCalledWith('s1')
  })

  it('switches a kind off through the API and keeps the error', async () => {
    const { f, s } = started()
    await s.setKind('new-app', false)
    expect(f.api.setNotification).toHaveBeenCalledWith('new-app', false)
    f.api.setNotification.mockRejectedValueOnce(new Error('settings.json is broken'))
    await s.setKind('needs-you', true)
    expect(s.error).toContain('broken')
  })

  it('renders toasts with their action', async () => {
    const { f } = started()
    const w = mount(ToastStack)
    f.emit({ topic: 'notify.toast', data: note() })
    await w.vm.$nextTick()
    expect(w.text()).toContain('TensorBoard appeared on gpu1 (port 6006)')
    await w.get('button.action').trigger('click')
    expect(openApp).toHaveBeenCalled()
    w.unmount()
  })
})
