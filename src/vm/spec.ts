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
import { HostError, type DriveSpec, type NicSpec, type NicTrunk, type ShareSpec, type UserNicSpec, type VmInfo, type VolumeSpec } from './types.js';
import { createHash } from 'node:crypto';
import { formatMac, parseMac } from '../net/mac.js';
import type { NicConfig } from '../net/nic.js';
import { Acl, type AclRule } from '../net/switch/acl.js';
import { vlanList } from '../net/switch/port.js';
import { SwitchError } from '../net/switch/errors.js';
import { parseUserNetOptions, USER_NIC_FIELDS, userOptionString } from '../net/user/options.js';
import { resolveConfig } from '../net/user/config.js';
import { formatIp4 } from '../net/packet/ip.js';
import { InputError } from '../util/errors.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Guest RAM shares one 4 GiB WebAssembly memory with the hart state below RAM_OFFSET. */
export const MAX_MEMORY_MIB = Math.floor((2 ** 32 - RAM_OFFSET) / (1024 * 1024));
/** cgroup v1's cpu.shares range. */
export const MAX_CPU_SHARES = 262_144;
/** Linux's COMMAND_LINE_SIZE on riscv is 1024 bytes; the host appends its power-button and agent arguments. */
export const MAX_APPEND_BYTES = 1000;
/** Virtio slots left for drives, volumes, shares and NICs: every VM also has an entropy device, a power button and the guest agent's console. */
export const MAX_DEVICES = VIRTIO_COUNT - 3;
/** Drive throttling: requests per second, and bytes per second (at least one sector). */
export const MAX_IOPS = 1e9;
export const MIN_BPS = 512;
export const MAX_BPS = 2 ** 40;
export const DEFAULTS = { cpus: 1, memoryMiB: 256, cpuShares: 1024, append: 'console=ttyS0', jit: true } as const;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The guest bundled with gasang (guest/default), the default of a spec without `kernel`. */
export const BUNDLED_GUEST = {
  kernel: join(root, 'guest', 'default', 'Image.gz'),
  initrd: join(root, 'guest', 'default', 'initramfs.cpio.gz'),
  firmware: join(root, 'guest', 'default', 'fw_jump.bin'),
};

export type CheckedSpec = VmInfo['spec'];

// Checks of JSON values, each refusal naming `where` (also used for the REST API's other bodies).
type Json = Record<string, unknown>;
const invalid = (message: string): HostError => new HostError('invalid', message);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Refuses fields outside `allowed` (the first one found is named). */
export function onlyKnown(where: string, obj: Json, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const known = allowed.length ? ` (known: ${allowed.join(', ')})` : ' (this request takes none)';
    throw invalid(where ? `${where}: unknown field ${JSON.stringify(k)}${known}` : `Unknown field ${JSON.stringify(k)}${known}`);
  }
}

export function object(where: string, v: unknown): Json {
  if (!isObject(v)) throw invalid(`${where}: must be an object`);
  return v;
}

export function int(where: string, v: unknown, min: number, max: number, unit = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${where}: must be an integer`);
  if (v < min || v > max) throw invalid(`${where}: ${v}${unit} is out of range (${min} to ${max}${unit})`);
  return v;
}

function bool(where: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalid(`${where}: must be true or false`);
  return v;
}

function array(where: string, v: unknown, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${where}: must be an array`);
  if (v.length > max) throw invalid(`${where}: ${v.length} entries, at most ${max}`);
  return v;
}

export interface CheckOptions {
  /**
   * 'absolute': host paths must be absolute (a daemon's working directory means nothing to its
   * clients); 'resolve' (default): relative paths are taken from the current directory.
   */
  paths?: 'absolute' | 'resolve';
}

