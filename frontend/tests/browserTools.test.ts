import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import type { Download, PageDialog } from '@/api'
import { useDownloadsStore } from '@/stores/downloads'
import { useFindInPageStore } from '@/stores/findInPage'
import { usePageDialogsStore } from '@/stores/pageDialogs'
import DownloadsPanel from '@/components/apps/DownloadsPanel.vue'
import FindBar from '@/components/apps/FindBar.vue'
import PageDialogPanel from '@/components/apps/PageDialogPanel.vue'
import { matchShortcut } from '@/lib/shortcuts'
import { fakeApi } from './fakeApi'

function dl(over: Partial<Download> = {}): Download {
  return {
    id: 'dl-1',
    viewId: 't1',
    name: 'export.csv',
    dir: '/home/u/Downloads',
    url: 'http://127.0.0.2:8888/files/export.csv',
    received: 50,
    total: 200,
    state: 'running',
    started: new Date(0).toISOString(),
    ...over,
  }
}

function dialog(over: Partial<PageDialog> = {}): PageDialog {
  return { id: 'pd-1', viewId: 't1', kind: 'alert', origin: 'http://127.0.0.2:8888', message: 'Saved.', ...over }
}

describe('downloads', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('lists downloads with progress, opens on a new one, and shows a failure in words', async () => {
    const f = fakeApi()
    const store = useDownloadsStore()
    store.start(f.api)
    const w = mount(DownloadsPanel)
    expect(w.find('[data-testid="downloads"]').exists()).toBe(false)

    f.emit({ topic: 'downloads', data: { downloads: [dl()] } })
    await flushPromises()
    expect(store.open).toBe(true)
    expect(w.get('[data-testid="downloads-summary"]').text()).toBe('1 downloading')
    expect(w.get('[role="progressbar"]').attributes('aria-valuenow')).toBe('25')
    await w.get('[data-testid="download-cancel"]').trigger('click')
    expect(f.api.cancelDownload).toHaveBeenCalledWith('dl-1')

    store.toggle(false)
    const msg = 'export.csv was not saved: the download folder /ro is on a read-only file system. Set another download folder'
    f.emit({ topic: 'downloads', data: { downloads: [dl({ state: 'done', received: 200, path: '/home/u/Downloads/export.csv' })] } })
    await flushPromises()
    expect(store.open).toBe(false) // the same download, finished: the list does not jump open again
    expect(w.get('[data-testid="downloads-summary"]').text()).toBe('export.csv saved')
    f.emit({ topic: 'downloads', data: { downloads: [dl({ id: 'dl-2', state: 'failed', error: msg }), dl({ state: 'done', path: '/home/u/Downloads/export.csv' })] } })
    await flushPromises()
    expect(store.open).toBe(true)
    expect(w.get('[data-testid="download-error"]').text()).toBe(msg)
    expect(w.text()).toContain('1 failed')
    await w.get('[data-testid="download-show"]').trigger('click')
    expect(f.api.showDownload).toHaveBeenCalledWith('dl-1')
    await w.get('[data-testid="downloads-clear"]').trigger('click')
    expect(f.api.clearDownloads).toHaveBeenCalled()
  })

  it('says why Show in folder failed', async () => {
    const f = fakeApi({ showDownload: async () => Promise.reject(new Error('no file manager')) })
    const store = useDownloadsStore()
    store.start(f.api)
    await store.show('dl-1')
    expect(store.error).toContain('no file manager')
  })
})

describe('find in page', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('sends the text, steps, shows the count the view reports, and closes', async () => {
    const f = fakeApi()
    const find = useFindInPageStore()
    find.start(f.api)
    find.openBar('t1')
    const w = mount(FindBar, { props: { tabId: 't1' }, attachTo: document.body })
    await flushPromises()
    const input = w.get('[data-testid="find-input"]')
    expect(document.activeElement).toBe(input.element)
    await input.setValue('kernel')
    expect(f.api.findInAppView).toHaveBeenLastCalledWith('t1', 'kernel', 'find')
    expect(w.get('[data-testid="find-count"]').text()).toBe('…')
    find.onResult('t1', { text: 'kern', matches: 9, current: 1 }) // late, for older text: ignored
    find.onResult('t1', { text: 'kernel', matches: 7 })
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('7 matches')
    find.onResult('t1', { text: 'kernel', matches: 7, current: 1 })
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('1 of 7')
    await input.trigger('keydown', { key: 'Enter' })
    expect(f.api.findInAppView).toHaveBeenLastCalledWith('t1', 'kernel', 'next')
    find.onResult('t1', { text: 'kernel', matches: 7, current: 2 })
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('2 of 7')
    await input.trigger('keydown', { key: 'Enter', shiftKey: true })
    expect(f.api.findInAppView).toHaveBeenLastCalledWith('t1', 'kernel', 'previous')
    find.onResult('t1', { text: 'kernel', matches: 1001, current: 3 }) // more than Porthole counts
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('3 of 1000+')
    find.onResult('t1', { text: 'kernel', matches: 1001 }) // past them: which one is not known
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('1000+ matches')
    find.onResult('t1', { text: 'kernel', matches: 0, failed: true })
    await flushPromises()
    expect(w.get('[data-testid="find-count"]').text()).toBe('No matches')
    await input.trigger('keydown', { key: 'Escape' })
    expect(f.api.findInAppView).toHaveBeenLastCalledWith('t1', '', 'close')
    expect(w.find('[data-testid="find-bar"]').exists()).toBe(false)
    w.unmount()
  })

  it('maps the browser keys', () => {
    const k = (key: string, over: Partial<KeyboardEvent> = {}) => matchShortcut({ key, ctrlKey: true, metaKey: false, shiftKey: false, altKey: false, ...over }, false)
    expect(k('f')).toBe('find')
    expect(k('g')).toBe('find-next')
    expect(k('G', { shiftKey: true })).toBe('find-previous')
    expect(k('+', { shiftKey: true })).toBe('zoom-in')
    expect(k('=')).toBe('zoom-in')
    expect(k('-')).toBe('zoom-out')
    expect(k('0')).toBe('zoom-reset')
    expect(k('p')).toBe('print')
  })
})

