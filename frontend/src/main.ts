import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { chooseApi } from './api'
import { useAppStore } from './stores/app'
import './styles/base.css'

const choice = chooseApi()
const pinia = createPinia()
const app = createApp(App, { api: choice.ok ? choice.api : null })
app.use(pinia)
// The theme goes on <html> before the first render, also on the "token needed" page.
useAppStore(pinia).initTheme()
app.mount('#app')
