import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../testing.js';
import { NinePServer } from './server.js';
import { pack, type TestClient, type Value } from './client-testing.js';
import { ROOT, shareDirs, withShare } from './testing.js';

const EBADF = 9, EINVAL = 22, ENFILE = 23, EMFILE = 24, EPROTO = 71, EMSGSIZE = 90, ENOTSUP = 95;

/** A session on a fresh share holding one file, f. */
function withServer(fn: (c: TestClient, server: NinePServer, root: string) => void, opts: { maxFids?: number; maxOpenFiles?: number } = {}): void {
  withShare({ prefix: 'gasang-9p-rob-', ...opts }, (share) => {
    writeFileSync(join(share.root, 'f'), 'file contents');
    fn(share.attach(), share.server, share.root);
  });
}

/** Reply fields: [type, tag, errno (Rlerror) or -1]. */
function reply(c: TestClient, message: Uint8Array): [number, number, number] {
  const r = c.raw(message);
  assert.ok(r.length >= 11, 'a reply');
  const v = new DataView(r.buffer, r.byteOffset, r.length);
  assert.equal(v.getUint32(0, true), r.length);
  return [r[4], v.getUint16(5, true), r[4] === 7 ? v.getUint32(7, true) : -1];
}

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

describe('9P malformed messages', () => {
  it('get Rlerror, never an exception', () => {
    withServer(c => {
      for (let len = 0; len < 7; len++) assert.deepEqual(reply(c, new Uint8Array(len)), [7, 0xffff, EPROTO]);
      // size larger than the bytes given, smaller than a header.
      assert.deepEqual(reply(c, Uint8Array.of(...le32(100), 120, 5, 0, 0, 0, 0, 0)), [7, 5, EPROTO]);
      assert.deepEqual(reply(c, Uint8Array.of(...le32(3), 120, 6, 0, 0, 0, 0, 0)), [7, 6, EPROTO]);
      // Fields cut short: Tclunk without its fid, Twalk promising names it lacks.
      assert.deepEqual(reply(c, pack(120, 7, '', [])), [7, 7, EPROTO]);
      assert.deepEqual(reply(c, pack(110, 8, 'ddws', [ROOT, 1, 3, 'f'])), [7, 8, EPROTO]);
      // A string length running past the message.
      const body = [...le32(1), ...le32(0xffffffff), 0xff, 0xff, 1, 2]; // uname "claims" 65535 bytes
      assert.deepEqual(reply(c, Uint8Array.of(...le32(7 + body.length), 104, 9, 0, ...body)), [7, 9, EPROTO]);
      // Too many walk names, a huge Twrite count, an unknown type, R-messages sent to the server.
      assert.deepEqual(reply(c, pack(110, 10, 'ddw', [ROOT, 1, 0xffff])), [7, 10, EINVAL]);
      const f = 2;
      c.walk(ROOT, f, ['f']);
      c.lopen(f, 2);
      assert.deepEqual(reply(c, pack(118, 11, 'dqdR', [f, 0, 0xffffffff, Uint8Array.of(1, 2, 3)])), [7, 11, EPROTO]);
      for (const type of [0, 1, 6, 7, 101, 113, 124, 126, 255]) assert.deepEqual(reply(c, pack(type, 12, 'd', [0])), [7, 12, ENOTSUP]);
      // Not UTF-8 where a string must be text.
      assert.deepEqual(reply(c, pack(100, 13, 'ds', [8192, Uint8Array.of(0xff, 0xfe)])), [7, 13, EINVAL]);
      c.version();
      c.attach(ROOT);
      // Huge counts are clamped to the response buffer.
      c.walk(ROOT, f, ['f']);
      c.lopen(f, 0);
      assert.equal(Buffer.from(c.read(f, 0, 0xffffffff)).toString(), 'file contents');
      const d = 3;
      c.walk(ROOT, d, []);
      c.lopen(d, 0);
      assert.ok(c.readdir(d, 0, 0xffffffff).length >= 3);
      assert.ok(c.readdir(d, 2 ** 62, 0xffffffff).length === 0);
      // Trailing bytes after the fields are ignored.
      const extra = pack(24, 14, 'dqR', [f, 0x7ff, new Uint8Array(9)]);
      assert.equal(reply(c, extra)[0], 25);
    });
  });

  it('never writes past a small response buffer', () => {
    withServer((c, server) => {
      const f = 2;
      c.walk(ROOT, f, ['f']);
      c.lopen(f, 0);
      const tiny = new Uint8Array(10);
      assert.equal(server.handle(pack(116, 1, 'dqd', [f, 0, 100]), tiny), 0);
      const buf = new Uint8Array(64).fill(0xaa);
      const n = server.handle(pack(116, 1, 'dqd', [f, 0, 100]), buf.subarray(0, 16));
      assert.equal(n, 16);
      assert.equal(Buffer.from(buf.subarray(11, 16)).toString(), 'file ');
      assert.ok(buf.subarray(16).every(b => b === 0xaa));
      // A reply that cannot fit (Rgetattr is 160 bytes) becomes an Rlerror.
      const m = server.handle(pack(24, 1, 'dq', [f, 0x7ff]), buf.subarray(0, 40));
      assert.equal(m, 11);
      assert.equal(buf[4], 7);
      assert.equal(new DataView(buf.buffer).getUint32(7, true), EMSGSIZE);
    });
  });
});

