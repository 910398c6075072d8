import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Profile, ServerSummary } from '@/api/types'
import AppBanners from '@/components/AppBanners.vue'
import AppSidebar from '@/components/AppSidebar.vue'
import ConnectionProgress from '@/components/ConnectionProgress.vue'
import HostKeyChangedDialog from '@/components/HostKeyChangedDialog.vue'
import ImportDialog from '@/components/ImportDialog.vue'
import PromptDialog from '@/components/PromptDialog.vue'
import ServerFormDialog from '@/components/ServerFormDialog.vue'
import ServerLog from '@/components/ServerLog.vue'
import { usePromptsStore } from '@/stores/prompts'
import { useServersStore } from '@/stores/servers'
import { fakeApi, prompt } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => {
  vi.useRealTimers()
  document.body.innerHTML = ''
})

async function withApi() {
  const f = fakeApi()
  await useServersStore().start(f.api)
  usePromptsStore().start(f.api)
  return f
}

describe('ServerFormDialog', () => {
  it('validates as you type (debounced, through ValidateServer) and shows a field error once touched', async () => {
    vi.useFakeTimers()
    const f = await withApi()
    f.api.validateServer.mockImplementation(async (p: Profile) => ({
      valid: false,
      fields: [
        ...(p.host ? [] : [{ field: 'host', reason: 'is required' }]),
        ...(p.port >= 1 && p.port <= 65535 ? [] : [{ field: 'port', reason: 'must be between 1 and 65535 (SSH usually uses 22)' }]),
        ...(p.keyPath === '/missing' ? [{ field: 'keyPath', reason: 'does not exist; choose an existing private key' }] : []),
      ],
    }))
    const w = mount(ServerFormDialog, { props: { open: true, debounceMs: 200 }, attachTo: document.body })
    await flushPromises()
    const port = w.get('#srv-port')
    await port.setValue('70000')
    await w.get('#srv-keyPath').setValue('/missing')
    expect(f.api.validateServer).not.toHaveBeenCalled() // debounced
    await vi.advanceTimersByTimeAsync(250)
    expect(f.api.validateServer).toHaveBeenCalledTimes(1)
    expect(f.api.validateServer.mock.calls[0]![0]).toMatchObject({ port: 70000, keyPath: '/missing' })
    // Port was typed in: its error shows. The key file and host were not blurred yet.
    expect(w.text()).toContain('must be between 1 and 65535')
    expect(w.text()).not.toContain('does not exist')
    expect(w.text()).not.toContain('is required')
    await w.get('#srv-keyPath').trigger('blur')
    expect(w.text()).toContain('does not exist; choose an existing private key')
    expect(w.get('#srv-keyPath').attributes('aria-invalid')).toBe('true')

    // Saving shows every error and does not call AddServer.
    await w.get('form').trigger('submit')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(w.text()).toContain('is required')
    expect(f.api.addServer).not.toHaveBeenCalled()
    w.unmount()
  })

  it('saves a valid server; the name defaults to the host and empty options are left out', async () => {
    const f = await withApi()
    const w = mount(ServerFormDialog, { props: { open: true, debounceMs: 0 }, attachTo: document.body })
    await flushPromises()
    await w.get('#srv-host').setValue('gpu.lab')
    await w.get('#srv-user').setValue('alice')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.addServer).toHaveBeenCalledOnce()
    const p = f.api.addServer.mock.calls[0]![0]
    expect(p).toMatchObject({ name: 'gpu.lab', host: 'gpu.lab', port: 22, user: 'alice', auth: [], options: {} })
    expect(w.emitted('saved')?.[0]?.[0]).toMatchObject({ id: 'new-id' })
    expect(w.emitted('update:open')?.[0]).toEqual([false])
    w.unmount()
  })

  it('edits a linked profile: the ssh config fields are read-only until unlinked', async () => {
    await withApi()
    const profile: Profile = { id: 's1', name: 'gpu', host: '10.0.0.7', port: 2200, user: 'alice', sshConfigAlias: 'gpu', options: { pingThreshold: '0s' } }
    const w = mount(ServerFormDialog, { props: { open: true, profile }, attachTo: document.body })
    await flushPromises()
    expect(w.text()).toContain('Edit gpu')
    expect(w.get('[data-testid="linked-note"]').text()).toContain('Host gpu')
    expect((w.get('#srv-host').element as HTMLInputElement).disabled).toBe(true)
    expect((w.get('#srv-pingThreshold').element as HTMLInputElement).value).toBe('')
    await w.get('[data-testid="linked-note"] button').trigger('click')
    expect((w.get('#srv-host').element as HTMLInputElement).disabled).toBe(false)
    w.unmount()
  })
})

