import { describe, expect, it, vi } from 'vitest'
import { isPayload, on, onEvents, TOPICS, type EventPayloads } from '@/api/events'
import { fakeApi, prompt } from './fakeApi'
import source from '@/api/events.ts?raw'

describe('typed events', () => {
  it('TOPICS is sorted, unique, and the same list as the EventPayloads lines of events.ts', () => {
    expect([...TOPICS]).toEqual([...new Set(TOPICS)].sort())
    // The format the Go registry test reads: `  'topic': Type,` inside `export interface EventPayloads { … }`.
    const body = /export interface EventPayloads \{\n([\s\S]*?)\n\}/.exec(source)?.[1] ?? ''
    const lines = body.split('\n').map((l) => /^ {2}'([a-z.]+)': ([A-Za-z]+(?:\[\])?),$/.exec(l))
    expect(lines.every((m) => m !== null)).toBe(true)
    expect(lines.map((m) => m![1])).toEqual([...TOPICS])
    expect(Object.fromEntries(lines.map((m) => [m![1], m![2]]))).toMatchObject({ servers: 'ServerList', prompts: 'Prompt[]', 'app.status': 'AppStatus' })
  })

  it('on() hands its topic’s payload, typed, to the handler; other topics and misshapen payloads never', () => {
    const f = fakeApi()
    const got: EventPayloads['servers'][] = []
    const off = on(f.api, 'servers', (l) => got.push(l))
    f.emit({ topic: 'servers', data: { servers: [], path: '/p.json', readOnly: false } })
    f.emit({ topic: 'servers', data: { servers: 'nope' } })
    f.emit({ topic: 'keyring', data: { available: true, service: 's', backend: 'b' } })
    expect(got).toEqual([{ servers: [], path: '/p.json', readOnly: false }])
    off()
    expect(f.handlerCount()).toBe(0)
  })

  it('onEvents subscribes once for several topics', () => {
    const f = fakeApi()
    const progress = vi.fn()
    const prompts = vi.fn()
    const off = onEvents(f.api, { 'server.progress': progress, prompts })
    expect(f.handlerCount()).toBe(1)
    f.emit({ topic: 'server.progress', data: { id: 's1', step: 'dialing', elapsedMs: 3 } })
    f.emit({ topic: 'prompts', data: [prompt()] })
    f.emit({ topic: 'prompts', data: [{ nope: 1 }] })
    f.emit({ topic: 'no.such.topic', data: {} })
    expect(progress).toHaveBeenCalledWith({ id: 's1', step: 'dialing', elapsedMs: 3 })
    expect(prompts).toHaveBeenCalledTimes(1)
    off()
    expect(f.handlerCount()).toBe(0)
  })

  it('checks each topic’s shape', () => {
    expect(isPayload('app.status', { mode: 'desktop' })).toBe(true)
    expect(isPayload('app.status', { mode: 'phone' })).toBe(false)
    expect(isPayload('settings', { theme: 'dark' })).toBe(true)
    expect(isPayload('settings', { theme: 'pink' })).toBe(false)
    expect(isPayload('apps', { serverId: 's1', services: null })).toBe(true)
    expect(isPayload('apps', { serverId: 's1', services: {} })).toBe(false)
    expect(isPayload('server.log', { id: 's1', seq: '1', line: 'x' })).toBe(false)
    expect(isPayload('appviews', null)).toBe(false)
  })
})
