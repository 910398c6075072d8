import { ApiError } from './errors'
import { EventHub } from './hub'
import { methods, type Call, type PortholeApi, type PortholeEvent } from './types'

/** The Wails event that carries every backend event (runtime.EventsEmit on the Go side). */
export const WAILS_EVENT = 'porthole:event'

/**
 * The Go package that declares the bound `App` struct: Wails v2 binds its methods under
 * window.go.<package>.App.
 */
export const GO_PACKAGE = 'ui'

type BoundMethod = (...args: unknown[]) => Promise<unknown>
type BoundApp = Record<string, BoundMethod | undefined>

/** What Wails v2 injects into the window: bound methods (per Go package) and the JS runtime. */
export interface WailsGlobals {
  go?: Partial<Record<string, { App?: BoundApp }>>
  runtime?: {
    // Newer Wails v2 releases return an unsubscribe function, older ones return nothing.
    EventsOn(name: string, cb: (...data: unknown[]) => void): (() => void) | void
    EventsOff(name: string, ...more: string[]): void
  }
}

function boundApp(w: WailsGlobals): BoundApp | undefined {
  const app = w.go?.[GO_PACKAGE]?.App
  return typeof app === 'object' && app !== null ? app : undefined
}

export function isWails(w: WailsGlobals): boolean {
  return boundApp(w) !== undefined
}

export function wailsCall(w: WailsGlobals): Call {
  return async <T>(method: string, ...args: unknown[]): Promise<T> => {
    const fn = boundApp(w)?.[method]
    if (typeof fn !== 'function') {
      throw new ApiError(`The backend has no method ${method}: the window and the binary are out of step, rebuild Porthole`, method)
    }
    try {
      return (await fn(...args)) as T
    } catch (err) {
      // Wails rejects with the Go error's text as a plain string.
      throw new ApiError(typeof err === 'string' ? err : err instanceof Error ? err.message : String(err), method)
    }
  }
}

function openWailsEvents(hub: EventHub, w: WailsGlobals, call: Call): () => void {
  const rt = w.runtime
  if (!rt) {
    console.error('porthole: the Wails runtime is missing, no events will arrive')
    hub.setState('closed')
    return () => {}
  }
  hub.setState('connecting')
  let stopped = false
  // Live events that arrive before the snapshot are held back, so the snapshot comes first.
  let held: unknown[] | null = []
  const off = rt.EventsOn(WAILS_EVENT, (e: unknown) => {
    if (held) held.push(e)
    else hub.publish(e)
  })
  const flush = () => {
    const pending = held ?? []
    held = null
    for (const e of pending) hub.publish(e)
  }
  call<PortholeEvent[] | null>('Snapshot').then(
    (snapshot) => {
      if (stopped) return
      for (const e of snapshot ?? []) hub.publish(e)
      flush()
      hub.setState('open')
    },
    (err: unknown) => {
      if (stopped) return
      console.error('porthole: Snapshot failed', err)
      flush()
      hub.setState('closed')
    },
  )
  return () => {
    stopped = true
    if (typeof off === 'function') off()
    else rt.EventsOff(WAILS_EVENT)
  }
}

export function createWailsApi(w: WailsGlobals): PortholeApi {
  const call = wailsCall(w)
  const hub = new EventHub((h) => openWailsEvents(h, w, call))
  return {
    kind: 'wails',
    ...methods(call, 'wails'),
    onEvent: (handler) => hub.subscribe(handler),
    onConnection: (handler) => hub.watch(handler),
  }
}
