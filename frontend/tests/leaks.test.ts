import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '@/api/errors'
import LeakedTunnelsPanel from '@/components/LeakedTunnelsPanel.vue'
import { useLeaksStore } from '@/stores/leaks'
import { fakeApi, tunnel } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => {
  document.body.innerHTML = ''
})

const attached = tunnel({
  pid: 77,
  parent: { pid: 500, name: 'bash', exists: true },
  orphan: 'attached',
  leaked: false,
  orphanWhy: 'started by bash (PID 500), which is still running',
})
const exposed = tunnel({
  pid: 99,
  otherMachines: true,
  adoptable: false,
  forwards: [{ ...tunnel().forwards[0]!, listeners: ['0.0.0.0:8080'], exposes: '0.0.0.0:8080 → localhost:80, as seen from web1', reach: 'network', who: 'It listens beyond loopback.' }],
})

function setup(list = [tunnel(), attached]) {
  const f = fakeApi()
  f.api.listLeakedTunnels.mockResolvedValue({ tunnels: list, leaked: list.filter((t) => t.leaked).length })
  const store = useLeaksStore()
  store.start(f.api)
  return { f, store }
}

describe('leaks store', () => {
  it('lists the tunnels and the leaked ones', async () => {
    const { store } = setup()
    await store.refresh()
    expect(store.loaded).toBe(true)
    expect(store.tunnels.map((t) => t.pid)).toEqual([4242, 77])
    expect(store.leaked.map((t) => t.pid)).toEqual([4242])
  })

  it('keeps the last list and says why when listing fails', async () => {
    const { f, store } = setup()
    await store.refresh()
    f.api.listLeakedTunnels.mockRejectedValueOnce(new ApiError('list the processes: boom', 'ListLeakedTunnels', 500))
    await store.refresh()
    expect(store.error).toContain('boom')
    expect(store.tunnels).toHaveLength(2)
  })

  it('ends a tunnel, reads the list again and says what it did', async () => {
    const { f, store } = setup()
    f.api.endTunnelProcess.mockResolvedValueOnce({ pid: 4242, signal: 'SIGKILL' })
    expect(await store.end(4242)).toBe(true)
    expect(f.api.endTunnelProcess).toHaveBeenCalledWith(4242)
    expect(f.api.listLeakedTunnels).toHaveBeenCalledTimes(1)
    expect(store.notice).toContain('killed')
    expect(store.busyPid).toBeNull()
  })

  it("keeps the backend's refusal for the dialog", async () => {
    const { f, store } = setup()
    f.api.endTunnelProcess.mockRejectedValueOnce(new ApiError("ssh (PID 4242) is bob's, not yours", 'EndTunnelProcess', 409))
    expect(await store.end(4242)).toBe(false)
    expect(store.actionError).toContain("bob's, not yours")
    expect(store.notice).toBeNull()
  })

  it('adopts a tunnel and names where Porthole listens', async () => {
    const { f, store } = setup()
    expect(await store.adopt(4242)).toBe(true)
    expect(f.api.adoptTunnelProcess).toHaveBeenCalledWith(4242)
    expect(store.notice).toContain('127.0.0.1:8080')
    expect(store.notice).toContain('web1 (a new server)')
  })

  it('runs one action at a time', async () => {
    const { f, store } = setup()
    let release!: () => void
    f.api.endTunnelProcess.mockImplementationOnce(() => new Promise((r) => (release = () => r({ pid: 4242, signal: 'SIGTERM' }))))
    const first = store.end(4242)
    expect(store.busyPid).toBe(4242)
    expect(await store.adopt(77)).toBe(false)
    expect(f.api.adoptTunnelProcess).not.toHaveBeenCalled()
    release()
    expect(await first).toBe(true)
  })
})

