import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statfsSync, statSync, symlinkSync, unlinkSync,
  writeFileSync, utimesSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { RlerrorReply, TestClient, type Qid } from './client-testing.js';
import { ROOT, TestShare, withShare } from './testing.js';
import { NinePServer } from './server.js';

const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000;
const ENOENT = 2, EBADF = 9, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOTEMPTY = 39, ENODATA = 61, EPROTO = 71;
let n = 100;
const fresh = (): number => n++;

describe('9P server: session', () => {
  const share = new TestShare();
  const { root: dir, server, c } = share;
  after(() => share.close());

  it('refuses everything before Tversion, then negotiates msize and 9P2000.L', () => {
    assert.equal(c.errno(104, 'ddssd', [0, 0xffffffff, 'u', '', 0]), EPROTO);
    assert.deepEqual(c.version(1 << 30), [512 * 1024, '9P2000.L']);
    assert.deepEqual(c.version(8192), [8192, '9P2000.L']);
    assert.equal(c.errno(100, 'ds', [512, '9P2000.L']), EINVAL); // below 4096
    assert.deepEqual(c.version(8192, '9P2000.u'), [8192, 'unknown']);
    assert.equal(c.errno(104, 'ddssd', [0, 0xffffffff, 'u', '', 0]), EPROTO);
    c.version();
  });

  it('attaches to the root and clunks; Tversion clunks every fid', () => {
    const qid = c.attach(ROOT);
    assert.equal(qid.type, 0x80);
    assert.equal(qid.path, BigInt(statSync(dir).ino));
    assert.equal(c.errno(104, 'ddssd', [ROOT, 0xffffffff, 'u', '', 0]), EINVAL); // fid in use
    c.version();
    assert.equal(server.fidCount, 0);
    c.attach(ROOT);
    c.clunk(ROOT);
    assert.equal(c.errno(120, 'd', [ROOT]), EBADF);
  });

  it('answers Tflush, grants locks, has no extended attributes', () => {
    c.attach(ROOT);
    writeFileSync(join(dir, 'f'), 'x');
    const f = fresh();
    c.walk(ROOT, f, ['f']);
    c.lopen(f, O_RDWR);
    c.call(108, 'w', [5]);
    assert.deepEqual(c.call(52, 'dbdqqds', [f, 1, 0, 0, 0, 42, 'gasang'], 'b'), [0]);
    assert.deepEqual(c.call(54, 'dbqqds', [f, 1, 10, 20, 42, 'gasang'], 'bqqds'), [2, 10n, 20n, 42, 'gasang']);
    const x = fresh();
    assert.deepEqual(c.call(30, 'dds', [f, x, ''], 'q'), [0n]);
    assert.equal(c.read(x, 0, 100).length, 0);
    c.clunk(x);
    assert.equal(c.errno(30, 'dds', [f, fresh(), 'user.foo']), ENODATA);
    assert.equal(c.errno(32, 'dsqd', [f, 'user.foo', 3, 0]), 95);
    c.call(50, 'dd', [f, 0]);
    c.call(50, 'dd', [f, 1]);
    c.clunk(f);
    c.clunk(ROOT);
  });
});