const DRIVE_FIELDS = ['file', 'format', 'readonly', 'overlay', 'iops', 'bps'];
const VOLUME_FIELDS = ['mode', 'files', 'readonly'];
const SHARE_FIELDS = ['host', 'tag', 'readonly'];
const TAP_NIC_FIELDS = ['type', 'ifname', 'mac'];
const NETWORK_NIC_FIELDS = ['type', 'network', 'vlan', 'trunk', 'acl', 'mac'];
const USER_NIC_SPEC_FIELDS = ['type', 'mac', ...USER_NIC_FIELDS];
/** Most hostfwd or allow entries of one NIC. */
const MAX_NIC_LIST = 64;
export const SPEC_FIELDS = ['name', 'cpus', 'memoryMiB', 'kernel', 'initrd', 'firmware', 'append', 'drives', 'volumes', 'shares', 'nics', 'cpuShares', 'cpuLimit', 'jit'];

/**
 * Checks `input` (anything, e.g. parsed JSON) and returns the spec with defaults filled in and
 * paths made absolute. Every refusal is HostError('invalid') naming the field and the rule. Files
 * are not looked at here (see checkFiles).
 */
export function checkSpec(input: unknown, opts: CheckOptions = {}): CheckedSpec {
  const path = (where: string, v: unknown): string => {
    if (typeof v !== 'string' || v === '') throw invalid(`${where}: must be a file path`);
    if (v.includes('\0')) throw invalid(`${where}: contains a NUL character`);
    if (opts.paths === 'absolute' && !v.startsWith('/')) throw invalid(`${where}: ${JSON.stringify(v)} must be an absolute path`);
    return resolve(v);
  };
  const o = object('spec', input);
  onlyKnown('', o, SPEC_FIELDS);
  if (o.name === undefined) throw invalid('name is required');
  if (typeof o.name !== 'string' || !NAME_PATTERN.test(o.name)) {
    throw invalid(`name: ${JSON.stringify(o.name)} must be 1 to 63 lowercase letters, digits and dashes, not starting with a dash`);
  }
  const cpus = o.cpus === undefined ? DEFAULTS.cpus : int('cpus', o.cpus, 1, MAX_HARTS);
  const spec: CheckedSpec = {
    name: o.name,
    cpus,
    memoryMiB: o.memoryMiB === undefined ? DEFAULTS.memoryMiB : int('memoryMiB', o.memoryMiB, 1, MAX_MEMORY_MIB, ' MiB'),
    cpuShares: o.cpuShares === undefined ? DEFAULTS.cpuShares : int('cpuShares', o.cpuShares, 1, MAX_CPU_SHARES),
  };
  for (const k of ['kernel', 'initrd', 'firmware'] as const) if (o[k] !== undefined) spec[k] = path(k, o[k]);
  if (o.append !== undefined) {
    if (typeof o.append !== 'string') throw invalid('append: must be a string');
    if (Buffer.byteLength(o.append) > MAX_APPEND_BYTES) throw invalid(`append: longer than ${MAX_APPEND_BYTES} bytes`);
    spec.append = o.append;
  }
  if (o.drives !== undefined) spec.drives = array('drives', o.drives, MAX_DEVICES).map((d, i) => checkDrive(`drives[${i}]`, d, path));
  if (o.volumes !== undefined) spec.volumes = array('volumes', o.volumes, MAX_DEVICES).map((v, i) => checkVolume(`volumes[${i}]`, v, path));
  if (o.shares !== undefined) spec.shares = array('shares', o.shares, MAX_DEVICES).map((s, i) => checkShare(`shares[${i}]`, s, path));
  if (o.nics !== undefined) spec.nics = array('nics', o.nics, MAX_DEVICES).map((n, i) => checkNic(`nics[${i}]`, n, spec.name, i));
  const devices = (spec.drives?.length ?? 0) + (spec.volumes?.length ?? 0) + (spec.shares?.length ?? 0) + (spec.nics?.length ?? 0);
  if (devices > MAX_DEVICES) throw invalid(`${devices} drives, volumes, shares and NICs: at most ${MAX_DEVICES} (the board's ${VIRTIO_COUNT} virtio slots less the entropy device, the power button and the agent's console)`);
  if (o.cpuLimit !== undefined) {
    const max = 100 * cpus;
    if (typeof o.cpuLimit !== 'number' || !Number.isFinite(o.cpuLimit)) throw invalid('cpuLimit: must be a number (percent of one host core)');
    if (o.cpuLimit < 1 || o.cpuLimit > max) throw invalid(`cpuLimit: ${o.cpuLimit}% is out of range (1 to ${max}% for ${cpus} CPU${cpus > 1 ? 's' : ''})`);
    spec.cpuLimit = o.cpuLimit;
  }
  if (o.jit !== undefined) spec.jit = bool('jit', o.jit);
  return spec;
}

