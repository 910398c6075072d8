import { describe, expect, it } from 'vitest'
import { appTabMode, formatSince, kindFamily, kindFromTitle, kindLine, knownTime, processLabel, sharedCookieHosts, shortCommand, shortPath, splitServices } from '@/lib/apps'
import { FrameHistory } from '@/lib/frameHistory'
import { isMacPlatform, matchShortcut, shortcutLabel, type KeyLike } from '@/lib/shortcuts'
import { hostPort, isLoopbackHost, parseUrlInput, pathOf, serversForHost, withoutToken } from '@/lib/urls'
import { appList, service } from './fakeApi'

// Issue 14, finding 7: the Linux window never frames an app (a framed page could call Porthole's
// bindings); without app views, apps open in the system browser.
describe('appTabMode', () => {
  const base = { startedAt: '', servers: 0, forwards: 0 }
  const cases: Array<[string, Parameters<typeof appTabMode>[0], 'wails' | 'http', ReturnType<typeof appTabMode>]> = [
    ['Linux window with app views', { ...base, mode: 'desktop', os: 'linux', appViews: true }, 'wails', 'views'],
    ['Linux window without app views', { ...base, mode: 'desktop', os: 'linux', appViews: false }, 'wails', 'browser'],
    ['Linux window, appViews absent', { ...base, mode: 'desktop', os: 'linux' }, 'wails', 'browser'],
    ['macOS window', { ...base, mode: 'desktop', os: 'darwin', appViews: false }, 'wails', 'frames'],
    ['Windows window', { ...base, mode: 'desktop', os: 'windows' }, 'wails', 'frames'],
    ['serve on Linux', { ...base, mode: 'serve', os: 'linux', appViews: false }, 'http', 'frames'],
    ['window, status unreadable', null, 'wails', 'browser'],
    ['serve, status unreadable', null, 'http', 'frames'],
  ]
  it.each(cases)('%s', (_name, st, api, want) => expect(appTabMode(st, api)).toBe(want))
})

// Issue 15: apps of one server on one local address share cookies (ports do not count).
describe('sharedCookieHosts', () => {
  it('names the other ports on the same host, only for forwarded web apps', () => {
    const got = sharedCookieHosts([
      service({ port: 8888, localUrl: 'http://127.0.0.2:8888/lab' }),
      service({ port: 8889, localUrl: 'http://127.0.0.2:8889/' }),
      service({ port: 6006, localUrl: 'http://127.0.0.2:6006/' }),
      service({ port: 8501, localUrl: 'http://127.1.0.1:8501/' }), // an address of its own
      service({ port: 5000 }), // not forwarded yet
      service({ port: 3000, local: true, localUrl: 'http://127.0.0.1:3000/' }), // this computer's
      service({ port: 3001, local: true, localUrl: 'http://127.0.0.1:3001/' }),
      service({ port: 5432, isWeb: false, localUrl: 'http://127.0.0.2:5432/' }),
    ])
    expect([...got.keys()].sort()).toEqual([6006, 8888, 8889])
    expect(got.get(8888)).toEqual({ host: '127.0.0.2', ports: [6006, 8889] })
    expect(got.get(6006)).toEqual({ host: '127.0.0.2', ports: [8888, 8889] })
  })
  it('says nothing when every app has its own address', () => {
    expect(sharedCookieHosts([service({ port: 1, localUrl: 'http://127.1.0.1:1/' }), service({ port: 2, localUrl: 'http://127.1.1.1:2/' })]).size).toBe(0)
  })
})

