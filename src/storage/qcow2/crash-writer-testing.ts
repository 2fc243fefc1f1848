/**
 * Child process of crash.test.ts: applies a deterministic stream of writes, discards and
 * write-zeroes to a qcow2 image, flushing after each. It prints "B seq" (synchronously) before
 * an operation and "A seq" once flush() has returned, until it is killed with SIGKILL.
 *
 *   node crash-writer-testing.js IMAGE SEED FIRST_SEQ MAX_LENGTH
 */
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDisk } from '../open.js';
import { prng, randomBytes } from '../qemu-testing.js';

export const enum CrashOp { Write, Discard, Zeroes }

export interface CrashStep {
  op: CrashOp;
  offset: number;
  length: number;
  /** Write data (empty for discard/zeroes). */
  data: Uint8Array;
  unmap: boolean;
}

/** Operation `seq` of the stream for `seed` on a disk of `size` bytes. */
export function crashStep(seed: number, seq: number, size: number, maxLength: number): CrashStep {
  const rnd = prng(seed * 1_000_003 + seq);
  const r = rnd();
  let length = Math.max(1, Math.floor(rnd() * maxLength));
  let offset = Math.floor(rnd() * (size - length));
  if (rnd() < 0.8) {
    // Mostly sector-aligned, as a guest's requests are.
    length = Math.max(512, length - (length % 512));
    offset = Math.min(offset - (offset % 512), size - length);
  }
  const op = r < 0.8 ? CrashOp.Write : r < 0.9 ? CrashOp.Discard : CrashOp.Zeroes;
  const data = op === CrashOp.Write ? randomBytes(length, seed * 7919 + seq) : new Uint8Array(0);
  return { op, offset, length, data, unmap: rnd() < 0.5 };
}

function main(): void {
  const [file, seed, first, maxLength] = process.argv.slice(2);
  const disk = openDisk({ file: file! });
  for (let seq = Number(first); ; seq++) {
    const s = crashStep(Number(seed), seq, disk.size, Number(maxLength));
    writeSync(1, `B ${seq}\n`);
    if (s.op === CrashOp.Write) disk.write(s.offset, s.data);
    else if (s.op === CrashOp.Discard) disk.discard(s.offset, s.length);
    else disk.writeZeroes(s.offset, s.length, s.unmap);
    disk.flush();
    writeSync(1, `A ${seq}\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
