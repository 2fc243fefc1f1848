/**
 * VM specs: checking what a caller declared (shape, types, ranges, unknown fields, files that must
 * exist), filling in defaults, and turning a checked spec into the plan a VM thread boots.
 * Every refusal is HostError('invalid') naming the field: `drives[1].file: /x.img: no such file`.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { MAX_HARTS, RAM_OFFSET } from '../cpu/layout.js';
import { VIRTIO_COUNT } from '../machine/memory-map.js';
import type { AttachDrive } from './attach.js';
import type { VmPlan } from './worker.js';
import { HostError, type DriveSpec, type ShareSpec, type VmInfo, type VmSpec, type VolumeSpec } from './types.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Guest RAM shares one 4 GiB WebAssembly memory with the hart state below RAM_OFFSET. */
export const MAX_MEMORY_MIB = Math.floor((2 ** 32 - RAM_OFFSET) / (1024 * 1024));
export const MAX_CPU_SHARES = 262_144;
/** Linux's COMMAND_LINE_SIZE on riscv is 1024 bytes (with the power-button argument appended). */
export const MAX_APPEND_BYTES = 1000;
export const DEFAULTS = { cpus: 1, memoryMiB: 256, cpuShares: 1024, append: 'console=ttyS0', jit: true } as const;
/** Devices every VM has besides its disks and shares: the entropy device and the power button. */
const BUILTIN_DEVICES = 2;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The guest bundled with gasang (guest/default), the default of a spec without `kernel`. */
export const BUNDLED_GUEST = {
  kernel: join(root, 'guest', 'default', 'Image.gz'),
  initrd: join(root, 'guest', 'default', 'initramfs.cpio.gz'),
  firmware: join(root, 'guest', 'default', 'fw_jump.bin'),
};

export type CheckedSpec = VmInfo['spec'];

type Json = Record<string, unknown>;
const invalid = (message: string): HostError => new HostError('invalid', message);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKnown(where: string, obj: Json, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw invalid(`${where ? `${where}: unknown` : 'Unknown'} field ${JSON.stringify(k)} (known: ${allowed.join(', ')})`);
    }
  }
}

function int(where: string, v: unknown, min: number, max: number, unit = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${where}: must be an integer`);
  if (v < min || v > max) throw invalid(`${where}: ${v}${unit} is out of range (${min} to ${max}${unit})`);
  return v;
}

function str(where: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalid(`${where}: must be a non-empty string`);
  if (v.includes('\0')) throw invalid(`${where}: must not contain NUL`);
  return v;
}

function bool(where: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalid(`${where}: must be true or false`);
  return v;
}

function list(where: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${where}: must be an array`);
  return v;
}

const SPEC_FIELDS = ['name', 'cpus', 'memoryMiB', 'kernel', 'initrd', 'firmware', 'append', 'drives', 'volumes', 'shares', 'cpuShares', 'cpuLimit', 'jit'];

/**
 * Checks `input` (anything, e.g. parsed JSON) and returns the spec with defaults filled in and
 * paths made absolute (relative ones are taken from the current directory). Files are not looked
 * at here (see checkFiles).
 */
export function checkSpec(input: unknown): CheckedSpec {
  if (!isObject(input)) throw invalid('A VM spec must be an object');
  onlyKnown('', input, SPEC_FIELDS);
  if (input.name === undefined) throw invalid('name: required');
  if (typeof input.name !== 'string' || !NAME_PATTERN.test(input.name)) {
    throw invalid(`name: ${JSON.stringify(input.name)} is not a valid name (1 to 63 of a-z, 0-9 and '-', starting with a letter or digit)`);
  }
  const cpus = input.cpus === undefined ? DEFAULTS.cpus : int('cpus', input.cpus, 1, MAX_HARTS);
  const spec: CheckedSpec = {
    name: input.name,
    cpus,
    memoryMiB: input.memoryMiB === undefined ? DEFAULTS.memoryMiB : int('memoryMiB', input.memoryMiB, 1, MAX_MEMORY_MIB, ' MiB'),
    cpuShares: input.cpuShares === undefined ? DEFAULTS.cpuShares : int('cpuShares', input.cpuShares, 1, MAX_CPU_SHARES),
  };
  for (const k of ['kernel', 'initrd', 'firmware'] as const) if (input[k] !== undefined) spec[k] = resolve(str(k, input[k]));
  if (input.append !== undefined) {
    if (typeof input.append !== 'string') throw invalid('append: must be a string');
    if (Buffer.byteLength(input.append) > MAX_APPEND_BYTES) throw invalid(`append: longer than ${MAX_APPEND_BYTES} bytes`);
    spec.append = input.append;
  }
  if (input.cpuLimit !== undefined) {
    const l = input.cpuLimit;
    if (typeof l !== 'number' || !Number.isFinite(l) || l <= 0 || l > 100 * cpus) {
      throw invalid(`cpuLimit: ${JSON.stringify(l)} is out of range (percent of one host core, above 0 and at most ${100 * cpus} for ${cpus} cpu${cpus > 1 ? 's' : ''})`);
    }
    spec.cpuLimit = l;
  }
  if (input.jit !== undefined) spec.jit = bool('jit', input.jit);
  if (input.drives !== undefined) spec.drives = list('drives', input.drives).map((d, i) => checkDrive(`drives[${i}]`, d));
  if (input.volumes !== undefined) spec.volumes = list('volumes', input.volumes).map((v, i) => checkVolume(`volumes[${i}]`, v));
  if (input.shares !== undefined) spec.shares = list('shares', input.shares).map((s, i) => checkShare(`shares[${i}]`, s));
  const devices = (spec.drives?.length ?? 0) + (spec.volumes?.length ?? 0) + (spec.shares?.length ?? 0);
  if (devices > VIRTIO_COUNT - BUILTIN_DEVICES) {
    throw invalid(`Too many devices: ${devices} drives, volumes and shares; at most ${VIRTIO_COUNT - BUILTIN_DEVICES} (the board has ${VIRTIO_COUNT} virtio slots; the entropy device and the power button take ${BUILTIN_DEVICES})`);
  }
  return spec;
}

