import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import App from '@/App.vue'
import SettingsDialog from '@/components/SettingsDialog.vue'
import StatusBar from '@/components/StatusBar.vue'
import { ApiError } from '@/api/errors'
import type { PortholeApi, Settings } from '@/api'
import { useAppStore } from '@/stores/app'
import { useDesktopStore } from '@/stores/desktop'
import { useNotifyStore } from '@/stores/notify'
import { fakeApi } from './fakeApi'

beforeEach(() => {
  setActivePinia(createPinia())
})

const desktopStatus = {
  mode: 'desktop' as const,
  startedAt: '',
  servers: 0,
  forwards: 0,
  os: 'linux',
  tray: true,
  hideOnClose: true,
  startAtLogin: true,
  startAtLoginSupported: true,
}

async function setup(over: Partial<PortholeApi> = {}) {
  const f = fakeApi({ kind: 'wails', ...over } as Partial<PortholeApi>)
  const app = useAppStore()
  app.initTheme({ root: document.createElement('html') })
  await app.start(f.api)
  useNotifyStore().start(f.api)
  f.emit({ topic: 'app.status', data: desktopStatus })
  const settings: Settings = {
    theme: 'system',
    hideOnClose: true,
    startHidden: true,
    inspector: false,
    notify: { serverDown: true, needsYou: true, agentCrash: true, newApp: true },
    defaults: { pingThresholdSec: 30, idleTimeoutSec: 0, poolSize: 0, loopbackPerServer: true, cookiesPerApp: true },
  }
  f.emit({ topic: 'settings', data: settings })
  const w = mount(SettingsDialog, { props: { open: true }, attachTo: document.body })
  await flushPromises()
  return { f, w }
}

describe('StatusBar', () => {
  it('keeps a gear button that asks for the settings', async () => {
    const w = mount(StatusBar)
    await w.get('[data-testid="open-settings"]').trigger('click')
    expect(w.emitted('settings')).toHaveLength(1)
    expect(w.find('[data-testid="hide-on-close"]').exists()).toBe(false)
    expect(w.find('[role="radio"]').exists()).toBe(false)
  })
})

