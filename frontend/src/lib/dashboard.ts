import type { Reconnect } from '@/api'

/** "1.2 MB", "0 B". */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = Math.max(0, n)
  let i = 0
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h": how long since `iso` at `now`; "" for no time. */
export function formatUptime(iso: string | undefined | null, now: number): string {
  if (!iso) return ''
  const t = Date.parse(iso)
  if (!Number.isFinite(t) || t <= 0) return ''
  const s = Math.max(0, Math.floor((now - t) / 1000))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
  const d = Math.floor(h / 24)
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`
}

/** "12 ms", "0.4 ms"; "—" when unknown. */
export function formatRtt(ms: number): string {
  if (!ms || ms <= 0) return '—'
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

/** The reconnects of the 24 h before `now` (the backend prunes too; the page may stay open). */
export function recentReconnects(list: Reconnect[] | null | undefined, now: number): Reconnect[] {
  const since = now - 24 * 3600 * 1000
  return (list ?? []).filter((r) => Date.parse(r.time) > since)
}