/** Host descriptors of this process open on something under `dir` (other descriptors come and go with Node's own work). */
function descriptorsUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

describe('9P resource bounds', () => {
  it('caps fids (ENFILE) and open fids (EMFILE) without using more host descriptors', () => {
    withServer((c, server, root) => {
      const fds = (): number => descriptorsUnder(root);
      const start = fds();
      let id = 1;
      for (; id < 200; id++) {
        try {
          c.walk(ROOT, id, ['f']);
        } catch (err) {
          assert.equal((err as { errno: number }).errno, ENFILE);
          break;
        }
      }
      assert.equal(server.fidCount, 64);
      let opened = 0;
      for (let f = 1; f < id; f++) {
        try {
          c.lopen(f, 0);
          opened++;
        } catch (err) {
          assert.equal((err as { errno: number }).errno, EMFILE);
        }
      }
      assert.equal(opened, 8);
      assert.equal(server.openFidCount, 8);
      assert.equal(fds() - start, 8, "one host descriptor per open fid, none per walked fid");
      for (let f = 1; f < id; f++) c.clunk(f);
      assert.equal(fds(), start);
      assert.equal(c.errno(120, 'd', [1]), EBADF);
    }, { maxFids: 64, maxOpenFiles: 8 });
  });
});

/** Every message type with its fields (Linux's formats), for building random but plausible messages. */
const FORMATS: [number, string][] = [
  [104, 'ddssd'], [110, 'ddS'], [12, 'dd'], [14, 'dsddd'], [116, 'dqd'], [118, 'dqD'], [120, 'd'],
  [122, 'd'], [24, 'dq'], [26, 'dddddqqqqq'], [40, 'dqd'], [8, 'd'], [72, 'dsdd'], [16, 'dssd'], [18, 'dsdddd'],
  [22, 'd'], [70, 'dds'], [20, 'dds'], [74, 'dsds'], [76, 'dsd'], [50, 'dd'], [108, 'w'], [30, 'dds'],
  [32, 'dsqd'], [52, 'dbdqqds'], [54, 'dbqqds'], [102, 'dssd'],
];

