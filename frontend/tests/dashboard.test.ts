import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerStats } from '@/api'
import ServerDashboard from '@/components/ServerDashboard.vue'
import { formatBytes, formatUptime, recentReconnects } from '@/lib/dashboard'
import { useServerStatsStore } from '@/stores/serverStats'
import { fakeApi } from './fakeApi'

beforeEach(() => {
  setActivePinia(createPinia())
})

const T0 = Date.parse('2026-12-03T12:00:00Z')

function stats(over: Partial<ServerStats> = {}): ServerStats {
  return {
    id: 's1',
    state: 'connected',
    connectedSince: new Date(T0 - 3 * 3600_000 - 5 * 60_000).toISOString(),
    rttMs: 23.4,
    activeConns: 2,
    bytesIn: 1_500_000,
    bytesOut: 500_000,
    reconnects: [
      { time: new Date(T0 - 30 * 3600_000).toISOString(), downtimeMs: 9000 }, // older than a day
      { time: new Date(T0 - 2 * 3600_000).toISOString(), downtimeMs: 840 },
      { time: new Date(T0 - 3600_000).toISOString(), downtimeMs: 2160 },
    ],
    time: new Date(T0).toISOString(),
    ...over,
  }
}

describe('dashboard helpers', () => {
  it('formats bytes and uptime, and keeps a day of reconnects', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(2_000_000)).toBe('2.0 MB')
    expect(formatUptime(new Date(T0 - 45_000).toISOString(), T0)).toBe('45 s')
    expect(formatUptime(new Date(T0 - 3 * 3600_000 - 5 * 60_000).toISOString(), T0)).toBe('3 h 5 min')
    expect(formatUptime(undefined, T0)).toBe('')
    expect(recentReconnects(stats().reconnects, T0).map((r) => r.downtimeMs)).toEqual([840, 2160])
  })
})

describe('ServerDashboard', () => {
  it('shows state, uptime, RTT, connections, traffic, a live sparkline and the reconnects', async () => {
    let now = T0
    const f = fakeApi({ serverStats: vi.fn(async () => stats()) })
    const store = useServerStatsStore()
    store.start(f.api, { now: () => now, tickMs: 60_000 })
    const w = mount(ServerDashboard, { props: { serverId: 's1' } })
    await flushPromises()
    expect(f.api.serverStats).toHaveBeenCalledWith('s1')
    expect(w.get('[data-testid="dash-state"]').text()).toBe('Connected')
    expect(w.get('[data-testid="dash-uptime"]').text()).toBe('3 h 5 min')
    expect(w.get('[data-testid="dash-rtt"]').text()).toBe('23 ms')
    expect(w.get('[data-testid="dash-conns"]').text()).toBe('2')
    expect(w.get('[data-testid="dash-traffic"]').text()).toBe('2.0 MB')
    expect(w.get('[data-testid="dash-reconnects"]').text()).toBe('2, down 3.0 s')
    expect(Number(w.get('[data-testid="rule-rate"]').attributes('data-rate'))).toBe(0)

    // A batched stats event a second later: 100 kB went through.
    now = T0 + 1000
    f.emit({ topic: 'server.stats', data: stats({ bytesIn: 1_600_000, activeConns: 3, time: new Date(now).toISOString() }) })
    await flushPromises()
    expect(w.get('[data-testid="dash-conns"]').text()).toBe('3')
    expect(w.get('[data-testid="dash-traffic"]').text()).toBe('2.1 MB')
    expect(Number(w.get('[data-testid="rule-rate"]').attributes('data-rate'))).toBe(100_000)

    await w.get('[data-testid="dash-reconnects"] button').trigger('click')
    const items = w.findAll('[data-testid="dash-reconnect-list"] li')
    expect(items.map((li) => li.text().replace(/back at .* after/, 'back after'))).toEqual(['back after 2.2 s', 'back after 840 ms'])

    // Another server's event changes nothing here.
    f.emit({ topic: 'server.stats', data: stats({ id: 's2', activeConns: 9 }) })
    await flushPromises()
    expect(w.get('[data-testid="dash-conns"]').text()).toBe('3')
    w.unmount()
  })

  it('while disconnected shows no uptime or RTT, and no reconnects', async () => {
    const f = fakeApi()
    useServerStatsStore().start(f.api, { now: () => T0 })
    const w = mount(ServerDashboard, { props: { serverId: 's1' } })
    await flushPromises()
    expect(w.get('[data-testid="dash-state"]').text()).toBe('Not connected')
    expect(w.get('[data-testid="dash-uptime"]').text()).toBe('—')
    expect(w.get('[data-testid="dash-rtt"]').text()).toBe('—')
    expect(w.get('[data-testid="dash-reconnects"]').text()).toBe('none')
    w.unmount()
  })

  it('says why the dashboard could not be read', async () => {
    const f = fakeApi({ serverStats: vi.fn(async () => Promise.reject(new Error('no such server'))) })
    useServerStatsStore().start(f.api)
    const w = mount(ServerDashboard, { props: { serverId: 'gone' } })
    await flushPromises()
    expect(w.get('[role="alert"]').text()).toContain('no such server')
    w.unmount()
  })
})
