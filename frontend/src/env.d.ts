/// <reference types="vite/client" />

import type { WailsGlobals } from './api/wails'

declare global {
  // Wails v2 injects window.go (bound Go methods) and window.runtime into the desktop window.
  interface Window extends WailsGlobals {}
}

declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}
