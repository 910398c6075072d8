import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ForwardRule, RuleList } from '@/api/types'
import RuleDialog from '@/components/rules/RuleDialog.vue'
import RulesPanel from '@/components/rules/RulesPanel.vue'
import { addSample, formatRate, rateSeries, sparkPoints, sshForm, type Sample } from '@/lib/rules'
import { useRulesStore } from '@/stores/rules'
import { useServersStore } from '@/stores/servers'
import { fakeApi, ruleStatus } from './fakeApi'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => {
  vi.useRealTimers()
  document.body.innerHTML = ''
})

describe('lib/rules', () => {
  it('writes rules the way ssh takes them', () => {
    expect(sshForm({ kind: 'local', localPort: 8080, remotePort: 80 })).toBe('-L 8080:localhost:80')
    expect(sshForm({ kind: 'local', localHost: '::1', localPort: 8080, remoteHost: 'db', remotePort: 5432 })).toBe('-L [::1]:8080:db:5432')
    expect(sshForm({ kind: 'remote', remotePort: 9000, localPort: 3000 })).toBe('-R 9000:localhost:3000')
    expect(sshForm({ kind: 'dynamic', localHost: '*', localPort: 1080 })).toBe('-D *:1080')
    expect(formatRate(0)).toBe('0 B/s')
    expect(formatRate(1500)).toBe('1.5 kB/s')
    expect(formatRate(25_000_000)).toBe('25 MB/s')
  })

  it('turns byte readings into bytes/s a second, idle seconds as 0, a reset counter from 0', () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z')
    const h: Sample[] = []
    const at = (s: number, bytes: number) => addSample(h, ruleStatus({ at: new Date(t0 + s * 1000).toISOString(), bytesIn: bytes, bytesOut: 0 }))
    expect(at(0, 0)).toBe(true)
    expect(at(1, 1000)).toBe(true)
    expect(at(1, 1000)).toBe(false) // the same reading twice (ListRules after an event)
    expect(at(2, 3000)).toBe(true)
    expect(at(10, 3500)).toBe(true) // 500 bytes after 8 idle seconds: in the last second
    expect(at(11, 200)).toBe(true) // a new agent: its counter starts again
    const s = rateSeries(h, t0 + 12_000, 12)
    expect(s).toEqual([0, 1000, 2000, 0, 0, 0, 0, 0, 0, 0, 500, 200])
    // Time goes on without readings: the line falls to 0 and the old readings slide out.
    expect(rateSeries(h, t0 + 60_000, 12).every((v) => v === 0)).toBe(true)
    expect(addSample(h, ruleStatus({ at: undefined }))).toBe(false)
    // The polyline spans the box; the largest value touches the top.
    const pts = sparkPoints([0, 10, 5], 100, 20).split(' ')
    expect(pts).toHaveLength(3)
    expect(pts[0]).toBe('0,19.5')
    expect(pts[1]).toBe('50,0.5')
    expect(pts[2]).toBe('100,10')
  })
})