describe('9P server: files and directories', () => {
  let share: TestShare, dir: string, c: TestClient;
  before(() => {
    share = new TestShare();
    dir = share.root;
    mkdirSync(join(dir, 'a/b'), { recursive: true });
    writeFileSync(join(dir, 'a/b/hello.txt'), 'hello, world\n');
    c = share.attach();
  });
  after(() => share.close());

  it('walks several names at once, and stops short at a missing one', () => {
    const f = fresh();
    const qids = c.walk(ROOT, f, ['a', 'b', 'hello.txt']);
    assert.deepEqual(qids.map(q => q.type), [0x80, 0x80, 0]);
    assert.equal(qids[2].path, BigInt(statSync(join(dir, 'a/b/hello.txt')).ino));
    const g = fresh();
    assert.equal(c.walk(ROOT, g, ['a', 'nope', 'x']).length, 1); // partial: newfid not made
    assert.equal(c.errno(120, 'd', [g]), EBADF);
    assert.equal(c.errno(110, 'ddS', [ROOT, g, ['nope']]), ENOENT);
    assert.equal(c.errno(110, 'ddS', [f, g, ['x']]), ENOTDIR);
    // Clone (no names), and walk in place.
    c.walk(ROOT, g, []);
    c.walk(g, g, ['a']);
    assert.equal((c.getattr(g).mode as number) & 0o170000, 0o040000);
    c.clunk(f);
    c.clunk(g);
  });

  it('opens and reads a file, with offsets and counts clamped to the file', () => {
    const f = fresh();
    c.walk(ROOT, f, ['a', 'b', 'hello.txt']);
    const qid = c.lopen(f, O_RDONLY);
    assert.equal(qid.type, 0);
    assert.equal(Buffer.from(c.read(f, 0, 4096)).toString(), 'hello, world\n');
    assert.equal(Buffer.from(c.read(f, 7, 5)).toString(), 'world');
    assert.equal(c.read(f, 100, 10).length, 0);
    assert.equal(c.read(f, 2 ** 60, 10).length, 0);
    assert.equal(c.errno(12, 'dd', [f, O_RDONLY]), EINVAL); // already open
    c.clunk(f);
  });

  it('writes a file and the host sees it', () => {
    const f = fresh();
    c.walk(ROOT, f, ['a', 'b', 'hello.txt']);
    c.lopen(f, O_RDWR);
    assert.equal(c.write(f, 7, 'there'), 5);
    assert.equal(readFileSync(join(dir, 'a/b/hello.txt'), 'utf8'), 'hello, there\n');
    c.clunk(f);
    const g = fresh();
    c.walk(ROOT, g, ['a', 'b', 'hello.txt']);
    c.lopen(g, O_WRONLY | O_TRUNC);
    assert.equal(statSync(join(dir, 'a/b/hello.txt')).size, 0);
    c.clunk(g);
  });

  it('creates files with the exact mode asked (no host umask), and O_EXCL', () => {
    const d = fresh();
    c.walk(ROOT, d, ['a']);
    const qid = c.lcreate(d, 'new.bin', O_RDWR | O_CREAT, 0o100751);
    assert.equal(qid.path, BigInt(statSync(join(dir, 'a/new.bin')).ino));
    assert.equal(statSync(join(dir, 'a/new.bin')).mode & 0o7777, 0o751);
    assert.equal(c.write(d, 0, 'data'), 4); // the fid is now the open new file
    assert.equal(Buffer.from(c.read(d, 0, 10)).toString(), 'data');
    c.clunk(d);
    const e = fresh();
    c.walk(ROOT, e, ['a']);
    assert.equal(c.errno(14, 'dsddd', [e, 'new.bin', O_RDWR | O_CREAT | O_EXCL, 0o644, 0]), EEXIST);
    c.lcreate(e, 'new.bin', O_RDWR | O_CREAT, 0o600); // exists: opened, mode kept
    assert.equal(statSync(join(dir, 'a/new.bin')).mode & 0o7777, 0o751);
    c.clunk(e);
    const s = fresh();
    c.walk(ROOT, s, ['a']);
    c.lcreate(s, 'suid', O_RDWR | O_CREAT, 0o6755);
    assert.equal(statSync(join(dir, 'a/suid')).mode & 0o7777, 0o755, 'set-id bits dropped');
    c.clunk(s);
  });

  it('makes directories, and lists them in pages that resume at the offset given', () => {
    const d = fresh();
    c.walk(ROOT, d, []);
    const qid = c.mkdir(d, 'many', 0o2750);
    assert.equal(qid.type, 0x80);
    assert.equal(statSync(join(dir, 'many')).mode & 0o7777, 0o2750);
    const names = Array.from({ length: 300 }, (_, i) => `file-${i}-${'x'.repeat(i % 40)}`);
    for (const name of names) writeFileSync(join(dir, 'many', name), name);
    c.walk(d, d, ['many']);
    c.lopen(d, O_RDONLY | 0o200000);
    const seen: string[] = [];
    let offset = 0n;
    let pages = 0;
    for (;;) {
      const entries = c.readdir(d, offset, 700);
      if (entries.length === 0) break;
      pages++;
      for (const e of entries) {
        seen.push(e.name);
        if (e.name !== '.' && e.name !== '..') {
          assert.equal(e.qid.path, BigInt(lstatSync(join(dir, 'many', e.name)).ino));
          assert.equal(e.type, 8);
        }
      }
      offset = entries[entries.length - 1].offset;
    }
    assert.ok(pages > 10, `${pages} pages`);
    assert.deepEqual(seen.slice(0, 2), ['.', '..']);
    assert.deepEqual(seen.slice(2).sort(), names.slice().sort());
    // Going back (seekdir) gives the same entries again.
    const again = c.readdir(d, 100, 700);
    assert.equal(again[0].name, seen[100]);
    const first = c.readdir(d, 0, 65000);
    assert.equal(first.length, 302);
    c.clunk(d);
  });

  it('reads and sets attributes: chmod, truncate, times, owner', () => {
    const p = join(dir, 'a/attrs');
    writeFileSync(p, 'abcdefgh');
    const f = fresh();
    c.walk(ROOT, f, ['a', 'attrs']);
    let a = c.getattr(f);
    const st = lstatSync(p, { bigint: true });
    assert.equal(a.mode, Number(st.mode));
    assert.equal(a.size, 8n);
    assert.equal(a.nlink, 1n);
    assert.equal((a.qid as Qid).path, st.ino);
    assert.equal(a.mtimeSec, st.mtimeNs / 1_000_000_000n);
    assert.equal(a.mtimeNsec, st.mtimeNs % 1_000_000_000n);
    c.setattr(f, { valid: 1, mode: 0o604 });
    assert.equal(statSync(p).mode & 0o777, 0o604);
    c.setattr(f, { valid: 8, size: 3 });
    assert.equal(readFileSync(p, 'utf8'), 'abc');
    c.setattr(f, { valid: 8, size: 1 << 20 });
    assert.equal(statSync(p).size, 1 << 20);
    // mtime set, atime left alone (UTIME_OMIT), then atime to now.
    const before = statSync(p);
    c.setattr(f, { valid: 0x20 | 0x100, mtime: [1_000_000_000, 250_000_000] });
    let after = statSync(p);
    assert.equal(after.mtimeMs, 1_000_000_000_250);
    assert.equal(Math.round(after.atimeMs), Math.round(before.atimeMs));
    c.setattr(f, { valid: 0x10 | 0x80, atime: [1_500_000_000, 0] });
    c.setattr(f, { valid: 0x20 });
    after = statSync(p);
    assert.equal(after.atimeMs, 1_500_000_000_000);
    assert.ok(Math.abs(after.mtimeMs - Date.now()) < 5000);
    if (process.getuid?.() === 0) {
      c.setattr(f, { valid: 2 | 4, uid: 1234, gid: 5678 });
      assert.equal(statSync(p).uid, 1234);
      assert.equal(statSync(p).gid, 5678);
    }
    a = c.getattr(f);
    assert.equal(a.size, BigInt(1 << 20));
    c.clunk(f);
  });

  it('keeps working on an open file after it is unlinked (getattr, setattr, read)', () => {
    const d = fresh();
    c.walk(ROOT, d, []);
    c.lcreate(d, 'tmpfile', O_RDWR | O_CREAT, 0o600);
    c.write(d, 0, 'temporary');
    c.unlinkat(ROOT, 'tmpfile', 0);
    assert.equal(c.getattr(d).nlink, 0n);
    c.setattr(d, { valid: 8, size: 4 });
    assert.equal(Buffer.from(c.read(d, 0, 100)).toString(), 'temp');
    c.clunk(d);
  });

  it('renames, and fids below a renamed directory follow it', () => {
    mkdirSync(join(dir, 'r1/inner'), { recursive: true });
    writeFileSync(join(dir, 'r1/inner/f'), 'moving');
    const f = fresh();
    c.walk(ROOT, f, ['r1', 'inner', 'f']);
    c.renameat(ROOT, 'r1', ROOT, 'r2');
    assert.deepEqual(readdirSync(join(dir, 'r2/inner')), ['f']);
    assert.equal(c.getattr(f).size, 6n);
    c.lopen(f, O_RDONLY);
    assert.equal(Buffer.from(c.read(f, 0, 10)).toString(), 'moving');
    // Trename (fid-based), into another directory.
    const g = fresh();
    c.walk(ROOT, g, ['r2', 'inner']);
    c.call(20, 'dds', [g, ROOT, 'top-inner']);
    assert.ok(lstatSync(join(dir, 'top-inner/f')).isFile());
    assert.equal((c.getattr(g).mode as number) & 0o170000, 0o040000);
    const h = fresh();
    c.walk(g, h, ['f']);
    assert.equal(c.getattr(h).size, 6n);
    for (const x of [f, g, h]) c.clunk(x);
  });

  it('unlinks files, removes empty directories only, and Tremove clunks', () => {
    mkdirSync(join(dir, 'gone/sub'), { recursive: true });
    writeFileSync(join(dir, 'gone/file'), '');
    const d = fresh();
    c.walk(ROOT, d, ['gone']);
    assert.equal(c.errno(76, 'dsd', [ROOT, 'gone', 0x200]), ENOTEMPTY);
    assert.equal(c.errno(76, 'dsd', [d, 'sub', 0]), EISDIR);
    c.unlinkat(d, 'file', 0);
    c.unlinkat(d, 'sub', 0x200);
    assert.deepEqual(readdirSync(join(dir, 'gone')), []);
    c.call(122, 'd', [d]);
    assert.equal(c.errno(120, 'd', [d]), EBADF);
    assert.throws(() => lstatSync(join(dir, 'gone')), /ENOENT/);
    const e = fresh();
    c.walk(ROOT, e, []);
    assert.ok(c.errno(122, 'd', [e]) > 0); // the root cannot go
    assert.equal(c.errno(120, 'd', [e]), EBADF); // but the fid is clunked
  });

  it('makes and reads symlinks, and hard links', () => {
    const d = fresh();
    c.walk(ROOT, d, ['a']);
    const qid = c.symlink(d, 'ln', '../some/where');
    assert.equal(qid.type, 0x02);
    assert.equal(lstatSync(join(dir, 'a/ln')).isSymbolicLink(), true);
    const l = fresh();
    c.walk(d, l, ['ln']);
    assert.equal(c.readlink(l), '../some/where');
    assert.equal((c.getattr(l).mode as number) & 0o170000, 0o120000);
    writeFileSync(join(dir, 'a/orig'), 'linked');
    const o = fresh();
    c.walk(d, o, ['orig']);
    c.call(70, 'dds', [d, o, 'hard']);
    assert.equal(statSync(join(dir, 'a/hard')).ino, statSync(join(dir, 'a/orig')).ino);
    assert.equal(c.getattr(o).nlink, 2n);
    assert.equal(c.errno(22, 'd', [o]), EINVAL); // not a symlink
    // Tmknod: refused (EPERM), whatever the type.
    for (const mode of [0o010644, 0o020644, 0o060644, 0o140644, 0o100644]) {
      assert.equal(c.errno(18, 'dsdddd', [d, 'node', mode, 1, 3, 0]), 1);
    }
    assert.ok(!existsSync(join(dir, 'a/node')));
    for (const x of [d, l, o]) c.clunk(x);
  });

  it('reports statfs of the host file system', () => {
    const [type, bsize, blocks, , , files] = c.call(8, 'd', [ROOT], 'ddqqqqqqd');
    const s = statfsSync(dir);
    assert.equal(type, s.type);
    assert.equal(bsize, s.bsize);
    assert.equal(blocks, BigInt(s.blocks));
    assert.equal(files, BigInt(s.files));
  });

  it('refuses to open FIFOs and other special files', () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const f = fresh();
    c.walk(ROOT, f, ['fifo']);
    assert.equal(c.errno(12, 'dd', [f, O_RDONLY]), 6);
    assert.equal(c.errno(14, 'dsddd', [ROOT, 'fifo', O_RDONLY | O_CREAT, 0o644, 0]), 6);
    c.clunk(f);
    unlinkSync(join(dir, 'fifo'));
  });

  it('gives readdir qids of the right type for symlinks and directories', () => {
    mkdirSync(join(dir, 'mixed'));
    mkdirSync(join(dir, 'mixed/d'));
    symlinkSync('/etc', join(dir, 'mixed/l'));
    const d = fresh();
    c.walk(ROOT, d, ['mixed']);
    c.lopen(d, O_RDONLY);
    const byName = new Map(c.readdir(d, 0, 4096).map(e => [e.name, e]));
    assert.equal(byName.get('d')!.type, 4);
    assert.equal(byName.get('d')!.qid.type, 0x80);
    assert.equal(byName.get('l')!.type, 10);
    assert.equal(byName.get('l')!.qid.type, 0x02);
    c.clunk(d);
  });

  it('keeps qid versions equal between walk and getattr, and changes them on write', () => {
    const p = join(dir, 'versioned');
    writeFileSync(p, 'v1');
    utimesSync(p, 1000, 1_700_000_000.9999999);
    const f = fresh();
    const [w] = c.walk(ROOT, f, ['versioned']);
    assert.deepEqual(w, c.getattr(f).qid);
    writeFileSync(p, 'version 2');
    assert.notEqual((c.getattr(f).qid as Qid).version, w.version);
    const g = fresh();
    assert.deepEqual(c.walk(ROOT, g, ['versioned'])[0], c.getattr(f).qid);
    c.clunk(g);
    chmodSync(p, 0o644);
    c.clunk(f);
  });
});

