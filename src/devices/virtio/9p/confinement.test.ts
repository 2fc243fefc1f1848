import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statfsSync, statSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { TestClient } from './client-testing.js';
import { ROOT, TestShare, withShare, type TestShareOptions } from './testing.js';

const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_TRUNC = 0o1000;
const ENOTDIR = 20, EINVAL = 22, ENXIO = 6, ENOTSUP = 95, EROFS = 30;

const SHARE: TestShareOptions = { prefix: 'gasang-9p-conf-', outside: true };

/** Plants symlinks in the share (root) and a secret beside it in base/outside, which must stay untouched. */
function layout({ root, outside }: TestShare): void {
  mkdirSync(join(root, 'd'));
  writeFileSync(join(outside, 'secret.txt'), 'secret\n', { mode: 0o600 });
  writeFileSync(join(root, 'd', 'f'), 'inside\n');
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('../../..', join(root, 'up'));
  symlinkSync('../outside', join(root, 'out'));
  symlinkSync(outside, join(root, 'abs'));
  symlinkSync(join(outside, 'secret.txt'), join(root, 'outfile'));
}

/** Everything about a tree that an escape could change. */
function snapshot(dir: string): string {
  const lines: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      lines.push(`${p} ${st.mode} ${st.size} ${st.mtimeMs} ${st.nlink} ${st.uid}`);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) lines.push(readFileSync(p, 'base64'));
    }
  };
  walk(dir);
  return lines.join('\n');
}

describe('9P confinement', () => {
  let fixture: TestShare, root: string, outside: string, c: TestClient, before_: string;
  let next = 10;
  const fid = (): number => next++;
  before(() => {
    fixture = new TestShare(SHARE);
    ({ root, outside } = fixture);
    layout(fixture);
    before_ = snapshot(outside);
    c = fixture.attach();
  });
  after(() => {
    const after_ = snapshot(outside);
    fixture.close();
    assert.equal(after_, before_, 'nothing outside the share changed');
  });

  it('refuses .. and names with / or NUL in walks', () => {
    for (const names of [['..'], ['d', '..'], ['d', '..', '..'], ['.'], ['d/..'], ['../outside'], ['d\0'], ['']]) {
      assert.equal(c.errno(110, 'ddS', [ROOT, fid(), names]), EINVAL, JSON.stringify(names));
    }
    assert.equal(c.errno(110, 'ddS', [ROOT, fid(), [Uint8Array.of(0x2e, 0x2e)]]), EINVAL);
  });

  it('does not walk through symlinks, absolute or relative, planted or made by the guest', () => {
    for (const [link, rest] of [['etc', 'passwd'], ['up', 'etc'], ['out', 'secret.txt'], ['abs', 'secret.txt']]) {
      const f = fid();
      const qids = c.walk(ROOT, f, [link, rest]);
      assert.equal(qids.length, 1, `${link}/${rest} stops at the link`);
      assert.equal(qids[0].type, 0x02);
      assert.equal(c.errno(120, 'd', [f]), 9, 'no fid made by a partial walk');
    }
    c.symlink(ROOT, 'mine', '../outside');
    assert.equal(c.walk(ROOT, fid(), ['mine', 'secret.txt']).length, 1);
    c.symlink(ROOT, 'mine-abs', outside);
    assert.equal(c.walk(ROOT, fid(), ['mine-abs', 'secret.txt']).length, 1);
    // The guest may read the link text and follow it itself, in its own namespace.
    const l = fid();
    c.walk(ROOT, l, ['etc']);
    assert.equal(c.readlink(l), '/etc');
  });

  it('does not open, list or change what a symlink points to', () => {
    const l = fid();
    c.walk(ROOT, l, ['outfile']);
    assert.equal(c.errno(12, 'dd', [l, O_RDONLY]), ENXIO);
    assert.equal(c.errno(12, 'dd', [l, O_WRONLY | O_TRUNC]), ENXIO);
    assert.equal(c.errno(26, 'dddddqqqqq', [l, 1, 0o777, 0, 0, 0, 0, 0, 0, 0]), ENOTSUP);
    assert.equal(c.errno(26, 'dddddqqqqq', [l, 8, 0, 0, 0, 0, 0, 0, 0, 0]), EINVAL);
    c.setattr(l, { valid: 0x30 | 0x180, atime: [5, 0], mtime: [5, 0] }); // the link's own times
    assert.equal(lstatSync(join(root, 'outfile')).mtimeMs, 5000);
    assert.equal((c.getattr(l).mode as number) & 0o170000, 0o120000, 'attributes of the link, not the target');
    const d = fid();
    c.walk(ROOT, d, ['out']);
    assert.equal(c.errno(12, 'dd', [d, O_RDONLY | 0o200000]), ENXIO);
    // Using a symlink as the directory of a create, mkdir, symlink, unlink, rename, link.
    assert.equal(c.errno(14, 'dsddd', [d, 'pwn', O_RDWR | O_CREAT, 0o644, 0]), ENOTDIR);
    assert.equal(c.errno(72, 'dsdd', [d, 'pwn', 0o755, 0]), ENOTDIR);
    assert.equal(c.errno(16, 'dssd', [d, 'pwn', 'x', 0]), ENOTDIR);
    assert.equal(c.errno(76, 'dsd', [d, 'secret.txt', 0]), ENOTDIR);
    assert.equal(c.errno(74, 'dsds', [d, 'secret.txt', ROOT, 'stolen']), ENOTDIR);
    assert.equal(c.errno(74, 'dsds', [ROOT, 'outfile', d, 'pwn']), ENOTDIR);
    const s = fid();
    c.walk(ROOT, s, ['d', 'f']);
    assert.equal(c.errno(70, 'dds', [d, s, 'pwn']), ENOTDIR);
    // A hard link to a symlink is a link to the symlink itself.
    c.call(70, 'dds', [ROOT, l, 'hard']);
    assert.ok(lstatSync(join(root, 'hard')).isSymbolicLink());
    assert.equal(statSync(join(outside, 'secret.txt')).nlink, 1);
    assert.ok(!existsSync(join(outside, 'pwn')));
  });

  it('keeps to the share when the host swaps a directory for a symlink after the walk', () => {
    const d = fid(), f = fid();
    c.walk(ROOT, d, ['d']);
    c.walk(ROOT, f, ['d', 'f']);
    renameSync(join(root, 'd'), join(root, 'd-moved'));
    symlinkSync(outside, join(root, 'd'));
    writeFileSync(join(outside, 'f'), 'decoy');
    try {
      assert.equal(c.errno(14, 'dsddd', [d, 'pwn', O_RDWR | O_CREAT, 0o644, 0]), ENOTDIR);
      assert.equal(c.errno(12, 'dd', [f, O_RDONLY]), ENOTDIR);
      assert.equal(c.errno(24, 'dq', [f, 0x7ff]), ENOTDIR);
      assert.equal(c.errno(26, 'dddddqqqqq', [f, 1, 0o777, 0, 0, 0, 0, 0, 0, 0]), ENOTDIR);
      assert.equal(c.errno(122, 'd', [f]), ENOTDIR);
      assert.ok(!existsSync(join(outside, 'pwn')));
    } finally {
      rmSync(join(outside, 'f'));
      rmSync(join(root, 'd'));
      renameSync(join(root, 'd-moved'), join(root, 'd'));
    }
  });

  it('statfs of a symlink fid reports the share, not the target', () => {
    const l = fid();
    c.walk(ROOT, l, ['etc']);
    const [type, , blocks] = c.call(8, 'd', [l], 'ddqqqqqqd');
    const share = statfsSync(root);
    assert.equal(type, share.type);
    assert.equal(blocks, BigInt(share.blocks));
  });
});