describe('page dialogs', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('shows a tab its own question, answers it, and offers Stop to a flooding page', async () => {
    const f = fakeApi()
    const store = usePageDialogsStore()
    store.start(f.api)
    const w = mount(PageDialogPanel, { props: { tabId: 't1', active: true }, attachTo: document.body })
    const other = mount(PageDialogPanel, { props: { tabId: 't2', active: false } })
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog()] } })
    await flushPromises()
    expect(w.get('[data-testid="page-dialog-message"]').text()).toBe('Saved.')
    expect(w.get('[data-testid="page-dialog"]').attributes('data-covers-app')).toBe('')
    expect(other.find('[data-testid="page-dialog"]').exists()).toBe(false)
    expect(document.activeElement).toBe(w.get('[data-testid="page-dialog-ok"]').element)
    expect(w.find('[data-testid="page-dialog-cancel"]').exists()).toBe(false)
    expect(w.find('[data-testid="page-dialog-stop"]').exists()).toBe(false)
    await w.get('form').trigger('submit')
    expect(f.api.answerPageDialog).toHaveBeenLastCalledWith('pd-1', { ok: true, text: '', user: '', password: '' })
    expect(w.find('[data-testid="page-dialog"]').exists()).toBe(false)

    // The third in a row: Stop dialogs from this page.
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog({ id: 'pd-3', kind: 'confirm', flood: true, message: 'Again?' })] } })
    await flushPromises()
    await w.get('[data-testid="page-dialog-stop"]').trigger('click')
    expect(f.api.answerPageDialog).toHaveBeenLastCalledWith('pd-3', { ok: false, stop: true })

    // A prompt's text and a sign-in's credentials go back as typed.
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog({ id: 'pd-4', kind: 'prompt', default: 'x' })] } })
    await flushPromises()
    await w.get('[data-testid="page-dialog-input"]').setValue('answer')
    await w.get('form').trigger('submit')
    expect(f.api.answerPageDialog).toHaveBeenLastCalledWith('pd-4', { ok: true, text: 'answer', user: '', password: '' })
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog({ id: 'pd-5', kind: 'auth', realm: 'lab', retry: true, user: 'amy' })] } })
    await flushPromises()
    expect(w.text()).toContain('Those credentials were refused')
    expect(w.find('[data-testid="page-dialog-remember"]').exists()).toBe(false) // no keyring: not offered
    await w.get('[data-testid="page-dialog-password"]').setValue('pw')
    await w.get('[data-testid="page-dialog-cancel"]').trigger('click')
    expect(f.api.answerPageDialog).toHaveBeenLastCalledWith('pd-5', { ok: false })
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog({ id: 'pd-7', kind: 'auth', realm: 'lab', remember: true })] } })
    await flushPromises()
    await w.get('[data-testid="page-dialog-user"]').setValue('amy')
    await w.get('[data-testid="page-dialog-password"]').setValue('pw')
    await w.get('[data-testid="page-dialog-remember"]').setValue(true)
    await w.get('form').trigger('submit')
    expect(f.api.answerPageDialog).toHaveBeenLastCalledWith('pd-7', { ok: true, text: '', user: 'amy', password: 'pw', remember: true })

    // Another tab's question: only there; it does not cover the app of a tab that is not showing.
    f.emit({ topic: 'appview.dialogs', data: { dialogs: [dialog({ id: 'pd-6', viewId: 't2' })] } })
    await flushPromises()
    expect(w.find('[data-testid="page-dialog"]').exists()).toBe(false)
    expect(other.get('[data-testid="page-dialog"]').attributes('data-covers-app')).toBeUndefined()
    w.unmount()
  })
})
