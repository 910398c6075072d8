import { describe, expect, it } from 'vitest'
import { readSse, SseParser, type SseMessage } from '@/api/sse'

function feed(chunks: string[]): SseMessage[] {
  const p = new SseParser()
  return chunks.flatMap((c) => p.push(c))
}

/** Every way of cutting `text` in two must give the same messages as the whole. */
function allSplits(text: string): SseMessage[][] {
  const out: SseMessage[][] = []
  for (let i = 0; i <= text.length; i++) out.push(feed([text.slice(0, i), text.slice(i)]))
  return out
}

describe('SseParser', () => {
  const cases: { name: string; input: string; want: Partial<SseMessage>[] }[] = [
    { name: 'one message', input: 'data: {"topic":"a"}\n\n', want: [{ data: '{"topic":"a"}', event: 'message' }] },
    { name: 'no space after colon', input: 'data:x\n\n', want: [{ data: 'x' }] },
    { name: 'only one leading space is stripped', input: 'data:  x\n\n', want: [{ data: ' x' }] },
    { name: 'multi-line data joined with LF', input: 'data: {"a":\ndata: 1}\n\n', want: [{ data: '{"a":\n1}' }] },
    { name: 'comments are keep-alives', input: ': ping\n\n:\ndata: x\n: mid\n\n', want: [{ data: 'x' }] },
    { name: 'CRLF line endings', input: 'data: a\r\ndata: b\r\n\r\n', want: [{ data: 'a\nb' }] },
    { name: 'CR line endings', input: 'data: a\r\rdata: b\r\r', want: [{ data: 'a' }, { data: 'b' }] },
    { name: 'event and id fields', input: 'event: status\nid: 7\ndata: x\n\n', want: [{ event: 'status', id: '7', data: 'x' }] },
    { name: 'id persists to later messages', input: 'id: 3\ndata: a\n\ndata: b\n\n', want: [{ id: '3' }, { id: '3', data: 'b' }] },
    { name: 'unknown fields ignored', input: 'foo: bar\ndata: x\n\n', want: [{ data: 'x' }] },
    { name: 'field without colon', input: 'data\n\n', want: [{ data: '' }] },
    { name: 'blank lines without data dispatch nothing', input: '\n\n\nevent: x\n\n', want: [] },
    { name: 'unterminated message is held', input: 'data: x\n', want: [] },
    { name: 'two messages', input: 'data: 1\n\ndata: 2\n\n', want: [{ data: '1' }, { data: '2' }] },
    { name: 'unicode data', input: 'data: {"name":"café ☕"}\n\n', want: [{ data: '{"name":"café ☕"}' }] },
  ]

  for (const c of cases) {
    it(c.name, () => {
      const got = feed([c.input])
      expect(got).toHaveLength(c.want.length)
      c.want.forEach((w, i) => expect(got[i]).toMatchObject(w))
    })

    it(`${c.name}: same result at every split point`, () => {
      const whole = feed([c.input])
      for (const got of allSplits(c.input)) expect(got).toEqual(whole)
    })
  }

  it('one character at a time', () => {
    const text = ': hi\r\ndata: {"topic":"app.status",\r\ndata: "data":{}}\r\n\r\ndata: 2\n\n'
    expect(feed([...text])).toEqual([
      { event: 'message', data: '{"topic":"app.status",\n"data":{}}', id: '' },
      { event: 'message', data: '2', id: '' },
    ])
  })

  it('a CR at the end of a chunk and LF at the start of the next make one line break', () => {
    expect(feed(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([{ event: 'message', data: 'a\nb', id: '' }])
  })

  it('keeps the retry field', () => {
    const p = new SseParser()
    p.push('retry: 1500\n\nretry: x\n\n')
    expect(p.retry).toBe(1500)
  })

  it('end() drops a half message', () => {
    const p = new SseParser()
    p.push('data: half\n')
    p.end()
    expect(p.push('data: next\n\n')).toEqual([{ event: 'message', data: 'next', id: '' }])
  })
})

describe('readSse', () => {
  function stream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
    return new ReadableStream({
      start(c) {
        for (const x of chunks) c.enqueue(x)
        c.close()
      },
    })
  }

  it('decodes a UTF-8 character split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: ☕\n\n')
    const cut = bytes.indexOf(0xe2) + 1 // inside the 3-byte sequence
    const got: SseMessage[] = []
    await readSse(stream([bytes.slice(0, cut), bytes.slice(cut)]), (m) => got.push(m))
    expect(got.map((m) => m.data)).toEqual(['☕'])
  })

  it('delivers messages in order across many chunks', async () => {
    const text = Array.from({ length: 20 }, (_, i) => `data: {"n":${i}}\n\n`).join(': ka\n')
    const bytes = new TextEncoder().encode(text)
    const chunks: Uint8Array[] = []
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.slice(i, i + 7))
    const got: number[] = []
    await readSse(stream(chunks), (m) => got.push((JSON.parse(m.data) as { n: number }).n))
    expect(got).toEqual([...Array(20).keys()])
  })
})
