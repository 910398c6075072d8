import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import CommandPalette from '@/components/CommandPalette.vue'
import { fuzzyScore, markRuns, rankCommands, type Command } from '@/lib/palette'
import { matchShortcut, shortcutLabel, type KeyLike } from '@/lib/shortcuts'
import { useAppsStore } from '@/stores/apps'
import { usePaletteStore } from '@/stores/palette'
import { useServersStore } from '@/stores/servers'
import { useTabLoadingStore } from '@/stores/tabLoading'
import { useTabsStore } from '@/stores/tabs'
import type { AppService } from '@/api'

beforeEach(() => {
  setActivePinia(createPinia())
})

function cmd(id: string, title: string, kind: Command['kind'] = 'action', extra: Partial<Command> = {}): Command {
  return { id, kind, title, run: () => {}, ...extra }
}

describe('fuzzyScore', () => {
  it.each([
    ['jl', 'Jupyter Lab', true],
    ['jupy', 'Jupyter Lab', true],
    ['JUP LAB', 'Jupyter Lab', true],
    ['lj', 'Jupyter Lab', false],
    ['xyz', 'Jupyter Lab', false],
    ['', 'anything', true],
    ['settings', 'Settings', true],
    ['gpu1', 'Connect gpu1', true],
  ])('%j in %j matches: %s', (q, text, want) => {
    expect(fuzzyScore(q, text) !== null).toBe(want)
  })

  it('marks the letters it matched, preferring word starts', () => {
    expect(fuzzyScore('jl', 'Jupyter Lab')?.marks).toEqual([0, 8])
    expect(markRuns('Jupyter Lab', [0, 8])).toEqual([
      ['J', true],
      ['upyter ', false],
      ['L', true],
      ['ab', false],
    ])
  })

  it('scores a prefix and consecutive letters above scattered ones', () => {
    const prefix = fuzzyScore('con', 'Connect gpu1')!.score
    const scattered = fuzzyScore('con', 'Close the notebook')!.score
    expect(prefix).toBeGreaterThan(scattered)
  })
})

describe('rankCommands', () => {
  const list = [
    cmd('settings', 'Settings'),
    cmd('connect:a', 'Connect gpu1', 'action', { detail: 'alice@gpu1.lab' }),
    cmd('server:a', 'gpu1', 'server', { keywords: 'gpu1.lab' }),
    cmd('app:a:8888', 'Jupyter Lab — ~/proj', 'app', { detail: 'gpu1 · port 8888' }),
    cmd('tab:t1', 'TensorBoard', 'tab'),
  ]

  it('lists everything, tabs and apps first, with no query', () => {
    const ids = rankCommands(list, '').map((m) => m.command.id)
    expect(ids).toHaveLength(5)
    expect(ids[0]).toBe('tab:t1')
    expect(ids[1]).toBe('app:a:8888')
  })

  it('puts the best match first and drops what does not match', () => {
    expect(rankCommands(list, 'gpu1')[0]!.command.id).toBe('server:a')
    expect(rankCommands(list, 'sett').map((m) => m.command.id)).toEqual(['settings'])
    expect(rankCommands(list, 'zzz')).toEqual([])
  })

  it('matches the title and the details together: an app by its server', () => {
    const two = [...list, cmd('app:b:8888', 'Jupyter Lab — ~/proj', 'app', { detail: 'cpu2 · port 8888' })]
    expect(rankCommands(two, 'jupyter cpu2').map((m) => m.command.id)).toEqual(['app:b:8888'])
    expect(rankCommands(two, 'jupyter').length).toBe(2)
  })

  it('matches details and keywords, below title matches', () => {
    const m = rankCommands(list, '8888')
    expect(m.map((x) => x.command.id)).toEqual(['app:a:8888'])
    expect(m[0]!.marks).toEqual([])
  })
})

describe('shortcuts', () => {
  const k = (key: string, mods: Partial<KeyLike> = {}): KeyLike => ({ key, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods })
  it('Ctrl+K and Ctrl+Shift+P open the palette (⌘ on macOS)', () => {
    expect(matchShortcut(k('k', { ctrlKey: true }), false)).toBe('palette')
    expect(matchShortcut(k('P', { ctrlKey: true, shiftKey: true }), false)).toBe('palette')
    expect(matchShortcut(k('k', { metaKey: true }), true)).toBe('palette')
    expect(matchShortcut(k('k', { ctrlKey: true, altKey: true }), false)).toBe(null)
    expect(shortcutLabel('palette', false)).toBe('Ctrl+K')
  })
})

function web(port: number, title: string): AppService {
  return { port, kind: 'jupyter', kindName: 'Jupyter', title, isWeb: true, openPath: '/lab', local: false }
}

async function mountOpen() {
  const w = mount(CommandPalette, { props: { api: null }, attachTo: document.body })
  const palette = usePaletteStore()
  palette.show()
  await flushPromises()
  return { w, palette }
}

