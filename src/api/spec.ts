/**
 * Checks a VM spec that arrived as JSON before the host sees it: the shape, the types, the ranges
 * and unknown fields, each refusal naming the field (`drives[1].file: must be an absolute path`).
 * What needs the host's knowledge (files that do not exist, duplicate names, memory the host
 * cannot give) is the host's to refuse. docs/openapi.json describes the same rules; a test checks
 * that both agree.
 */
import { MAX_HARTS, RAM_OFFSET } from '../cpu/layout.js';
import { VIRTIO_COUNT } from '../machine/memory-map.js';
import type { DriveSpec, ShareSpec, VmSpec, VolumeSpec } from '../vm/types.js';
import { invalid } from './errors.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Guest RAM shares one 4 GiB WebAssembly memory with the hart state below RAM_OFFSET. */
export const MAX_MEMORY_MIB = Math.floor((2 ** 32 - RAM_OFFSET) / (1024 * 1024));
/** cgroup v1's cpu.shares range. */
export const MAX_CPU_SHARES = 262_144;
/** Linux's COMMAND_LINE_SIZE on riscv is 1024 bytes; the host appends a few words of its own. */
export const MAX_APPEND_BYTES = 1000;
/** Virtio slots left for drives, volumes and shares: every VM also has an entropy device and a power button. */
export const MAX_DEVICES = VIRTIO_COUNT - 2;
/** Drive throttling: requests per second, and bytes per second (at least one sector). */
export const MAX_IOPS = 1e9;
export const MIN_BPS = 512;
export const MAX_BPS = 2 ** 40;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Refuses fields outside `allowed` (the first one found is named). */
function onlyKnown(where: string, obj: Json, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const known = allowed.length ? ` (known: ${allowed.join(', ')})` : ' (this request takes none)';
    throw invalid(where ? `${where}: unknown field ${JSON.stringify(k)}${known}` : `Unknown field ${JSON.stringify(k)}${known}`);
  }
}

function object(where: string, v: unknown): Json {
  if (!isObject(v)) throw invalid(`${where}: must be an object`);
  return v;
}

function int(where: string, v: unknown, min: number, max: number, unit = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${where}: must be an integer`);
  if (v < min || v > max) throw invalid(`${where}: ${v}${unit} is out of range (${min} to ${max}${unit})`);
  return v;
}

function bool(where: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalid(`${where}: must be true or false`);
  return v;
}

/** Host paths must be absolute: the daemon's working directory means nothing to its clients. */
function path(where: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalid(`${where}: must be a file path`);
  if (!v.startsWith('/')) throw invalid(`${where}: ${JSON.stringify(v)} must be an absolute path`);
  if (v.includes('\0')) throw invalid(`${where}: contains a NUL character`);
  return v;
}

function array(where: string, v: unknown, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${where}: must be an array`);
  if (v.length > max) throw invalid(`${where}: ${v.length} entries, at most ${max}`);
  return v;
}

const DRIVE_FIELDS = ['file', 'format', 'readonly', 'overlay', 'iops', 'bps'] as const;
const VOLUME_FIELDS = ['mode', 'files', 'readonly'] as const;
const SHARE_FIELDS = ['host', 'tag', 'readonly'] as const;
export const SPEC_FIELDS = ['name', 'cpus', 'memoryMiB', 'kernel', 'initrd', 'firmware', 'append', 'drives', 'volumes', 'shares', 'cpuShares', 'cpuLimit', 'jit'] as const;

function drive(where: string, v: unknown): DriveSpec {
  const o = object(where, v);
  onlyKnown(where, o, DRIVE_FIELDS);
  if (o.file === undefined) throw invalid(`${where}.file is required`);
  const d: DriveSpec = { file: path(`${where}.file`, o.file) };
  if (o.format !== undefined) {
    if (o.format !== 'raw' && o.format !== 'qcow2') throw invalid(`${where}.format: must be "raw" or "qcow2"`);
    d.format = o.format;
  }
  if (o.readonly !== undefined) d.readonly = bool(`${where}.readonly`, o.readonly);
  if (o.overlay !== undefined) d.overlay = bool(`${where}.overlay`, o.overlay);
  if (o.iops !== undefined) d.iops = int(`${where}.iops`, o.iops, 1, MAX_IOPS);
  if (o.bps !== undefined) d.bps = int(`${where}.bps`, o.bps, MIN_BPS, MAX_BPS);
  if (d.overlay && d.readonly) throw invalid(`${where}: overlay and readonly together make no sense (the overlay is what the guest writes)`);
  return d;
}

