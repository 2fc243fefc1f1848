import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { attachConsole, CONSOLE_HELP, OutputBatcher, type ConsoleOptions } from './terminal.js';

class FakeTty extends PassThrough {
  isTTY = true;
  rawCalls: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.rawCalls.push(mode);
    return this;
  }
}

class FakeProcess extends EventEmitter {
  pid = 4242;
  killed: [number, string][] = [];
  kill(pid: number, signal: string): boolean {
    this.killed.push([pid, signal]);
    return true;
  }
}

function setup(tty: boolean, extra: Partial<ConsoleOptions> = {}) {
  const input = tty ? new FakeTty() : new PassThrough();
  const proc = new FakeProcess();
  const written: string[] = [];
  const got: number[] = [];
  let quits = 0;
  let breaks = 0;
  const con = attachConsole({
    input,
    output: { write: (c) => written.push(typeof c === 'string' ? c : Buffer.from(c).toString()) },
    onInput: (b) => got.push(...b),
    onQuit: () => quits++,
    onBreak: () => breaks++,
    process: proc,
    ...extra,
  });
  const type = async (bytes: number[] | string): Promise<void> => {
    input.write(typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes));
    await new Promise((r) => setImmediate(r));
  };
  return { input, proc, con, written, got, type, quits: () => quits, breaks: () => breaks };
}

test('TTY: raw mode on attach, off on detach', async () => {
  const s = setup(true);
  const tty = s.input as FakeTty;
  assert.equal(s.con.interactive, true);
  assert.deepEqual(tty.rawCalls, [true]);
  assert.ok(s.proc.listenerCount('exit') === 1 && s.proc.listenerCount('SIGTERM') === 1);
  s.con.detach();
  assert.deepEqual(tty.rawCalls, [true, false]);
  assert.equal(s.proc.listenerCount('exit'), 0);
  assert.equal(s.proc.listenerCount('SIGTERM'), 0);
  assert.equal(s.proc.listenerCount('uncaughtExceptionMonitor'), 0);
});

test('TTY: keys pass through, Ctrl-C included; Ctrl-A Ctrl-A sends one Ctrl-A', async () => {
  const s = setup(true);
  await s.type([0x6c, 0x73, 0x0d, 0x03]);
  assert.deepEqual(s.got, [0x6c, 0x73, 0x0d, 0x03]);
  await s.type([0x01]);
  await s.type([0x01, 0x41]); // escape split across chunks
  assert.deepEqual(s.got.slice(4), [0x01, 0x41]);
  s.con.detach();
});

test('TTY: Ctrl-A h prints help, Ctrl-A b sends a break, unknown keys are swallowed, Ctrl-A x quits', async () => {
  const s = setup(true);
  await s.type([0x61, 0x01, 0x68, 0x62]);
  assert.deepEqual(s.written, [CONSOLE_HELP]);
  assert.deepEqual(s.got, [0x61, 0x62]);
  await s.type([0x01, 0x62]);
  assert.equal(s.breaks(), 1);
  await s.type([0x01, 0x7a, 0x63]);
  assert.deepEqual(s.got, [0x61, 0x62, 0x63]);
  await s.type([0x64, 0x01, 0x78, 0x65]);
  assert.equal(s.quits(), 1);
  assert.deepEqual(s.got, [0x61, 0x62, 0x63, 0x64], 'bytes before Ctrl-A x still arrive; after it nothing');
  s.con.detach();
});

test('TTY: the terminal is restored on exit, on exceptions and on signals (then re-raised)', () => {
  const s = setup(true);
  const tty = s.input as FakeTty;
  s.proc.emit('uncaughtExceptionMonitor', new Error('boom'));
  assert.deepEqual(tty.rawCalls, [true, false]);
  s.con.detach();

  const t = setup(true);
  t.proc.emit('exit', 0);
  assert.deepEqual((t.input as FakeTty).rawCalls, [true, false]);
  t.con.detach();

  const u = setup(true);
  u.proc.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual((u.input as FakeTty).rawCalls, [true, false]);
  assert.deepEqual(u.proc.killed, [[4242, 'SIGTERM']]);
  assert.equal(u.proc.listenerCount('SIGTERM'), 0, 'our handler is gone so the default action runs');
  u.con.detach();
});

test('pipe: bytes pass through unchanged except Ctrl-A x; no raw mode, no process hooks', async () => {
  let ended = false;
  const s = setup(false, { onEnd: () => (ended = true) });
  assert.equal(s.con.interactive, false);
  assert.equal(s.proc.listenerCount('exit'), 0);
  await s.type([0x0a, 0x01, 0x68, 0x01, 0x01, 0x62, 0xff]);
  assert.deepEqual(s.got, [0x0a, 0x01, 0x68, 0x01, 0x01, 0x62, 0xff]);
  assert.deepEqual(s.written, []);
  await s.type('ok\x01x');
  assert.equal(s.quits(), 1);
  s.input.end();
  await new Promise((r) => setImmediate(r));
  assert.equal(ended, true);
  s.con.detach();
});

test('OutputBatcher writes one chunk per tick and at the high-water mark', async () => {
  const chunks: Uint8Array[] = [];
  const out = new OutputBatcher({ write: (c) => chunks.push(c as Uint8Array) }, { highWater: 8 });
  for (const b of Buffer.from('hello')) out.push(b);
  assert.equal(chunks.length, 0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(chunks.map((c) => Buffer.from(c).toString()), ['hello']);
  out.write(Buffer.from('0123456789'));
  assert.deepEqual(chunks.map((c) => Buffer.from(c).toString()), ['hello', '0123456789'], 'high water: at once');
  out.push(0x21);
  out.flush();
  assert.equal(Buffer.from(chunks[2]!).toString(), '!');
  await new Promise((r) => setImmediate(r));
  assert.equal(chunks.length, 3, 'nothing left for the scheduled flush');
});

test('OutputBatcher hands the sink a copy', () => {
  const chunks: Uint8Array[] = [];
  const out = new OutputBatcher({ write: (c) => chunks.push(c as Uint8Array) }, { schedule: () => {} });
  out.push(1);
  out.flush();
  out.push(2);
  out.flush();
  assert.deepEqual(chunks.map((c) => [...c]), [[1], [2]]);
});
