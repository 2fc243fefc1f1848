/**
 * Two VMs of one host may not write one image, nor may one use an image another writes: the host
 * refuses the start (as QEMU's image locks do), naming the file and the VM that holds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from './host.js';
import { diskClaims } from './disk-claims.js';
import { checkSpec } from './spec.js';
import { HostError } from './types.js';
import { hostileGuest, tempDir } from './testing.js';
import { createRaw } from '../storage/raw.js';

test('claims: a drive writes its image and reads its backing chain; an overlay drive writes only its overlay', () => {
  const { dir, cleanup } = tempDir('claims');
  try {
    const base = join(dir, 'base.raw'), mid = join(dir, 'mid.qcow2'), top = join(dir, 'top.qcow2');
    createRaw(base, 1 << 20);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', mid]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', join(dir, 'overlay1.qcow2')]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', mid, '-F', 'qcow2', top]);
    const spec = checkSpec({
      name: 'a',
      drives: [{ file: top }, { file: base, overlay: true }, { file: base, readonly: true }],
      volumes: [{ mode: 'linear', files: [base], readonly: true }],
    });
    const claims = diskClaims(spec, i => join(dir, `overlay${i}.qcow2`)).map(c => [c.where, c.file, c.write]);
    assert.deepEqual(claims, [
      ['drives[0]', top, true], ['drives[0] (backing file)', mid, false], ['drives[0] (backing file)', base, false],
      ['drives[1]', join(dir, 'overlay1.qcow2'), true], ['drives[1] (backing file)', base, false],
      ['drives[2]', base, false],
      ['volumes[0].files[0]', base, false],
    ]);
  } finally {
    cleanup();
  }
});

test('the host refuses starts that would share a written image, and allows them once it is free', async () => {
  const { dir, cleanup } = tempDir('claims-host');
  const host = new Host({ stateDir: join(dir, 'state') });
  try {
    const g = hostileGuest(dir, 'idle', '1: wfi\nj 1b');
    const disk = join(dir, 'disk.raw'), alias = join(dir, 'alias.raw');
    createRaw(disk, 1 << 20);
    symlinkSync(disk, alias);
    const make = (name: string, more: object) => host.create({ name, memoryMiB: 16, ...g, ...more });
    const writer = await make('writer', { drives: [{ file: disk }] });
    const again = await make('again', { drives: [{ file: alias }] });
    const reader = await make('reader', { drives: [{ file: disk, readonly: true }] });
    const layered = await make('layered', { drives: [{ file: disk, overlay: true }] });
    const twice = await make('twice', { volumes: [{ mode: 'linear', files: [disk, alias] }] });
    const refused = async (vm: typeof writer, message: RegExp) => {
      const before = vm.info().state;
      await assert.rejects(vm.start(), (err: unknown) => err instanceof HostError && err.kind === 'conflict' && message.test(err.message));
      assert.equal(vm.info().state, before, 'a refused start changes nothing');
    };

    await refused(twice, /^Cannot start twice: volumes\[0\]\.files\[0\] and another of its disks are the same file .*disk\.raw/);
    await writer.start();
    await refused(again, /^Cannot start again: drives\[0\]: .*disk\.raw is written by running VM writer \(its drives\[0\]\)/);
    await refused(reader, /drives\[0\]: .*disk\.raw is written by running VM writer/);
    await refused(layered, /drives\[0\] \(backing file\): .*disk\.raw is written by running VM writer/);
    await writer.kill();
    await writer.waitStopped();

    await reader.start();
    await layered.start(); // readers together are fine
    await refused(writer, /^Cannot start writer: drives\[0\]: .*disk\.raw would be written while running VM reader reads it/);
    await reader.kill();
    await layered.kill();
    await reader.waitStopped();
    await layered.waitStopped();
    await writer.start();
    assert.equal(writer.info().state, 'running');
  } finally {
    await host.close({ timeoutMs: 500 });
    cleanup();
  }
});
