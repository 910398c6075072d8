// A parser for server-sent events (the `text/event-stream` format of the HTML standard),
// fed with text chunks exactly as they come off the network: a chunk may end anywhere,
// in the middle of a line, of a field name or between the CR and LF of a line break.

export interface SseMessage {
  /** The `event:` field, "message" when absent. */
  event: string
  /** The `data:` lines joined with "\n". */
  data: string
  /** The last `id:` seen on the stream (it persists across messages, per the standard). */
  id: string
}

export class SseParser {
  private buf = ''
  /** The previous chunk ended with CR: a LF at the start of the next one belongs to that line break. */
  private pendingCR = false
  private event = ''
  private data: string[] = []
  private lastId = ''
  /** The last valid `retry:` value in milliseconds, if the server sent one. */
  retry: number | undefined

  /** Feed one chunk of text; returns the messages completed by it. */
  push(chunk: string): SseMessage[] {
    if (this.pendingCR && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.pendingCR = false
    this.buf += chunk
    const out: SseMessage[] = []
    let start = 0
    for (;;) {
      const cr = this.buf.indexOf('\r', start)
      const lf = this.buf.indexOf('\n', start)
      let end: number
      if (cr === -1 && lf === -1) break
      if (cr === -1 || (lf !== -1 && lf < cr)) end = lf
      else end = cr
      const line = this.buf.slice(start, end)
      let next = end + 1
      if (this.buf[end] === '\r') {
        if (next === this.buf.length) this.pendingCR = true
        else if (this.buf[next] === '\n') next++
      }
      start = next
      const msg = this.line(line)
      if (msg) out.push(msg)
    }
    this.buf = this.buf.slice(start)
    return out
  }

  /** The stream ended: a message without its closing blank line is dropped, as the standard says. */
  end(): void {
    this.buf = ''
    this.pendingCR = false
    this.event = ''
    this.data = []
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return undefined // comment, e.g. a keep-alive
    const colon = line.indexOf(':')
    let field = line
    let value = ''
    if (colon !== -1) {
      field = line.slice(0, colon)
      value = line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
    }
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) this.lastId = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value)
        break
      default: // unknown fields are ignored
    }
    return undefined
  }

  private dispatch(): SseMessage | undefined {
    const data = this.data
    const event = this.event || 'message'
    this.data = []
    this.event = ''
    if (data.length === 0) return undefined
    return { event, data: data.join('\n'), id: this.lastId }
  }
}

/**
 * Reads an event stream body to its end, calling onMessage for each message.
 * Bytes are decoded as a stream, so a UTF-8 character split across chunks survives.
 */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onMessage: (m: SseMessage) => void,
  parser: SseParser = new SseParser(),
): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder('utf-8')
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      for (const m of parser.push(decoder.decode(value, { stream: true }))) onMessage(m)
    }
    for (const m of parser.push(decoder.decode())) onMessage(m)
  } finally {
    parser.end()
    reader.releaseLock()
  }
}
