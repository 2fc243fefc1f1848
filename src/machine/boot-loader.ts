/**
 * Puts firmware, kernel, initrd and device tree into guest RAM the way QEMU's virt machine does
 * (hw/riscv/boot.c, QEMU 7.2), so OpenSBI (fw_jump or fw_dynamic) hands a stock Linux `Image` the
 * tree it expects:
 *
 *   RAM_BASE                      firmware (raw binary; every hart starts here)
 *   RAM_BASE + text_offset        kernel Image (0x8020_0000 for RV64), image_size bytes
 *   kernel + min(RAM/2, 128 MiB)  initrd
 *   below the FDT                 struct fw_dynamic_info (fw_dynamic only)
 *   align_down(min(RAM end, 3 GiB) - fdt size, 2 MiB)   device tree
 *
 * Each hart starts at `pc` with a0 = its hart id, a1 = fdtAddr, a2 = dynamicInfoAddr (0 when unused).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../util/errors.js';
import { RAM_BASE } from './memory-map.js';

const MiB = 1024 * 1024;

/** RISC-V Linux Image header (Documentation/riscv/boot-image-header.rst), all little-endian. */
export const ImageHeader = {
  CODE0: 0x00, // u32
  CODE1: 0x04, // u32
  TEXT_OFFSET: 0x08, // u64 load offset from the start of RAM
  IMAGE_SIZE: 0x10, // u64 effective size (with bss), mandatory
  FLAGS: 0x18, // u64 bit 0: big-endian kernel
  VERSION: 0x20, // u32 major << 16 | minor
  RES1: 0x24, // u32
  RES2: 0x28, // u64
  MAGIC: 0x30, // u64 "RISCV\0\0\0" (deprecated since header version 0.2)
  MAGIC2: 0x38, // u32 "RSC\x05"
  RES3: 0x3c, // u32 PE/COFF header offset
  SIZE: 0x40,
} as const;
export const IMAGE_MAGIC = 'RISCV\0\0\0';
export const IMAGE_MAGIC2 = 0x0543_5352; // "RSC\x05" read as little-endian u32

/** struct fw_dynamic_info (OpenSBI include/sbi/fw_dynamic.h), RV64: six little-endian u64. */
export const FwDynamicInfo = {
  MAGIC: 0x00,
  VERSION: 0x08,
  NEXT_ADDR: 0x10,
  NEXT_MODE: 0x18,
  OPTIONS: 0x20,
  BOOT_HART: 0x28,
  SIZE: 0x30,
} as const;
export const FW_DYNAMIC_INFO_MAGIC = 0x4942_534f; // "OSBI"
export const FW_DYNAMIC_INFO_VERSION = 2;
export const FW_DYNAMIC_NEXT_MODE_S = 1;

/** Where the OpenSBI generic platform's fw_jump copies the device tree (FW_TEXT_START + 0x2200000). */
export const FW_JUMP_FDT_ADDR = RAM_BASE + 0x220_0000;

export interface BootFiles {
  /** OpenSBI fw_jump.bin or fw_dynamic.bin (fw_dynamic is recognised by its file name). */
  firmware: string;
  /** Linux Image, raw or gzip-compressed. */
  kernel: string;
  initrd?: string;
  /** Builds the device tree once the initrd's place is known. */
  fdt: (initrd?: { start: number; end: number }) => Uint8Array;
  /** fw_dynamic's boot_hart (default 0, as QEMU; -1 lets any hart win the boot lottery). */
  bootHart?: number;
}

export interface BootInfo {
  pc: number;
  a0: number;
  a1: number;
  a2: number;
  firmwareEnd: number;
  kernelAddr: number;
  /** End of the kernel's footprint (load address + max(file size, image_size)). */
  kernelEnd: number;
  initrd?: { start: number; end: number };
  fdtAddr: number;
  fdtSize: number;
  /** Address of struct fw_dynamic_info, 0 unless the firmware is fw_dynamic. */
  dynamicInfoAddr: number;
  /** Things that will probably go wrong at run time, one line each, for the CLI to print. */
  warnings: string[];
}