describe('PromptDialog', () => {
  it('password: a password field and "Remember in keychain"; the answer carries both', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    f.emit({ topic: 'prompts', data: [prompt({ notice: 'The password saved in the keychain was not accepted.' })] })
    await flushPromises()
    expect(w.text()).toContain('Password for alice@gpu.lab:22')
    expect(w.get('[data-testid="prompt-notice"]').text()).toContain('was not accepted')
    const input = w.get('#prompt-secret')
    expect(input.attributes('type')).toBe('password')
    await input.setValue('hunter2')
    await w.get('[data-testid="prompt-remember"]').setValue(true)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.answerPrompt).toHaveBeenCalledWith('p1', { secret: 'hunter2', remember: true })
    w.unmount()
  })

  it('password without a keyring: remember is disabled and says why', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    f.emit({ topic: 'prompts', data: [prompt({ canRemember: false, keyringMessage: 'The system keyring is not available' })] })
    await flushPromises()
    const box = w.get('[data-testid="prompt-remember"]')
    expect((box.element as HTMLInputElement).disabled).toBe(true)
    expect(w.text()).toContain('The system keyring is not available')
    await w.get('#prompt-secret').setValue('pw')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.answerPrompt).toHaveBeenCalledWith('p1', { secret: 'pw', remember: false })
    w.unmount()
  })

  it('keyboard-interactive: the echo flag picks text or password fields; answers go in order', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    f.emit({
      topic: 'prompts',
      data: [prompt({ kind: 'keyboard-interactive', instruction: 'Two steps', questions: [{ prompt: 'User: ', echo: true }, { prompt: 'Code: ', echo: false }] })],
    })
    await flushPromises()
    expect(w.text()).toContain('Two steps')
    expect(w.get('#prompt-q0').attributes('type')).toBe('text')
    expect(w.get('#prompt-q1').attributes('type')).toBe('password')
    expect(w.find('[data-testid="prompt-remember"]').exists()).toBe(false)
    await w.get('#prompt-q0').setValue('alice')
    await w.get('#prompt-q1').setValue('123456')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(f.api.answerPrompt).toHaveBeenCalledWith('p1', { answers: ['alice', '123456'] })
    w.unmount()
  })

  it('unknown host key: type and fingerprint, and the three choices', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    const hostKey = { host: '[gpu.lab]:2222', address: 'gpu.lab:2222', keyType: 'ssh-ed25519', fingerprint: 'SHA256:abc', knownHostsFile: '/h/.ssh/known_hosts' }
    f.emit({ topic: 'prompts', data: [prompt({ kind: 'host-key', title: 'Unknown host key', hostKey })] })
    await flushPromises()
    expect(w.get('[data-testid="host-key-type"]').text()).toBe('ssh-ed25519')
    expect(w.get('[data-testid="host-key-fingerprint"]').text()).toBe('SHA256:abc')
    expect(w.text()).toContain('/h/.ssh/known_hosts')
    const labels = w.findAll('.dlg-foot button').map((b) => b.text())
    expect(labels).toEqual(['Reject', 'Accept once', 'Always accept'])
    // Keyboard focus starts on the safe choice.
    expect(document.activeElement?.textContent?.trim()).toBe('Reject')
    await w.findAll('.dlg-foot button')[2]!.trigger('click')
    await flushPromises()
    expect(f.api.answerPrompt).toHaveBeenCalledWith('p1', { hostKey: 'accept-always' })
    w.unmount()
  })

  it('closing the dialog cancels the question (and with it the connect)', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    f.emit({ topic: 'prompts', data: [prompt()] })
    await flushPromises()
    await w.get('button[aria-label="Close"]').trigger('click')
    await flushPromises()
    expect(f.api.cancelPrompt).toHaveBeenCalledWith('p1')
    expect(w.find('[data-testid="prompt"]').exists()).toBe(false)
    // Escape (the dialog's cancel event) does the same.
    f.emit({ topic: 'prompts', data: [prompt({ id: 'p2' })] })
    await flushPromises()
    await w.get('dialog').trigger('cancel')
    await flushPromises()
    expect(f.api.cancelPrompt).toHaveBeenCalledWith('p2')
    w.unmount()
  })

  it('after an answer it stays (busy) and the next question replaces it', async () => {
    const f = await withApi()
    const w = mount(PromptDialog, { attachTo: document.body })
    f.emit({ topic: 'prompts', data: [prompt({ kind: 'host-key', hostKey: { host: 'h', address: 'h:22', keyType: 't', fingerprint: 'f' } })] })
    await flushPromises()
    await w.findAll('.dlg-foot button')[1]!.trigger('click')
    f.emit({ topic: 'prompts', data: [] })
    await flushPromises()
    expect(w.get('dialog').attributes('open')).toBeDefined()
    expect(w.get('[data-testid="prompt"]').attributes('data-kind')).toBe('host-key')
    f.emit({ topic: 'prompts', data: [prompt({ id: 'p9' })] })
    await flushPromises()
    expect(w.get('[data-testid="prompt"]').attributes('data-kind')).toBe('password')
    expect(f.api.cancelPrompt).not.toHaveBeenCalled()
    w.unmount()
  })
})

