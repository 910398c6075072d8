import type { ConnectionState, PortholeEvent } from './types'

/**
 * Fans one backend event stream out to any number of handlers.
 *
 * The stream is opened by the first onEvent subscriber and closed after the last one leaves.
 * The latest event of each topic is kept, so a handler that subscribes while the stream is
 * already open still gets "snapshot first, then updates".
 */
export class EventHub {
  private readonly handlers = new Set<(e: PortholeEvent) => void>()
  private readonly watchers = new Set<(s: ConnectionState) => void>()
  private readonly latest = new Map<string, PortholeEvent>()
  private stop: (() => void) | null = null
  private state: ConnectionState = 'closed'

  /** `open` starts the underlying stream and returns the function that stops it. */
  constructor(private readonly open: (hub: EventHub) => () => void) {}

  subscribe(handler: (e: PortholeEvent) => void): () => void {
    this.handlers.add(handler)
    for (const e of this.latest.values()) this.deliver(handler, e)
    if (!this.stop) this.stop = this.open(this)
    return () => {
      if (!this.handlers.delete(handler) || this.handlers.size > 0 || !this.stop) return
      const stop = this.stop
      this.stop = null
      stop()
      this.latest.clear()
      this.setState('closed')
    }
  }

  watch(handler: (s: ConnectionState) => void): () => void {
    this.watchers.add(handler)
    handler(this.state)
    return () => void this.watchers.delete(handler)
  }

  /** Validates a raw event from the transport and hands it to every handler. */
  publish(raw: unknown): void {
    const e = asEvent(raw)
    if (!e) {
      console.warn('porthole: ignoring a malformed event', raw)
      return
    }
    this.latest.set(e.topic, e)
    for (const h of [...this.handlers]) this.deliver(h, e)
  }

  setState(s: ConnectionState): void {
    if (s === this.state) return
    this.state = s
    for (const w of [...this.watchers]) w(s)
  }

  get connection(): ConnectionState {
    return this.state
  }

  private deliver(h: (e: PortholeEvent) => void, e: PortholeEvent): void {
    try {
      h(e)
    } catch (err) {
      // One broken handler must not starve the others or kill the stream.
      console.error(`porthole: event handler failed on ${e.topic}`, err)
    }
  }
}

export function asEvent(raw: unknown): PortholeEvent | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const { topic, data } = raw as { topic?: unknown; data?: unknown }
  if (typeof topic !== 'string' || topic === '') return undefined
  return { topic, data }
}
