// Backend events, typed by topic: the topic names the payload's type.
//
// EventPayloads mirrors the Go side's Topic* constants and the types they carry (one line per
// topic, kept in the simple form `  'topic': Type,` for a Go test to read). TOPICS lists the same
// names, sorted. Adding a topic: its line here, its name in TOPICS, its check in `valid`.
import {
  THEMES,
  type AppList,
  type AppStatus,
  type AppViewEvent,
  type DesktopRequest,
  type DownloadList,
  type KeyringStatus,
  type Notification,
  type OpenRequest,
  type PageDialogList,
  type PortholeApi,
  type Prompt,
  type RuleList,
  type ServerList,
  type ServerLogLine,
  type ServerProgress,
  type ServerStats,
  type Settings,
} from './types'

export interface EventPayloads {
  'app.status': AppStatus,
  'apps': AppList,
  'appview.dialogs': PageDialogList,
  'appviews': AppViewEvent,
  'desktop.request': DesktopRequest,
  'downloads': DownloadList,
  'keyring': KeyringStatus,
  'notify.open': OpenRequest,
  'notify.toast': Notification,
  'prompts': Prompt[],
  'rules': RuleList,
  'server.log': ServerLogLine,
  'server.progress': ServerProgress,
  'server.stats': ServerStats,
  'servers': ServerList,
  'settings': Settings,
}

export type Topic = keyof EventPayloads

/** Every topic, sorted. */
export const TOPICS = [
  'app.status',
  'apps',
  'appview.dialogs',
  'appviews',
  'desktop.request',
  'downloads',
  'keyring',
  'notify.open',
  'notify.toast',
  'prompts',
  'rules',
  'server.log',
  'server.progress',
  'server.stats',
  'servers',
  'settings',
] as const satisfies readonly Topic[]

// TOPICS names every topic of EventPayloads (the `satisfies` above checks the other way).
type Unlisted = Exclude<Topic, (typeof TOPICS)[number]>
const everyTopicListed: [Unlisted] extends [never] ? true : Unlisted = true
void everyTopicListed

export function isTopic(t: string): t is Topic {
  return (TOPICS as readonly string[]).includes(t)
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null
}

/**
 * What a payload must look like before a handler sees it: the wire is JSON from another
 * program, so a payload that does not fit its topic is dropped, never handed on half-typed.
 */
const valid: { [T in Topic]: (x: unknown) => x is EventPayloads[T] } = {
  'app.status': (x): x is AppStatus => isObject(x) && (x.mode === 'desktop' || x.mode === 'serve'),
  apps: (x): x is AppList => isObject(x) && typeof x.serverId === 'string' && (x.services === null || Array.isArray(x.services)),
  'appview.dialogs': (x): x is PageDialogList => isObject(x) && Array.isArray(x.dialogs),
  appviews: (x): x is AppViewEvent => isObject(x) && typeof x.id === 'string',
  'desktop.request': (x): x is DesktopRequest => isObject(x) && typeof x.seq === 'number' && typeof x.kind === 'string',
  downloads: (x): x is DownloadList => isObject(x) && Array.isArray(x.downloads),
  keyring: (x): x is KeyringStatus => isObject(x) && typeof x.available === 'boolean',
  'notify.open': (x): x is OpenRequest => isObject(x) && typeof x.id === 'number' && typeof x.serverId === 'string' && typeof x.time === 'string',
  'notify.toast': (x): x is Notification =>
    isObject(x) && typeof x.id === 'number' && typeof x.serverId === 'string' && typeof x.title === 'string' && typeof x.body === 'string',
  prompts: (x): x is Prompt[] => Array.isArray(x) && x.every((p) => isObject(p) && typeof p.id === 'string'),
  rules: (x): x is RuleList => isObject(x) && typeof x.serverId === 'string' && (x.rules === null || Array.isArray(x.rules)),
  'server.log': (x): x is ServerLogLine => isObject(x) && typeof x.id === 'string' && typeof x.seq === 'number' && typeof x.line === 'string',
  'server.progress': (x): x is ServerProgress => isObject(x) && typeof x.id === 'string' && typeof x.step === 'string',
  'server.stats': (x): x is ServerStats =>
    isObject(x) && typeof x.id === 'string' && typeof x.state === 'string' && typeof x.activeConns === 'number' && typeof x.bytesIn === 'number' && typeof x.bytesOut === 'number',
  servers: (x): x is ServerList => isObject(x) && Array.isArray(x.servers),
  settings: (x): x is Settings => isObject(x) && typeof x.theme === 'string' && (THEMES as readonly string[]).includes(x.theme),
}

/** True when `data` has the shape its topic promises. */
export function isPayload<T extends Topic>(topic: T, data: unknown): data is EventPayloads[T] {
  return valid[topic](data)
}

/** A handler per topic; each gets its topic's payload, already checked. */
export type EventHandlers = { [T in Topic]?: (data: EventPayloads[T]) => void }

/** Where events come from: a PortholeApi (its hub), or a fake in tests. */
export type EventSource = Pick<PortholeApi, 'onEvent'>

function deliver<T extends Topic>(handlers: EventHandlers, topic: T, data: unknown): void {
  const f = handlers[topic]
  if (f && isPayload(topic, data)) f(data)
}

/**
 * Subscribes once to the backend's events and hands each topic's payload to its handler
 * (snapshot first, then updates, as the hub delivers them). Returns unsubscribe.
 */
export function onEvents(source: EventSource, handlers: EventHandlers): () => void {
  return source.onEvent((e) => {
    if (isTopic(e.topic)) deliver(handlers, e.topic, e.data)
  })
}

/** One topic: `on(api, 'servers', (list) => …)`, `list` typed ServerList. Returns unsubscribe. */
export function on<T extends Topic>(source: EventSource, topic: T, f: (data: EventPayloads[T]) => void): () => void {
  return source.onEvent((e) => {
    if (e.topic === topic && isPayload(topic, e.data)) f(e.data)
  })
}