describe('HostKeyChangedDialog', () => {
  it('shows the refusal with the new and the old fingerprint and the known_hosts line', async () => {
    await withApi()
    const s = useServersStore()
    const w = mount(HostKeyChangedDialog, { attachTo: document.body })
    s.hostKeyRefusal = {
      serverId: 's1',
      serverName: 'gpu',
      error: {
        kind: 'host-key-changed',
        message: 'refused',
        time: '',
        hostKey: {
          host: '[gpu.lab]:22',
          keyType: 'ssh-ed25519',
          fingerprint: 'SHA256:NEW',
          known: [{ type: 'ssh-ed25519', fingerprint: 'SHA256:OLD', file: '/h/.ssh/known_hosts', line: 7 }],
          removeCommand: "ssh-keygen -R '[gpu.lab]:22' -f '/h/.ssh/known_hosts'",
        },
      },
    }
    await flushPromises()
    const d = w.get('[data-testid="host-key-changed"]')
    expect(d.get('.dlg-title').classes()).toContain('danger-text')
    expect(d.get('[data-testid="host-key-new"]').text()).toBe('SHA256:NEW')
    expect(d.get('[data-testid="host-key-old"]').text()).toBe('SHA256:OLD')
    expect(d.text()).toContain('line 7 of /h/.ssh/known_hosts')
    expect(d.text()).toContain("ssh-keygen -R '[gpu.lab]:22'")
    await d.findAll('button').find((b) => b.text() === 'Close')!.trigger('click')
    expect(s.hostKeyRefusal).toBeNull()
    w.unmount()
  })
})

describe('ConnectionProgress', () => {
  const steps = [
    { step: 'resolving', elapsedMs: 0 },
    { step: 'connecting', elapsedMs: 2 },
    { step: 'host key', elapsedMs: 40, detail: 'root@h:22: ssh-ed25519 SHA256:x' },
  ]
  const status = (w: ReturnType<typeof mount>) => w.findAll('li').map((l) => `${l.attributes('data-step')}=${l.attributes('data-status')}`)

  it('connecting: done steps, the current one, pending ones; with elapsed time', () => {
    const w = mount(ConnectionProgress, { props: { progress: steps, state: 'connecting', waiting: 'waiting for you to check the host key' } })
    expect(status(w)).toEqual(['resolving=done', 'connecting=done', 'host key=current', 'authenticating=pending', 'ready=pending'])
    expect(w.text()).toContain('40 ms')
    expect(w.text()).toContain('waiting for you to check the host key')
  })

  it('failed: the last step is marked failed', () => {
    const w = mount(ConnectionProgress, { props: { progress: steps, state: 'failed' } })
    expect(status(w)).toContain('host key=failed')
  })

  it('connected: every step done', () => {
    const all = [...steps, { step: 'authenticating', elapsedMs: 60 }, { step: 'ready', elapsedMs: 1200 }]
    const w = mount(ConnectionProgress, { props: { progress: all, state: 'connected' } })
    expect(status(w).every((s) => s.endsWith('=done'))).toBe(true)
    expect(w.text()).toContain('1.2 s')
  })
})

