import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { isUnauthorized, type AppAttributes, type PortholeApi, type ServerRules } from '@/api'
import { errorText } from './servers'

/** What happens when an app appears on a port, as the menu offers it ('auto' is shown as Notify). */
export const ON_APPEAR_CHOICES = [
  { value: 'auto', label: 'Notify' },
  { value: 'open-tab', label: 'Open a tab' },
  { value: 'ignore', label: 'Ignore' },
] as const

/**
 * Each server's rules for apps that appear on it (app-rules.json in the backend): a port's label and
 * what to do when an app appears there, the ignored port ranges and whether ephemeral ports notify.
 * Loaded when a server page shows them; errors (the backend's validation) are kept per server.
 */
export const useAppRulesStore = defineStore('appRules', () => {
  const api = shallowRef<PortholeApi | null>(null)
  const byServer = ref<Record<string, ServerRules>>({})
  /** The last failure per server: loading, or the backend refusing what was set. */
  const errors = ref<Record<string, string>>({})

  function start(a: PortholeApi): void {
    api.value = markRaw(a)
  }

  function stop(): void {
    api.value = null
  }

  function setError(serverId: string, text: string): void {
    const { [serverId]: _, ...rest } = errors.value
    errors.value = text ? { ...rest, [serverId]: text } : rest
  }

  /** Reads a server's rules. Never throws: the error is kept for the page. */
  async function load(serverId: string): Promise<void> {
    const a = api.value
    if (!a) return
    try {
      byServer.value = { ...byServer.value, [serverId]: await a.getAppRules(serverId) }
      setError(serverId, '')
    } catch (err) {
      if (!isUnauthorized(err)) setError(serverId, errorText(err))
    }
  }

  function of(serverId: string): ServerRules {
    return byServer.value[serverId] ?? {}
  }

  function attributes(serverId: string, port: number): AppAttributes {
    return of(serverId).ports?.[String(port)] ?? {}
  }

  /** The label the user gave a port, '' if none. */
  function label(serverId: string, port: number): string {
    return attributes(serverId, port).label?.trim() ?? ''
  }

  /** Saves a port's label and on-appear action; returns the backend's error text, '' when saved. */
  async function setAttributes(serverId: string, port: number, attrs: AppAttributes): Promise<string> {
    const a = api.value
    if (!a) return 'not connected to Porthole'
    try {
      const saved = await a.setAppAttributes(serverId, port, { label: attrs.label?.trim() ?? '', onAppear: attrs.onAppear ?? 'auto' })
      const cur = of(serverId)
      byServer.value = { ...byServer.value, [serverId]: { ...cur, ports: { ...cur.ports, [String(port)]: saved } } }
      return ''
    } catch (err) {
      return errorText(err)
    }
  }

  /** Saves the ignored port ranges ("8000-8100, 9000") and the ephemeral switch; false if refused (see errors). */
  async function setIgnoredPorts(serverId: string, ranges: string, notifyEphemeral: boolean): Promise<boolean> {
    const a = api.value
    if (!a) return false
    try {
      const saved = await a.setIgnoredPorts(serverId, ranges.trim(), notifyEphemeral)
      byServer.value = { ...byServer.value, [serverId]: { ...of(serverId), ...saved } }
      setError(serverId, '')
      return true
    } catch (err) {
      setError(serverId, errorText(err))
      return false
    }
  }

  return { api, byServer, errors, start, stop, load, of, attributes, label, setAttributes, setIgnoredPorts }
})
