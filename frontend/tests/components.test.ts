import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import App from '@/App.vue'
import AppSidebar from '@/components/AppSidebar.vue'
import StatusBar from '@/components/StatusBar.vue'
import { fakeApi } from './fakeApi'
import { useAppStore } from '@/stores/app'
import { useServersStore } from '@/stores/servers'

beforeEach(() => {
  setActivePinia(createPinia())
})

describe('AppSidebar', () => {
  it('shows This computer and, with no servers, an empty state that invites adding one', async () => {
    const servers = useServersStore()
    servers.loaded = true
    const w = mount(AppSidebar)
    expect(w.text()).toContain('This computer')
    const empty = w.get('[data-testid="servers-empty"]')
    expect(empty.text()).toContain('No servers yet')
    const add = empty.get('button')
    expect(add.text()).toContain('Add server')
    await add.trigger('click')
    expect(w.emitted('add-server')).toHaveLength(1)
    // The section's + button has an accessible name too.
    const plus = w.get('button[aria-label="Add server"]')
    await plus.trigger('click')
    expect(w.emitted('add-server')).toHaveLength(2)
  })

  it('lists servers instead of the empty state when there are some', () => {
    const servers = useServersStore()
    servers.loaded = true
    servers.servers = [{ id: 's1', name: 'gpu-box', host: 'gpu.lab', user: 'alice', port: 2222, state: 'connected' }]
    const w = mount(AppSidebar)
    expect(w.find('[data-testid="servers-empty"]').exists()).toBe(false)
    expect(w.text()).toContain('gpu-box')
    expect(w.text()).toContain('alice@gpu.lab:2222')
  })

  it('shows nothing for the list while it is loading', () => {
    const w = mount(AppSidebar)
    expect(w.find('[data-testid="servers-empty"]').exists()).toBe(false)
  })
})

describe('StatusBar', () => {
  it('shows connection, mode (from the event) and version', async () => {
    const f = fakeApi()
    const app = useAppStore()
    app.initTheme({ root: document.createElement('html') })
    await app.start(f.api)
    const w = mount(StatusBar)
    expect(w.get('[data-testid="connection"]').text()).toBe('Connecting…')
    expect(w.find('[data-testid="mode"]').exists()).toBe(false)
    expect(w.get('[data-testid="version"]').text()).toBe('Porthole v0.4.2')

    f.connect('open')
    f.emit({ topic: 'app.status', data: { mode: 'serve', startedAt: '', servers: 0, forwards: 0 } })
    await flushPromises()
    expect(w.get('[data-testid="connection"]').text()).toBe('Connected')
    expect(w.get('[data-testid="mode"]').text()).toBe('serve')

    f.connect('connecting')
    await flushPromises()
    expect(w.get('[data-testid="connection"]').text()).toBe('Reconnecting…')
  })
})

describe('App', () => {
  it('without an api (no token) shows the full-page token message', () => {
    const w = mount(App, { props: { api: null } })
    expect(w.text()).toContain('Open the URL that porthole serve printed (it carries the access token).')
    expect(w.text()).not.toContain('This computer')
  })

  it('with an api shows the shell: sidebar, Start tab (not closable), start page, status bar', async () => {
    const f = fakeApi()
    useAppStore().initTheme({ root: document.createElement('html') })
    const w = mount(App, { props: { api: f.api }, attachTo: document.body })
    await flushPromises()
    expect(w.text()).toContain('This computer')
    const tabs = w.findAll('[role="tab"]')
    expect(tabs).toHaveLength(1)
    expect(tabs[0]!.text()).toBe('Start')
    expect(tabs[0]!.attributes('aria-selected')).toBe('true')
    expect(w.find('button[aria-label="Close Start"]').exists()).toBe(false)
    expect(w.get('h1').text()).toBe('Welcome to Porthole')
    expect(w.get('[data-testid="version"]').text()).toContain('0.4.2')
    await vi.waitFor(() => expect(f.api.uiReady).toHaveBeenCalledOnce())

    // The Start page's call to action opens the add-server form.
    const dialog = w.get('dialog[aria-labelledby="server-form-title"]')
    expect(dialog.attributes('open')).toBeUndefined()
    const cta = w.findAll('button').find((b) => b.text() === 'Add server' && b.classes('btn-primary'))!
    await cta.trigger('click')
    await flushPromises()
    expect(dialog.attributes('open')).toBeDefined()
    expect(dialog.text()).toContain('Add a server')
    await dialog.findAll('button').find((b) => b.text() === 'Cancel')!.trigger('click')
    await flushPromises()
    expect(dialog.attributes('open')).toBeUndefined()
    w.unmount()
  })
})