describe('rules store', () => {
  it('lists a tracked server, follows `rules` events, and keeps each rule’s sparkline data', async () => {
    vi.useFakeTimers()
    const t0 = Date.parse('2026-01-01T00:00:00Z')
    let clock = t0
    const f = fakeApi()
    f.api.listRules.mockResolvedValue({ serverId: 's1', rules: [ruleStatus({ state: 'waiting', at: undefined })] })
    const rules = useRulesStore()
    const stop = rules.track('s1') // a page mounted before the store started
    rules.start(f.api, { now: () => clock, tickMs: 1000 })
    await flushPromises()
    expect(f.api.listRules).toHaveBeenCalledWith('s1')
    expect(rules.of('s1').rules[0]?.state).toBe('waiting')

    const ev = (s: number, bytes: number, over = {}): RuleList => ({
      serverId: 's1',
      rules: [ruleStatus({ at: new Date(t0 + s * 1000).toISOString(), bytesIn: bytes, bytesOut: bytes, activeConns: 1, ...over })],
    })
    clock = t0 + 1000
    f.emit({ topic: 'rules', data: ev(1, 0) })
    clock = t0 + 2000
    f.emit({ topic: 'rules', data: ev(2, 2048) })
    expect(rules.of('s1').rules[0]).toMatchObject({ state: 'listening', activeConns: 1 })
    expect(rules.rates('r1').at(-1)).toBe(4096)
    // A payload that does not fit the topic is dropped.
    f.emit({ topic: 'rules', data: { serverId: 's1', rules: 'nope' } })
    expect(rules.of('s1').rules).toHaveLength(1)
    // Nothing moves: the clock ticks and the line drops to 0.
    clock = t0 + 5000
    await vi.advanceTimersByTimeAsync(1000)
    expect(rules.rates('r1').at(-1)).toBe(0)
    expect(Math.max(...rules.rates('r1'))).toBe(4096)

    // Edits go through the backend and list again.
    await rules.add('s1', { kind: 'dynamic', localPort: 1080 })
    expect(f.api.addRule).toHaveBeenCalledWith('s1', { kind: 'dynamic', localPort: 1080 })
    await rules.remove('s1', 'r1')
    expect(f.api.deleteRule).toHaveBeenCalledWith('s1', 'r1')
    expect(rules.rates('r1').every((v) => v === 0)).toBe(true)
    stop()
    rules.stop()
  })

  it('keeps a listing error for the page', async () => {
    const f = fakeApi()
    f.api.listRules.mockRejectedValue(new Error('profile not found'))
    const rules = useRulesStore()
    rules.start(f.api)
    rules.track('gone')
    await flushPromises()
    expect(rules.of('gone').error).toContain('profile not found')
  })
})

async function withApi() {
  const f = fakeApi()
  await useServersStore().start(f.api)
  useRulesStore().start(f.api)
  return f
}