describe('9P server: errors', () => {
  it('are Rlerror with Linux errno values', () => {
    withShare({}, (share) => {
      const c = share.attach();
      assert.throws(() => c.walk(ROOT, 1, ['missing']), (e: unknown) => e instanceof RlerrorReply && e.errno === ENOENT);
      assert.equal(c.errno(12, 'dd', [77, 0]), EBADF);
      assert.equal(c.errno(72, 'dsdd', [ROOT, 'x'.repeat(256), 0o755, 0]), 36);
    });
  });
});


describe('9P server: a session saved and taken up again (snapshots)', () => {
  const share = new TestShare();
  const { root: dir, server, c } = share;
  after(() => share.close());

  it('keeps fids, their paths and open files (not truncated again); files gone from the host are EBADF', () => {
    share.attach();
    writeFileSync(join(dir, 'kept'), 'old contents');
    writeFileSync(join(dir, 'gone'), 'x');
    mkdirSync(join(dir, 'sub'));
    const kept = fresh(), gone = fresh(), sub = fresh(), named = fresh();
    c.walk(ROOT, kept, ['kept']);
    c.lopen(kept, O_RDWR | O_TRUNC);
    c.write(kept, 0, 'new');
    c.walk(ROOT, gone, ['gone']);
    c.lopen(gone, O_RDONLY);
    c.walk(ROOT, sub, ['sub']);
    c.lopen(sub, O_RDONLY);
    c.walk(ROOT, named, ['sub']);
    const saved = JSON.parse(JSON.stringify(server.save())) as ReturnType<NinePServer['save']>;
    unlinkSync(join(dir, 'gone'));

    const again = new NinePServer({ readOnly: false, tag: 'share', root: dir });
    const c2 = new TestClient(again);
    try {
      assert.equal(again.restore(saved), 1, 'one open file is gone');
      assert.equal(again.fidCount, 4);
      assert.equal(again.openFidCount, 2);
      assert.equal(Buffer.from(c2.read(kept, 0, 100)).toString(), 'new', 'what was written, not truncated by the restore');
      c2.write(kept, 3, '-more');
      assert.equal(readFileSync(join(dir, 'kept'), 'utf8'), 'new-more');
      assert.equal(c2.errno(116, 'dqd', [gone, 0, 10]), EBADF);
      assert.deepEqual(c2.readdir(sub, 0, 4096).map(e => e.name).sort(), ['.', '..']);
      c2.lopen(named, O_RDONLY); // a walked fid is still a path
      c2.clunk(named);
    } finally {
      again.close();
    }
  });
});
