import { describe, expect, it, vi } from 'vitest'
import { extractToken, loadToken, TOKEN_STORAGE_KEY, type TokenEnv } from '@/api/token'

describe('extractToken', () => {
  const cases = [
    { name: 'token alone', href: 'http://127.0.0.1:5000/#token=abc', token: 'abc', clean: 'http://127.0.0.1:5000/' },
    { name: 'no fragment', href: 'http://127.0.0.1:5000/', token: null, clean: 'http://127.0.0.1:5000/' },
    { name: 'fragment without token', href: 'http://h/#tab=2', token: null, clean: 'http://h/#tab=2' },
    { name: 'other params kept', href: 'http://h/#tab=2&token=xyz', token: 'xyz', clean: 'http://h/#tab=2' },
    { name: 'token first, params after', href: 'http://h/#token=xyz&tab=2', token: 'xyz', clean: 'http://h/#tab=2' },
    { name: 'query string kept', href: 'http://h/p?q=1#token=t', token: 't', clean: 'http://h/p?q=1' },
    { name: 'percent-encoded', href: 'http://h/#token=a%2Bb%3D', token: 'a+b=', clean: 'http://h/' },
    { name: 'url-safe base64', href: 'http://h/#token=Ab-_9z', token: 'Ab-_9z', clean: 'http://h/' },
    { name: 'empty token is none, still scrubbed', href: 'http://h/#token=', token: null, clean: 'http://h/' },
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(extractToken(c.href)).toEqual({ token: c.token, cleanUrl: c.clean })
    })
  }
})

function env(href: string, stored: string | null = null) {
  const store = new Map<string, string>()
  if (stored !== null) store.set(TOKEN_STORAGE_KEY, stored)
  const e: TokenEnv & { store: Map<string, string> } = {
    store,
    location: { href },
    history: { state: { keep: 1 }, replaceState: vi.fn() },
    storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v) },
  }
  return e
}

describe('loadToken', () => {
  it('takes the token from the fragment, stores it and scrubs the URL', () => {
    const e = env('http://127.0.0.1:4242/#token=s3cret')
    expect(loadToken(e)).toBe('s3cret')
    expect(e.store.get(TOKEN_STORAGE_KEY)).toBe('s3cret')
    expect(e.history.replaceState).toHaveBeenCalledWith({ keep: 1 }, '', 'http://127.0.0.1:4242/')
  })

  it('a fragment token wins over a stored one', () => {
    const e = env('http://h/#token=new', 'old')
    expect(loadToken(e)).toBe('new')
    expect(e.store.get(TOKEN_STORAGE_KEY)).toBe('new')
  })

  it('falls back to sessionStorage after a reload', () => {
    const e = env('http://h/', 'kept')
    expect(loadToken(e)).toBe('kept')
    expect(e.history.replaceState).not.toHaveBeenCalled()
  })

  it('returns null with neither', () => {
    expect(loadToken(env('http://h/'))).toBeNull()
  })

  it('survives storage that throws', () => {
    const e = env('http://h/#token=t')
    e.storage = {
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('denied')
      },
    }
    expect(loadToken(e)).toBe('t')
    expect(loadToken(env('http://h/'))).toBeNull()
  })
})
