// The shell's keyboard shortcuts. They work while the keyboard focus is in Porthole's own UI
// (tab strip, URL bar, pages). A focused app tab is another document, from another origin: its
// key presses go to the app and never reach the shell, so once you click into an app, click the
// tab strip or the URL bar to use the shortcuts again. In `porthole serve`, the browser keeps
// some of them for itself (Ctrl+T, Ctrl+W, Ctrl+Tab in Chrome and Firefox).

export type ShortcutAction =
  | 'new-tab'
  | 'close-tab'
  | 'reopen-tab'
  | 'focus-url'
  | 'reload'
  | 'next-tab'
  | 'prev-tab'
  | 'back'
  | 'forward'
  | 'quit'
  | 'settings'
  | 'find'
  | 'find-next'
  | 'find-previous'
  | 'zoom-in'
  | 'zoom-out'
  | 'zoom-reset'
  | 'print'
  | 'palette'

export type KeyLike = Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey'>

export function isMacPlatform(nav: { platform?: string; userAgent?: string } | undefined = globalThis.navigator): boolean {
  const p = `${nav?.platform ?? ''} ${nav?.userAgent ?? ''}`
  return /Mac|iPhone|iPad/i.test(p)
}

/** Ctrl on Linux and Windows, ⌘ on macOS. */
function primary(e: KeyLike, mac: boolean): boolean {
  return mac ? e.metaKey && !e.ctrlKey : e.ctrlKey && !e.metaKey
}

/** The shortcut a key press means, or null. `inText`: focus is in an editable field. */
export function matchShortcut(e: KeyLike, mac: boolean, inText = false): ShortcutAction | null {
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key
  // Ctrl+Tab is Ctrl on every platform (as in browsers); so are Ctrl+PageDown/PageUp.
  if (e.ctrlKey && !e.metaKey && !e.altKey) {
    if (key === 'Tab') return e.shiftKey ? 'prev-tab' : 'next-tab'
    if (key === 'PageDown' && !e.shiftKey) return 'next-tab'
    if (key === 'PageUp' && !e.shiftKey) return 'prev-tab'
  }
  if (primary(e, mac) && !e.altKey) {
    if (e.shiftKey) {
      if (key === 't') return 'reopen-tab'
      if (key === 'g') return 'find-previous'
      if (key === '+') return 'zoom-in'
      if (key === 'p') return 'palette'
      if (mac && key === ']') return 'next-tab'
      if (mac && key === '[') return 'prev-tab'
      return null
    }
    switch (key) {
      case 't':
        return 'new-tab'
      case 'w':
        return 'close-tab'
      case 'l':
        return 'focus-url'
      case 'r':
        return 'reload'
      case 'q':
        return 'quit'
      case ',':
        return 'settings'
      case 'f':
        return 'find'
      case 'g':
        return 'find-next'
      case '+':
      case '=':
        return 'zoom-in'
      case '-':
        return 'zoom-out'
      case '0':
        return 'zoom-reset'
      case 'p':
        return 'print'
      case 'k':
        return 'palette'
      case '[':
        return mac ? 'back' : null
      case ']':
        return mac ? 'forward' : null
      default:
        return null
    }
  }
  // Alt+← / Alt+→ (not on macOS, where Option+arrows move by word), never inside a text field.
  if (!mac && e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey && !inText) {
    if (key === 'ArrowLeft') return 'back'
    if (key === 'ArrowRight') return 'forward'
  }
  if (e.key === 'F5' && !e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey) return 'reload'
  return null
}

/** "Ctrl+W" / "⌘W", for titles and the README. */
export function shortcutLabel(action: ShortcutAction, mac: boolean): string {
  const p = mac ? '⌘' : 'Ctrl+'
  switch (action) {
    case 'new-tab':
      return `${p}T`
    case 'close-tab':
      return `${p}W`
    case 'reopen-tab':
      return mac ? '⇧⌘T' : 'Ctrl+Shift+T'
    case 'focus-url':
      return `${p}L`
    case 'reload':
      return `${p}R`
    case 'next-tab':
      return 'Ctrl+Tab'
    case 'prev-tab':
      return mac ? '⌃⇧Tab' : 'Ctrl+Shift+Tab'
    case 'back':
      return mac ? '⌘[' : 'Alt+←'
    case 'forward':
      return mac ? '⌘]' : 'Alt+→'
    case 'quit':
      return `${p}Q`
    case 'settings':
      return `${p},`
    case 'find':
      return `${p}F`
    case 'find-next':
      return `${p}G`
    case 'find-previous':
      return mac ? '⇧⌘G' : 'Ctrl+Shift+G'
    case 'zoom-in':
      return `${p}+`
    case 'zoom-out':
      return `${p}−`
    case 'zoom-reset':
      return `${p}0`
    case 'print':
      return `${p}P`
    case 'palette':
      return `${p}K`
  }
}
