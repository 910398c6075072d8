import { ApiError, isUnauthorized } from './errors'
import { EventHub } from './hub'
import { readSse } from './sse'
import { methods, type Call, type PortholeApi } from './types'

export interface HttpApiOptions {
  /** The access token from `porthole serve`'s URL. */
  token: string
  /** Prefix for /api/… URLs; '' means the page's own origin. */
  baseUrl?: string
  fetch?: typeof fetch
  /** Reconnect delays of the event stream: doubles from initialMs up to maxMs. */
  backoff?: { initialMs: number; maxMs: number }
  /** Waits between reconnects (replaceable in tests). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

/** `POST /api/<Method>` with the arguments as a JSON array. */
export function httpCall(opts: HttpApiOptions): Call {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis)
  const base = opts.baseUrl ?? ''
  return async <T>(method: string, ...args: unknown[]): Promise<T> => {
    let res: Response
    try {
      res = await doFetch(`${base}/api/${encodeURIComponent(method)}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${opts.token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
        },
        body: JSON.stringify(args),
        cache: 'no-store',
      })
    } catch (err) {
      throw new ApiError(`Porthole is not reachable (${errorText(err)}); is \`porthole serve\` still running?`, method)
    }
    if (!res.ok) throw await errorFromResponse(res, method)
    const text = await res.text()
    if (text.trim() === '') return undefined as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new ApiError(`${method}: the backend answered with something that is not JSON`, method, res.status)
    }
  }
}

/** Maps a non-2xx response to an ApiError carrying the backend's `{"error": "…"}` message. */
export async function errorFromResponse(res: Response, method: string): Promise<ApiError> {
  let message = ''
  let body = ''
  try {
    body = await res.text()
  } catch {
    // the body is lost; the status still says something
  }
  try {
    const parsed = JSON.parse(body) as { error?: unknown }
    if (parsed && typeof parsed.error === 'string') message = parsed.error
  } catch {
    // not JSON: fall through
  }
  if (!message) {
    const snippet = body.trim().slice(0, 200)
    message = `${method} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${snippet ? `: ${snippet}` : ''}`
  }
  return new ApiError(message, method, res.status)
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function backoffDelay(attempt: number, initialMs: number, maxMs: number, rand = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30))
  // ±20% jitter so that many tabs do not reconnect in lockstep.
  return Math.round(base * (0.8 + 0.4 * rand()))
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })
}

/**
 * `GET /api/events`, read as server-sent events. EventSource cannot send an Authorization header,
 * so the stream is read with fetch. On a drop it reconnects with backoff; the backend sends a fresh
 * snapshot on every connect. A refused token (401/403) stops it: retrying cannot help.
 */
function openEventStream(hub: EventHub, opts: HttpApiOptions): () => void {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis)
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 500, maxMs: 10_000 }
  const sleep = opts.sleep ?? abortableSleep
  const ctrl = new AbortController()
  const { signal } = ctrl

  void (async () => {
    let attempt = 0
    while (!signal.aborted) {
      hub.setState('connecting')
      try {
        const res = await doFetch(`${opts.baseUrl ?? ''}/api/events`, {
          headers: { Authorization: `Bearer ${opts.token}`, Accept: 'text/event-stream' },
          cache: 'no-store',
          signal,
        })
        if (!res.ok) throw await errorFromResponse(res, 'events')
        if (!res.body) throw new ApiError('the event stream has no body', 'events', res.status)
        hub.setState('open')
        await readSse(res.body, (m) => {
          attempt = 0 // the stream works: the next drop starts the backoff over
          let parsed: unknown
          try {
            parsed = JSON.parse(m.data)
          } catch {
            console.warn('porthole: event is not JSON', m.data)
            return
          }
          hub.publish(parsed)
        })
      } catch (err) {
        if (signal.aborted) break
        if (isUnauthorized(err)) {
          console.error('porthole: the event stream refused the access token', err)
          hub.setState('closed')
          return
        }
        console.warn('porthole: event stream dropped', err)
      }
      if (signal.aborted) break
      hub.setState('closed')
      await sleep(backoffDelay(attempt++, initialMs, maxMs), signal)
    }
  })()

  return () => ctrl.abort()
}

export function createHttpApi(opts: HttpApiOptions): PortholeApi {
  const hub = new EventHub((h) => openEventStream(h, opts))
  return {
    kind: 'http',
    ...methods(httpCall(opts), 'http'),
    onEvent: (handler) => hub.subscribe(handler),
    onConnection: (handler) => hub.watch(handler),
  }
}
