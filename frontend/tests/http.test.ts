import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from '@/api/errors'
import { backoffDelay, createHttpApi, errorFromResponse, httpCall } from '@/api/http'
import type { ConnectionState, PortholeEvent } from '@/api/types'

type FetchArgs = [input: string, init?: RequestInit]

function json(status: number, body: unknown, statusText = ''): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    statusText,
    headers: { 'Content-Type': 'application/json' },
  })
}

describe('httpCall', () => {
  it('POSTs the arguments as a JSON array with the bearer token', async () => {
    const fetch = vi.fn(async (..._a: FetchArgs) => json(200, { theme: 'dark' }))
    const call = httpCall({ token: 'tok', fetch: fetch as unknown as typeof globalThis.fetch })
    await expect(call('SetTheme', 'dark')).resolves.toEqual({ theme: 'dark' })
    const [url, init] = fetch.mock.calls[0]!
    expect(url).toBe('/api/SetTheme')
    expect(init?.method).toBe('POST')
    expect(init?.body).toBe('["dark"]')
    expect((init?.headers as Record<string, string>).Authorization).toBe('Bearer tok')
  })

  it('sends [] for no arguments and honours baseUrl', async () => {
    const fetch = vi.fn(async (..._a: FetchArgs) => json(200, { version: '1' }))
    const call = httpCall({ token: 't', baseUrl: 'http://127.0.0.1:9', fetch: fetch as unknown as typeof globalThis.fetch })
    await call('Version')
    expect(fetch.mock.calls[0]![0]).toBe('http://127.0.0.1:9/api/Version')
    expect(fetch.mock.calls[0]![1]?.body).toBe('[]')
  })

  it('an empty 2xx body is undefined', async () => {
    const call = httpCall({ token: 't', fetch: (async () => new Response(null, { status: 204 })) as typeof fetch })
    await expect(call('Quit')).resolves.toBeUndefined()
  })

  const errorCases: { name: string; res: () => Response; message: string | RegExp; status: number }[] = [
    { name: 'backend error message', res: () => json(400, { error: 'unknown theme "blue": use system, light or dark' }), message: 'unknown theme "blue": use system, light or dark', status: 400 },
    { name: '401 keeps its status', res: () => json(401, { error: 'wrong token' }), message: 'wrong token', status: 401 },
    { name: 'non-JSON body', res: () => new Response('upstream exploded', { status: 502, statusText: 'Bad Gateway' }), message: 'SetTheme failed: HTTP 502 Bad Gateway: upstream exploded', status: 502 },
    { name: 'JSON without error field', res: () => json(500, { oops: 1 }), message: /^SetTheme failed: HTTP 500/, status: 500 },
    { name: 'empty body', res: () => new Response('', { status: 404 }), message: 'SetTheme failed: HTTP 404', status: 404 },
  ]
  for (const c of errorCases) {
    it(`maps non-2xx to ApiError: ${c.name}`, async () => {
      const call = httpCall({ token: 't', fetch: (async () => c.res()) as typeof fetch })
      const err = await call('SetTheme', 'blue').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ApiError)
      expect((err as ApiError).message).toMatch(c.message)
      expect((err as ApiError).status).toBe(c.status)
      expect((err as ApiError).method).toBe('SetTheme')
      expect((err as ApiError).unauthorized).toBe(c.status === 401)
    })
  }

  it('a network failure says the backend is unreachable', async () => {
    const call = httpCall({
      token: 't',
      fetch: (async () => {
        throw new TypeError('Failed to fetch')
      }) as typeof fetch,
    })
    const err = (await call('Version').catch((e: unknown) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(0)
    expect(err.message).toMatch(/not reachable.*Failed to fetch/)
  })

  it('a 2xx body that is not JSON is an error', async () => {
    const call = httpCall({ token: 't', fetch: (async () => new Response('<html>', { status: 200 })) as typeof fetch })
    await expect(call('Version')).rejects.toThrow(/not JSON/)
  })

  it('errorFromResponse truncates long bodies', async () => {
    const err = await errorFromResponse(new Response('x'.repeat(5000), { status: 500 }), 'M')
    expect(err.message.length).toBeLessThan(260)
  })
})

describe('backoffDelay', () => {
  it('doubles up to the cap, with bounded jitter', () => {
    const mid = () => 0.5
    expect([0, 1, 2, 3, 10, 100].map((a) => backoffDelay(a, 500, 10_000, mid))).toEqual([500, 1000, 2000, 4000, 10_000, 10_000])
    expect(backoffDelay(0, 1000, 10_000, () => 0)).toBe(800)
    expect(backoffDelay(0, 1000, 10_000, () => 1)).toBe(1200)
  })
})

/** A fetch for /api/events that serves scripted streams, one per connection. */
function eventServer() {
  const connections: { controller: ReadableStreamDefaultController<Uint8Array>; signal?: AbortSignal | null }[] = []
  const statuses: number[] = []
  const enc = new TextEncoder()
  const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
    const status = statuses.shift() ?? 200
    if (status !== 200) return json(status, { error: `status ${status}` })
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    connections.push({ controller, signal: init?.signal })
    init?.signal?.addEventListener('abort', () => {
      try {
        controller.error(new DOMException('aborted', 'AbortError'))
      } catch {
        // already closed
      }
    })
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
  })
  return {
    fetch: fetch as unknown as typeof globalThis.fetch,
    calls: fetch.mock.calls,
    connections,
    statuses,
    send(i: number, text: string) {
      connections[i]!.controller.enqueue(enc.encode(text))
    },
    drop(i: number) {
      connections[i]!.controller.close()
    },
  }
}

