/**
 * Flattened device tree (DTB) writer and reader, format version 17
 * (Devicetree Specification v0.4, chapter 5 "Flattened Devicetree (DTB) Format").
 *
 *   +--------------------+ 0
 *   | fdt_header         |   10 × u32 big-endian (FdtHeader)
 *   +--------------------+ off_mem_rsvmap (8-aligned)
 *   | reservation block  |   {u64 address, u64 size} big-endian …, then {0, 0}
 *   +--------------------+ off_dt_struct (4-aligned)
 *   | structure block    |   u32 tokens: BEGIN_NODE name\0 pad4 … PROP len nameoff value pad4 … END_NODE … END
 *   +--------------------+ off_dt_strings
 *   | strings block      |   property names, \0-terminated, each stored once
 *   +--------------------+ totalsize
 */
import { GasangError } from '../util/errors.js';

export const FDT_MAGIC = 0xd00d_feed;
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;

/** Byte offsets of the fdt_header fields (spec §5.2), all big-endian u32. */
export const FdtHeader = {
  MAGIC: 0x00,
  TOTALSIZE: 0x04,
  OFF_DT_STRUCT: 0x08,
  OFF_DT_STRINGS: 0x0c,
  OFF_MEM_RSVMAP: 0x10,
  VERSION: 0x14,
  LAST_COMP_VERSION: 0x18,
  BOOT_CPUID_PHYS: 0x1c,
  SIZE_DT_STRINGS: 0x20,
  SIZE_DT_STRUCT: 0x24,
  SIZE: 0x28,
} as const;

/** Structure block tokens (spec §5.4.1), big-endian u32. */
export const FdtToken = {
  BEGIN_NODE: 0x1,
  END_NODE: 0x2,
  PROP: 0x3,
  NOP: 0x4,
  END: 0x9,
} as const;

/** struct fdt_reserve_entry (spec §5.3.2): u64 address, u64 size, big-endian. */
export const FDT_RESERVE_ENTRY_SIZE = 16;

export interface FdtProp {
  name: string;
  value: Uint8Array;
}

export interface FdtNode {
  /** Node name with unit address ("cpu@0"); "" for the root. */
  name: string;
  props: FdtProp[];
  children: FdtNode[];
}

export interface FdtReservation {
  address: number;
  size: number;
}

export interface FdtBuildOptions {
  bootCpuidPhys?: number;
  reservations?: FdtReservation[];
}

export interface ParsedFdt {
  version: number;
  lastCompVersion: number;
  bootCpuidPhys: number;
  totalSize: number;
  reservations: FdtReservation[];
  root: FdtNode;
}

const TWO32 = 0x1_0000_0000;
const NODE_NAME = /^[A-Za-z0-9,._+-]{1,31}(@[A-Za-z0-9,._+-]+)?$/;
const PROP_NAME = /^[A-Za-z0-9,._+?#-]{1,31}$/;

const fdtError = (message: string): GasangError => new GasangError('fdt-invalid', message);

function u64Parts(v: number | bigint, what: string): [number, number] {
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw fdtError(`${what} ${v} does not fit in 64 bits`);
    return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
  }
  if (!Number.isSafeInteger(v) || v < 0) throw fdtError(`${what} ${v} is not a non-negative safe integer`);
  return [Math.floor(v / TWO32), v >>> 0];
}

/** Property value encoders (spec §2.2.4: cells are big-endian u32). */
export const fdtValue = {
  /** A property with no value (a boolean such as `interrupt-controller`). */
  empty: (): Uint8Array => new Uint8Array(0),
  /** One or more 32-bit cells. */
  u32(...cells: number[]): Uint8Array {
    const out = new Uint8Array(cells.length * 4);
    const dv = new DataView(out.buffer);
    cells.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c > 0xffff_ffff) throw fdtError(`Cell value ${c} is not a u32`);
      dv.setUint32(i * 4, c);
    });
    return out;
  },
  /** One or more 64-bit values, each as two cells (high first). */
  u64(...values: (number | bigint)[]): Uint8Array {
    const out = new Uint8Array(values.length * 8);
    const dv = new DataView(out.buffer);
    values.forEach((v, i) => {
      const [hi, lo] = u64Parts(v, 'Value');
      dv.setUint32(i * 8, hi);
      dv.setUint32(i * 8 + 4, lo);
    });
    return out;
  },
  /** A \0-terminated string. */
  string: (s: string): Uint8Array => fdtValue.strings(s),
  /** A string list: each \0-terminated, concatenated. */
  strings(...list: string[]): Uint8Array {
    for (const s of list) if (s.includes('\0')) throw fdtError(`String ${JSON.stringify(s)} contains NUL`);
    return new TextEncoder().encode(list.map((s) => s + '\0').join(''));
  },
};

/** A node from a name, properties (in insertion order) and children. */
export function fdtNode(name: string, props: Record<string, Uint8Array> = {}, children: FdtNode[] = []): FdtNode {
  return { name, props: Object.entries(props).map(([n, value]) => ({ name: n, value })), children };
}

