// Saved forward rules: their ssh form, states in words, and the bytes/s sparkline's data.
import type { ForwardKind, ForwardRule, RuleState, RuleStatus } from '@/api/types'

/** The kinds a rule can have (web forwards are opened from the apps list). */
export const RULE_KINDS: readonly { kind: ForwardKind; flag: string; name: string }[] = [
  { kind: 'local', flag: '-L', name: 'Local (-L): a port here reaches a port the server can reach' },
  { kind: 'remote', flag: '-R', name: 'Remote (-R): a port on the server reaches a port here' },
  { kind: 'dynamic', flag: '-D', name: 'Dynamic (-D): a SOCKS proxy here, connections leave from the server' },
]

function hp(host: string | undefined, port: number | undefined, def: string): string {
  const h = host || def
  const p = port ?? 0
  return h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`
}

function listen(host: string | undefined, port: number | undefined): string {
  if (!host) return String(port ?? 0)
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`
}

/** The rule the way ssh's command line takes it: "-L 8080:localhost:80", "-D 1080". */
export function sshForm(r: ForwardRule): string {
  switch (r.kind) {
    case 'local':
    case 'web':
      return `-L ${listen(r.localHost, r.localPort)}:${hp(r.remoteHost, r.remotePort, 'localhost')}`
    case 'remote':
      return `-R ${listen(r.remoteHost, r.remotePort)}:${hp(r.localHost, r.localPort, 'localhost')}`
    case 'dynamic':
      return `-D ${listen(r.localHost, r.localPort)}`
  }
}

const STATE_LABELS: Record<RuleState, string> = {
  waiting: 'Waiting for the server',
  starting: 'Starting…',
  listening: 'Listening',
  refused: 'Refused by the server',
  failed: 'Not running',
}

export function ruleStateLabel(s: RuleState): string {
  return STATE_LABELS[s] ?? s
}

/** "1.2 kB/s", "0 B/s". */
export function formatRate(bytesPerSec: number): string {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s']
  let v = Math.max(0, bytesPerSec)
  let i = 0
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

/** One reading of a rule's byte counters. */
export interface Sample {
  at: number // ms since the epoch
  bytes: number // bytesIn + bytesOut
}

/** At most this many readings are kept per rule. */
export const MAX_SAMPLES = 120
/** The sparkline's width in seconds, one point a second. */
export const SPARK_SECONDS = 30

/**
 * Adds a reading from a RuleStatus to a rule's history (in place); a reading already there
 * (same time) is ignored. Returns whether it was added.
 */
export function addSample(history: Sample[], st: RuleStatus): boolean {
  if (!st.at) return false
  const at = Date.parse(st.at)
  if (!Number.isFinite(at)) return false
  const last = history[history.length - 1]
  if (last && at <= last.at) return false
  history.push({ at, bytes: st.bytesIn + st.bytesOut })
  if (history.length > MAX_SAMPLES) history.splice(0, history.length - MAX_SAMPLES)
  return true
}

/**
 * Bytes per second over the last `seconds` seconds before `now`, oldest first, one value a
 * second. The agent sends a reading only when the counters changed (at most once a second),
 * so the bytes between two readings went through in the second before the later one; a second
 * without a reading was idle (0). A counter that went down (a new agent) starts again from 0.
 */
export function rateSeries(history: Sample[], now: number, seconds = SPARK_SECONDS): number[] {
  const out = new Array<number>(seconds).fill(0)
  const start = now - seconds * 1000
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1]!
    const b = history[i]!
    if (b.at <= start || b.at > now) continue
    const delta = b.bytes >= a.bytes ? b.bytes - a.bytes : b.bytes
    const dt = Math.min(Math.max(b.at - a.at, 1), 1000) / 1000
    const slot = Math.min(seconds - 1, Math.floor((b.at - start) / 1000))
    out[slot]! += delta / dt
  }
  return out
}

/** An SVG polyline's points for values in a w×h box (the top is the largest value). */
export function sparkPoints(values: number[], w: number, h: number): string {
  if (values.length === 0) return ''
  const top = Math.max(...values, 1)
  const step = values.length > 1 ? w / (values.length - 1) : 0
  return values.map((v, i) => `${+(i * step).toFixed(1)},${+(h - (v / top) * (h - 1) - 0.5).toFixed(1)}`).join(' ')
}