function checkDrive(where: string, v: unknown): DriveSpec {
  if (!isObject(v)) throw invalid(`${where}: must be an object`);
  onlyKnown(where, v, ['file', 'format', 'readonly', 'overlay', 'iops', 'bps']);
  if (v.file === undefined) throw invalid(`${where}.file: required`);
  const d: DriveSpec = { file: resolve(str(`${where}.file`, v.file)) };
  if (v.format !== undefined) {
    if (v.format !== 'raw' && v.format !== 'qcow2') throw invalid(`${where}.format: must be "raw" or "qcow2"`);
    d.format = v.format;
  }
  if (v.readonly !== undefined) d.readonly = bool(`${where}.readonly`, v.readonly);
  if (v.overlay !== undefined) d.overlay = bool(`${where}.overlay`, v.overlay);
  if (d.overlay && d.readonly) throw invalid(`${where}: overlay gives the VM a writable disk; readonly contradicts it`);
  if (v.iops !== undefined) d.iops = int(`${where}.iops`, v.iops, 1, 1e9);
  if (v.bps !== undefined) d.bps = int(`${where}.bps`, v.bps, 512, 2 ** 40);
  return d;
}

function checkVolume(where: string, v: unknown): VolumeSpec {
  if (!isObject(v)) throw invalid(`${where}: must be an object`);
  onlyKnown(where, v, ['mode', 'files', 'readonly']);
  if (v.mode !== 'linear' && v.mode !== 'stripe' && v.mode !== 'mirror') throw invalid(`${where}.mode: must be "linear", "stripe" or "mirror"`);
  const files = list(`${where}.files`, v.files).map((f, i) => resolve(str(`${where}.files[${i}]`, f)));
  if (files.length === 0) throw invalid(`${where}.files: needs at least one file`);
  const vol: VolumeSpec = { mode: v.mode, files };
  if (v.readonly !== undefined) vol.readonly = bool(`${where}.readonly`, v.readonly);
  return vol;
}

function checkShare(where: string, v: unknown): ShareSpec {
  if (!isObject(v)) throw invalid(`${where}: must be an object`);
  onlyKnown(where, v, ['host', 'tag', 'readonly']);
  const host = resolve(str(`${where}.host`, v.host));
  const tag = str(`${where}.tag`, v.tag);
  if (/[\s,]/.test(tag) || Buffer.byteLength(tag) > 255) throw invalid(`${where}.tag: 1 to 255 bytes without spaces or commas`);
  const s: ShareSpec = { host, tag };
  if (v.readonly !== undefined) s.readonly = bool(`${where}.readonly`, v.readonly);
  return s;
}

/** Refuses a spec whose files are missing or of the wrong kind (checked at create and at each start). */
export function checkFiles(spec: CheckedSpec): void {
  const need = (where: string, file: string, kind: 'file' | 'dir'): void => {
    let st;
    try {
      st = statSync(file);
    } catch {
      throw invalid(`${where}: ${file}: no such ${kind === 'dir' ? 'directory' : 'file'}`);
    }
    if (kind === 'file' && !st.isFile()) throw invalid(`${where}: ${file}: not a regular file`);
    if (kind === 'dir' && !st.isDirectory()) throw invalid(`${where}: ${file}: not a directory`);
  };
  need('kernel', spec.kernel ?? BUNDLED_GUEST.kernel, 'file');
  if (spec.initrd !== undefined || spec.kernel === undefined) need('initrd', spec.initrd ?? BUNDLED_GUEST.initrd, 'file');
  need('firmware', spec.firmware ?? BUNDLED_GUEST.firmware, 'file');
  spec.drives?.forEach((d, i) => need(`drives[${i}].file`, d.file, 'file'));
  spec.volumes?.forEach((v, i) => v.files.forEach((f, j) => need(`volumes[${i}].files[${j}]`, f, 'file')));
  spec.shares?.forEach((s, i) => need(`shares[${i}].host`, s.host, 'dir'));
}

/**
 * What the VM thread boots. `overlayOf(i)` is the overlay file of drives[i] when it has one. A
 * custom kernel without `initrd` boots without one; without `kernel`, the bundled guest is used.
 */
export function planOf(spec: CheckedSpec, overlayOf: (drive: number) => string): VmPlan {
  const drives: AttachDrive[] = (spec.drives ?? []).map((d, i) => ({
    kind: 'file',
    file: d.overlay ? overlayOf(i) : d.file,
    format: d.overlay ? 'qcow2' : d.format,
    readOnly: d.readonly ?? false,
    throttle: d.iops !== undefined || d.bps !== undefined ? { iops: d.iops, bps: d.bps } : undefined,
  }));
  for (const v of spec.volumes ?? []) drives.push({ kind: 'volume', mode: v.mode, files: v.files, readOnly: v.readonly ?? false });
  return {
    name: spec.name,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    kernel: spec.kernel ?? BUNDLED_GUEST.kernel,
    initrd: spec.initrd ?? (spec.kernel === undefined ? BUNDLED_GUEST.initrd : undefined),
    firmware: spec.firmware ?? BUNDLED_GUEST.firmware,
    append: spec.append ?? DEFAULTS.append,
    jit: spec.jit ?? DEFAULTS.jit,
    drives,
    shares: (spec.shares ?? []).map(s => ({ host: s.host, tag: s.tag, readOnly: s.readonly ?? false })),
  };
}