describe('CommandPalette', () => {
  it('is an ARIA combobox whose active option follows the arrow keys', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', user: 'alice', state: 'disconnected' }]
    const { w } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    expect(input.attributes('role')).toBe('combobox')
    expect(input.attributes('aria-controls')).toBe('palette-list')
    expect(w.get('#palette-list').attributes('role')).toBe('listbox')
    const first = input.attributes('aria-activedescendant')
    expect(first).toBe('palette-opt-0')
    expect(w.get(`#${first}`).attributes('aria-selected')).toBe('true')
    await input.trigger('keydown', { key: 'ArrowDown' })
    expect(input.attributes('aria-activedescendant')).toBe('palette-opt-1')
    expect(w.get('#palette-opt-1').attributes('aria-selected')).toBe('true')
    expect(w.get('#palette-opt-0').attributes('aria-selected')).toBe('false')
    await input.trigger('keydown', { key: 'ArrowUp' })
    await input.trigger('keydown', { key: 'ArrowUp' })
    const n = w.findAll('[role="option"]').length
    expect(input.attributes('aria-activedescendant')).toBe(`palette-opt-${n - 1}`)
    w.unmount()
  })

  it('keeps the chosen row when the list grows under it (apps arriving after opening)', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', state: 'connected' }]
    const { w } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.trigger('keydown', { key: 'ArrowDown' })
    await input.trigger('keydown', { key: 'ArrowDown' })
    const chosen = w.get('#palette-opt-2').attributes('data-command')
    useAppsStore().byServer = { s1: { list: { serverId: 's1', services: [web(8888, 'Jupyter')], scannedAt: '' }, scanning: false, error: null } }
    await flushPromises()
    const now = input.attributes('aria-activedescendant')!
    expect(w.get(`#${now}`).attributes('data-command')).toBe(chosen)
    expect(w.get(`#${now}`).attributes('aria-selected')).toBe('true')
    expect(w.find('[data-command="app:s1:8888"]').exists()).toBe(true)
    w.unmount()
  })

  it('Enter runs the best match: Connect connects the server and opens its page', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', user: 'alice', state: 'disconnected' }]
    const connect = vi.spyOn(servers, 'connect').mockResolvedValue(null)
    const { w, palette } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.setValue('connect gpu')
    expect(w.get('#palette-opt-0').attributes('data-command')).toBe('connect:s1')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(connect).toHaveBeenCalledWith('s1')
    expect(palette.open).toBe(false)
    expect(useTabsStore().active.serverId).toBe('s1')
    w.unmount()
  })

  it('offers a connected server’s apps and opens one in a tab', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', state: 'connected' }]
    const apps = useAppsStore()
    apps.byServer = { s1: { list: { serverId: 's1', services: [web(8888, 'Jupyter Lab — ~/proj')], scannedAt: '' }, scanning: false, error: null } }
    const loader = useTabLoadingStore()
    const open = vi.spyOn(loader, 'openApp').mockResolvedValue(undefined as never)
    const { w } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.setValue('jupy')
    expect(w.get('#palette-opt-0').attributes('data-command')).toBe('app:s1:8888')
    expect(w.get('#palette-opt-0').text()).toContain('gpu1 · port 8888')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(open).toHaveBeenCalledWith('s1', 8888, '/lab', expect.objectContaining({ title: 'Jupyter Lab — ~/proj' }))
    w.unmount()
  })

  it('"Open port on …" leaves a request for that server’s page, taken once', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', state: 'connected' }]
    const { w, palette } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.setValue('open port gpu1')
    expect(w.get('#palette-opt-0').attributes('data-command')).toBe('openport:s1')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(palette.take('add-rule', 's1')).toBe(false)
    expect(palette.take('open-port', 's2')).toBe(false)
    expect(palette.take('open-port', 's1')).toBe(true)
    expect(palette.take('open-port', 's1')).toBe(false)
    w.unmount()
  })

  it('says what failed when a command fails, and stays usable', async () => {
    const servers = useServersStore()
    servers.servers = [{ id: 's1', name: 'gpu1', host: 'gpu1.lab', state: 'failed' }]
    vi.spyOn(servers, 'connect').mockResolvedValue('the server refused the key')
    const { w, palette } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.setValue('connect gpu1')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(palette.open).toBe(true)
    expect(w.get('[data-testid="palette-error"]').text()).toContain('Connect gpu1: the server refused the key')
    w.unmount()
  })

  it('shows that nothing matches, and Enter then does nothing', async () => {
    const { w, palette } = await mountOpen()
    const input = w.get('[data-testid="palette-input"]')
    await input.setValue('qqqqzzz')
    expect(w.text()).toContain('Nothing matches')
    await input.trigger('keydown', { key: 'Enter' })
    expect(palette.open).toBe(true)
    w.unmount()
  })
})
