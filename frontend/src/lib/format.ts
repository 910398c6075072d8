import type { VersionInfo } from '@/api/types'

/** "v0.3.0", or "dev · 1a2b3c4d5e6f" for a development build. */
export function versionLabel(v: VersionInfo): string {
  const version = v.version || 'dev'
  const label = /^\d/.test(version) ? `v${version}` : version
  if (version === 'dev' && v.commit && v.commit !== 'unknown') return `${label} · ${v.commit.slice(0, 12)}`
  return label
}

export function versionDetails(v: VersionInfo): string {
  return [
    `Porthole ${v.version}`,
    `commit ${v.commit}`,
    `${v.go}, Wails ${v.wails}`,
    `${v.os}/${v.arch}`,
  ].join('\n')
}
