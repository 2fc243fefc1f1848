import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleHub, REPLAY_BYTES } from './console-hub.js';
import { HostError } from './types.js';

const text = (chunks: Uint8Array[]): string => Buffer.concat(chunks).toString();

test('several clients watch, each with a replay of recent output; one writes', () => {
  const typed: string[] = [];
  const hub = new ConsoleHub('vm1', b => typed.push(Buffer.from(b).toString()));
  hub.push(Buffer.from('boot log\n'));
  const a: Uint8Array[] = [], b: Uint8Array[] = [];
  const watcher = hub.attach();
  const writer = hub.attach({ write: true });
  hub.push(Buffer.from('prompt$ '));
  watcher.onData(d => a.push(d)); // output before the listener is held for it
  writer.onData(d => b.push(d));
  assert.equal(text(a), 'boot log\nprompt$ ');
  assert.equal(text(b), 'boot log\nprompt$ ');
  assert.throws(() => hub.attach({ write: true }), (e: unknown) => e instanceof HostError && e.kind === 'conflict' && /Another client holds the write side of vm1's console/.test(e.message));
  assert.throws(() => watcher.write('rm -rf /\n'), (e: unknown) => e instanceof HostError && e.kind === 'conflict');
  writer.write('ls\n');
  writer.write(new Uint8Array([3]));
  assert.deepEqual(typed, ['ls\n', '\x03']);
  assert.equal(writer.writer, true);
  assert.equal(watcher.writer, false);
  writer.detach();
  const next = hub.attach({ write: true }); // the write side is free again
  assert.equal(next.writer, true);
  hub.push(Buffer.from('x'));
  assert.equal(text(b), 'boot log\nprompt$ ', 'a detached client hears nothing');
  assert.equal(text(a), 'boot log\nprompt$ x');
  assert.equal(hub.size, 2);
});

test('the replay keeps the last REPLAY_BYTES bytes across wrap-around', () => {
  const hub = new ConsoleHub('vm', () => {});
  const all = Buffer.alloc(REPLAY_BYTES * 2 + 123);
  for (let i = 0; i < all.length; i++) all[i] = 32 + (i % 90);
  for (let i = 0; i < all.length; i += 1000) hub.push(all.subarray(i, i + 1000));
  const got: Uint8Array[] = [];
  hub.attach().onData(d => got.push(d));
  assert.deepEqual(Buffer.concat(got), all.subarray(all.length - REPLAY_BYTES));
  hub.push(all.subarray(0, REPLAY_BYTES + 5)); // one push larger than the ring
  const again: Uint8Array[] = [];
  hub.attach().onData(d => again.push(d));
  assert.deepEqual(Buffer.concat(again), all.subarray(5, REPLAY_BYTES + 5));
});
