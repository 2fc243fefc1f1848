// Block migration's file copy: pieces tracked from the file's own writes, frames applied on the
// other side give the same bytes and length; frames that do not belong are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { CHANGE_CHUNK, HostFile } from '../storage/host-file.js';
import { DiskReceiver, DiskSender } from './disks.js';
import { FrameWriter, MigrationError, Tag } from './stream.js';

function tempDir(name: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `gasang-${name}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A FrameWriter whose frames are kept (tag and payload) instead of sent. */
function capture(): { w: FrameWriter; frames: { tag: Tag; payload: Uint8Array }[] } {
  const frames: { tag: Tag; payload: Uint8Array }[] = [];
  let head: Buffer | undefined;
  const sink = { write: (b: Uint8Array) => { if (!head) head = Buffer.from(b); else { frames.push({ tag: head[0] as Tag, payload: b }); head = undefined; } return true; }, writableNeedDrain: false };
  return { w: new FrameWriter(sink as unknown as Socket), frames };
}

test('the pieces written after start go again; the copy ends with the same bytes and length', () => {
  const { dir, cleanup } = tempDir('disks');
  try {
    const src = join(dir, 'src.qcow2'), dst = join(dir, 'dst.qcow2');
    writeFileSync(src, randomBytes(5 * CHANGE_CHUNK + 123));
    const file = HostFile.open(src, false);
    const sender = new DiskSender([{ drive: 1, file }]);
    const { w, frames } = capture();
    const first = sender.start();
    assert.equal(first.length, 6);
    for (const p of first) sender.send(w, p);
    file.write(2 * CHANGE_CHUNK + 10, randomBytes(CHANGE_CHUNK)); // pieces 2 and 3
    file.write(7 * CHANGE_CHUNK, randomBytes(100)); // grows the file: piece 7
    assert.deepEqual(sender.changed().map(p => p[1]).sort(), [2, 3, 7]);
    assert.deepEqual(sender.changed(), []);
    file.truncate(7 * CHANGE_CHUNK + 50);
    for (const p of [[0, 2], [0, 3], [0, 7]] as [number, number][]) sender.send(w, p);
    sender.finish(w);
    assert.equal(file.changes, undefined, 'tracking ends');
    const rx = new DiskReceiver([1], () => dst);
    for (const f of frames) rx.take(f.tag, f.payload);
    rx.check();
    file.close();
    assert.ok(readFileSync(dst).equals(readFileSync(src)));
  } finally {
    cleanup();
  }
});

test('frames that do not belong are refused', () => {
  const { dir, cleanup } = tempDir('disks-hostile');
  try {
    const piece = (drive: number): Uint8Array => { const b = new Uint8Array(8 + 16); new DataView(b.buffer).setUint32(0, drive, true); return b; };
    const end = (drive: number, length: number): Uint8Array => { const b = new Uint8Array(12), v = new DataView(b.buffer); v.setUint32(0, drive, true); v.setFloat64(4, length, true); return b; };
    const rx = new DiskReceiver([0], d => join(dir, `d${d}`));
    assert.throws(() => rx.take(Tag.DISK, piece(3)), (e: unknown) => e instanceof MigrationError && /drive 3, which this VM does not receive/.test(e.message));
    assert.throws(() => rx.take(Tag.DISK, new Uint8Array(4)), /short disk frame/);
    assert.throws(() => rx.take(Tag.DISK_END, end(0, -1)), /broken disk length/);
    assert.throws(() => rx.check(), /without drive 0/);
    rx.take(Tag.DISK, piece(0));
    rx.take(Tag.DISK_END, end(0, 16));
    rx.check();
    assert.throws(() => rx.take(Tag.DISK, piece(0)), /after its end/);
  } finally {
    cleanup();
  }
});