const frame = (e: PortholeEvent) => `data: ${JSON.stringify(e)}\n\n`

describe('createHttpApi events', () => {
  afterEach(() => vi.useRealTimers())

  it('delivers the snapshot and updates, reports the connection, and reconnects after a drop', async () => {
    const srv = eventServer()
    const sleeps: number[] = []
    const api = createHttpApi({
      token: 'tok',
      fetch: srv.fetch,
      backoff: { initialMs: 100, maxMs: 1000 },
      sleep: async (ms) => void sleeps.push(ms),
    })
    const states: ConnectionState[] = []
    api.onConnection!((s) => states.push(s))
    const events: PortholeEvent[] = []
    const off = api.onEvent((e) => events.push(e))

    await vi.waitFor(() => expect(srv.connections).toHaveLength(1))
    expect(srv.calls[0]![0]).toBe('/api/events')
    expect((srv.calls[0]![1]?.headers as Record<string, string>).Authorization).toBe('Bearer tok')

    // Snapshot split mid-frame, a keep-alive, then an update.
    const snap = frame({ topic: 'app.status', data: { mode: 'serve' } }) + frame({ topic: 'settings', data: { theme: 'dark' } })
    srv.send(0, snap.slice(0, 17))
    srv.send(0, snap.slice(17) + ': keep-alive\n\n')
    srv.send(0, frame({ topic: 'settings', data: { theme: 'light' } }))
    await vi.waitFor(() => expect(events).toHaveLength(3))
    expect(events.map((e) => e.topic)).toEqual(['app.status', 'settings', 'settings'])
    expect(states).toEqual(['closed', 'connecting', 'open'])

    // A late subscriber gets the latest of each topic first.
    const late: PortholeEvent[] = []
    const offLate = api.onEvent((e) => late.push(e))
    expect(late).toEqual([
      { topic: 'app.status', data: { mode: 'serve' } },
      { topic: 'settings', data: { theme: 'light' } },
    ])

    // The server goes away: the stream reconnects and gets a fresh snapshot.
    srv.drop(0)
    await vi.waitFor(() => expect(srv.connections).toHaveLength(2))
    expect(sleeps).toHaveLength(1)
    expect(sleeps[0]).toBeLessThanOrEqual(120) // first retry: initialMs ±20%, the stream had worked
    srv.send(1, frame({ topic: 'app.status', data: { mode: 'serve', n: 2 } }))
    await vi.waitFor(() => expect(events).toHaveLength(4))
    expect(states).toEqual(['closed', 'connecting', 'open', 'closed', 'connecting', 'open'])

    // Last unsubscribe closes the stream.
    offLate()
    off()
    await vi.waitFor(() => expect(srv.connections[1]!.signal?.aborted).toBe(true))
    expect(states.at(-1)).toBe('closed')
  })

  it('backs off more on repeated failures', async () => {
    const srv = eventServer()
    srv.statuses.push(500, 503, 502)
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const sleeps: number[] = []
    const api = createHttpApi({ token: 't', fetch: srv.fetch, backoff: { initialMs: 100, maxMs: 10_000 }, sleep: async (ms) => void sleeps.push(ms) })
    const off = api.onEvent(() => {})
    await vi.waitFor(() => expect(srv.connections).toHaveLength(1))
    expect(sleeps).toHaveLength(3)
    expect(sleeps[1]!).toBeGreaterThan(sleeps[0]!)
    expect(sleeps[2]!).toBeGreaterThan(sleeps[1]!)
    off()
  })

  it('stops on a refused token', async () => {
    const srv = eventServer()
    srv.statuses.push(401)
    const sleeps: number[] = []
    const api = createHttpApi({ token: 'bad', fetch: srv.fetch, sleep: async (ms) => void sleeps.push(ms) })
    const states: ConnectionState[] = []
    api.onConnection!((s) => states.push(s))
    vi.spyOn(console, 'error').mockImplementation(() => {})
    api.onEvent(() => {})
    await vi.waitFor(() => expect(states.at(-1)).toBe('closed'))
    await new Promise((r) => setTimeout(r, 20))
    expect(srv.calls).toHaveLength(1)
    expect(sleeps).toHaveLength(0)
  })

  it('ignores malformed events and keeps going', async () => {
    const srv = eventServer()
    const api = createHttpApi({ token: 't', fetch: srv.fetch, sleep: async () => {} })
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const events: PortholeEvent[] = []
    const off = api.onEvent((e) => events.push(e))
    await vi.waitFor(() => expect(srv.connections).toHaveLength(1))
    srv.send(0, 'data: not json\n\ndata: {"no":"topic"}\n\n' + frame({ topic: 'settings', data: { theme: 'dark' } }))
    await vi.waitFor(() => expect(events).toHaveLength(1))
    expect(events[0]!.topic).toBe('settings')
    off()
  })
})
