import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtioNineP } from '../devices/virtio/9p/device.js';
import { VirtMachine, type VirtBoardSpec } from '../machine/virt.js';
import { hartBytes, saveVirt } from '../machine/virt-state.js';
import { H } from '../cpu/layout.js';
import { tempDir } from '../vm/testing.js';
import { SnapshotError } from './errors.js';
import { MachineSnapshot, snapshotMachine } from './machine.js';
import { snapshotMachineLive } from './live.js';
import type { LazyRam } from './lazy-ram.js';

const GUEST = join(import.meta.dirname, '..', '..', '..', 'guest', 'default');
const board: VirtBoardSpec = { memoryMiB: 128, cpus: 2, rng: true, consoles: 1 };

/** A running board and its console text. */
function console(m: VirtMachine): { text: () => string; waitFor: (re: RegExp, ms?: number) => Promise<void> } {
  let text = '';
  (m as unknown as { io: { output: (b: Uint8Array) => void } }).io.output = b => { text += Buffer.from(b).toString('latin1'); };
  return {
    text: () => text,
    waitFor: async (re, ms = 120_000) => {
      const end = performance.now() + ms;
      while (!re.test(text)) {
        if (performance.now() > end) throw new Error(`Console never showed ${String(re)}: ${JSON.stringify(text.slice(-300))}`);
        await new Promise(r => setTimeout(r, 20));
      }
    },
  };
}