describe('parseUrlInput', () => {
  const cases: Array<[string, ReturnType<typeof parseUrlInput>]> = [
    ['', { kind: 'empty' }],
    ['   ', { kind: 'empty' }],
    ['8888', { kind: 'port', port: 8888, path: '/' }],
    [':8888', { kind: 'port', port: 8888, path: '/' }],
    ['8888/lab', { kind: 'port', port: 8888, path: '/lab' }],
    [':6006?x=1', { kind: 'port', port: 6006, path: '/?x=1' }],
    [
      'http://localhost:8888/lab?token=abc',
      { kind: 'url', url: 'http://localhost:8888/lab?token=abc', host: 'localhost', port: 8888, path: '/lab?token=abc', loopback: true },
    ],
    ['localhost:8888/lab', { kind: 'url', url: 'http://localhost:8888/lab', host: 'localhost', port: 8888, path: '/lab', loopback: true }],
    ['127.0.0.1:5000', { kind: 'url', url: 'http://127.0.0.1:5000/', host: '127.0.0.1', port: 5000, path: '/', loopback: true }],
    ['http://0.0.0.0:6006/#scalars', { kind: 'url', url: 'http://0.0.0.0:6006/#scalars', host: '0.0.0.0', port: 6006, path: '/#scalars', loopback: true }],
    ['http://[::1]:8501/', { kind: 'url', url: 'http://[::1]:8501/', host: '[::1]', port: 8501, path: '/', loopback: true }],
    ['https://gpu-node-17:8443/x', { kind: 'url', url: 'https://gpu-node-17:8443/x', host: 'gpu-node-17', port: 8443, path: '/x', loopback: false }],
    ['http://example.com', { kind: 'url', url: 'http://example.com/', host: 'example.com', port: 80, path: '/', loopback: false }],
  ]
  for (const [input, want] of cases) {
    it(JSON.stringify(input), () => expect(parseUrlInput(input)).toEqual(want))
  }

  it.each(['70000', ':0', 'javascript:alert(1)', 'mailto:a@b.c', 'file:///etc/passwd', 'ftp://x/y', 'http://', 'localhost:abc'])(
    'refuses %s in plain words',
    (input) => {
      const r = parseUrlInput(input)
      expect(r.kind).toBe('invalid')
      if (r.kind === 'invalid') expect(r.reason.length).toBeGreaterThan(10)
    },
  )
})

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST', 'foo.localhost', '127.0.0.1', '127.1.2.3', '0.0.0.0', '[::1]', '[::]', '[::ffff:7f00:1]', 'localhost.'])(
    '%s is loopback',
    (h) => expect(isLoopbackHost(h)).toBe(true),
  )
  it.each(['example.com', '10.0.0.1', '128.0.0.1', '[::2]', 'localhost.example.com', '1270.0.0.1'])('%s is not', (h) =>
    expect(isLoopbackHost(h)).toBe(false),
  )
})

describe('url helpers', () => {
  it('withoutToken drops only the token parameter', () => {
    expect(withoutToken('/lab?token=abc')).toBe('/lab')
    expect(withoutToken('/lab?token=abc&x=1#h')).toBe('/lab?x=1#h')
    expect(withoutToken('/lab?x=1&token=abc')).toBe('/lab?x=1')
    expect(withoutToken('/lab?tokens=keep')).toBe('/lab?tokens=keep')
    expect(withoutToken('/tree')).toBe('/tree')
    expect(withoutToken('http://127.0.0.2:8888/lab?token=t')).toBe('http://127.0.0.2:8888/lab')
  })

  it('pathOf and hostPort', () => {
    expect(pathOf('http://localhost:8888/lab?x=1#y')).toBe('/lab?x=1#y')
    expect(pathOf('not a url')).toBe('/')
    expect(hostPort('http://127.0.0.2:8888/lab')).toBe('127.0.0.2:8888')
  })

  it('serversForHost matches host names and server names, case-insensitively', () => {
    const list = [
      { id: 'a', host: 'gpu.lab', name: 'gpu' },
      { id: 'b', host: '10.0.0.5', name: 'box' },
      { id: 'c', host: '::1', name: 'v6' },
    ]
    expect(serversForHost('GPU.lab', list).map((s) => s.id)).toEqual(['a'])
    expect(serversForHost('box', list).map((s) => s.id)).toEqual(['b'])
    expect(serversForHost('[::1]', list).map((s) => s.id)).toEqual(['c'])
    expect(serversForHost('other', list)).toEqual([])
  })
})

