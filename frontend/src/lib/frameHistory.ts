// Back and forward for app tabs.
//
// An app tab is a cross-origin iframe: the shell can neither read its URL nor call its
// `history`. What it can do is move the window's joint session history (history.back() /
// forward()), which every frame of the window shares. So the shell keeps a journal of which
// tab made each navigation it saw (a `load` event after the first), and only offers Back in a
// tab when the entry Back would undo is that tab's. Navigations an app makes without loading a
// page (pushState) do not show up here: Back may then undo those first, which is what a
// browser does too; the journal errs towards disabling the button, never towards moving a
// hidden tab or leaving Porthole's own page.

export type Traversal = 'back' | 'forward' | 'replace'

interface Pending {
  kind: Traversal
  at: number
}

export class FrameHistory {
  /** One entry per navigation the window's history holds beyond our own page: the tab that made it. */
  private entries: string[] = []
  /** entries[0..cursor] are behind us; entries[cursor+1..] can be gone forward to. */
  private cursor = -1
  private readonly loads = new Map<string, number>()
  private readonly pending = new Map<string, Pending>()

  constructor(
    private readonly now: () => number = () => Date.now(),
    /** A traversal whose page never loaded (a pushState entry) stops being waited for after this. */
    private readonly pendingMs = 5000,
  ) {}

  /** The tab's frame fired `load`. */
  loaded(tab: string): void {
    const n = (this.loads.get(tab) ?? 0) + 1
    this.loads.set(tab, n)
    const p = this.pending.get(tab)
    if (p) {
      this.pending.delete(tab)
      if (this.now() - p.at <= this.pendingMs) return
    }
    // The first load replaces the frame's initial about:blank: no entry.
    if (n === 1) return
    this.entries.splice(this.cursor + 1)
    this.entries.push(tab)
    this.cursor = this.entries.length - 1
  }

  canGoBack(tab: string): boolean {
    return this.cursor >= 0 && this.entries[this.cursor] === tab
  }

  canGoForward(tab: string): boolean {
    return this.entries[this.cursor + 1] === tab
  }

  /** Records a Back in this tab; true when the caller should call history.back(). */
  back(tab: string): boolean {
    if (!this.canGoBack(tab)) return false
    this.cursor--
    this.pending.set(tab, { kind: 'back', at: this.now() })
    return true
  }

  forward(tab: string): boolean {
    if (!this.canGoForward(tab)) return false
    this.cursor++
    this.pending.set(tab, { kind: 'forward', at: this.now() })
    return true
  }

  /** The shell is about to replace the tab's page (reload): its next load adds no entry. */
  replacing(tab: string): void {
    this.pending.set(tab, { kind: 'replace', at: this.now() })
  }

  /** The tab's frame is gone (closed, or re-created): its entries left the window's history. */
  forget(tab: string): void {
    const before = this.entries.slice(0, this.cursor + 1).filter((t) => t !== tab).length
    this.entries = this.entries.filter((t) => t !== tab)
    this.cursor = before - 1
    this.loads.delete(tab)
    this.pending.delete(tab)
  }
}
