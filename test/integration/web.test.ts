/**
 * The daemon's web page in headless Chromium (Debian's chromium, driven by playwright-core): log
 * in with the token over TCP, see the VM in the list, start it, type into the xterm.js console
 * and see the guest's answer, stop it. GASANG_WEB_SCREENSHOT=FILE.png keeps a picture of the page.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DaemonProcess } from './gasangd-session.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = !existsSync(CHROMIUM) && 'needs Debian\'s chromium (.ci/install-host-tools.sh)';
if (missing && process.env.CI) throw new Error(`The web page test ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'gasangd-web-'));
let daemon: DaemonProcess | undefined;
let browser: Browser | undefined;

after(async () => {
  await browser?.close();
  if (daemon) { daemon.kill(); await daemon.exited; }
  rmSync(dir, { recursive: true, force: true });
});

/** Polls `read` until `ok` holds (the page refreshes its list every second). */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await read();
    if (ok(last)) return last;
    await new Promise(r => setTimeout(r, 200));
  }
  throw new Error(`Timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

const terminalText = (page: Page): Promise<string> => page.locator('#terminal .xterm-rows').innerText().catch(() => '');
const stateOf = (page: Page, vm: string): Promise<string> => page.locator(`tr[data-vm="${vm}"] td.state`).innerText().catch(() => '');

test('the web page: list, start, type into the console, see the echo, stop', { skip: missing, timeout: 300_000 }, async () => {
  const token = 'web-test-token-0123456789abcdef';
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  daemon = await DaemonProcess.start(join(dir, 'gasangd.sock'), ['--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--token-file', join(dir, 'token')]);
  await daemon.client.create({ name: 'web', memoryMiB: 128, nics: [{ type: 'user' }] });
  const base = `http://127.0.0.1:${daemon.port}`;

  browser = await chromium.launch({ executablePath: CHROMIUM });
  // Without the token the daemon refuses the page.
  const anon = await browser.newPage();
  assert.equal((await anon.goto(`${base}/`))?.status(), 401);
  await anon.close();

  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  const res = await page.goto(`${base}/?token=${token}`);
  assert.equal(res?.status(), 200);
  assert.equal(page.url(), `${base}/`, 'the login redirects to the page without the token in the address');

  await until('the VM in the list', () => stateOf(page, 'web'), s => s === 'created', 15_000);
  await page.locator('tr[data-vm="web"] button.start').click();
  await until('the VM running', () => stateOf(page, 'web'), s => s === 'running', 60_000);
  await until('the guest ready on the console', () => terminalText(page), t => t.includes('GASANG-READY'), 120_000);
  assert.match(await page.locator('#console-mode').innerText(), /typing goes to the guest/);

  await page.locator('#terminal').click();
  await page.keyboard.type('echo web-$((6 * 7))');
  await page.keyboard.press('Enter');
  await until('the echo', () => terminalText(page), t => /\bweb-42\b/.test(t), 30_000);
  const cpu = await until('CPU use', () => page.locator('tr[data-vm="web"] td.cpu').innerText(), t => /^\d+ %$/.test(t), 10_000);
  assert.match(cpu, /^\d+ %$/);
  assert.match(await page.locator('tr[data-vm="web"] td.memory').innerText(), /^128 MiB \+ \d+ MiB$/);
  // The card, its address and the traffic of the guest's DHCP exchange.
  await until('the NIC and its counters', () => page.locator('tr[data-vm="web"] td.network').innerText(), t => /^eth0 user 52:54:00(:[0-9a-f]{2}){3} 10\.0\.2\.15 ↑\d+ KiB ↓\d+ KiB/.test(t), 10_000);
  if (process.env.GASANG_WEB_SCREENSHOT) await page.screenshot({ path: process.env.GASANG_WEB_SCREENSHOT });

  await page.locator('tr[data-vm="web"] button.stop').click();
  await until('the VM stopped', () => stateOf(page, 'web'), s => s === 'stopped', 60_000);
  assert.equal((await daemon.client.inspect('web')).exit?.reason, 'poweroff');
  assert.deepEqual(errors, []);
  assert.equal(await daemon.stop(), 0);
  daemon = undefined;
});
