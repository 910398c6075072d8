// @ts-check
// Screenshots of a running UI in light and dark, for looking at the design:
//   node e2e/screenshot.mjs 'http://127.0.0.1:PORT/#token=…' [outdir]
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { launchChromium } from './chromium.mjs'

const url = process.argv[2]
const out = process.argv[3] ?? 'e2e/artifacts'
if (!url) {
  console.error('usage: node e2e/screenshot.mjs URL [outdir]')
  process.exit(2)
}
mkdirSync(out, { recursive: true })
const browser = await launchChromium()
try {
  for (const scheme of /** @type {const} */ (['light', 'dark'])) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: scheme, deviceScaleFactor: 1 })
    const page = await ctx.newPage()
    await page.goto(url)
    await page.getByText('Connected', { exact: true }).waitFor()
    await page.screenshot({ path: join(out, `shell-${scheme}.png`) })
    if (process.env.DIALOG) {
      await page.getByRole('button', { name: 'Add server' }).first().click()
      await page.getByRole('dialog').waitFor()
      await page.waitForTimeout(300)
      await page.screenshot({ path: join(out, `dialog-${scheme}.png`) })
    }
    await ctx.close()
  }
} finally {
  await browser.close()
}
console.log('screenshots in', out)
