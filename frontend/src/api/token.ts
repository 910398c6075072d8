// `porthole serve` prints http://127.80.72.1:PORT/#token=…: the access token travels in the URL
// fragment, which browsers never send to servers or put in Referer headers. At first load the UI
// moves it into sessionStorage (per tab, gone when the tab closes) and removes it from the address bar.

export const TOKEN_STORAGE_KEY = 'porthole.token'

export interface TokenFromUrl {
  /** The token in the fragment, or null. */
  token: string | null
  /** The same URL without the token (other fragment parameters kept; an empty fragment removed). */
  cleanUrl: string
}

/** Finds `token=…` in a URL's fragment (`#token=abc` or `#x=1&token=abc`). */
export function extractToken(href: string): TokenFromUrl {
  const hashAt = href.indexOf('#')
  if (hashAt === -1) return { token: null, cleanUrl: href }
  const params = new URLSearchParams(href.slice(hashAt + 1))
  const token = params.get('token')
  if (token === null) return { token: null, cleanUrl: href }
  params.delete('token')
  const rest = params.toString()
  return { token: token.trim() || null, cleanUrl: href.slice(0, hashAt) + (rest ? `#${rest}` : '') }
}

export interface TokenEnv {
  location: { href: string }
  history: { replaceState(data: unknown, unused: string, url?: string | URL | null): void; state: unknown }
  storage: Pick<Storage, 'getItem' | 'setItem'>
}

/**
 * The access token for this tab: from the URL fragment (then stored and scrubbed from the URL),
 * else from sessionStorage (a reload after the scrub). Null when there is none.
 */
export function loadToken(env: TokenEnv): string | null {
  const { token, cleanUrl } = extractToken(env.location.href)
  if (token !== null) {
    try {
      env.storage.setItem(TOKEN_STORAGE_KEY, token)
    } catch {
      // storage disabled: the token still works for this page's lifetime
    }
  }
  if (cleanUrl !== env.location.href) env.history.replaceState(env.history.state, '', cleanUrl)
  if (token !== null) return token
  try {
    return env.storage.getItem(TOKEN_STORAGE_KEY) || null
  } catch {
    return null
  }
}