describe('9P fuzz', () => {
  it('survives thousands of random messages and touches nothing outside the share', t => {
    const { base, root, outside } = shareDirs('gasang-9p-fuzz-');
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(outside, 'keep'), 'keep me');
    writeFileSync(join(root, 'f'), 'some data');
    symlinkSync('../outside', join(root, 'esc'));
    symlinkSync(outside, join(root, 'abs'));
    const outsideBefore = JSON.stringify(readdirSync(outside).map(n => [n, lstatSync(join(outside, n)).mtimeMs, lstatSync(join(outside, n)).mode]));

    t.after(() => rmSync(base, { recursive: true, force: true }));
    const server = new NinePServer({ root, readOnly: false, tag: 'fuzz', msize: 64 * 1024 });
    const random = mulberry32(0x9e3779b9);
    const int = (n: number): number => Math.floor(random() * n);
    const good = ['f', 'sub', 'esc', 'abs', 'new', 'x', 'é'];
    const bad = ['..', '.', '', 'a/b', '../outside', 'n\0ul', 'x'.repeat(300)];
    const name = (): string => (int(4) ? good[int(good.length)] : bad[int(bad.length)]);
    const value = (f: string): Value => {
      switch (f) {
        case 'b': return int(256);
        case 'w': return int(4) === 0 ? 0xffff : int(20);
        case 'd': return int(4) ? int(8) : [0xffffffff, int(2 ** 32), 0o100, 0o101, 0o644, 0x200, 0o40755, 8192][int(8)]; // fids mostly
        case 'q': return [0, int(100), int(2 ** 40), 2 ** 53 + 2, 0x3fff][int(5)];
        case 's': return int(10) === 0 ? Uint8Array.from({ length: int(40) }, () => int(256)) : name();
        case 'S': return Array.from({ length: int(4) }, name);
        default: return Uint8Array.from({ length: int(64) }, () => int(256));
      }
    };
    let structured = 0, garbage = 0;
    const replies = new Set<number>();
    let session = 0;
    try {
      for (let i = 0; i < 10000; i++) {
        const response = new Uint8Array([8, 11, 200, 4096, 65536][int(5)]);
        let message: Uint8Array;
        // A random Tversion ends the session (and often leaves it unnegotiated): start a new one.
        const setup = session < 2;
        if (session === 0) {
          message = pack(100, 0xffff, 'ds', [65536, '9P2000.L']);
          session = 1;
        } else if (session === 1) {
          message = pack(104, 1, 'ddssd', [0, 0xffffffff, 'u', '', 0]);
          session = 2;
        } else if (int(3) === 0) {
          message = pack(110, 1, 'ddS', [int(2) ? 0 : int(8), int(8), Array.from({ length: int(3) }, name)]); // keep fids coming
        } else if (int(300) === 0) {
          message = pack(100, int(0x10000), 'ds', [[int(8192), 65536][int(2)], ['9P2000.L', '9P2000', 'x'][int(3)]]);
        } else if (int(8) === 0) {
          garbage++;
          message = Uint8Array.from({ length: int(64) }, () => int(256));
          if (message.length >= 4 && int(2)) new DataView(message.buffer).setUint32(0, message.length, true);
        } else {
          structured++;
          const [type, fmt] = FORMATS[int(FORMATS.length)];
          message = pack(type, int(0x10000), fmt, [...fmt].map(value));
          if (int(16) === 0) message = message.subarray(0, int(message.length)); // cut short
        }
        if (!setup && message.length > 4 && message[4] === 100) session = 0;
        const n = server.handle(message, response);
        assert.ok(n <= response.length);
        if (response.length < 11) {
          assert.equal(n, 0);
          continue;
        }
        const v = new DataView(response.buffer);
        assert.equal(v.getUint32(0, true), n, `message ${i}: size field`);
        assert.ok(response[4] === 7 || (message.length >= 5 && response[4] === message[4] + 1), `message ${i}: reply type`);
        if (response[4] !== 7) replies.add(response[4]);
      }
      assert.equal(server.counters.internal, 0, 'no unexpected exceptions');
      assert.ok(structured > 4000 && garbage > 500, `${structured} structured, ${garbage} garbage`);
      // The fuzz reaches the file operations, not only the decoder's errors.
      assert.ok(replies.size >= 20, `${replies.size} kinds of successful reply`);
    } finally {
      server.close();
    }
    assert.equal(descriptorsUnder(base), 0, 'every host descriptor released');
    const outsideAfter = JSON.stringify(readdirSync(outside).map(n => [n, lstatSync(join(outside, n)).mtimeMs, lstatSync(join(outside, n)).mode]));
    assert.equal(outsideAfter, outsideBefore);
    assert.deepEqual(readdirSync(base).sort(), ['outside', 'root']);
    assert.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'keep me');
  });
});
