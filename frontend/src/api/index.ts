import { createHttpApi } from './http'
import { loadToken } from './token'
import { createWailsApi, isWails, type WailsGlobals } from './wails'
import type { PortholeApi } from './types'

export * from './types'
export * from './events'
export { ApiError, isUnauthorized } from './errors'

export type ApiChoice = { ok: true; api: PortholeApi } | { ok: false; reason: 'missing-token' }

/**
 * Picks the transport once, at start: the Wails bindings when the desktop window injected them,
 * otherwise HTTP to `porthole serve` with the token from the URL (or this tab's sessionStorage).
 */
export function chooseApi(w: Window & WailsGlobals = window): ApiChoice {
  if (isWails(w)) return { ok: true, api: createWailsApi(w) }
  const token = loadToken({ location: w.location, history: w.history, storage: w.sessionStorage })
  if (!token) return { ok: false, reason: 'missing-token' }
  return { ok: true, api: createHttpApi({ token }) }
}