describe('apps helpers', () => {
  it('maps discovery kinds to icon families, unknown kinds by isWeb', () => {
    expect(kindFamily('jupyter-lab')).toBe('jupyter')
    expect(kindFamily('jupyterhub')).toBe('jupyter')
    expect(kindFamily('ray-dashboard')).toBe('ray')
    expect(kindFamily('postgres')).toBe('database')
    expect(kindFamily('mongodb')).toBe('database')
    expect(kindFamily('http')).toBe('web')
    expect(kindFamily('not-http', false)).toBe('port')
    expect(kindFamily('jupyter-something-new', true)).toBe('jupyter')
    expect(kindFamily('brand-new-thing', true)).toBe('web')
    expect(kindFamily('brand-new-thing', false)).toBe('port')
  })

  it('formats "since when" relative to now; unknown times are empty', () => {
    const now = Date.parse('2025-01-10T12:00:00Z')
    expect(formatSince('2025-01-10T11:59:40Z', now)).toBe('just now')
    expect(formatSince('2025-01-10T11:55:00Z', now)).toBe('5 min ago')
    expect(formatSince('2025-01-10T09:00:00Z', now)).toBe('3 h ago')
    expect(formatSince('2025-01-09T10:00:00Z', now)).toBe('yesterday')
    expect(formatSince('2025-01-05T12:00:00Z', now)).toBe('5 days ago')
    expect(formatSince('2024-06-01T12:00:00Z', now)).toMatch(/^on /)
    expect(formatSince('0001-01-01T00:00:00Z', now)).toBe('')
    expect(formatSince(undefined, now)).toBe('')
    expect(formatSince('garbage', now)).toBe('')
    expect(knownTime('0001-01-01T00:00:00Z')).toBeNull()
  })

  it('splits web apps from other listeners, each by port', () => {
    const l = appList('s1', [service({ port: 8888 }), service({ port: 5432, kind: 'postgres', isWeb: false }), service({ port: 6006 })])
    const { web, other } = splitServices(l)
    expect(web.map((s) => s.port)).toEqual([6006, 8888])
    expect(other.map((s) => s.port)).toEqual([5432])
    expect(splitServices(null)).toEqual({ web: [], other: [] })
    expect(splitServices(appList('s1', [], { services: null }))).toEqual({ web: [], other: [] })
  })

  it('labels processes, kinds and paths', () => {
    expect(processLabel({ pid: 12, name: 'mlflow', cmdline: '', cwd: '' })).toBe('mlflow · pid 12')
    expect(processLabel(undefined)).toBe('')
    expect(kindLine(service())).toBe('') // the title says it already
    expect(kindLine(service({ title: 'My notebook server' }))).toBe('Jupyter Lab')
    expect(shortPath('/home/alice/project')).toBe('~/project')
    expect(shortPath('/Users/bob')).toBe('~')
    expect(shortPath('/root/x')).toBe('~/x')
    expect(shortPath('/srv/app')).toBe('/srv/app')
  })
})

describe('FrameHistory', () => {
  it('offers Back only for the tab that made the latest navigation, and never for a first load', () => {
    const h = new FrameHistory(() => 0)
    h.loaded('a') // first page: replaces about:blank
    h.loaded('b')
    expect(h.canGoBack('a')).toBe(false)
    h.loaded('a') // a navigates
    expect(h.canGoBack('a')).toBe(true)
    h.loaded('b') // b navigates (its second load)
    expect(h.canGoBack('b')).toBe(true)
    expect(h.canGoBack('a')).toBe(false) // Back would move b, which is hidden
  })

  it('back then forward move the cursor; the traversal load adds no entry', () => {
    const h = new FrameHistory(() => 0)
    h.loaded('a')
    h.loaded('a')
    h.loaded('a')
    expect(h.back('a')).toBe(true)
    h.loaded('a') // the traversal's page
    expect(h.canGoBack('a')).toBe(true)
    expect(h.canGoForward('a')).toBe(true)
    expect(h.back('a')).toBe(true)
    h.loaded('a')
    expect(h.canGoBack('a')).toBe(false)
    expect(h.back('a')).toBe(false)
    expect(h.forward('a')).toBe(true)
    h.loaded('a')
    expect(h.canGoForward('a')).toBe(true)
    h.loaded('a') // a new navigation drops the forward entries
    expect(h.canGoForward('a')).toBe(false)
  })

  it('a reload (replace) adds no entry; a traversal that never loads stops being waited for', () => {
    let now = 0
    const h = new FrameHistory(() => now, 1000)
    h.loaded('a')
    h.replacing('a')
    h.loaded('a')
    expect(h.canGoBack('a')).toBe(false)
    h.loaded('a')
    h.loaded('a')
    h.back('a') // a pushState entry: no load comes
    now = 5000
    h.loaded('a') // a new navigation much later: counted
    expect(h.canGoBack('a')).toBe(true)
  })

  it('forget drops a closed tab’s entries and keeps the cursor on the others', () => {
    const h = new FrameHistory(() => 0)
    h.loaded('a')
    h.loaded('a')
    h.loaded('b')
    h.loaded('b')
    expect(h.canGoBack('b')).toBe(true)
    h.forget('b')
    expect(h.canGoBack('a')).toBe(true)
    expect(h.canGoBack('b')).toBe(false)
  })
})

