/**
 * Crash consistency: a child process writes to a qcow2 image and flushes in a loop; we kill it
 * with SIGKILL at random moments. After each kill `qemu-img check` must find no corruption and
 * the image (read by qemu-img) must hold every acknowledged operation; only the one in flight
 * may be partly there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { prng, qemuCheck, qemuImg, qemuIo, qemuRead, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';
import { CrashOp, crashStep } from './crash-writer-testing.js';

const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), 'crash-writer-testing.js');

interface RunResult { acked: number; begun: number }

/** Runs the writer from `first` and kills it `delayMs` after its first operation began. */
function runAndKill(file: string, seed: number, first: number, maxLength: number, delayMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, file, String(seed), String(first), String(maxLength)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes('B ')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') { reject(new Error(`Writer ended by itself: ${err}`)); return; }
      let acked = first - 1;
      let begun = first - 1;
      for (const line of out.split('\n')) {
        const m = /^([AB]) (\d+)$/.exec(line);
        if (!m) continue;
        if (m[1] === 'A') acked = Math.max(acked, Number(m[2]));
        else begun = Math.max(begun, Number(m[2]));
      }
      resolve({ acked, begun });
    });
  });
}

/** Applies operations [from, to] of the stream to the model. */
function apply(model: Uint8Array, seed: number, from: number, to: number, maxLength: number): void {
  for (let seq = from; seq <= to; seq++) {
    const s = crashStep(seed, seq, model.length, maxLength);
    if (s.op === CrashOp.Write) model.set(s.data, s.offset);
    else model.fill(0, s.offset, s.offset + s.length);
  }
}

async function crashLoop(file: string, model: Uint8Array, seed: number, kills: number, maxLength: number, tmp: string): Promise<{ ops: number; leaks: number }> {
  const delays = prng(seed);
  let next = 1;
  let leaks = 0;
  for (let k = 0; k < kills; k++) {
    const { acked, begun } = await runAndKill(file, seed, next, maxLength, 30 + Math.floor(delays() * 300));
    const check = qemuCheck(file);
    assert.equal(check.corruptions, 0, `Kill ${k}: qemu-img check found corruption:\n${check.output}`);
    assert.equal(check.checkErrors, 0, check.output);
    assert.ok(check.status === 0 || check.status === 3, check.output);
    leaks += check.leaks;
    assert.equal(checkQcow2(file).corruptions, 0, `Kill ${k}: our check disagrees`);
    apply(model, seed, next, acked, maxLength);
    const actual = new Uint8Array(qemuRead(file, tmp));
    if (begun > acked) {
      // The operation in flight: each byte is either old or new.
      const s = crashStep(seed, begun, model.length, maxLength);
      for (let i = 0; i < s.length; i++) {
        const now = actual[s.offset + i];
        const want = s.op === CrashOp.Write ? s.data[i] : 0;
        if (now !== model[s.offset + i] && now !== want) assert.fail(`Kill ${k}: byte ${s.offset + i} of op ${begun} is neither old nor new`);
      }
      model.set(actual.subarray(s.offset, s.offset + s.length), s.offset);
    }
    for (let i = 0; i < model.length; i++) {
      if (actual[i] !== model[i]) assert.fail(`Kill ${k}: byte ${i} differs from the acknowledged writes (ops ${next}..${acked})`);
    }
    next = begun + 1;
  }
  return { ops: next - 1, leaks };
}

test('kill -9 while writing to an overlay leaves a clean image holding every acknowledged write', async t => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'base.qcow2');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', base, '8M');
    qemuIo(base, 'qcow2', 'write -P 0x5a 0 3M', 'write -P 0xa5 5M 2M');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=16384', '-b', 'base.qcow2', '-F', 'qcow2', top);
    const model = new Uint8Array(qemuRead(top, dir));
    const { ops, leaks } = await crashLoop(top, model, 11, 20, 100_000, dir);
    assert.ok(ops > 20, `Only ${ops} operations ran`);
    // A kill between two adjacent metadata writes may leak a cluster (never corrupt): report it.
    t.diagnostic(`${ops} operations, 20 kills, ${leaks} leaked clusters`);
  } finally {
    cleanup();
  }
});

test('kill -9 during refcount-table growth (512-byte clusters) leaves a clean image', async t => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'small.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=512', file, '24M');
    const model = new Uint8Array(24 << 20);
    const { ops, leaks } = await crashLoop(file, model, 23, 8, 1 << 20, dir);
    assert.ok(ops > 8);
    // The writes filled most of the disk: the refcount table (first at cluster 1) had to move.
    const header = readFileSync(file).subarray(0, 72);
    assert.notEqual(new DataView(header.buffer, header.byteOffset).getUint32(52), 512);
    t.diagnostic(`${ops} operations, 8 kills, ${leaks} leaked clusters`);
  } finally {
    cleanup();
  }
});
