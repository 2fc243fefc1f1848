import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../vm/testing.js';
import { SnapshotError } from './errors.js';
import { SnapshotFile, writeSnapshot, type SnapshotParts } from './file.js';
import { FORMAT_VERSION, HEADER_SIZE, Hdr, SECTION_HEADER_SIZE, crc32, decodeHeader, decodeSectionHeader } from './format.js';
import { PAGE, scanPages } from './ram.js';
import { Residency } from '../memory/residency.js';

const RAM_PAGES = 64;

/** Loads all of `f`'s RAM into `ram` now. */
function loadAll(f: SnapshotFile, ram: Uint8Array): void {
  const residency = new Residency();
  f.lazyRam(ram, residency).finish();
  assert.equal(residency.pager, undefined, 'nothing left to page in');
}

/** RAM with a few non-zero pages (one only in its last byte, one only in its first). */
function parts(): SnapshotParts {
  const ram = new Uint8Array(RAM_PAGES * PAGE);
  ram.fill(0xa5, 3 * PAGE, 5 * PAGE);
  ram[10 * PAGE + PAGE - 1] = 1;
  ram[63 * PAGE] = 7;
  return { meta: { taken: 'now' }, spec: { name: 'x', list: [1, 2] }, machine: { board: 'virt' }, harts: new Uint8Array([1, 2, 3, 4]), ram };
}

function written(t: { after(fn: () => void): void }): { path: string; dir: string; p: SnapshotParts } {
  const { dir, cleanup } = tempDir('snapshot-file');
  t.after(cleanup);
  const path = join(dir, 'vm.snap');
  const p = parts();
  writeSnapshot(path, p);
  return { path, dir, p };
}

/** Asserts that opening (and loading RAM from) `path` fails with `kind` and a message matching `message`. */
function refused(path: string, kind: SnapshotError['kind'], message: RegExp): void {
  assert.throws(() => {
    const f = SnapshotFile.open(path);
    try { loadAll(f, new Uint8Array(RAM_PAGES * PAGE)); } finally { f.close(); }
  }, (e: unknown) => e instanceof SnapshotError && e.kind === kind && message.test(e.message));
}

test('zero pages are neither stored nor read; what is stored reads back exactly', t => {
  const { path, p } = written(t);
  const scan = scanPages(p.ram);
  assert.equal(scan.stored, 4, 'pages 3, 4, 10 and 63');
  const bytes = readFileSync(path);
  const h = decodeHeader(bytes);
  assert.deepEqual([h.magic, h.version, h.sections, h.fileLength, h.crcOk], ['GASANGSS', FORMAT_VERSION, 5, bytes.length, true]);
  const f = SnapshotFile.open(path);
  t.after(() => f.close());
  assert.deepEqual([f.meta, f.spec, f.machine], [p.meta, p.spec, p.machine]);
  assert.deepEqual(Array.from(f.harts), [1, 2, 3, 4]);
  const ram = new Uint8Array(RAM_PAGES * PAGE);
  loadAll(f, ram);
  assert.deepEqual(ram, p.ram);
  // The RAM section holds its header, the bitmap, four page checksums and four pages: nothing for the zero pages.
  let pos = HEADER_SIZE, last;
  for (let i = 0; i < 5; i++) { last = decodeSectionHeader(bytes.subarray(pos)); pos += SECTION_HEADER_SIZE + last.length; }
  assert.equal(last!.tag, 'RAM ');
  assert.equal(last!.length, 8 + RAM_PAGES / 8 + 4 * (4 + PAGE));
  assert.equal(readdirSync(join(path, '..')).length, 1, 'no temporary file left');
});

