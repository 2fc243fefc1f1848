/** Test support for the host: state directories, console helpers, tiny hostile guests. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { assemble } from '../cpu/testing/asm.js';
import { ImageHeader, IMAGE_MAGIC2 } from '../machine/boot-loader.js';
import type { ConsoleClient, VmHandle } from './types.js';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `gasang-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Downloads http://127.0.0.1:port/path at about `bytesPerSec`, hashing it (SHA-256); `progress` counts what has come. */
export function slowDownload(port: number, path: string, bytesPerSec: number): { progress: () => number; done: Promise<{ sha: string; bytes: number }> } {
  let bytes = 0;
  const hash = createHash('sha256');
  const done = new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, res => {
      const t0 = performance.now();
      res.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
        const ahead = (bytes / bytesPerSec) * 1000 - (performance.now() - t0);
        if (ahead > 5) { res.pause(); setTimeout(() => res.resume(), ahead); }
      });
      res.on('end', () => resolve({ sha: hash.digest('hex'), bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
  return { progress: () => bytes, done };
}

/** A free TCP port on loopback (bound and let go). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>(r => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise(r => s.close(r));
  return port;
}

/** A console client that collects output as text. */
export class ConsoleText {
  text = '';
  readonly client: ConsoleClient;

  /** Where output of this run begins: what came before is the hub's replay of earlier output. */
  readonly start: number;

  constructor(vm: VmHandle, write = false) {
    this.client = vm.attachConsole({ write });
    this.client.onData(b => { this.text += Buffer.from(b).toString('latin1'); });
    this.start = this.text.length;
  }

  /** Resolves when `pattern` appears after position `from` (default: after the replay); rejects after `ms`. */
  async waitFor(pattern: string | RegExp, ms: number, from = this.start): Promise<void> {
    const deadline = performance.now() + ms;
    const seen = (): boolean => (typeof pattern === 'string' ? this.text.indexOf(pattern, from) >= 0 : pattern.test(this.text.slice(from)));
    while (!seen()) {
      if (performance.now() > deadline) throw new Error(`Console never showed ${String(pattern)}; last output: ${JSON.stringify(this.text.slice(-300))}`);
      await new Promise(r => setTimeout(r, 20));
    }
  }

  /** Types `cmd` and waits for `expect` in what follows. */
  async run(cmd: string, expect: string | RegExp, ms: number): Promise<void> {
    const from = this.text.length;
    this.client.write(`${cmd}\n`);
    await this.waitFor(expect, ms, from);
  }
}

/**
 * A bare-metal guest: `source` (RISC-V assembly) runs in M-mode from the start of RAM, in place
 * of the firmware; the "kernel" is a minimal Image header the boot loader accepts.
 */
export function hostileGuest(dir: string, name: string, source: string): { firmware: string; kernel: string } {
  const firmware = join(dir, `${name}.bin`);
  writeFileSync(firmware, assemble(source));
  const header = new Uint8Array(ImageHeader.SIZE);
  const dv = new DataView(header.buffer);
  dv.setUint32(ImageHeader.TEXT_OFFSET, 0x20_0000, true);
  dv.setUint32(ImageHeader.IMAGE_SIZE, ImageHeader.SIZE, true);
  dv.setUint32(ImageHeader.MAGIC2, IMAGE_MAGIC2, true);
  const kernel = join(dir, `${name}.img`);
  writeFileSync(kernel, header);
  return { firmware, kernel };
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

/** Process CPU seconds (all threads) over `ms`. */
export async function processCpuOver(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await sleep(ms);
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1e6;
}