interface Region {
  what: string;
  start: number;
  end: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const mib = (n: number): string => `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB`;

/** Reads a whole file, or throws InputError "<what> <path>: <problem>". */
function readInput(what: string, path: string, maxBytes: number): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new InputError('boot-file', `${what} ${path}: is a directory`);
    size = st.size;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError('boot-file', `${what} ${path}: ${describeFsError(e)}`, { cause: e });
  }
  if (size === 0) throw new InputError('boot-file', `${what} ${path}: file is empty`);
  if (size > maxBytes) throw new InputError('boot-too-big', `${what} ${path}: ${mib(size)} does not fit in ${mib(maxBytes)} of RAM`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputError('boot-file', `${what} ${path}: ${describeFsError(e)}`, { cause: e });
  }
}

function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'ENOTDIR') return 'a parent is not a directory';
  return `cannot read (${code ?? String(e)})`;
}

const u64le = (dv: DataView, off: number): number => dv.getUint32(off + 4, true) * 0x1_0000_0000 + dv.getUint32(off, true);

/** Loads firmware, kernel, initrd and device tree into `ram` (guest RAM starting at RAM_BASE). */
export function loadBoot(ram: Uint8Array, opts: BootFiles): BootInfo {
  const ramSize = ram.length;
  const ramEnd = RAM_BASE + ramSize;
  const regions: Region[] = [];
  const warnings: string[] = [];
  const place = (r: Region, data: Uint8Array): void => {
    if (r.end > ramEnd) {
      throw new InputError('boot-too-big', `${r.what}: ${mib(r.end - r.start)} at ${hex(r.start)} runs past the end of RAM (${hex(ramEnd)}); give the VM more memory`);
    }
    for (const o of regions) {
      if (r.start < o.end && o.start < r.end) {
        throw new InputError('boot-overlap', `${r.what} (${hex(r.start)}-${hex(r.end)}) overlaps ${o.what} (${hex(o.start)}-${hex(o.end)})`);
      }
    }
    regions.push(r);
    ram.set(data, r.start - RAM_BASE);
  };

  // Firmware at the start of RAM.
  const fwName = `firmware ${opts.firmware}`;
  const fw = readInput('firmware', opts.firmware, ramSize);
  if (isElf(fw)) throw new InputError('boot-format', `${fwName}: is an ELF file; pass the raw binary (e.g. fw_jump.bin)`);
  place({ what: fwName, start: RAM_BASE, end: RAM_BASE + fw.length }, fw);
  const dynamic = /fw_dynamic/.test(basename(opts.firmware));

  // Kernel: Image or Image.gz.
  const kName = `kernel ${opts.kernel}`;
  let kernel = readInput('kernel', opts.kernel, ramSize);
  if (kernel[0] === 0x1f && kernel[1] === 0x8b) {
    try {
      kernel = gunzipSync(kernel, { maxOutputLength: ramSize });
    } catch (e) {
      const tooBig = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || /buffer|larger/i.test(String(e));
      throw new InputError(
        tooBig ? 'boot-too-big' : 'boot-format',
        tooBig ? `${kName}: decompresses to more than ${mib(ramSize)} of RAM` : `${kName}: corrupt gzip data`,
        { cause: e },
      );
    }
  }
  if (isElf(kernel)) throw new InputError('boot-format', `${kName}: is an ELF file (vmlinux); pass arch/riscv/boot/Image or Image.gz`);
  if (kernel.length < ImageHeader.SIZE) throw new InputError('boot-format', `${kName}: not a RISC-V Linux Image (too short)`);
  const kdv = new DataView(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  const magic = String.fromCharCode(...kernel.subarray(ImageHeader.MAGIC, ImageHeader.MAGIC + 8));
  if (kdv.getUint32(ImageHeader.MAGIC2, true) !== IMAGE_MAGIC2 && magic !== IMAGE_MAGIC) {
    throw new InputError('boot-format', `${kName}: not a RISC-V Linux Image (bad magic)`);
  }
  if (u64le(kdv, ImageHeader.FLAGS) % 2 === 1) throw new InputError('boot-format', `${kName}: is a big-endian kernel`);
  const textOffset = u64le(kdv, ImageHeader.TEXT_OFFSET);
  const imageSize = u64le(kdv, ImageHeader.IMAGE_SIZE);
  if (textOffset >= ramSize || textOffset % 4096 !== 0) {
    throw new InputError('boot-format', `${kName}: text_offset ${hex(textOffset)} is not a page-aligned offset inside ${mib(ramSize)} of RAM`);
  }
  const kernelAddr = RAM_BASE + textOffset;
  const kernelEnd = kernelAddr + Math.max(kernel.length, imageSize);
  if (kernelEnd > ramEnd) {
    throw new InputError('boot-too-big', `${kName}: needs ${mib(kernelEnd - kernelAddr)} at ${hex(kernelAddr)} but RAM ends at ${hex(ramEnd)}; give the VM more memory`);
  }
  place({ what: kName, start: kernelAddr, end: kernelEnd }, kernel);
  if (/fw_jump/.test(basename(opts.firmware)) && kernelEnd > FW_JUMP_FDT_ADDR) {
    warnings.push(`${kName}: ${mib(kernelEnd - kernelAddr)} reaches past ${hex(FW_JUMP_FDT_ADDR)}, where fw_jump copies the device tree; use fw_dynamic.bin if the guest does not boot`);
  }

  // Initrd, as QEMU's riscv_load_initrd: half-way into RAM when small, else 128 MiB past the kernel.
  let initrd: { start: number; end: number } | undefined;
  if (opts.initrd !== undefined) {
    const iName = `initrd ${opts.initrd}`;
    const data = readInput('initrd', opts.initrd, ramSize);
    const start = kernelAddr + Math.min(Math.floor(ramSize / 2), 128 * MiB);
    if (start + data.length > ramEnd) {
      throw new InputError('boot-too-big', `${iName}: ${mib(data.length)} at ${hex(start)} runs past the end of RAM (${hex(ramEnd)}); give the VM more memory`);
    }
    place({ what: iName, start, end: start + data.length }, data);
    initrd = { start, end: start + data.length };
  }

  // Device tree, as QEMU's riscv_load_fdt: 2 MiB-aligned, as high as possible below min(RAM end, 3 GiB).
  const fdt = opts.fdt(initrd);
  const top = Math.min(ramEnd, 3072 * MiB);
  const fdtAddr = Math.floor((top - fdt.length) / (2 * MiB)) * 2 * MiB;
  if (fdtAddr < RAM_BASE) throw new InputError('boot-too-big', `device tree: ${fdt.length} bytes do not fit in ${mib(ramSize)} of RAM`);
  place({ what: 'device tree', start: fdtAddr, end: fdtAddr + fdt.length }, fdt);

  // fw_dynamic: struct fw_dynamic_info just below the device tree (QEMU keeps it in its boot ROM).
  let dynamicInfoAddr = 0;
  if (dynamic) {
    dynamicInfoAddr = fdtAddr - 0x40;
    const info = new Uint8Array(FwDynamicInfo.SIZE);
    const dv = new DataView(info.buffer);
    const put64 = (off: number, value: number): void => {
      dv.setUint32(off, value >>> 0, true);
      dv.setUint32(off + 4, value < 0 ? 0xffff_ffff : Math.floor(value / 0x1_0000_0000), true);
    };
    put64(FwDynamicInfo.MAGIC, FW_DYNAMIC_INFO_MAGIC);
    put64(FwDynamicInfo.VERSION, FW_DYNAMIC_INFO_VERSION);
    put64(FwDynamicInfo.NEXT_ADDR, kernelAddr);
    put64(FwDynamicInfo.NEXT_MODE, FW_DYNAMIC_NEXT_MODE_S);
    put64(FwDynamicInfo.OPTIONS, 0);
    put64(FwDynamicInfo.BOOT_HART, opts.bootHart ?? 0);
    place({ what: 'fw_dynamic_info', start: dynamicInfoAddr, end: dynamicInfoAddr + info.length }, info);
  }

  return {
    pc: RAM_BASE,
    a0: 0,
    a1: fdtAddr,
    a2: dynamicInfoAddr,
    firmwareEnd: RAM_BASE + fw.length,
    kernelAddr,
    kernelEnd,
    initrd,
    fdtAddr,
    fdtSize: fdt.length,
    dynamicInfoAddr,
    warnings,
  };
}

function isElf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}