describe('AppSidebar and AppBanners', () => {
  it('a status dot per server, with the state in words', async () => {
    const servers = useServersStore()
    servers.loaded = true
    const list: ServerSummary[] = [
      { id: 'a', name: 'a', host: 'a', state: 'connected' },
      { id: 'b', name: 'b', host: 'b', state: 'failed', lastError: { kind: 'auth', message: 'wrong password', time: '' } },
      { id: 'c', name: 'c', host: 'c', state: 'connecting' },
    ]
    servers.servers = list
    const w = mount(AppSidebar)
    const dots = w.findAll('[data-testid="state-dot"]')
    expect(dots.map((d) => d.attributes('data-state'))).toEqual(['connected', 'failed', 'connecting'])
    expect(dots[1]!.attributes('title')).toBe('Failed: wrong password')
    await w.get('button[aria-label="Import from ~/.ssh/config"]').trigger('click')
    expect(w.emitted('import')).toHaveLength(1)
  })

  it('warns when the keyring is not available, and when profiles.json is broken', async () => {
    const f = await withApi()
    const w = mount(AppBanners)
    expect(w.find('[data-testid="keyring-banner"]').exists()).toBe(false)
    f.emit({ topic: 'keyring', data: { available: false, service: 'porthole', backend: 'Secret Service', message: 'no D-Bus session bus' } })
    f.emit({ topic: 'servers', data: { servers: [], path: '/p.json', readOnly: true, loadError: 'profiles file /p.json, line 2, column 1: oops' } })
    await flushPromises()
    expect(w.get('[data-testid="keyring-banner"]').text()).toContain('never saves them to disk')
    expect(w.get('[data-testid="profiles-error"]').text()).toContain('line 2')
    await w.get('[data-testid="profiles-error"] button').trigger('click')
    await flushPromises()
    expect(f.api.reloadServers).toHaveBeenCalledOnce()
  })
})

describe('ImportDialog', () => {
  it('lists the hosts, preselects the new ones, and imports with "keep linked"', async () => {
    const f = await withApi()
    f.api.importCandidates.mockResolvedValueOnce({
      configPath: '/home/u/.ssh/config',
      exists: true,
      candidates: [
        { alias: 'gpu', resolved: { hostName: '10.0.0.7', user: 'alice', port: 2200, identityFiles: ['~/.ssh/id_gpu'], proxyJump: 'bastion' }, sourceFile: '/home/u/.ssh/config', line: 3, alreadyImported: false },
        { alias: 'old', resolved: { hostName: 'old', user: 'u', port: 22, identityFiles: null, proxyJump: '' }, sourceFile: '/home/u/.ssh/config', line: 9, alreadyImported: true },
        { alias: 'bad', resolved: { hostName: '', user: '', port: 0, identityFiles: null, proxyJump: '' }, sourceFile: '/home/u/.ssh/conf.d/x', line: 1, resolveError: 'ProxyCommand is not supported', alreadyImported: false },
      ],
    })
    const w = mount(ImportDialog, { props: { open: true }, attachTo: document.body })
    await flushPromises()
    const rows = w.findAll('[data-testid="import-list"] li')
    expect(rows).toHaveLength(3)
    expect(rows[0]!.text()).toContain('alice@10.0.0.7:2200')
    expect(rows[0]!.text()).toContain('via bastion')
    expect(rows[1]!.text()).toContain('already added')
    expect(rows[2]!.text()).toContain('ProxyCommand is not supported')
    const boxes = rows.map((r) => r.get('input').element as HTMLInputElement)
    expect(boxes.map((b) => b.checked)).toEqual([true, false, false])
    expect(boxes[2]!.disabled).toBe(true)
    await w.get('[data-testid="import-link"]').setValue(false)
    const go = w.findAll('button').find((b) => b.text().startsWith('Import 1'))!
    await go.trigger('click')
    await flushPromises()
    expect(f.api.importServers).toHaveBeenCalledWith(['gpu'], false)
    expect(w.emitted('update:open')?.[0]).toEqual([false])
    w.unmount()
  })
})