describe('shortcuts', () => {
  const k = (key: string, mods: Partial<KeyLike> = {}): KeyLike => ({ key, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods })

  it('maps Ctrl (Linux, Windows) and ⌘ (macOS)', () => {
    expect(matchShortcut(k('t', { ctrlKey: true }), false)).toBe('new-tab')
    expect(matchShortcut(k('T', { ctrlKey: true, shiftKey: true }), false)).toBe('reopen-tab')
    expect(matchShortcut(k('w', { ctrlKey: true }), false)).toBe('close-tab')
    expect(matchShortcut(k('l', { ctrlKey: true }), false)).toBe('focus-url')
    expect(matchShortcut(k('r', { ctrlKey: true }), false)).toBe('reload')
    expect(matchShortcut(k('F5'), false)).toBe('reload')
    expect(matchShortcut(k('q', { ctrlKey: true }), false)).toBe('quit')
    expect(matchShortcut(k('q', { metaKey: true }), true)).toBe('quit')
    expect(matchShortcut(k('q', { ctrlKey: true, altKey: true }), false)).toBeNull()
    expect(matchShortcut(k('w', { metaKey: true }), false)).toBeNull()
    expect(matchShortcut(k('w', { metaKey: true }), true)).toBe('close-tab')
    expect(matchShortcut(k('w', { ctrlKey: true }), true)).toBeNull()
    expect(matchShortcut(k('[', { metaKey: true }), true)).toBe('back')
    expect(matchShortcut(k('}', { metaKey: true, shiftKey: true }), true)).toBeNull()
    expect(matchShortcut(k(']', { metaKey: true, shiftKey: true }), true)).toBe('next-tab')
  })

  it('Ctrl+Tab and Ctrl+PageDown everywhere; Alt+arrows not in text fields', () => {
    for (const mac of [false, true]) {
      expect(matchShortcut(k('Tab', { ctrlKey: true }), mac)).toBe('next-tab')
      expect(matchShortcut(k('Tab', { ctrlKey: true, shiftKey: true }), mac)).toBe('prev-tab')
      expect(matchShortcut(k('PageUp', { ctrlKey: true }), mac)).toBe('prev-tab')
    }
    expect(matchShortcut(k('ArrowLeft', { altKey: true }), false)).toBe('back')
    expect(matchShortcut(k('ArrowLeft', { altKey: true }), false, true)).toBeNull()
    expect(matchShortcut(k('ArrowLeft', { altKey: true }), true)).toBeNull()
    expect(matchShortcut(k('a'), false)).toBeNull()
    expect(matchShortcut(k('t'), false)).toBeNull()
  })

  it('labels and platform', () => {
    expect(shortcutLabel('close-tab', false)).toBe('Ctrl+W')
    expect(shortcutLabel('close-tab', true)).toBe('⌘W')
    expect(shortcutLabel('reopen-tab', false)).toBe('Ctrl+Shift+T')
    expect(isMacPlatform({ platform: 'MacIntel' })).toBe(true)
    expect(isMacPlatform({ platform: 'Linux x86_64', userAgent: 'X11' })).toBe(false)
  })
})

describe('kindFromTitle', () => {
  it.each([
    ['Jupyter Lab — ~/project', 'jupyter-lab'],
    ['JupyterLab', 'jupyter-lab'],
    ['TensorBoard — runs/', 'tensorboard'],
    ['Ray Dashboard', 'ray-dashboard'],
    ['Port 8080', ''],
    ['', ''],
  ])('%s → %s', (title, kind) => expect(kindFromTitle(title)).toBe(kind))
})

describe('shortCommand', () => {
  it.each([
    ['/root/.pyenv/versions/3.11.7/bin/python3 -m http.server 8765', 'python3 -m http.server 8765'],
    ['/usr/bin/python3 /usr/bin/jupyter-notebook --no-browser', 'python3 jupyter-notebook --no-browser'],
    ['/usr/share/grafana/bin/grafana server --config /etc/grafana/grafana.ini', 'grafana server --config /etc/grafana/grafana.ini'],
    ['tensorboard --logdir runs', 'tensorboard --logdir runs'],
    ['  ', ''],
  ])('%s', (cmd, want) => expect(shortCommand(cmd)).toBe(want))
})
