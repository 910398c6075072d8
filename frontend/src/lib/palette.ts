// The command palette's matching: a fuzzy subsequence match over a command's title and
// keywords, ranked as editors rank (consecutive letters, word starts and a prefix count most).

export type CommandKind = 'server' | 'app' | 'tab' | 'rule' | 'action'

export interface Command {
  /** Unique within one palette list ("connect:srv1", "app:srv1:8888"). */
  id: string
  kind: CommandKind
  /** What the row says ("Connect gpu1"). */
  title: string
  /** A second, dimmer line ("gpu1 · port 8888"). */
  detail?: string
  /** Extra words that match but are not shown (a host name, "-L"). */
  keywords?: string
  run: () => void | Promise<void>
}

export interface Match {
  command: Command
  score: number
  /** Indexes into command.title of the matched letters (for highlighting). */
  marks: number[]
}

const KIND_ORDER: Record<CommandKind, number> = { tab: 0, app: 1, server: 2, action: 3, rule: 4 }

function isWordStart(s: string, i: number): boolean {
  if (i === 0) return true
  const prev = s[i - 1] ?? ''
  const cur = s[i] ?? ''
  return /[\s\-_./:·—()[\]@]/.test(prev) || (prev === prev.toLowerCase() && cur !== cur.toLowerCase())
}

/**
 * Scores query as a subsequence of text (case-insensitive), or null when it is not one.
 * Spaces in the query are ignored. Higher is better.
 */
export function fuzzyScore(query: string, text: string): { score: number; marks: number[] } | null {
  const q = query.toLowerCase().replace(/\s+/g, '')
  if (!q) return { score: 0, marks: [] }
  const t = text.toLowerCase()
  // Greedy from the left, preferring word starts: try each start of the first letter and keep the best.
  let best: { score: number; marks: number[] } | null = null
  for (let start = t.indexOf(q[0]!); start !== -1; start = t.indexOf(q[0]!, start + 1)) {
    const marks: number[] = [start]
    let score = isWordStart(text, start) ? 8 : 1
    if (start === 0) score += 6
    let ti = start + 1
    let ok = true
    for (let qi = 1; qi < q.length; qi++) {
      const c = q[qi]!
      // Prefer the next letter right here, then at a word start, then anywhere.
      let at = -1
      if (t[ti] === c) at = ti
      else {
        for (let k = ti; k < t.length; k++) {
          if (t[k] === c && isWordStart(text, k)) {
            at = k
            break
          }
        }
        if (at === -1) at = t.indexOf(c, ti)
      }
      if (at === -1) {
        ok = false
        break
      }
      score += at === ti ? 5 : isWordStart(text, at) ? 4 : 1
      score -= Math.min(at - ti, 6) * 0.25
      marks.push(at)
      ti = at + 1
    }
    if (!ok) break
    if (!best || score > best.score) best = { score, marks }
    if (start > 64) break
  }
  if (!best) return null
  // Shorter titles win ties: "Settings" over "Settings of gpu1".
  best.score -= text.length * 0.01
  return best
}

/** The commands that match query, best first; an empty query lists everything in kind order. */
export function rankCommands(commands: Command[], query: string, limit = 50): Match[] {
  const out: Match[] = []
  for (const c of commands) {
    const inTitle = fuzzyScore(query, c.title)
    if (inTitle) {
      out.push({ command: c, score: inTitle.score, marks: inTitle.marks })
      continue
    }
    // Then over everything the row says and hides: "jupyter gpu1" finds Jupyter on gpu1.
    const hay = [c.title, c.detail, c.keywords].filter(Boolean).join(' ')
    const inRest = hay ? fuzzyScore(query, hay) : null
    if (inRest) out.push({ command: c, score: inRest.score - 4, marks: [] })
  }
  out.sort((a, b) => b.score - a.score || KIND_ORDER[a.command.kind] - KIND_ORDER[b.command.kind] || a.command.title.localeCompare(b.command.title))
  return out.slice(0, limit)
}

/** Splits title into runs for highlighting: [text, marked][]. */
export function markRuns(title: string, marks: number[]): [string, boolean][] {
  const set = new Set(marks)
  const runs: [string, boolean][] = []
  for (let i = 0; i < title.length; i++) {
    const m = set.has(i)
    const last = runs[runs.length - 1]
    if (last && last[1] === m) last[0] += title[i]
    else runs.push([title[i]!, m])
  }
  return runs
}