test('save → restore → save: the restored board holds the same harts, devices and RAM, and the guest goes on', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('snapshot-machine');
  t.after(cleanup);
  const io = { output: (): void => {} };
  const m = await VirtMachine.create({ ...board, firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'), initrd: join(GUEST, 'initramfs.cpio.gz'), append: 'console=ttyS0' }, io);
  const con = console(m);
  const ended = m.run();
  await con.waitFor(/GASANG-READY/);
  m.input(Buffer.from('i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo N=$i; sleep 0.05; done\n'));
  await con.waitFor(/N=5\b/);
  const path = join(dir, 'vm.snap');
  // Taken from a host callback, i.e. between slices; the board is stopped in the same turn.
  const taken = await new Promise<{ state: ReturnType<typeof saveVirt>; ram: Uint8Array; harts: Uint8Array[]; last: number }>(resolve => setImmediate(() => {
    snapshotMachine(path, m, { any: 'spec' }, []);
    const last = Math.max(...[...con.text().matchAll(/N=(\d+)/g)].map(x => Number(x[1])));
    resolve({ state: saveVirt(m), ram: m.cpu.ram.slice(), harts: [0, 1].map(i => hartBytes(m, i).slice()), last });
    m.stop();
  }));
  await ended;

  const snap = MachineSnapshot.open(path);
  t.after(() => snap.close());
  assert.deepEqual(snap.spec, { any: 'spec' });
  assert.deepEqual([snap.meta.memoryMiB, snap.meta.cpus], [128, 2]);
  const r = await snap.restore(board, io);
  assert.ok(r.cpu.residency.pager, 'RAM is still being paged in as the board is handed over');
  const again = saveVirt(r);
  // mtime goes on from the saved value: the only field that moves by itself.
  assert.ok(Math.abs(again.clint.mtime - taken.state.clint.mtime) < 10_000_000, 'mtime continues from the saved value (within 1 s)');
  again.clint.mtime = taken.state.clint.mtime;
  // A hart saved in WFI whose timer came due meanwhile is woken by the restored CLINT, as the next update of the old board would have.
  again.harts.forEach((h, i) => { if (!h.waiting && taken.state.harts[i]!.waiting) h.waiting = true; });
  assert.deepEqual(again, taken.state);
  r.cpu.residency.finish();
  assert.equal(r.cpu.residency.pager, undefined);
  assert.ok(Buffer.compare(r.cpu.ram, taken.ram) === 0, 'RAM');
  for (const i of [0, 1]) {
    const a = hartBytes(r, i).slice(), b = taken.harts[i]!;
    // EXIT asks the loop to return to the host (set when an interrupt line rises, as on restore): not guest state.
    a.fill(0, H.EXIT, H.EXIT + 4);
    b.fill(0, H.EXIT, H.EXIT + 4);
    const diff = a.findIndex((x, j) => x !== b[j]);
    assert.equal(diff, -1, `hart ${i} differs at byte 0x${diff.toString(16)}`);
  }

  r.cpu.residency.close();
  for (const v of r.virtio) v.close();

  // Again with nothing streamed: the guest runs on the pages it touches (page walks, fetches, device DMA), and only those are read.
  const lazy = MachineSnapshot.open(path);
  t.after(() => lazy.close());
  const pager = (): LazyRam => r2.cpu.residency.pager as LazyRam;
  const r2 = await lazy.restore(board, io, { background: false });
  const rcon = console(r2);
  const running = r2.run();
  await rcon.waitFor(/N=\d+/);
  const first = Number(/N=(\d+)/.exec(rcon.text())![1]);
  assert.equal(first, taken.last + 1, 'the counter goes on from where it was');
  await rcon.waitFor(/N=40\r\n.*gasang:~# /s);
  const seen = [...rcon.text().matchAll(/N=(\d+)/g)].map(x => Number(x[1]));
  assert.deepEqual(seen, Array.from({ length: 40 - taken.last }, (_, i) => taken.last + 1 + i), 'no count skipped or repeated');
  r2.input(Buffer.from('echo RESTORED-$((6*7))\n'));
  await rcon.waitFor(/RESTORED-42/);
  const { onDemand, stored } = pager().stats;
  assert.ok(onDemand > 0 && onDemand < stored * 0.9, `${onDemand} of ${stored} stored pages read on demand`);
  r2.stop();
  await running;
  assert.equal(r2.cpu.residency.pager, undefined, 'the pager let go of the file when the board closed');
});

test('a snapshot restores only into a board of its shape', { timeout: 120_000 }, async t => {
  const { dir, cleanup } = tempDir('snapshot-shape');
  t.after(cleanup);
  const io = { output: (): void => {} };
  const m = await VirtMachine.create({ ...board, firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'), append: '' }, io);
  const path = join(dir, 'vm.snap');
  snapshotMachine(path, m, {}, []);
  for (const v of m.virtio) v.close();
  const snap = MachineSnapshot.open(path);
  t.after(() => snap.close());
  await assert.rejects(snap.restore({ ...board, memoryMiB: 256 }, io), (e: unknown) => e instanceof SnapshotError && e.kind === 'mismatch' && /of a 128 MiB VM with 2 harts, not 256 MiB with 2/.test(e.message));
  await assert.rejects(snap.restore({ ...board, rng: false }, io), (e: unknown) => e instanceof SnapshotError && e.kind === 'mismatch' && /The saved board \(128 MiB, 2 harts, devices .*\) is not this one/.test(e.message));
});

test('a live snapshot holds RAM as it was at the instant while the guest runs on and writes to it', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('snapshot-live');
  t.after(cleanup);
  const io = { output: (): void => {} };
  const m = await VirtMachine.create({ ...board, firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'), initrd: join(GUEST, 'initramfs.cpio.gz'), append: 'console=ttyS0' }, io);
  const con = console(m);
  const ended = m.run();
  await con.waitFor(/GASANG-READY/);
  // The guest keeps writing memory (the shell's variables, page cache, its console output) all along.
  m.input(Buffer.from('i=0; while :; do i=$((i+1)); s="$s$i"; [ ${#s} -gt 20000 ] && s=; echo N=$i >/tmp/n; done\n'));
  await new Promise(r => setTimeout(r, 500));
  const path = join(dir, 'live.snap');
  let atInstant: { ram: Uint8Array; harts: Uint8Array[]; state: ReturnType<typeof saveVirt>; instret: number } | undefined;
  const instret = (): number => m.cpu.harts.reduce((n, h) => n + h.s.num(H.INSTRET), 0);
  const stats = await new Promise<Awaited<ReturnType<typeof snapshotMachineLive>>>((resolve, reject) => setImmediate(() => {
    snapshotMachineLive(path, m, { live: true }, [], () => {
      atInstant = { ram: m.cpu.ram.slice(), harts: [0, 1].map(i => hartBytes(m, i).slice()), state: saveVirt(m), instret: instret() };
    }).then(resolve, reject);
  }));
  const ranFor = instret() - atInstant!.instret;
  t.diagnostic(`live snapshot: held ${stats.pauseMs.toFixed(1)} ms, in place after ${stats.totalMs.toFixed(1)} ms, ${stats.savedOnTouch} of ${stats.storedPages} pages saved on first touch, ${(ranFor / 1e6).toFixed(1)} M guest instructions meanwhile`);
  assert.ok(ranFor > 1e6, 'the guest ran while RAM was written');
  assert.ok(stats.savedOnTouch > 0, 'some pages were saved because the guest touched them first');
  assert.notDeepEqual(m.cpu.ram, atInstant!.ram, 'the guest changed RAM after the instant');
  m.stop();
  await ended;

  const snap = MachineSnapshot.open(path);
  t.after(() => snap.close());
  const r = await snap.restore(board, io);
  r.cpu.residency.finish();
  assert.ok(Buffer.compare(r.cpu.ram, atInstant!.ram) === 0, 'RAM as it was at the instant');
  for (const i of [0, 1]) {
    const a = hartBytes(r, i).slice(), b = atInstant!.harts[i]!;
    a.fill(0, H.EXIT, H.EXIT + 4);
    b.fill(0, H.EXIT, H.EXIT + 4);
    assert.equal(a.findIndex((x, j) => x !== b[j]), -1, `hart ${i} as at the instant`);
  }
  r.cpu.residency.close();
  for (const v of r.virtio) v.close();
});

test('a restored guest goes on with its 9P mount and the files it holds open', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('snapshot-9p');
  t.after(cleanup);
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  writeFileSync(join(shared, 'lines'), 'one\ntwo\nthree\n');
  const share = (): VirtioNineP => new VirtioNineP({ root: shared, tag: 'host' });
  const shape: VirtBoardSpec = { memoryMiB: 128, cpus: 1 };
  const io = { output: (): void => {} };
  const m = await VirtMachine.create({ ...shape, devices: [share()], firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'), initrd: join(GUEST, 'initramfs.cpio.gz'), append: 'console=ttyS0' }, io);
  const con = console(m);
  const ended = m.run();
  await con.waitFor(/GASANG-READY/);
  m.input(Buffer.from('mkdir -p /mnt/h && mount -t 9p -o trans=virtio,version=9p2000.L host /mnt/h && exec 3</mnt/h/lines 4>>/mnt/h/log && read a <&3 && echo "got-$a"\n'));
  await con.waitFor(/got-one/);
  const path = join(dir, 'vm.snap');
  await new Promise<void>(resolve => setImmediate(() => { snapshotMachine(path, m, {}, []); m.stop(); resolve(); }));
  await ended;

  const snap = MachineSnapshot.open(path);
  t.after(() => snap.close());
  const r = await snap.restore({ ...shape, devices: [share()] }, io);
  const rcon = console(r);
  const running = r.run();
  r.input(Buffer.from('read b <&3; echo "next-$b"; echo appended >&4; ls /mnt/h | tr "\\n" " "; echo\n'));
  await rcon.waitFor(/next-two\r\n/);
  await rcon.waitFor(/lines log/);
  assert.equal(readFileSync(join(shared, 'log'), 'utf8'), 'appended\n', `written through a descriptor opened before the snapshot: ${JSON.stringify(rcon.text())}`);
  r.stop();
  await running;
});