test('a truncated, bit-flipped, wrong-version or foreign file is refused with a clear message', t => {
  const { path, dir } = written(t);
  const good = readFileSync(path);
  const variant = (name: string, bytes: Uint8Array): string => { const f = join(dir, name); writeFileSync(f, bytes); return f; };
  refused(variant('short', good.subarray(0, good.length - 100)), 'truncated', /short is truncated: \d+ of \d+ bytes/);
  refused(variant('tiny', good.subarray(0, 20)), 'truncated', /is truncated/);
  refused(variant('foreign', Buffer.from('QFI\xfb not a snapshot at all, really')), 'not-snapshot', /foreign is not a gasang snapshot/);
  refused(join(dir, 'missing'), 'not-found', /missing: No such file/);
  // Another version, with a header checksum that fits: refused for its version, not as corrupt.
  const other = Buffer.from(good);
  other.writeUInt32LE(FORMAT_VERSION + 1, Hdr.VERSION);
  other.writeUInt32LE(crc32(other.subarray(0, Hdr.CRC)), Hdr.CRC);
  refused(variant('other', other), 'version', new RegExp(`other is a snapshot of format version ${FORMAT_VERSION + 1}; this gasang reads version ${FORMAT_VERSION}`));
  // A bit flipped anywhere: the header, a JSON section, RAM's index (bitmap and page checksums) or a page.
  const pageChecksums = good.length - 4 * PAGE - 4 * 4;
  const flips: [number, RegExp][] = [[Hdr.SECTIONS, /header fails its checksum/], [HEADER_SIZE + SECTION_HEADER_SIZE + 2, /section META fails its checksum/],
    [pageChecksums - 3, /RAM section has the wrong length/], [pageChecksums + 5, /RAM section fails its checksum/],
    [good.length - PAGE - 5, /guest RAM page 0xa000 fails its checksum/], [good.length - 1, /guest RAM page 0x3f000 fails its checksum/]];
  for (const [at, message] of flips) {
    const b = Buffer.from(good);
    b[at]! ^= 0x10;
    refused(variant(`flip-${at}`, b), 'corrupt', message);
  }
  const harts = good.indexOf(Buffer.from('HART'));
  const b = Buffer.from(good);
  b[harts + SECTION_HEADER_SIZE + 1]! ^= 1;
  refused(variant('flip-hart', b), 'corrupt', /section HART fails its checksum/);
  // Extra bytes after the end are not ignored.
  refused(variant('long', Buffer.concat([good, Buffer.alloc(1)])), 'corrupt', /length or section count is wrong/);
  // RAM of another size.
  const f = SnapshotFile.open(path);
  t.after(() => f.close());
  assert.throws(() => loadAll(f, new Uint8Array(2 * RAM_PAGES * PAGE)), (e: unknown) => e instanceof SnapshotError && e.kind === 'mismatch');
});

test('a failed write leaves the previous snapshot whole and no temporary file', t => {
  const { path, dir, p } = written(t);
  const before = readFileSync(path);
  const bad = { ...p, spec: { self: undefined as unknown } };
  (bad.spec as { self: unknown }).self = bad.spec; // JSON.stringify throws: a cycle
  assert.throws(() => writeSnapshot(path, bad), (e: unknown) => e instanceof SnapshotError && e.kind === 'io');
  assert.deepEqual(readFileSync(path), before);
  assert.deepEqual(readdirSync(dir), ['vm.snap']);
});

test('RAM is paged in on first touch and streamed in behind it; a page that fails its checksum is never served and stops the machine', async t => {
  const { path, dir, p } = written(t);
  const bad = readFileSync(path);
  bad[bad.length - 1]! ^= 1; // page 63
  const corrupt = join(dir, 'corrupt.snap');
  writeFileSync(corrupt, bad);
  for (const [file, whole] of [[path, true], [corrupt, false]] as const) {
    const f = SnapshotFile.open(file);
    const ram = new Uint8Array(RAM_PAGES * PAGE), residency = new Residency();
    let finished: unknown;
    const pager = f.lazyRam(ram, residency, s => { finished = s; });
    f.close(); // the pager owns the file now
    assert.equal(ram[3 * PAGE], 0, 'nothing read before it is asked for');
    residency.ensure(10 * PAGE + PAGE - 1, 1);
    assert.equal(ram[10 * PAGE + PAGE - 1], 1, 'the page touched is in');
    assert.equal(ram[3 * PAGE], 0xa5, 'with its cluster');
    assert.equal(ram[63 * PAGE], 0, 'another cluster is not');
    pager.start();
    await new Promise(r => setTimeout(r, 50));
    if (whole) {
      assert.deepEqual(ram, p.ram);
      assert.deepEqual(finished, { stored: 4, onDemand: 3, background: 1, ms: (finished as { ms: number }).ms });
      assert.equal(residency.pager, undefined);
    } else {
      assert.equal(ram[63 * PAGE], 0, 'the bad page is not served');
      assert.equal(residency.pager, pager, 'still missing a page');
      assert.match(String(residency.failure), /corrupt\.snap is corrupt: guest RAM page 0x3f000 fails its checksum/, 'found while streaming: the machine stops on it');
      assert.throws(() => residency.ensure(63 * PAGE, 4), /corrupt\.snap is corrupt: guest RAM page 0x3f000 fails its checksum/);
      assert.throws(() => residency.finish(), /0x3f000 fails its checksum/);
      residency.close();
      assert.equal(finished, undefined);
    }
  }
});
