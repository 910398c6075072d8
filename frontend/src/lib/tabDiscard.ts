/** A choice of the "put background app tabs to sleep after" setting (Settings.tabDiscardSec). */
export interface DiscardOption {
  sec: number
  label: string
}

const CHOICES = [300, 900, 1800, 3600, 7200, 14400, 0]

/** A delay in words: "30 min", "2 h", "45 s", or "Never" for 0. */
export function discardLabel(sec: number): string {
  if (sec <= 0) return 'Never'
  if (sec % 3600 === 0) return `${sec / 3600} h`
  if (sec % 60 === 0) return `${sec / 60} min`
  return `${sec} s`
}

/** The choices offered, with `current` among them even when it was set otherwise (a hand-edited file, a test). */
export function discardOptions(current: number): DiscardOption[] {
  const secs = CHOICES.includes(current) ? CHOICES : [current, ...CHOICES]
  return secs.map((sec) => ({ sec, label: discardLabel(sec) }))
}