/** Serialises a tree to a DTB (version 17). */
export function buildFdt(root: FdtNode, opts: FdtBuildOptions = {}): Uint8Array {
  if (root.name !== '') throw fdtError(`Root node must have an empty name, not ${JSON.stringify(root.name)}`);
  const enc = new TextEncoder();

  // Strings block: each property name once.
  const stringOffsets = new Map<string, number>();
  const stringParts: Uint8Array[] = [];
  let stringsSize = 0;
  const nameOffset = (name: string): number => {
    let off = stringOffsets.get(name);
    if (off === undefined) {
      off = stringsSize;
      const bytes = enc.encode(name + '\0');
      stringOffsets.set(name, off);
      stringParts.push(bytes);
      stringsSize += bytes.length;
    }
    return off;
  };

  // Structure block, measured then written.
  const items: { token: number; name?: Uint8Array; value?: Uint8Array; nameoff?: number }[] = [];
  let structSize = 0;
  const pad4 = (n: number): number => (n + 3) & ~3;
  const walk = (node: FdtNode, isRoot: boolean): void => {
    if (!isRoot && !NODE_NAME.test(node.name)) throw fdtError(`Invalid node name ${JSON.stringify(node.name)}`);
    const name = enc.encode(node.name + '\0');
    items.push({ token: FdtToken.BEGIN_NODE, name });
    structSize += 4 + pad4(name.length);
    const seen = new Set<string>();
    for (const p of node.props) {
      if (!PROP_NAME.test(p.name)) throw fdtError(`Invalid property name ${JSON.stringify(p.name)} in node ${JSON.stringify(node.name)}`);
      if (seen.has(p.name)) throw fdtError(`Duplicate property ${p.name} in node ${JSON.stringify(node.name)}`);
      seen.add(p.name);
      items.push({ token: FdtToken.PROP, value: p.value, nameoff: nameOffset(p.name) });
      structSize += 12 + pad4(p.value.length);
    }
    const names = new Set<string>();
    for (const c of node.children) {
      if (names.has(c.name)) throw fdtError(`Duplicate node ${JSON.stringify(c.name)} under ${JSON.stringify(node.name)}`);
      names.add(c.name);
      walk(c, false);
    }
    items.push({ token: FdtToken.END_NODE });
    structSize += 4;
  };
  walk(root, true);
  items.push({ token: FdtToken.END });
  structSize += 4;

  const reservations = opts.reservations ?? [];
  const offRsvmap = FdtHeader.SIZE; // 40, already 8-aligned
  const offStruct = offRsvmap + (reservations.length + 1) * FDT_RESERVE_ENTRY_SIZE;
  const offStrings = offStruct + structSize;
  const totalSize = offStrings + stringsSize;

  const out = new Uint8Array(totalSize);
  const dv = new DataView(out.buffer);
  dv.setUint32(FdtHeader.MAGIC, FDT_MAGIC);
  dv.setUint32(FdtHeader.TOTALSIZE, totalSize);
  dv.setUint32(FdtHeader.OFF_DT_STRUCT, offStruct);
  dv.setUint32(FdtHeader.OFF_DT_STRINGS, offStrings);
  dv.setUint32(FdtHeader.OFF_MEM_RSVMAP, offRsvmap);
  dv.setUint32(FdtHeader.VERSION, FDT_VERSION);
  dv.setUint32(FdtHeader.LAST_COMP_VERSION, FDT_LAST_COMP_VERSION);
  dv.setUint32(FdtHeader.BOOT_CPUID_PHYS, opts.bootCpuidPhys ?? 0);
  dv.setUint32(FdtHeader.SIZE_DT_STRINGS, stringsSize);
  dv.setUint32(FdtHeader.SIZE_DT_STRUCT, structSize);

  let p = offRsvmap;
  for (const r of reservations) {
    const [ahi, alo] = u64Parts(r.address, 'Reservation address');
    const [shi, slo] = u64Parts(r.size, 'Reservation size');
    dv.setUint32(p, ahi);
    dv.setUint32(p + 4, alo);
    dv.setUint32(p + 8, shi);
    dv.setUint32(p + 12, slo);
    p += FDT_RESERVE_ENTRY_SIZE;
  }
  p += FDT_RESERVE_ENTRY_SIZE; // terminating {0, 0}

  for (const it of items) {
    dv.setUint32(p, it.token);
    p += 4;
    if (it.token === FdtToken.BEGIN_NODE) {
      out.set(it.name!, p);
      p += pad4(it.name!.length);
    } else if (it.token === FdtToken.PROP) {
      dv.setUint32(p, it.value!.length);
      dv.setUint32(p + 4, it.nameoff!);
      out.set(it.value!, p + 8);
      p += 8 + pad4(it.value!.length);
    }
  }
  for (const part of stringParts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** Parses a DTB (version 16 or later); throws GasangError('fdt-invalid') on malformed input. */
export function parseFdt(blob: Uint8Array): ParsedFdt {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.length < FdtHeader.SIZE || dv.getUint32(FdtHeader.MAGIC) !== FDT_MAGIC) throw fdtError('Not a flattened device tree (bad magic)');
  const totalSize = dv.getUint32(FdtHeader.TOTALSIZE);
  const version = dv.getUint32(FdtHeader.VERSION);
  if (totalSize > blob.length) throw fdtError(`Device tree is truncated (${blob.length} of ${totalSize} bytes)`);
  if (version < 16) throw fdtError(`Device tree version ${version} is not supported`);
  const offStruct = dv.getUint32(FdtHeader.OFF_DT_STRUCT);
  const offStrings = dv.getUint32(FdtHeader.OFF_DT_STRINGS);
  const sizeStrings = dv.getUint32(FdtHeader.SIZE_DT_STRINGS);
  const sizeStruct = version >= 17 ? dv.getUint32(FdtHeader.SIZE_DT_STRUCT) : totalSize - offStruct;
  if (offStruct + sizeStruct > totalSize || offStrings + sizeStrings > totalSize) throw fdtError('Device tree blocks lie outside totalsize');
  const dec = new TextDecoder();
  /** Index of the NUL ending the string at `at`. */
  const cstrEnd = (at: number, limit: number): number => {
    let e = at;
    while (e < limit && blob[e] !== 0) e++;
    if (e >= limit) throw fdtError('Unterminated string in device tree');
    return e;
  };
  const cstr = (at: number, limit: number): string => dec.decode(blob.subarray(at, cstrEnd(at, limit)));

  const reservations: FdtReservation[] = [];
  for (let p = dv.getUint32(FdtHeader.OFF_MEM_RSVMAP); ; p += FDT_RESERVE_ENTRY_SIZE) {
    if (p + FDT_RESERVE_ENTRY_SIZE > totalSize) throw fdtError('Unterminated memory reservation block');
    const address = dv.getUint32(p) * TWO32 + dv.getUint32(p + 4);
    const size = dv.getUint32(p + 8) * TWO32 + dv.getUint32(p + 12);
    if (address === 0 && size === 0) break;
    reservations.push({ address, size });
  }

  const end = offStruct + sizeStruct;
  let p = offStruct;
  const stack: FdtNode[] = [];
  let root: FdtNode | undefined;
  for (;;) {
    if (p + 4 > end) throw fdtError('Structure block ends without FDT_END');
    const token = dv.getUint32(p);
    p += 4;
    if (token === FdtToken.BEGIN_NODE) {
      const nameEnd = cstrEnd(p, end);
      const name = dec.decode(blob.subarray(p, nameEnd));
      p += (nameEnd - p + 1 + 3) & ~3;
      const node: FdtNode = { name, props: [], children: [] };
      if (stack.length) stack[stack.length - 1]!.children.push(node);
      else if (root) throw fdtError('More than one root node');
      else root = node;
      stack.push(node);
    } else if (token === FdtToken.END_NODE) {
      if (!stack.pop()) throw fdtError('Unbalanced FDT_END_NODE');
    } else if (token === FdtToken.PROP) {
      if (p + 8 > end) throw fdtError('Truncated property');
      const len = dv.getUint32(p);
      const nameoff = dv.getUint32(p + 4);
      if (p + 8 + len > end || nameoff >= sizeStrings) throw fdtError('Property lies outside its block');
      const node = stack[stack.length - 1];
      if (!node) throw fdtError('Property outside any node');
      node.props.push({ name: cstr(offStrings + nameoff, offStrings + sizeStrings), value: blob.slice(p + 8, p + 8 + len) });
      p += 8 + ((len + 3) & ~3);
    } else if (token === FdtToken.NOP) {
      continue;
    } else if (token === FdtToken.END) {
      break;
    } else {
      throw fdtError(`Unknown structure token 0x${token.toString(16)}`);
    }
  }
  if (!root || stack.length) throw fdtError('Unbalanced nodes in structure block');
  return {
    version,
    lastCompVersion: dv.getUint32(FdtHeader.LAST_COMP_VERSION),
    bootCpuidPhys: dv.getUint32(FdtHeader.BOOT_CPUID_PHYS),
    totalSize,
    reservations,
    root,
  };
}

/** The node at an absolute path ("/soc/serial@10000000"), or undefined. */
export function fdtFind(root: FdtNode, path: string): FdtNode | undefined {
  let node: FdtNode | undefined = root;
  for (const part of path.split('/').filter((s) => s !== '')) {
    node = node.children.find((c) => c.name === part);
    if (!node) return undefined;
  }
  return node;
}

/** A property's value, or undefined. */
export function fdtProp(node: FdtNode, name: string): Uint8Array | undefined {
  return node.props.find((p) => p.name === name)?.value;
}
