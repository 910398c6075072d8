import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import AppCard from '@/components/apps/AppCard.vue'
import AppRulesPanel from '@/components/apps/AppRulesPanel.vue'
import { useAppRulesStore } from '@/stores/appRules'
import { fakeApi, service } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))

function setup(over: Parameters<typeof fakeApi>[0] = {}) {
  const f = fakeApi(over)
  const rules = useAppRulesStore()
  rules.start(f.api)
  return { f, rules }
}

describe('appRules store', () => {
  it('loads a server’s rules and reads a port’s label', async () => {
    const { f, rules } = setup()
    f.api.getAppRules.mockResolvedValue({ ignorePorts: '8000-8100', ports: { '6006': { label: ' Board ', onAppear: 'open-tab' } } })
    await rules.load('s1')
    expect(f.api.getAppRules).toHaveBeenCalledWith('s1')
    expect(rules.label('s1', 6006)).toBe('Board')
    expect(rules.attributes('s1', 6006).onAppear).toBe('open-tab')
    expect(rules.label('s1', 8888)).toBe('')
    expect(rules.of('s1').ignorePorts).toBe('8000-8100')
  })

  it('keeps a load error for the page and never throws', async () => {
    const { f, rules } = setup()
    f.api.getAppRules.mockRejectedValue(new Error('no server "s9"'))
    await rules.load('s9')
    expect(rules.errors.s9).toBe('no server "s9"')
  })

  it('saves a port’s attributes and keeps the other ports', async () => {
    const { f, rules } = setup()
    f.api.getAppRules.mockResolvedValue({ ports: { '5000': { label: 'API' } } })
    await rules.load('s1')
    expect(await rules.setAttributes('s1', 6006, { label: '  Board ', onAppear: 'ignore' })).toBe('')
    expect(f.api.setAppAttributes).toHaveBeenCalledWith('s1', 6006, { label: 'Board', onAppear: 'ignore' })
    expect(rules.label('s1', 6006)).toBe('Board')
    expect(rules.label('s1', 5000)).toBe('API')
  })

  it('returns the backend’s refusal of attributes', async () => {
    const { f, rules } = setup()
    f.api.setAppAttributes.mockRejectedValue(new Error('port 0 is not a TCP port'))
    expect(await rules.setAttributes('s1', 0, {})).toBe('port 0 is not a TCP port')
  })

  it('saves ignored ranges, and shows the validation error until a save succeeds', async () => {
    const { f, rules } = setup()
    f.api.setIgnoredPorts.mockRejectedValueOnce(new Error('port range 9100-9000 goes down'))
    expect(await rules.setIgnoredPorts('s1', '9100-9000', false)).toBe(false)
    expect(rules.errors.s1).toBe('port range 9100-9000 goes down')
    f.api.setIgnoredPorts.mockResolvedValueOnce({ ignorePorts: '8000, 9000-9100', notifyEphemeral: true })
    expect(await rules.setIgnoredPorts('s1', ' 9000-9100,8000 ', true)).toBe(true)
    expect(f.api.setIgnoredPorts).toHaveBeenLastCalledWith('s1', '9000-9100,8000', true)
    expect(rules.errors.s1).toBeUndefined()
    expect(rules.of('s1')).toMatchObject({ ignorePorts: '8000, 9000-9100', notifyEphemeral: true })
  })
})

describe('AppCard menu', () => {
  it('shows the label and sets the label and on-appear action', async () => {
    const { f, rules } = setup()
    f.api.getAppRules.mockResolvedValue({ ports: { '8888': { onAppear: 'notify' } } })
    await rules.load('s1')
    const w = mount(AppCard, { props: { service: service(), now: Date.now(), serverId: 's1', label: '' } })
    expect(w.find('h3').text()).toBe('Jupyter Lab — ~/project')
    await w.get('[data-testid="app-attrs-toggle"]').trigger('click')
    const select = w.get<HTMLSelectElement>('[data-testid="app-attrs-on-appear"]')
    expect(select.element.value).toBe('auto') // an explicit "notify" is shown as Notify
    expect(select.findAll('option').map((o) => o.text())).toEqual(['Notify', 'Open a tab', 'Ignore'])
    await w.get('[data-testid="app-attrs-label"]').setValue('Notebooks')
    await select.setValue('open-tab')
    await w.get('[data-testid="app-attrs-menu"]').trigger('submit')
    await flushPromises()
    expect(f.api.setAppAttributes).toHaveBeenCalledWith('s1', 8888, { label: 'Notebooks', onAppear: 'open-tab' })
    expect(w.find('[data-testid="app-attrs-menu"]').exists()).toBe(false)
    await w.setProps({ label: rules.label('s1', 8888) })
    expect(w.find('h3').text()).toBe('Notebooks')
    expect(w.get('[data-testid="app-title-original"]').text()).toBe('Jupyter Lab — ~/project')
  })

  it('keeps the menu open with the backend’s error', async () => {
    const { f } = setup()
    f.api.setAppAttributes.mockRejectedValue(new Error('label is too long'))
    const w = mount(AppCard, { props: { service: service(), now: Date.now(), serverId: 's1' } })
    await w.get('[data-testid="app-attrs-toggle"]').trigger('click')
    await w.get('[data-testid="app-attrs-menu"]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="app-attrs-error"]').text()).toBe('label is too long')
  })

  it('has no menu without a server (this computer)', () => {
    setup()
    const w = mount(AppCard, { props: { service: service(), now: Date.now() } })
    expect(w.find('[data-testid="app-attrs"]').exists()).toBe(false)
  })
})

describe('AppRulesPanel', () => {
  it('loads the ranges, saves them and shows the backend’s validation error', async () => {
    const { f } = setup()
    f.api.getAppRules.mockResolvedValue({ ignorePorts: '8000-8100', notifyEphemeral: false })
    const w = mount(AppRulesPanel, { props: { serverId: 's1' } })
    await flushPromises()
    const input = w.get<HTMLInputElement>('[data-testid="app-rules-ranges"]')
    expect(input.element.value).toBe('8000-8100')

    f.api.setIgnoredPorts.mockRejectedValueOnce(new Error('port range 9100-9000 goes down'))
    await input.setValue('9100-9000')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="app-rules-error"]').text()).toBe('port range 9100-9000 goes down')
    expect(input.attributes('aria-invalid')).toBe('true')

    f.api.setIgnoredPorts.mockResolvedValueOnce({ ignorePorts: '8000, 9000-9100', notifyEphemeral: true })
    await input.setValue('9000-9100,8000')
    await w.get('[data-testid="app-rules-ephemeral"]').setValue(true)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.setIgnoredPorts).toHaveBeenLastCalledWith('s1', '9000-9100,8000', true)
    expect(w.find('[data-testid="app-rules-error"]').exists()).toBe(false)
    expect(input.element.value).toBe('8000, 9000-9100')
    expect(w.find('[data-testid="app-rules-saved"]').exists()).toBe(true)
  })
})