describe('ServerLog', () => {
  it('loads the kept lines, then appends live ones of this server in order', async () => {
    const f = fakeApi()
    f.api.serverLog.mockResolvedValueOnce({ id: 's1', lines: ['one', 'two'], seq: 2 })
    const w = mount(ServerLog, { props: { api: f.api, serverId: 's1' } })
    await flushPromises()
    expect(w.get('[data-testid="server-log"]').text()).toBe('one\ntwo')
    f.emit({ topic: 'server.log', data: { id: 's1', seq: 2, line: 'two' } }) // already there
    f.emit({ topic: 'server.log', data: { id: 's2', seq: 3, line: 'other server' } })
    f.emit({ topic: 'server.log', data: { id: 's1', seq: 3, line: 'three' } })
    await flushPromises()
    expect(w.get('[data-testid="server-log"]').text()).toBe('one\ntwo\nthree')
    expect(w.text()).toContain('3 lines')
    w.unmount()
    expect(f.handlerCount()).toBe(0)
  })
})

describe('ServerPage', () => {
  async function page(server: ServerSummary) {
    const f = await withApi()
    f.emit({ topic: 'servers', data: { servers: [server], path: '/p.json', readOnly: false } })
    f.api.listServers.mockImplementation(async () => useServersStore().servers)
    const { default: ServerPage } = await import('@/components/ServerPage.vue')
    const w = mount(ServerPage, { props: { serverId: server.id }, attachTo: document.body })
    await flushPromises()
    return { f, w }
  }

  it('opening the page prewarms a connected or idle server, never a disconnected one', async () => {
    const { f, w } = await page({ id: 's1', name: 'gpu', host: 'gpu.lab', state: 'idle' })
    expect(f.api.prewarm.mock.calls).toEqual([['s1']])
    w.unmount()
    const other = await page({ id: 's2', name: 'cpu', host: 'cpu.lab', state: 'disconnected' })
    expect(other.f.api.prewarm).not.toHaveBeenCalled()
    other.w.unmount()
  })

  it('connects, shows the failure in plain words, and offers to try again', async () => {
    const { f, w } = await page({ id: 's1', name: 'gpu', host: 'gpu.lab', port: 2222, user: 'alice', state: 'disconnected' })
    expect(w.get('h1').text()).toBe('gpu')
    expect(w.text()).toContain('alice@gpu.lab:2222')
    expect(w.get('[data-testid="server-state"]').text()).toContain('Not connected')
    f.api.connect.mockImplementationOnce(async () => {
      f.emit({
        topic: 'servers',
        data: { servers: [{ id: 's1', name: 'gpu', host: 'gpu.lab', state: 'failed', lastError: { kind: 'unreachable', message: 'Porthole cannot reach the server: connection refused', detail: 'dial tcp: refused', time: '' } }], path: '/p.json', readOnly: false },
      })
      throw new Error('Porthole cannot reach the server: connection refused')
    })
    await w.get('[data-testid="connect"]').trigger('click')
    await flushPromises()
    expect(f.api.connect).toHaveBeenCalledWith('s1')
    expect(w.get('[data-testid="server-error"]').text()).toContain('Porthole cannot reach the server')
    expect(w.get('[data-testid="connect"]').text()).toBe('Try again')
    w.unmount()
  })

  it('delete asks first, then deletes; duplicate opens the copy', async () => {
    const { f, w } = await page({ id: 's1', name: 'gpu', host: 'gpu.lab', state: 'connected' })
    expect(w.find('[data-testid="disconnect"]').exists()).toBe(true)
    await w.get('button[aria-label="Duplicate"]').trigger('click')
    await flushPromises()
    expect(f.api.duplicateServer).toHaveBeenCalledWith('s1')
    expect(useServersStore().selected).toBe('s1-copy')

    await w.get('button[aria-label="Delete"]').trigger('click')
    await flushPromises()
    expect(f.api.deleteServer).not.toHaveBeenCalled()
    const confirm = w.get('dialog[aria-labelledby="confirm-title"]')
    expect(confirm.text()).toContain('Delete gpu?')
    expect(confirm.text()).toContain('removes its saved password')
    await confirm.findAll('button').find((b) => b.text() === 'Delete')!.trigger('click')
    await flushPromises()
    expect(f.api.deleteServer).toHaveBeenCalledWith('s1')
    w.unmount()
  })
})