function volume(where: string, v: unknown): VolumeSpec {
  const o = object(where, v);
  onlyKnown(where, o, VOLUME_FIELDS);
  if (o.mode !== 'linear' && o.mode !== 'stripe' && o.mode !== 'mirror') throw invalid(`${where}.mode: must be "linear", "stripe" or "mirror"`);
  const files = array(`${where}.files`, o.files, 64).map((f, i) => path(`${where}.files[${i}]`, f));
  if (files.length === 0) throw invalid(`${where}.files: needs at least one file`);
  const vol: VolumeSpec = { mode: o.mode, files };
  if (o.readonly !== undefined) vol.readonly = bool(`${where}.readonly`, o.readonly);
  return vol;
}

function share(where: string, v: unknown): ShareSpec {
  const o = object(where, v);
  onlyKnown(where, o, SHARE_FIELDS);
  const host = path(`${where}.host`, o.host);
  if (typeof o.tag !== 'string' || !/^[^\s\0,]{1,255}$/.test(o.tag) || Buffer.byteLength(o.tag) > 255) {
    throw invalid(`${where}.tag: must be 1 to 255 bytes without spaces or commas`);
  }
  const s: ShareSpec = { host, tag: o.tag };
  if (o.readonly !== undefined) s.readonly = bool(`${where}.readonly`, o.readonly);
  return s;
}

/** A VmSpec from parsed JSON, or an ApiError (400) naming the first problem. */
export function parseVmSpec(body: unknown): VmSpec {
  const o = object('spec', body);
  onlyKnown('', o, SPEC_FIELDS);
  if (o.name === undefined) throw invalid('name is required');
  if (typeof o.name !== 'string' || !NAME_PATTERN.test(o.name)) {
    throw invalid(`name: ${JSON.stringify(o.name)} must be 1 to 63 lowercase letters, digits and dashes, not starting with a dash`);
  }
  const spec: VmSpec = { name: o.name };
  if (o.cpus !== undefined) spec.cpus = int('cpus', o.cpus, 1, MAX_HARTS);
  if (o.memoryMiB !== undefined) spec.memoryMiB = int('memoryMiB', o.memoryMiB, 1, MAX_MEMORY_MIB, ' MiB');
  if (o.kernel !== undefined) spec.kernel = path('kernel', o.kernel);
  if (o.initrd !== undefined) spec.initrd = path('initrd', o.initrd);
  if (o.firmware !== undefined) spec.firmware = path('firmware', o.firmware);
  if (o.append !== undefined) {
    if (typeof o.append !== 'string') throw invalid('append: must be a string');
    if (Buffer.byteLength(o.append) > MAX_APPEND_BYTES) throw invalid(`append: longer than ${MAX_APPEND_BYTES} bytes`);
    spec.append = o.append;
  }
  if (o.drives !== undefined) spec.drives = array('drives', o.drives, MAX_DEVICES).map((d, i) => drive(`drives[${i}]`, d));
  if (o.volumes !== undefined) spec.volumes = array('volumes', o.volumes, MAX_DEVICES).map((v, i) => volume(`volumes[${i}]`, v));
  if (o.shares !== undefined) spec.shares = array('shares', o.shares, MAX_DEVICES).map((s, i) => share(`shares[${i}]`, s));
  const devices = (spec.drives?.length ?? 0) + (spec.volumes?.length ?? 0) + (spec.shares?.length ?? 0);
  if (devices > MAX_DEVICES) throw invalid(`${devices} drives, volumes and shares: at most ${MAX_DEVICES} (the board's ${VIRTIO_COUNT} virtio slots less the entropy device and the power button)`);
  if (o.cpuShares !== undefined) spec.cpuShares = int('cpuShares', o.cpuShares, 1, MAX_CPU_SHARES);
  if (o.cpuLimit !== undefined) {
    const max = 100 * (spec.cpus ?? 1);
    if (typeof o.cpuLimit !== 'number' || !Number.isFinite(o.cpuLimit)) throw invalid('cpuLimit: must be a number (percent of one host core)');
    if (o.cpuLimit < 1 || o.cpuLimit > max) throw invalid(`cpuLimit: ${o.cpuLimit}% is out of range (1 to ${max}% for ${spec.cpus ?? 1} CPU${max > 100 ? 's' : ''})`);
    spec.cpuLimit = o.cpuLimit;
  }
  if (o.jit !== undefined) spec.jit = bool('jit', o.jit);
  return spec;
}

/** Body of POST /v1/vms/{vm}/stop: an optional timeout before the forced stop. */
export function parseStopBody(body: unknown): { timeoutMs?: number } {
  if (body === undefined) return {};
  const o = object('body', body);
  onlyKnown('', o, ['timeoutMs']);
  return o.timeoutMs === undefined ? {} : { timeoutMs: int('timeoutMs', o.timeoutMs, 0, 3_600_000, ' ms') };
}

/** Actions without parameters accept no body or an empty object. */
export function parseEmptyBody(body: unknown): void {
  if (body === undefined) return;
  onlyKnown('', object('body', body), []);
}