describe('RulesPanel', () => {
  it('shows each rule’s state, ends, connections, rate and its refusal in plain words', async () => {
    const f = await withApi()
    const refusal = 'the server refused to open db:5432: its sshd_config may forbid it (AllowTcpForwarding no/remote or a PermitOpen rule)'
    f.api.listRules.mockResolvedValue({
      serverId: 's1',
      rules: [
        ruleStatus({ rule: { id: 'a', kind: 'local', label: 'web', localPort: 8080, remotePort: 80 }, activeConns: 2, totalConns: 5 }),
        ruleStatus({ rule: { id: 'b', kind: 'local', localPort: 15432, remoteHost: 'db', remotePort: 5432 }, state: 'refused', reason: refusal, lastError: refusal, local: '127.0.0.1:15432', remote: 'db:5432' }),
        ruleStatus({ rule: { id: 'c', kind: 'remote', remotePort: 9000, localPort: 3000 }, state: 'waiting', reason: 'waiting for the server: the rule starts when it connects', local: 'localhost:3000', remote: 'localhost:9000' }),
      ],
    })
    const w = mount(RulesPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    const items = w.findAll('[data-testid="rule"]')
    expect(items.map((i) => i.attributes('data-state'))).toEqual(['listening', 'refused', 'waiting'])
    expect(items[0]!.text()).toContain('web')
    expect(items[0]!.text()).toContain('-L 8080:localhost:80')
    expect(items[0]!.get('[data-testid="rule-ends"]').text()).toBe('127.0.0.1:8080 → localhost:80 on gpu')
    expect(items[0]!.get('[data-testid="rule-conns"]').text()).toBe('2 open')
    expect(items[0]!.get('[data-testid="rule-rate"]').attributes('data-rate')).toBe('0')
    expect(items[1]!.get('[data-testid="rule-reason"]').text()).toContain('PermitOpen')
    expect(items[1]!.find('[data-testid="rule-last-error"]').exists()).toBe(false) // the same words once
    expect(items[2]!.text()).toContain('Waiting for the server')
    expect(items[2]!.get('[data-testid="rule-ends"]').text()).toBe('gpu localhost:9000 → this computer localhost:3000')
    w.unmount()
  })

  it('says what rules are when there are none', async () => {
    await withApi()
    const w = mount(RulesPanel, { props: { serverId: 's1', serverName: 'gpu' }, attachTo: document.body })
    await flushPromises()
    expect(w.text()).toContain('No rules yet')
    w.unmount()
  })
})

describe('RuleDialog', () => {
  it('validates as you type through ValidateRule and adds the rule', async () => {
    vi.useFakeTimers()
    const f = await withApi()
    f.api.validateRule.mockImplementation(async (_s: string, r: ForwardRule) => {
      const fields = []
      if (!r.remotePort) fields.push({ field: 'remotePort', reason: 'is required for a local forward' })
      if ((r.localPort ?? 0) > 65535 || (r.localPort ?? 0) < 0) fields.push({ field: 'localPort', reason: 'must be between 1 and 65535' })
      return { valid: fields.length === 0, fields, notes: r.localPort === 80 ? [{ field: 'localPort', reason: 'ports below 1024 need administrator rights on most systems' }] : [] }
    })
    const w = mount(RuleDialog, { props: { open: true, serverId: 's1', serverName: 'gpu', debounceMs: 200 }, attachTo: document.body })
    await flushPromises()
    await w.get('[data-testid="rule-localPort"]').setValue('70000')
    expect(f.api.validateRule).not.toHaveBeenCalled() // debounced
    await vi.advanceTimersByTimeAsync(250)
    expect(f.api.validateRule).toHaveBeenCalledTimes(1)
    expect(f.api.validateRule.mock.calls[0]![1]).toMatchObject({ kind: 'local', localPort: 70000 })
    await w.get('[data-testid="rule-localPort"]').trigger('blur')
    expect(w.get('[data-testid="rule-error-localPort"]').text()).toBe('must be between 1 and 65535')
    expect(w.find('[data-testid="rule-error-remotePort"]').exists()).toBe(false) // not touched yet

    await w.get('[data-testid="rule-localPort"]').setValue('80')
    await w.get('[data-testid="rule-remotePort"]').setValue('8888')
    await vi.advanceTimersByTimeAsync(250)
    expect(w.find('[data-testid="rule-error-localPort"]').exists()).toBe(false)
    expect(w.text()).toContain('ports below 1024 need administrator rights')
    expect(w.get('[data-testid="rule-preview"]').text()).toBe('ssh -L 80:localhost:8888')
    await w.get('[data-testid="rule-connect-at-start"]').setValue(true)
    await w.get('form').trigger('submit')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(f.api.addRule).toHaveBeenCalledOnce()
    expect(f.api.addRule.mock.calls[0]![1]).toMatchObject({ kind: 'local', localPort: 80, remotePort: 8888, connectAtStart: true })
    expect(w.emitted('update:open')?.[0]).toEqual([false])
    w.unmount()
  })

  it('a -D rule has no target fields; a -R rule listens on the server', async () => {
    await withApi()
    const w = mount(RuleDialog, { props: { open: true, serverId: 's1', serverName: 'gpu', debounceMs: 0 }, attachTo: document.body })
    await flushPromises()
    await w.get('[data-testid="rule-kind"]').setValue('dynamic')
    expect(w.find('[data-testid="rule-remotePort"]').exists()).toBe(false)
    await w.get('[data-testid="rule-localPort"]').setValue('1080')
    expect(w.get('[data-testid="rule-preview"]').text()).toBe('ssh -D 1080')
    await w.get('[data-testid="rule-kind"]').setValue('remote')
    await w.get('[data-testid="rule-remotePort"]').setValue('9000')
    await w.get('[data-testid="rule-localPort"]').setValue('3000')
    expect(w.get('[data-testid="rule-preview"]').text()).toBe('ssh -R 9000:localhost:3000')
    w.unmount()
  })
})
