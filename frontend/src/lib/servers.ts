import type { ServerState, ServerSummary } from '@/api/types'

/** The colours a server can wear (sidebar chip, server page); '' is none. */
export const SWATCHES = ['', '#0ea5b7', '#3b82f6', '#8b5cf6', '#ec4899', '#f97316', '#eab308', '#22c55e', '#64748b'] as const

/** The steps of a connection, in order (sshconn.Step names). */
export const STEPS = ['resolving', 'connecting', 'host key', 'authenticating', 'ready'] as const

export const STEP_LABELS: Record<string, string> = {
  resolving: 'Resolving the host name',
  connecting: 'Connecting',
  'host key': 'Checking the host key',
  authenticating: 'Logging in',
  ready: 'Connected',
}

export const STATE_LABELS: Record<ServerState, string> = {
  disconnected: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  idle: 'Idle',
  failed: 'Failed',
}

export function stateLabel(s: ServerState | string): string {
  return STATE_LABELS[s as ServerState] ?? s
}

/** "alice@gpu.lab:2222", the way people write an SSH destination. */
export function destination(s: Pick<ServerSummary, 'user' | 'host' | 'port'>): string {
  const host = s.host.includes(':') ? `[${s.host}]` : s.host
  const port = s.port && s.port !== 22 ? `:${s.port}` : ''
  return `${s.user ? `${s.user}@` : ''}${host}${port}`
}

/** "120 ms", "2.4 s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.round(ms / 1000)} s`
}

export function isBusy(s: ServerState): boolean {
  return s === 'connecting' || s === 'reconnecting'
}
