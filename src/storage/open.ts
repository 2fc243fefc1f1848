/**
 * Opening disks by file name: format probing, backing chains (opened read-only, names relative
 * to the image that names them, as QEMU resolves them), loop and depth limits, and the
 * whole-image operations the CLI offers (overlay, info, commit).
 */
import { closeSync, openSync, readSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { StorageError, type BlockDevice } from './block.js';
import { HostFile } from './host-file.js';
import { RawDisk } from './raw.js';
import { checkQcow2, type CheckResult } from './qcow2/check.js';
import { commitOverlay, type CommitOptions } from './qcow2/commit.js';
import { createQcow2 } from './qcow2/create.js';
import { Qcow2Image, readHeader } from './qcow2/image.js';
import { QCOW2_MAGIC } from './qcow2/layout.js';
import { readSnapshotTable } from './qcow2/snapshot-table.js';
import type { SnapshotInfo } from './qcow2/snapshots.js';

export type DiskFormat = 'raw' | 'qcow2';

export interface OpenDiskOptions {
  file: string;
  /** Probed from the file's first bytes when absent (qcow2 magic, else raw). */
  format?: DiskFormat;
  readOnly?: boolean;
}

/** Longest backing chain we follow (each level holds one open file). */
export const MAX_CHAIN_DEPTH = 256;

export function openDisk(opts: OpenDiskOptions): BlockDevice {
  return openChain(opts.file, opts.format, opts.readOnly ?? false, []);
}

/** Opens a qcow2 image (with its backing chain) for whole-image operations. */
export function openQcow2(file: string, readOnly: boolean): Qcow2Image {
  const disk = openChain(file, 'qcow2', readOnly, []);
  return disk as Qcow2Image;
}

/** Reads the first bytes: qcow2 magic → qcow2, anything else → raw. */
export function probeFormat(file: string): DiskFormat {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StorageError('not-found', `${file}: No such file`, { cause: err });
    throw new StorageError('io', `Cannot open ${file} (${code ?? 'error'})`, { cause: err });
  }
  try {
    const magic = new Uint8Array(4);
    const n = readSync(fd, magic, 0, 4, 0);
    return n === 4 && new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new StorageError('bad-spec', `${file} is not a regular file`, { cause: err });
    throw new StorageError('io', `Cannot read ${file} (${code ?? 'error'})`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/** Where a backing file name stored in `image` points (relative to the image's directory). */
export function resolveBacking(image: string, name: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(name) && !isAbsolute(name)) {
    throw new StorageError('unsupported', `${image}: Backing file '${name}' is not a plain file name`);
  }
  return isAbsolute(name) ? name : join(dirname(image), name);
}

function backingFormat(image: string, format: string | undefined): DiskFormat | undefined {
  if (format === undefined || format === 'raw' || format === 'qcow2') return format;
  throw new StorageError('unsupported', `${image}: Backing format '${format}' is not supported (raw and qcow2 are)`);
}

function realpathOrThrow(file: string, context: string | undefined): string {
  try {
    return realpathSync(file);
  } catch (err) {
    const message = context ? `${context}: Backing file ${file} does not exist` : `${file}: No such file`;
    throw new StorageError('not-found', message, { cause: err });
  }
}

function openChain(file: string, format: DiskFormat | undefined, readOnly: boolean, chain: string[]): BlockDevice {
  const real = realpathOrThrow(file, chain.length > 0 ? chain[chain.length - 1] : undefined);
  if (chain.includes(real)) throw new StorageError('corrupt', `Backing chain loop: ${[...chain, real].join(' → ')}`);
  if (chain.length >= MAX_CHAIN_DEPTH) throw new StorageError('unsupported', `${chain[0]}: Backing chain is deeper than ${MAX_CHAIN_DEPTH}`);
  const fmt = format ?? probeFormat(file);
  if (fmt === 'raw') return RawDisk.open(file, { readOnly });
  return Qcow2Image.open(file, {
    readOnly,
    openBacking: ref => openChain(resolveBacking(file, ref.name), backingFormat(file, ref.format), true, [...chain, real]),
  });
}

/**
 * Creates a qcow2 overlay at `overlayPath` over `base` (which stays untouched: it is only ever
 * opened read-only through the overlay) and opens it for writing. The backing name is stored
 * relative to the overlay's directory, so the pair can move together.
 */
export function overlay(base: string, overlayPath: string, opts: { clusterBits?: number } = {}): BlockDevice {
  createOverlay(base, overlayPath, opts);
  return openDisk({ file: overlayPath, format: 'qcow2' });
}

/** Creates a qcow2 image backed by `base` (size: the base's unless given). */
export function createOverlay(
  base: string, overlayPath: string, opts: { clusterBits?: number; size?: number; baseFormat?: DiskFormat; storeAs?: string } = {},
): void {
  const baseReal = realpathOrThrow(base, undefined);
  if (resolve(overlayPath) === baseReal) throw new StorageError('bad-spec', `${overlayPath} cannot be its own backing file`);
  const fmt = opts.baseFormat ?? probeFormat(base);
  const disk = openDisk({ file: base, format: fmt, readOnly: true }); // validates the whole chain
  const size = opts.size ?? disk.size;
  disk.close();
  const stored = opts.storeAs ?? relative(dirname(resolve(overlayPath)), baseReal);
  createQcow2(overlayPath, { size, clusterBits: opts.clusterBits, backing: stored, backingFormat: fmt });
}

export interface ImageInfo {
  file: string;
  format: DiskFormat;
  virtualSize: number;
  /** Bytes the file occupies on the host. */
  diskSize: number;
  clusterSize?: number;
  backingFile?: string;
  backingFormat?: string;
  /** The backing file name resolved against this image's directory. */
  fullBackingFile?: string;
  qcow2?: { version: 2 | 3; refcountBits: number; compressionType: string; lazyRefcounts: boolean; dirty: boolean; corrupt: boolean };
  snapshots: SnapshotInfo[];
}

/** Describes an image and its backing chain, top first. */
export function imageInfo(file: string, format?: DiskFormat): ImageInfo[] {
  const out: ImageInfo[] = [];
  const seen: string[] = [];
  let next: { file: string; format?: DiskFormat } | undefined = { file, format };
  while (next) {
    const real = realpathOrThrow(next.file, seen.length > 0 ? seen[seen.length - 1] : undefined);
    if (seen.includes(real)) throw new StorageError('corrupt', `Backing chain loop: ${[...seen, real].join(' → ')}`);
    if (seen.length >= MAX_CHAIN_DEPTH) throw new StorageError('unsupported', `${file}: Backing chain is deeper than ${MAX_CHAIN_DEPTH}`);
    seen.push(real);
    const info = describe(next.file, next.format ?? probeFormat(next.file));
    out.push(info);
    next = info.fullBackingFile ? { file: info.fullBackingFile, format: backingFormat(info.file, info.backingFormat) } : undefined;
  }
  return out;
}

function describe(file: string, format: DiskFormat): ImageInfo {
  const host = HostFile.open(file, true);
  try {
    if (format === 'raw') {
      return { file, format, virtualSize: Math.ceil(host.length / 512) * 512, diskSize: host.allocatedBytes(), snapshots: [] };
    }
    const h = readHeader(host);
    const bit = (bits: [number, number], n: number): boolean => ((bits[1] >>> n) & 1) === 1;
    const info: ImageInfo = {
      file,
      format,
      virtualSize: h.size,
      diskSize: host.allocatedBytes(),
      clusterSize: 2 ** h.clusterBits,
      qcow2: {
        version: h.version,
        refcountBits: 2 ** h.refcountOrder,
        compressionType: h.compressionType === 0 ? 'zlib' : h.compressionType === 1 ? 'zstd' : `type ${h.compressionType}`,
        lazyRefcounts: bit(h.compatible, 0),
        dirty: bit(h.incompatible, 0),
        corrupt: bit(h.incompatible, 1),
      },
      snapshots: h.nbSnapshots > 0 ? readSnapshotTable(host, h).entries.map(e => ({
        id: e.id, name: e.name, dateSec: e.dateSec, dateNsec: e.dateNsec, vmClockNsec: e.vmClockNsec, vmStateSize: e.vmStateSize, diskSize: e.diskSize,
      })) : [],
    };
    if (h.backingFile !== undefined) {
      info.backingFile = h.backingFile;
      info.backingFormat = h.backingFormat;
      info.fullBackingFile = resolveBacking(file, h.backingFile);
    }
    return info;
  } finally {
    host.close();
  }
}

/** Checks an image's metadata; raw images have none. */
export function checkImage(file: string, progress?: (done: number, total: number) => void): CheckResult {
  if (probeFormat(file) !== 'qcow2') throw new StorageError('unsupported', `${file} is a raw image: it has no metadata to check`);
  return checkQcow2(file, progress);
}

/** Writes a qcow2 overlay's data into its backing file (and empties the overlay unless `keep`). */
export function commitImage(file: string, opts: CommitOptions = {}): number {
  const top = openQcow2(file, false);
  let base: BlockDevice | null = null;
  try {
    if (top.backingFile === undefined) throw new StorageError('bad-spec', `${file} has no backing file to commit into`);
    base = openDisk({
      file: resolveBacking(file, top.backingFile),
      format: backingFormat(file, top.backingFormat),
      readOnly: false,
    });
    return commitOverlay(top, base, opts);
  } finally {
    base?.close();
    top.close();
  }
}
