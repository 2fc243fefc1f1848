import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FW_DYNAMIC_INFO_MAGIC, ImageHeader, loadBoot, type BootFiles } from './boot-loader.js';
import { InputError } from '../util/errors.js';
import { RAM_BASE } from './memory-map.js';

const MiB = 1024 * 1024;
let dir = '';
const path = (name: string): string => join(dir, name);

/** A minimal RISC-V Linux Image: header + payload bytes. */
function makeImage(opts: { payload?: number; imageSize?: number; textOffset?: number; magic2?: boolean } = {}): Uint8Array {
  const payload = opts.payload ?? 4096;
  const img = new Uint8Array(ImageHeader.SIZE + payload).fill(0xaa, ImageHeader.SIZE);
  const dv = new DataView(img.buffer);
  dv.setUint32(ImageHeader.CODE0, 0x0000_006f, true);
  dv.setUint32(ImageHeader.TEXT_OFFSET, opts.textOffset ?? 0x20_0000, true);
  dv.setUint32(ImageHeader.IMAGE_SIZE, opts.imageSize ?? img.length, true);
  dv.setUint32(ImageHeader.VERSION, 2, true);
  img.set(new TextEncoder().encode('RISCV\0\0\0'), ImageHeader.MAGIC);
  if (opts.magic2 !== false) img.set(new TextEncoder().encode('RSC\x05'), ImageHeader.MAGIC2);
  return img;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gasang-boot-'));
  mkdirSync(path('fw'));
  writeFileSync(path('fw/fw_jump.bin'), new Uint8Array(200 * 1024).fill(0x13));
  writeFileSync(path('fw/fw_dynamic.bin'), new Uint8Array(200 * 1024).fill(0x13));
  writeFileSync(path('fw/big.bin'), new Uint8Array(3 * MiB));
  writeFileSync(path('Image'), makeImage());
  writeFileSync(path('Image.gz'), gzipSync(makeImage()));
  writeFileSync(path('initrd'), new Uint8Array(3 * MiB).fill(0x5a));
  writeFileSync(path('empty'), new Uint8Array(0));
  writeFileSync(path('vmlinux'), new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new Uint8Array(120)]));
  writeFileSync(path('random'), new Uint8Array(4096).fill(0x42));
  writeFileSync(path('bad.gz'), new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
  writeFileSync(path('old-magic'), makeImage({ magic2: false }));
  writeFileSync(path('huge-bss'), makeImage({ imageSize: 40 * MiB }));
  writeFileSync(path('locked'), new Uint8Array(10));
  chmodSync(path('locked'), 0);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const fdtBlob = (size = 4000): Uint8Array => new Uint8Array(size).fill(0xfd);

function boot(ramMiB: number, files: Partial<BootFiles> = {}) {
  const ram = new Uint8Array(ramMiB * MiB);
  const seen: ({ start: number; end: number } | undefined)[] = [];
  const info = loadBoot(ram, {
    firmware: path('fw/fw_jump.bin'),
    kernel: path('Image'),
    fdt: (initrd) => {
      seen.push(initrd);
      return fdtBlob();
    },
    ...files,
  });
  return { ram, info, seen, at: (addr: number) => ram[addr - RAM_BASE] };
}

function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, `InputError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('fw_jump, 256 MiB: places everything as QEMU virt does', () => {
  const { info, seen, at } = boot(256, { initrd: path('initrd') });
  assert.equal(info.pc, RAM_BASE);
  assert.equal(info.a0, 0);
  assert.equal(info.kernelAddr, 0x8020_0000);
  assert.deepEqual(info.initrd, { start: 0x8820_0000, end: 0x8820_0000 + 3 * MiB });
  assert.deepEqual(seen, [info.initrd], 'the device tree is told where the initrd is');
  assert.equal(info.fdtAddr, 0x8fe0_0000);
  assert.equal(info.a1, info.fdtAddr);
  assert.equal(info.a2, 0);
  assert.equal(info.dynamicInfoAddr, 0);
  assert.deepEqual(info.warnings, []);
  assert.equal(at(RAM_BASE), 0x13, 'firmware');
  assert.equal(at(0x8020_0000 + ImageHeader.SIZE), 0xaa, 'kernel payload');
  assert.equal(at(0x8820_0000), 0x5a, 'initrd');
  assert.equal(at(0x8fe0_0000), 0xfd, 'fdt');
});

test('small RAM puts the initrd half-way; without an initrd the tree gets none', () => {
  const { info } = boot(64, { initrd: path('initrd') });
  assert.equal(info.initrd?.start, 0x8020_0000 + 32 * MiB);
  assert.equal(info.fdtAddr, RAM_BASE + 62 * MiB);
  const none = boot(64);
  assert.equal(none.info.initrd, undefined);
  assert.deepEqual(none.seen, [undefined]);
});

test('the device tree stays below 3 GiB', () => {
  const { info } = boot(1536);
  assert.equal(info.fdtAddr, 0xbfe0_0000);
});

test('a gzip-compressed Image is decompressed', () => {
  const { info, at } = boot(64, { kernel: path('Image.gz') });
  assert.equal(info.kernelAddr, 0x8020_0000);
  assert.equal(at(0x8020_0000 + ImageHeader.SIZE + 100), 0xaa);
  assert.equal(info.kernelEnd, 0x8020_0000 + ImageHeader.SIZE + 4096);
});

test('an Image with only the deprecated magic is accepted', () => {
  assert.equal(boot(64, { kernel: path('old-magic') }).info.kernelAddr, 0x8020_0000);
});

test('fw_dynamic: struct fw_dynamic_info below the tree, address in a2', () => {
  const { ram, info } = boot(128, { firmware: path('fw/fw_dynamic.bin') });
  assert.equal(info.a2, info.fdtAddr - 0x40);
  const dv = new DataView(ram.buffer, info.a2 - RAM_BASE, 48);
  const u64 = (off: number): bigint => dv.getBigUint64(off, true);
  assert.equal(u64(0), BigInt(FW_DYNAMIC_INFO_MAGIC));
  assert.equal(u64(8), 2n, 'version');
  assert.equal(u64(16), 0x8020_0000n, 'next_addr');
  assert.equal(u64(24), 1n, 'next_mode S');
  assert.equal(u64(32), 0n, 'options');
  assert.equal(u64(40), 0n, 'boot_hart');
  const anyHart = boot(128, { firmware: path('fw/fw_dynamic.bin'), bootHart: -1 });
  assert.equal(new DataView(anyHart.ram.buffer).getBigUint64(anyHart.info.a2 - RAM_BASE + 40, true), 0xffff_ffff_ffff_ffffn);
});

test('fw_jump with a kernel reaching its device-tree copy at 0x82200000 gives a warning', () => {
  const { info } = boot(128, { kernel: path('huge-bss') });
  assert.equal(info.warnings.length, 1);
  assert.match(info.warnings[0]!, /0x82200000.*fw_dynamic/);
  assert.deepEqual(boot(128, { kernel: path('huge-bss'), firmware: path('fw/fw_dynamic.bin') }).info.warnings, []);
});

test('file errors name the file and the problem', () => {
  rejects(() => boot(64, { firmware: path('nope.bin') }), `firmware ${path('nope.bin')}: no such file`);
  rejects(() => boot(64, { kernel: path('empty') }), `kernel ${path('empty')}: file is empty`);
  rejects(() => boot(64, { initrd: path('fw') }), `initrd ${path('fw')}: is a directory`);
  rejects(() => boot(64, { kernel: path('random') }), `kernel ${path('random')}: not a RISC-V Linux Image (bad magic)`);
  rejects(() => boot(64, { kernel: path('vmlinux') }), /^kernel .*vmlinux: is an ELF file \(vmlinux\); pass arch\/riscv\/boot\/Image or Image.gz$/);
  rejects(() => boot(64, { kernel: path('bad.gz') }), `kernel ${path('bad.gz')}: corrupt gzip data`);
  rejects(() => boot(64, { firmware: path('vmlinux') }), /^firmware .*: is an ELF file; pass the raw binary/);
});

test('an unreadable file is reported', { skip: process.getuid?.() === 0 && 'root reads everything' }, () => {
  rejects(() => boot(64, { kernel: path('locked') }), `kernel ${path('locked')}: permission denied`);
});

test('files too big for RAM', () => {
  rejects(() => boot(2, { firmware: path('fw/big.bin') }), `firmware ${path('fw/big.bin')}: 3 MiB does not fit in 2 MiB of RAM`);
  rejects(() => boot(16, { kernel: path('huge-bss') }), /^kernel .*huge-bss: needs 40 MiB at 0x80200000 but RAM ends at 0x81000000; give the VM more memory$/);
  rejects(() => boot(4, { initrd: path('initrd') }), /^initrd .*initrd: 3 MiB at 0x80400000 runs past the end of RAM \(0x80400000\); give the VM more memory$/);
});

test('overlapping regions are refused', () => {
  rejects(() => boot(64, { firmware: path('fw/big.bin') }), /^kernel .*Image \(0x80200000-0x80201040\) overlaps firmware .*big\.bin \(0x80000000-0x80300000\)$/);
  // 16 MiB: initrd at 0x80a00000..0x80d00000, tree at 0x80e00000 fits; a 5 MiB initrd does not.
  writeFileSync(path('initrd5'), new Uint8Array(5 * MiB));
  rejects(() => boot(16, { initrd: path('initrd5') }), /^device tree \(0x80e00000-0x80e00fa0\) overlaps initrd .*initrd5/);
});