describe('9P read-only share', () => {
  it('refuses every modifying operation with EROFS and changes nothing', () => {
    withShare({ ...SHARE, readOnly: true }, (share) => {
      layout(share);
      const before = snapshot(share.base);
      const c = share.attach();
      const f = 1, d = 2, g = 3;
      c.walk(ROOT, f, ['d', 'f']);
      c.walk(ROOT, d, ['d']);
      c.walk(ROOT, g, ['d', 'f']);
      for (const flags of [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC]) assert.equal(c.errno(12, 'dd', [f, flags]), EROFS);
      c.lopen(f, O_RDONLY);
      assert.equal(Buffer.from(c.read(f, 0, 100)).toString(), 'inside\n');
      assert.equal(c.errno(118, 'dqD', [f, 0, Uint8Array.of(1, 2, 3)]), EROFS);
      c.call(50, 'dd', [f, 0]); // fsync is harmless
      const refused: [number, string, unknown[]][] = [
        [14, 'dsddd', [d, 'new', O_RDWR | O_CREAT, 0o644, 0]],
        [72, 'dsdd', [d, 'newdir', 0o755, 0]],
        [16, 'dssd', [d, 'ln', 'f', 0]],
        [18, 'dsdddd', [d, 'node', 0o100644, 0, 0, 0]],
        [70, 'dds', [d, g, 'hard']],
        [20, 'dds', [g, ROOT, 'moved']],
        [74, 'dsds', [d, 'f', ROOT, 'moved']],
        [76, 'dsd', [d, 'f', 0]],
        [76, 'dsd', [ROOT, 'd', 0x200]],
        [26, 'dddddqqqqq', [g, 1, 0o777, 0, 0, 0, 0, 0, 0, 0]],
        [26, 'dddddqqqqq', [g, 8, 0, 0, 0, 0, 0, 0, 0, 0]],
        [26, 'dddddqqqqq', [g, 0x30, 0, 0, 0, 0, 0, 0, 0, 0]],
        [32, 'dsqd', [g, 'user.x', 1, 0]],
        [122, 'd', [g]],
      ];
      for (const [type, fmt, args] of refused) assert.equal(c.errno(type, fmt, args as never), EROFS, `T${type}`);
      assert.equal(c.errno(120, 'd', [g]), 9, 'Tremove clunked the fid even so');
      const [, , , , , , , , namelen] = c.call(8, 'd', [ROOT], 'ddqqqqqqd');
      assert.equal(namelen, 255);
      assert.equal(snapshot(share.base), before);
    });
  });
});