describe('LeakedTunnelsPanel', () => {
  async function mountPanel(list = [tunnel(), attached, exposed]) {
    const { f, store } = setup(list)
    const w = mount(LeakedTunnelsPanel, { attachTo: document.body })
    await flushPromises()
    return { f, store, w }
  }

  it('shows each tunnel: leaked or not, what it exposes and to whom', async () => {
    const { w } = await mountPanel()
    const cards = w.findAll('[data-testid="tunnel"]')
    expect(cards).toHaveLength(3)
    const [leaked, running, open] = [cards[0]!, cards[1]!, cards[2]!]
    expect(leaked.text()).toContain('Leaked')
    expect(leaked.text()).toContain('127.0.0.1:8080 → localhost:80, as seen from web1')
    expect(leaked.text()).toContain('Every user of this computer can connect')
    expect(running.text()).toContain('Running')
    expect(running.text()).toContain('started by bash')
    expect(open.find('[data-testid="other-machines"]').exists()).toBe(true)
    expect(open.find('[data-testid="adopt"]').attributes('disabled')).toBeDefined()
    expect(w.text()).toContain('2 leaked of 3')
  })

  it('says so when there is nothing', async () => {
    const { w } = await mountPanel([])
    expect(w.find('[data-testid="leaks-empty"]').exists()).toBe(true)
  })

  it('ends a tunnel only after the confirmation', async () => {
    const { f, w } = await mountPanel()
    await w.findAll('[data-testid="end"]')[0]!.trigger('click')
    expect(f.api.endTunnelProcess).not.toHaveBeenCalled()
    const dialog = document.querySelector('dialog[open]')
    expect(dialog?.textContent).toContain('End ssh PID 4242?')
    expect(dialog?.textContent).toContain('SIGTERM')
    const confirm = [...(dialog?.querySelectorAll('button') ?? [])].find((b) => b.textContent?.includes('End process'))
    confirm?.click()
    await flushPromises()
    expect(f.api.endTunnelProcess).toHaveBeenCalledWith(4242)
    expect(document.querySelector('dialog[open]')).toBeNull()
    expect(w.find('[data-testid="leaks-notice"]').text()).toContain('Ended PID 4242')
  })

  it('cancelling the confirmation ends nothing', async () => {
    const { f, w } = await mountPanel()
    await w.findAll('[data-testid="adopt"]')[0]!.trigger('click')
    const dialog = document.querySelector('dialog[open]')
    expect(dialog?.textContent).toContain('Adopt ssh PID 4242?')
    expect(dialog?.textContent).toContain('127.0.0.1:8080')
    ;[...(dialog?.querySelectorAll('button') ?? [])].find((b) => b.textContent?.includes('Cancel'))?.click()
    await flushPromises()
    expect(f.api.adoptTunnelProcess).not.toHaveBeenCalled()
    expect(f.api.endTunnelProcess).not.toHaveBeenCalled()
  })

  it('adopts after the confirmation; a refusal stays in the dialog', async () => {
    const { f, w } = await mountPanel()
    f.api.adoptTunnelProcess.mockRejectedValueOnce(new ApiError('connect web1 before taking the tunnel over (the ssh keeps running): refused', 'AdoptTunnelProcess', 502))
    await w.findAll('[data-testid="adopt"]')[0]!.trigger('click')
    let dialog = document.querySelector('dialog[open]')
    ;[...(dialog?.querySelectorAll('button') ?? [])].find((b) => b.textContent?.trim() === 'Adopt')?.click()
    await flushPromises()
    dialog = document.querySelector('dialog[open]')
    expect(dialog?.textContent).toContain('the ssh keeps running')
    ;[...(dialog?.querySelectorAll('button') ?? [])].find((b) => b.textContent?.trim() === 'Adopt')?.click()
    await flushPromises()
    expect(f.api.adoptTunnelProcess).toHaveBeenCalledTimes(2)
    expect(document.querySelector('dialog[open]')).toBeNull()
    expect(w.find('[data-testid="leaks-notice"]').text()).toContain('Porthole now runs the tunnel')
  })
})
