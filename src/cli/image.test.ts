/** `gasang image` end to end: the real CLI process, checked with qemu-img. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { qemuCheck, qemuImg, qemuInfo, qemuIo, qemuRead, tempDir } from '../storage/qemu-testing.js';
import { parseSize, runImage } from './image.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

function gasang(cwd: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'image', ...args], { cwd, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('create, info, snapshot, check and commit, end to end', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'vm'));
    let r = gasang(dir, 'create', '-f', 'raw', 'base.raw', '64M');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(qemuInfo(join(dir, 'base.raw'))['virtual-size'], 64 << 20);
    qemuIo(join(dir, 'base.raw'), 'raw', 'write -P 0x11 0 64M');
    // A relative backing file is relative to the new image's directory, as with qemu-img.
    r = gasang(dir, 'create', '-f', 'qcow2', '-b', '../base.raw', '-F', 'raw', '-o', 'cluster_size=4K', 'vm/top.qcow2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Formatting 'vm\/top\.qcow2', fmt=qcow2 cluster_size=4096 size=67108864 backing_file=\.\.\/base\.raw backing_fmt=raw/);
    const top = join(dir, 'vm', 'top.qcow2');
    const info = qemuInfo(top);
    assert.equal(info['virtual-size'], 64 << 20);
    assert.equal(info['cluster-size'], 4096);
    assert.equal(info['backing-filename'], '../base.raw');

    r = gasang(dir, 'info', 'vm/top.qcow2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /image: vm\/top\.qcow2\nfile format: qcow2\nvirtual size: 64 MiB \(67108864 bytes\)\ndisk size: .*\ncluster_size: 4096\nbacking file: \.\.\/base\.raw \(actual path: base\.raw\)\nbacking file format: raw/);
    assert.match(r.stdout, /\n\nimage: base\.raw\nfile format: raw\n/);
    const json = JSON.parse(gasang(dir, 'info', '--output=json', 'vm/top.qcow2').stdout) as Array<{ format: string }>;
    assert.deepEqual(json.map(i => i.format), ['qcow2', 'raw']);

    qemuIo(top, 'qcow2', 'write -P 0x22 1M 1M');
    r = gasang(dir, 'snapshot', '-c', 'clean-install', 'vm/top.qcow2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(qemuImg('snapshot', '-l', top), /clean-install/);
    r = gasang(dir, 'snapshot', '-l', 'vm/top.qcow2');
    assert.match(r.stdout, /^Snapshot list:\nID\s+TAG\s+VM SIZE\s+DATE\s+VM CLOCK\n1\s+clean-install\s/);
    qemuIo(top, 'qcow2', 'write -P 0x33 1M 4k');
    assert.equal(gasang(dir, 'snapshot', '-a', 'clean-install', 'vm/top.qcow2').status, 0);
    assert.ok(qemuRead(top, dir).subarray(1 << 20, 2 << 20).every(b => b === 0x22));
    assert.equal(gasang(dir, 'snapshot', '-d', 'clean-install', 'vm/top.qcow2').status, 0);
    assert.equal(qemuCheck(top).status, 0);

    r = gasang(dir, 'check', 'vm/top.qcow2');
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /^No errors were found on the image\.\n256\/16384 = 1\.56% allocated/);

    const want = qemuRead(top, dir);
    r = gasang(dir, 'commit', 'vm/top.qcow2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Image committed/);
    assert.equal(r.stderr, '', 'No progress bar without a terminal');
    assert.deepEqual(qemuRead(join(dir, 'base.raw'), dir), want);
    assert.match(qemuImg('compare', top, join(dir, 'base.raw')), /identical/);
  } finally {
    cleanup();
  }
});

test('check exits 3 for leaks and 4 for corruption, with a summary', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'x.qcow2');
    qemuImg('create', '-f', 'qcow2', file, '8M');
    qemuIo(file, 'qcow2', 'write -P 1 0 64k');
    // Raise the refcount of the L1 table's cluster (3): a leak.
    qemuIo(file, 'raw', 'write -P 0 0x20006 1', 'write -P 2 0x20007 1');
    let r = gasang(dir, 'check', 'x.qcow2');
    assert.equal(r.status, 3, r.stdout);
    assert.match(r.stdout, /Leaked cluster 3 refcount=2 reference=1\n1 leaked clusters were found on the image\./);
    // Zero the refcount of the L2 table's cluster (4): a corruption.
    qemuIo(file, 'raw', 'write -P 0 0x20008 2');
    r = gasang(dir, 'check', 'x.qcow2');
    assert.equal(r.status, 4, r.stdout);
    assert.match(r.stdout, /ERROR cluster 4 refcount=0 reference=1/);
    assert.match(r.stdout, /errors were found on the image\.\nData may be corrupted/);
  } finally {
    cleanup();
  }
});

test('mistakes give one line and exit status 2', () => {
  const { dir, cleanup } = tempDir();
  try {
    qemuImg('create', '-f', 'raw', join(dir, 'r.raw'), '1M');
    const cases: Array<[string[], RegExp]> = [
      [['create', 'a.qcow2', '10Q'], /Invalid size '10Q'/],
      [['create', 'a.qcow2'], /needs a SIZE/],
      [['create', '-f', 'vmdk', 'a.img', '1G'], /Unknown format 'vmdk'/],
      [['create', '-f', 'raw', '-b', 'r.raw', 'a.img'], /Raw images cannot have a backing file/],
      [['create', '-o', 'cluster_size=3000', 'a.qcow2', '1G'], /Cluster size must be a power of two/],
      [['create', '-b', 'missing.qcow2', 'a.qcow2'], /missing\.qcow2: No such file/],
      [['info', 'nope.qcow2'], /nope\.qcow2: No such file/],
      [['info'], /takes one FILE/],
      [['check', '--output=xml', 'r.raw'], /--output must be human or json/],
      [['snapshot', '-c', 'x', 'r.raw'], /r\.raw is a raw image; gasang image snapshot needs a qcow2 image/],
      [['check', 'r.raw'], /r\.raw is a raw image/],
      [['snapshot', 'r.raw'], /exactly one of -l, -c NAME/],
      [['commit', '--force', 'r.raw'], /Unknown option --force/],
      [['frobnicate'], /Unknown image command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = gasang(dir, ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `${args.join(' ')}: more than one line`);
      assert.match(r.stderr, /^gasang: /);
    }
    // Corrupt images are not user mistakes: one line, status 1.
    qemuImg('create', '-f', 'qcow2', join(dir, 'bad.qcow2'), '1M');
    qemuIo(join(dir, 'bad.qcow2'), 'raw', 'write -P 0 48 8');
    const r = gasang(dir, 'info', 'bad.qcow2');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^gasang: bad\.qcow2: Refcount table overlaps the image header\n$/);
  } finally {
    cleanup();
  }
});

test('long operations draw a progress bar on a terminal', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'b.qcow2');
    const top = join(dir, 't.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=512', base, '64M');
    qemuImg('create', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', top);
    qemuIo(top, 'qcow2', 'write -P 9 0 64M');
    let err = '';
    const io = { out: (): void => {}, err: (t: string): void => { err += t; }, progress: true };
    assert.equal(runImage(['commit', top], io), 0);
    assert.match(err, /^\rCommitting \[ *\] +0%.*\rCommitting \[#{30}\] 100%\n$/s);
    err = '';
    assert.equal(runImage(['check', base], io), 0);
    assert.match(err, /\rChecking \[#{30}\] 100%\n$/);
  } finally {
    cleanup();
  }
});

test('sizes take K, M, G, T suffixes', () => {
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('64k'), 65536);
  assert.equal(parseSize('10M'), 10 << 20);
  assert.equal(parseSize('1.5G'), 1.5 * 2 ** 30);
  assert.equal(parseSize('2TiB'), 2 * 2 ** 40);
  assert.throws(() => parseSize('-1'), InputError);
  assert.throws(() => parseSize('0'), InputError);
  assert.throws(() => parseSize('12X'), InputError);
});
