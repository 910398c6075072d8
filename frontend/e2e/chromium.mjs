// @ts-check
// Launching Debian's chromium through playwright-core (no browser downloads on this machine).
import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--no-sandbox', // we run as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
}
