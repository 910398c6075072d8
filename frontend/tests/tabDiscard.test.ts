import { describe, expect, it } from 'vitest'
import { discardLabel, discardOptions } from '@/lib/tabDiscard'

describe('tab discard options', () => {
  it('names delays in words', () => {
    expect(discardLabel(0)).toBe('Never')
    expect(discardLabel(1800)).toBe('30 min')
    expect(discardLabel(7200)).toBe('2 h')
    expect(discardLabel(3)).toBe('3 s')
  })
  it('offers the default and never, and keeps a custom value', () => {
    const std = discardOptions(1800).map((o) => o.sec)
    expect(std).toContain(1800)
    expect(std).toContain(0)
    expect(discardOptions(3)[0]).toEqual({ sec: 3, label: '3 s' })
    expect(discardOptions(1800)).toHaveLength(std.length)
  })
})