describe('SettingsDialog', () => {
  it('each switch calls its API method', async () => {
    const { f, w } = await setup()
    const box = (id: string) => w.get(`[data-testid="${id}"]`)
    expect((box('start-hidden').element as HTMLInputElement).checked).toBe(true)

    await box('hide-on-close').setValue(false)
    expect(f.api.setHideOnClose).toHaveBeenCalledWith(false)
    await box('start-at-login').setValue(false)
    expect(f.api.setStartAtLogin).toHaveBeenCalledWith(false)
    await box('start-hidden').setValue(false)
    expect(f.api.setStartHidden).toHaveBeenCalledWith(false)
    await box('notify-new-app').setValue(false)
    expect(f.api.setNotification).toHaveBeenCalledWith('new-app', false)
    await box('inspector').setValue(true)
    expect(f.api.setInspector).toHaveBeenCalledWith(true)
    expect((box('tab-discard').element as HTMLSelectElement).value).toBe('1800')
    await box('tab-discard').setValue('3600')
    expect(f.api.setTabDiscard).toHaveBeenCalledWith(3600)

    await w.get('[role="radio"][aria-label="Dark"]').trigger('click')
    await flushPromises()
    expect(f.api.setTheme).toHaveBeenCalledWith('dark')
    w.unmount()
  })

  it('applies the defaults for new servers', async () => {
    const { f, w } = await setup()
    await w.get('[data-testid="def-ping"]').setValue('45')
    await w.get('[data-testid="def-idle"]').setValue('3600')
    await w.get('[data-testid="def-pool"]').setValue('4')
    expect((w.get('[data-testid="def-cookies-per-app"]').element as HTMLInputElement).checked).toBe(true)
    await w.get('[data-testid="def-cookies-per-app"]').setValue(false)
    await w.get('[data-testid="server-defaults"]').trigger('submit')
    await flushPromises()
    expect(f.api.setServerDefaults).toHaveBeenLastCalledWith({ pingThresholdSec: 45, idleTimeoutSec: 3600, poolSize: 4, loopbackPerServer: true, cookiesPerApp: false })
    await w.get('[data-testid="def-loopback"]').setValue(false)
    expect((w.get('[data-testid="def-cookies-per-app"]').element as HTMLInputElement).disabled).toBe(true)
    await w.get('[data-testid="server-defaults"]').trigger('submit')
    await flushPromises()
    expect(f.api.setServerDefaults).toHaveBeenLastCalledWith({ pingThresholdSec: 45, idleTimeoutSec: 3600, poolSize: 4, loopbackPerServer: false, cookiesPerApp: false })
    expect(w.find('[data-testid="defaults-error"]').exists()).toBe(false)
    expect(w.text()).toContain('Applies to new endpoints')
    w.unmount()
  })

  it('shows why a value is refused, before and by the backend', async () => {
    const refuse = vi.fn(async (): Promise<Settings> => {
      throw new ApiError('idle timeout 90000 s is out of range: use 0 (never) to 24 h (86400 s)', 'SetServerDefaults', 400)
    })
    const { f, w } = await setup({ setServerDefaults: refuse })
    // Out of range here: said at once, nothing sent.
    await w.get('[data-testid="def-ping"]').setValue('0')
    await w.get('[data-testid="server-defaults"]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="defaults-error"]').text()).toContain('ping threshold')
    expect(f.api.setServerDefaults).not.toHaveBeenCalled()

    // The backend has the last word.
    await w.get('[data-testid="def-ping"]').setValue('30')
    await w.get('[data-testid="server-defaults"]').trigger('submit')
    await flushPromises()
    expect(refuse).toHaveBeenCalledOnce()
    expect(w.get('[data-testid="defaults-error"]').text()).toContain('idle timeout 90000 s is out of range')
    w.unmount()
  })

  it('in serve mode shows no window switches', async () => {
    const f = fakeApi()
    await useAppStore().start(f.api)
    f.emit({ topic: 'app.status', data: { ...desktopStatus, mode: 'serve' } })
    const w = mount(SettingsDialog, { props: { open: true }, attachTo: document.body })
    await flushPromises()
    expect(w.find('[data-testid="settings-window"]').exists()).toBe(false)
    expect(w.find('[data-testid="notify-server-down"]').exists()).toBe(true)
    w.unmount()
  })
})

describe('opening Settings', () => {
  it('the gear, Ctrl+, and the tray\'s Settings… open the dialog', async () => {
    const f = fakeApi()
    useAppStore().initTheme({ root: document.createElement('html') })
    const w = mount(App, { props: { api: f.api }, attachTo: document.body })
    await flushPromises()
    const dialog = () => w.get('dialog[aria-labelledby="settings-title"]')
    expect(dialog().attributes('open')).toBeUndefined()

    await w.get('[data-testid="open-settings"]').trigger('click')
    await flushPromises()
    expect(dialog().attributes('open')).toBeDefined()
    await dialog().findAll('button').find((b) => b.text() === 'Close')!.trigger('click')
    await flushPromises()
    expect(dialog().attributes('open')).toBeUndefined()

    window.dispatchEvent(new KeyboardEvent('keydown', { key: ',', ctrlKey: true }))
    await flushPromises()
    expect(dialog().attributes('open')).toBeDefined()
    await dialog().findAll('button').find((b) => b.text() === 'Close')!.trigger('click')
    await flushPromises()

    await useDesktopStore().handle({ seq: 1_000_000, kind: 'settings' })
    await flushPromises()
    expect(dialog().attributes('open')).toBeDefined()
    expect(useDesktopStore().settingsAsked).toBe(false)
    w.unmount()
  })
})