type PathCheck = (where: string, v: unknown) => string;

function checkDrive(where: string, v: unknown, path: PathCheck): DriveSpec {
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

function checkVolume(where: string, v: unknown, path: PathCheck): VolumeSpec {
  const o = object(where, v);
  onlyKnown(where, o, VOLUME_FIELDS);
  if (o.mode !== 'linear' && o.mode !== 'stripe' && o.mode !== 'mirror') throw invalid(`${where}.mode: must be "linear", "stripe" or "mirror"`);
  const files = array(`${where}.files`, o.files, 64).map((f, i) => path(`${where}.files[${i}]`, f));
  if (files.length === 0) throw invalid(`${where}.files: needs at least one file`);
  const vol: VolumeSpec = { mode: o.mode, files };
  if (o.readonly !== undefined) vol.readonly = bool(`${where}.readonly`, o.readonly);
  return vol;
}

function checkShare(where: string, v: unknown, path: PathCheck): ShareSpec {
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

function checkNic(where: string, v: unknown, vm: string, index: number): NicSpec {
  const o = object(where, v);
  let n: NicSpec;
  if (o.type === 'tap') {
    onlyKnown(where, o, TAP_NIC_FIELDS);
    n = { type: 'tap' };
    if (o.ifname !== undefined) {
      if (typeof o.ifname !== 'string' || !/^[^\s/:]{1,15}$/.test(o.ifname) || Buffer.byteLength(o.ifname) > 15) throw invalid(`${where}.ifname: must be a device name of 1 to 15 characters, no spaces, '/' or ':'`);
      n.ifname = o.ifname;
    }
  } else if (o.type === 'user') {
    onlyKnown(where, o, USER_NIC_SPEC_FIELDS);
    const u: UserNicSpec = { type: 'user' };
    for (const k of ['net', 'host', 'dns', 'dhcpstart', 'hostname', 'domain', 'resolver'] as const) {
      if (o[k] === undefined) continue;
      if (typeof o[k] !== 'string') throw invalid(`${where}.${k}: must be a string`);
      u[k] = o[k] as string;
    }
    for (const k of ['hostfwd', 'allow'] as const) {
      if (o[k] === undefined) continue;
      const list = array(`${where}.${k}`, o[k], MAX_NIC_LIST);
      u[k] = list.map((x, i) => {
        if (typeof x !== 'string') throw invalid(`${where}.${k}[${i}]: must be a string like ${k === 'hostfwd' ? 'tcp:127.0.0.1:8080-:80' : '192.168.1.10:443'}`);
        return x;
      });
    }
    for (const k of ['restrict', 'hostloopback'] as const) if (o[k] !== undefined) u[k] = bool(`${where}.${k}`, o[k]);
    try {
      parseUserNetOptions(where, userOptionString(u));
    } catch (err) {
      throw err instanceof InputError ? invalid(err.message) : err;
    }
    n = u;
  } else if (o.type === 'network') {
    onlyKnown(where, o, NETWORK_NIC_FIELDS);
    if (typeof o.network !== 'string' || !/^[a-z0-9][a-z0-9-]{0,30}$/.test(o.network)) throw invalid(`${where}.network: must be a network's name`);
    n = { type: 'network', network: o.network };
    if (o.vlan !== undefined) n.vlan = int(`${where}.vlan`, o.vlan, 1, 4094);
    if (o.trunk !== undefined) n.trunk = trunkOf(`${where}.trunk`, o.trunk, n.vlan !== undefined);
    if (o.acl !== undefined) {
      const rules = array(`${where}.acl`, o.acl, MAX_NIC_LIST);
      try {
        new Acl(rules as AclRule[], `${where}.acl`);
      } catch (err) {
        throw err instanceof SwitchError ? invalid(err.message) : err;
      }
      n.acl = structuredClone(rules) as AclRule[];
    }
  } else throw invalid(`${where}.type: must be "user", "tap" or "network"`);
  if (o.mac !== undefined) {
    if (typeof o.mac !== 'string') throw invalid(`${where}.mac: must be a string like 52:54:00:12:34:56`);
    try {
      n.mac = formatMac(parseMac(`${where}.mac`, o.mac));
    } catch (err) {
      throw err instanceof InputError ? invalid(err.message) : err;
    }
  } else n.mac = vmMac(vm, index);
  return n;
}

/** A trunk port's VLANs, checked as the switch checks them. */
function trunkOf(where: string, t: unknown, hasVlan: boolean): NicTrunk {
  if (hasVlan) throw invalid(`${where}: vlan (an access port) and trunk exclude each other`);
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw invalid(`${where}: must be an object {allowed, native?}`);
  const o = t as Record<string, unknown>;
  onlyKnown(where, o, ['allowed', 'native']);
  if (typeof o.allowed !== 'string' && !Array.isArray(o.allowed)) throw invalid(`${where}.allowed: VLAN ids, as "10,20-30" or [10, 20]`);
  if (Array.isArray(o.allowed) && o.allowed.length > 4094) throw invalid(`${where}.allowed: at most 4094 VLANs`);
  try {
    vlanList(where, o.allowed as string | number[]);
  } catch (err) {
    throw err instanceof SwitchError ? invalid(err.message.replace(/^Port /, '')) : err;
  }
  const out: NicTrunk = { allowed: structuredClone(o.allowed as string | number[]) };
  if (o.native !== undefined) out.native = int(`${where}.native`, o.native, 1, 4094);
  return out;
}

/** The address a user NIC's DHCP gives the guest. */
export function userGuestAddress(n: UserNicSpec): string {
  const { config } = parseUserNetOptions('nic', userOptionString(n));
  return formatIp4(resolveConfig({ ...config, resolver: { address: '127.0.0.1' } }).guest);
}

/** What the VM thread opens for a checked NIC. */
function nicPlan(n: NicSpec, i: number, vm: string): NicConfig {
  const mac = parseMac(`nics[${i}].mac`, n.mac ?? vmMac(vm, i));
  if (n.type === 'tap') return { kind: 'tap', mac, ...(n.ifname !== undefined && { ifname: n.ifname }) };
  if (n.type === 'network') return { kind: 'network', mac, network: n.network, ...(n.vlan !== undefined && { vlan: n.vlan }), ...(n.trunk && { trunk: n.trunk }), ...(n.acl && { acl: n.acl }) };
  return { kind: 'user', mac, config: parseUserNetOptions(`nics[${i}]`, userOptionString(n)).config };
}

/** A stable address per VM and card (QEMU's 52:54:00 prefix; the rest from the name), so VMs on one network differ. */
export function vmMac(vm: string, index: number): string {
  const h = createHash('sha256').update(`${vm}/${index}`).digest();
  return formatMac(Uint8Array.of(0x52, 0x54, 0x00, h[0]!, h[1]!, h[2]!));
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
    nics: (spec.nics ?? []).map((n, i) => nicPlan(n, i, spec.name)),
  };
}
