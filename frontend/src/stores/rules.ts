import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { isUnauthorized, on, type ForwardRule, type PortholeApi, type RuleList, type RuleStatus, type ValidationResult } from '@/api'
import { pageClock } from '@/lib/pageClock'
import { addSample, rateSeries, type Sample } from '@/lib/rules'
import { errorText } from './servers'

/** What a server page shows of its rules. */
export interface ServerRules {
  rules: RuleStatus[]
  loaded: boolean
  /** The last ListRules failed (plain words). */
  error: string | null
}

/** What the store needs of its page (replaceable in tests). */
export interface RulesEnv {
  /** The clock; the sparkline moves on with it. */
  now?: () => number
  /** Milliseconds between sparkline ticks while a page shows rules. */
  tickMs?: number
}

/**
 * The saved forward rules of each server: listed when a server page shows them, kept current by
 * `rules` events (state, counters), edited through the backend (which validates as typed), and
 * each rule's byte counters kept as readings for its bytes/s sparkline.
 */
export const useRulesStore = defineStore('rules', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const byServer = ref<Record<string, ServerRules>>({})
  /** Readings by rule id (not reactive: `now` drives the sparklines). */
  const history = new Map<string, Sample[]>()
  /** The sparklines' clock, advanced every second while a page tracks rules. */
  const pages = pageClock((id) => void load(id))
  const now = pages.now
  const cleanups: Array<() => void> = []

  function need(): PortholeApi {
    if (!api.value) throw new Error('Porthole is not connected to its backend yet')
    return api.value
  }

  function of(serverId: string): ServerRules {
    return byServer.value[serverId] ?? { rules: [], loaded: false, error: null }
  }

  function apply(l: RuleList): void {
    const rules = l.rules ?? []
    for (const st of rules) {
      const id = st.rule.id
      if (!id) continue
      let h = history.get(id)
      if (!h) {
        h = []
        history.set(id, h)
      }
      addSample(h, st)
    }
    byServer.value = { ...byServer.value, [l.serverId]: { rules, loaded: true, error: null } }
    pages.tick()
  }

  function start(a: PortholeApi, env: RulesEnv = {}): void {
    api.value = markRaw(a)
    pages.configure(env)
    cleanups.push(on(a, 'rules', apply))
    for (const id of pages.tracked()) void load(id)
  }

  function stop(): void {
    while (cleanups.length) cleanups.pop()?.()
    pages.reset()
    api.value = null
  }

  /** Lists a server's rules now. Never throws: the error is kept for the page. */
  async function load(serverId: string): Promise<void> {
    const a = api.value
    if (!a) return
    try {
      apply(await a.listRules(serverId))
    } catch (err) {
      if (isUnauthorized(err)) return
      byServer.value = { ...byServer.value, [serverId]: { ...of(serverId), error: errorText(err) } }
    }
  }

  /** Keeps a server's rules listed and its sparklines moving while a page shows them. */
  function track(serverId: string): () => void {
    return pages.track(serverId)
  }

  /** Bytes per second of a rule over the last 30 s, one value a second. */
  function rates(ruleId: string): number[] {
    return rateSeries(history.get(ruleId) ?? [], now.value)
  }

  function validate(serverId: string, r: ForwardRule): Promise<ValidationResult> {
    return need().validateRule(serverId, r)
  }

  async function add(serverId: string, r: ForwardRule): Promise<ForwardRule> {
    const saved = await need().addRule(serverId, r)
    await load(serverId)
    return saved
  }

  async function update(serverId: string, r: ForwardRule): Promise<ForwardRule> {
    const saved = await need().updateRule(serverId, r)
    await load(serverId)
    return saved
  }

  async function remove(serverId: string, ruleId: string): Promise<void> {
    await need().deleteRule(serverId, ruleId)
    history.delete(ruleId)
    await load(serverId)
  }

  return { api, byServer, now, of, start, stop, load, track, rates, validate, add, update, remove }
})
