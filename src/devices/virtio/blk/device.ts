/**
 * virtio-blk (VIRTIO 1.x §5.2) over a BlockDevice — the only thing it knows about storage.
 *
 * One request queue. Requests are served synchronously when the driver kicks (each a few
 * pread/pwrite calls straight between the disk and guest RAM, no bounce buffer), several per
 * notify. With a throttle, a request that is not admitted is left in the avail ring and the queue
 * is looked at again after the delay the throttle names (a timer): the VM keeps running meanwhile.
 */
import type { BlockDevice } from '../../../storage/block.js';
import { GasangError } from '../../../util/errors.js';
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain, type VirtQueue } from '../queue.js';
import { BlkRequest, BlkStatus, BlkType, BlkHeader, DiscardSegment, ID_BYTES, SECTOR_SIZE } from './request.js';

/** Device-specific feature bits (§5.2.3). */
export const BlkFeature = {
  SIZE_MAX: 1 << 1,
  SEG_MAX: 1 << 2,
  GEOMETRY: 1 << 4,
  RO: 1 << 5,
  BLK_SIZE: 1 << 6,
  FLUSH: 1 << 9,
  TOPOLOGY: 1 << 10,
  CONFIG_WCE: 1 << 11,
  MQ: 1 << 12,
  DISCARD: 1 << 13,
  WRITE_ZEROES: 1 << 14,
} as const;

/** struct virtio_blk_config (§5.2.4), little-endian; the fields we fill. */
export const enum BlkConfig {
  CAPACITY = 0, // le64, 512-byte sectors
  SIZE_MAX = 8, // le32
  SEG_MAX = 12, // le32
  GEOMETRY = 16, // le16 cylinders, u8 heads, u8 sectors
  BLK_SIZE = 20, // le32
  TOPOLOGY = 24, // u8 physical_block_exp, u8 alignment_offset, le16 min_io_size, le32 opt_io_size
  WRITEBACK = 32, // u8
  NUM_QUEUES = 34, // le16
  MAX_DISCARD_SECTORS = 36, // le32
  MAX_DISCARD_SEG = 40, // le32
  DISCARD_SECTOR_ALIGNMENT = 44, // le32
  MAX_WRITE_ZEROES_SECTORS = 48, // le32
  MAX_WRITE_ZEROES_SEG = 52, // le32
  WRITE_ZEROES_MAY_UNMAP = 56, // u8
  SIZE = 60, // up to (not including) the secure-erase fields
}

export const BLK_QUEUE_SIZE = 256;
/** Per-segment and per-request limits of DISCARD and WRITE_ZEROES (2 GiB - 512 per segment, as QEMU). */
export const MAX_DISCARD_SECTORS = 0x3f_ffff;
export const MAX_DISCARD_SEGMENTS = 32;
/** Discards split at 4 KiB (8 sectors): host files punch holes in pages. */
export const DISCARD_ALIGNMENT_SECTORS = 8;

/** Largest request that goes through the bounce buffer when scattered (Linux's requests are at most ~1.25 MiB by default). */
export const BOUNCE_BYTES = 2 * 1024 * 1024;

/** Structural match of storage's IoThrottle: 0 = admitted now (tokens taken), else ask again after that many ms. */
export interface BlkThrottle {
  delayMs(bytes: number, nowMs: number): number;
}

export interface VirtioBlkOptions {
  disk: BlockDevice;
  /** GET_ID answer (/sys/block/vdX/serial), at most 20 ASCII bytes. */
  serial?: string;
  throttle?: BlkThrottle;
  /** Host I/O failures go here (first few); guest mistakes are answered with status codes. */
  log?: (line: string) => void;
}

/** Counters for metrics. */
export interface BlkStats {
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
  readBytes: number;
  writtenBytes: number;
  /** Requests answered IOERR (bad range or length, read-only, host I/O error). */
  ioErrors: number;
  /** Requests answered UNSUPP. */
  unsupported: number;
  /** Times a request waited for the throttle. */
  throttled: number;
}

const LOGGED_IO_ERRORS = 8;

export class VirtioBlk implements VirtioDevice {
  readonly name = 'virtio-blk';
  readonly deviceId = DeviceId.BLOCK;
  readonly features: FeatureWords;
  readonly queueMaxSizes = [BLK_QUEUE_SIZE];
  readonly stats: BlkStats = { reads: 0, writes: 0, flushes: 0, discards: 0, writeZeroes: 0, readBytes: 0, writtenBytes: 0, ioErrors: 0, unsupported: 0, throttled: 0 };
  private readonly disk: BlockDevice;
  private readonly throttle: BlkThrottle | undefined;
  private readonly log: (line: string) => void;
  private readonly config = new Uint8Array(BlkConfig.SIZE);
  private readonly serial = new Uint8Array(ID_BYTES);
  private readonly sectors: number;
  private ctx: VirtioContext | undefined;
  private queue: VirtQueue | undefined;
  private flushNegotiated = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimer = (): void => { this.timer = undefined; this.process(); };
  // Reused per request (no allocation on the request path).
  private readonly chain = new DescChain(BLK_QUEUE_SIZE);
  private readonly req = new BlkRequest();
  private readonly segments = new Uint8Array(DiscardSegment.SIZE * MAX_DISCARD_SEGMENTS);
  private readonly segmentView = new DataView(this.segments.buffer);
  /** Scattered requests up to BOUNCE_BYTES go through here (allocated on first use). */
  private bounceBytes = Buffer.alloc(0);
  private guestBuffer: Buffer | undefined;

  constructor(opts: VirtioBlkOptions) {
    const { disk } = opts;
    if (!(Number.isSafeInteger(disk.size) && disk.size >= 0 && disk.size % SECTOR_SIZE === 0)) {
      throw new GasangError('virtio-blk-size', `Disk size ${disk.size} is not a multiple of ${SECTOR_SIZE} bytes`);
    }
    this.disk = disk;
    this.throttle = opts.throttle;
    this.log = opts.log ?? (() => {});
    this.sectors = disk.size / SECTOR_SIZE;
    const serial = Buffer.from(opts.serial ?? '', 'latin1');
    if (serial.length > ID_BYTES) throw new GasangError('virtio-blk-serial', `Disk serial longer than ${ID_BYTES} bytes`);
    this.serial.set(serial);
    const writable = !disk.readOnly;
    this.features = {
      lo: BlkFeature.SEG_MAX | BlkFeature.BLK_SIZE | BlkFeature.FLUSH
        | (writable ? BlkFeature.DISCARD | BlkFeature.WRITE_ZEROES : BlkFeature.RO),
      hi: 0,
    };
    const c = new DataView(this.config.buffer);
    c.setUint32(BlkConfig.CAPACITY, this.sectors >>> 0, true);
    c.setUint32(BlkConfig.CAPACITY + 4, Math.floor(this.sectors / 2 ** 32), true);
    c.setUint32(BlkConfig.SEG_MAX, BLK_QUEUE_SIZE - 2, true); // header and status take two descriptors
    c.setUint32(BlkConfig.BLK_SIZE, SECTOR_SIZE, true);
    c.setUint16(BlkConfig.NUM_QUEUES, 1, true);
    c.setUint32(BlkConfig.MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS, true);
    c.setUint32(BlkConfig.MAX_DISCARD_SEG, MAX_DISCARD_SEGMENTS, true);
    c.setUint32(BlkConfig.DISCARD_SECTOR_ALIGNMENT, DISCARD_ALIGNMENT_SECTORS, true);
    c.setUint32(BlkConfig.MAX_WRITE_ZEROES_SECTORS, MAX_DISCARD_SECTORS, true);
    c.setUint32(BlkConfig.MAX_WRITE_ZEROES_SEG, MAX_DISCARD_SEGMENTS, true);
    c.setUint8(BlkConfig.WRITE_ZEROES_MAY_UNMAP, 1);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    if (!(offset >= 0 && offset + size <= BlkConfig.SIZE)) return 0;
    const b = this.config;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + b[offset + i]!;
    return v;
  }

  writeConfig(): void {
    // Only `writeback` is writable, and only with CONFIG_WCE, which is not offered.
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.queue = ctx.queues[0];
    this.flushNegotiated = (ctx.features.lo & BlkFeature.FLUSH) !== 0;
    this.process();
  }

  notify(): void { this.process(); }

  reset(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.ctx = undefined;
    this.queue = undefined;
  }

  close(): void {
    this.reset();
    this.disk.close();
  }

  save(): unknown { return { sectors: this.sectors }; }

  restore(state: unknown): void {
    const s = state as { sectors?: unknown } | null;
    if (s?.sectors !== this.sectors) throw new GasangError('virtio-blk-restore', `Saved disk had ${String(s?.sectors)} sectors, this one has ${this.sectors}`);
  }

  /** Serves every available request (until the throttle says wait). */
  private process(): void {
    const ctx = this.ctx, q = this.queue;
    if (!ctx || !q || !q.ready || this.timer) return;
    const { chain, req } = this;
    let served = 0;
    while (q.pop(chain)) {
      if (!req.parse(chain, ctx.mem)) {
        ctx.fail(`request ${chain.head} without a header or status byte`);
        break;
      }
      if (this.throttle && (req.type === BlkType.IN || req.type === BlkType.OUT)) {
        const bytes = req.type === BlkType.IN ? req.writableData : req.readableData;
        const delay = this.throttle.delayMs(bytes, performance.now());
        if (delay > 0) {
          q.undoPop();
          this.stats.throttled++;
          this.timer = setTimeout(this.onTimer, Math.ceil(delay));
          break;
        }
      }
      const written = this.execute(ctx);
      q.push(chain.head, written);
      served++;
    }
    if (served) ctx.signalUsed(q);
  }

  /** Executes the parsed request, writes its status; returns the bytes written into the chain (used length). */
  private execute(ctx: VirtioContext): number {
    const req = this.req;
    let status: number = BlkStatus.OK;
    let written = 1; // the status byte
    try {
      switch (req.type) {
        case BlkType.IN: {
          const len = req.writableData;
          // Data in device-readable buffers would be a read into memory the driver said we must not write.
          if (req.readableData !== 0 || !this.inRange(req.sector, len)) { status = BlkStatus.IOERR; break; }
          this.transfer(ctx, true, 0, len, req.sector * SECTOR_SIZE);
          this.stats.reads++;
          this.stats.readBytes += len;
          written += len;
          break;
        }
        case BlkType.OUT: {
          const len = req.readableData;
          if (this.disk.readOnly || req.writableData !== 0 || !this.inRange(req.sector, len)) { status = BlkStatus.IOERR; break; }
          this.transfer(ctx, false, BlkHeader.SIZE, len, req.sector * SECTOR_SIZE);
          // §5.2.6.2: FLUSH offered but not negotiated means writes are stable on completion.
          if (!this.flushNegotiated) this.disk.flush();
          this.stats.writes++;
          this.stats.writtenBytes += len;
          break;
        }
        case BlkType.FLUSH:
          this.disk.flush();
          this.stats.flushes++;
          break;
        case BlkType.GET_ID: {
          if (req.readableData !== 0) { status = BlkStatus.IOERR; break; }
          const n = Math.min(ID_BYTES, req.writableData);
          written += this.chain.write(ctx.mem, 0, this.serial.subarray(0, n));
          break;
        }
        case BlkType.DISCARD:
        case BlkType.WRITE_ZEROES:
          status = this.discardOrZero(ctx, req.type === BlkType.DISCARD);
          break;
        default:
          status = BlkStatus.UNSUPP;
      }
    } catch (e) {
      // A host I/O failure (the storage layer's or the kernel's): the guest sees IOERR.
      status = BlkStatus.IOERR;
      if (this.stats.ioErrors < LOGGED_IO_ERRORS) this.log(`${this.name}: ${(e as Error).message}`);
    }
    if (status === BlkStatus.IOERR) this.stats.ioErrors++;
    else if (status === BlkStatus.UNSUPP) this.stats.unsupported++;
    if (status !== BlkStatus.OK) written = 1;
    const off = ctx.mem.offset(req.statusAddr, 1);
    ctx.mem.bytes[off] = status; // off >= 0: the chain was checked to lie in RAM
    ctx.mem.wrote(req.statusAddr, 1);
    return written;
  }

  /** Whole sectors inside the disk. */
  private inRange(sector: number, bytes: number): boolean {
    return bytes % SECTOR_SIZE === 0 && sector >= 0 && sector + bytes / SECTOR_SIZE <= this.sectors;
  }

  private discardOrZero(ctx: VirtioContext, discard: boolean): number {
    const feature = discard ? BlkFeature.DISCARD : BlkFeature.WRITE_ZEROES;
    if (!(ctx.features.lo & feature)) return BlkStatus.UNSUPP;
    if (this.disk.readOnly || this.req.writableData !== 0) return BlkStatus.IOERR;
    const len = this.req.readableData;
    const count = len / DiscardSegment.SIZE;
    if (!Number.isInteger(count) || count < 1 || count > MAX_DISCARD_SEGMENTS) return BlkStatus.IOERR;
    this.chain.read(ctx.mem, BlkHeader.SIZE, this.segments.subarray(0, len));
    const v = this.segmentView;
    // Check every segment before acting on any.
    for (let i = 0; i < count; i++) {
      const o = i * DiscardSegment.SIZE;
      const flags = v.getUint32(o + DiscardSegment.FLAGS, true);
      if (flags & ~DiscardSegment.F_UNMAP || (discard && flags & DiscardSegment.F_UNMAP)) return BlkStatus.UNSUPP;
      const hi = v.getUint32(o + DiscardSegment.SECTOR + 4, true);
      const sector = hi < 0x1000 ? hi * 2 ** 32 + v.getUint32(o + DiscardSegment.SECTOR, true) : -1;
      const num = v.getUint32(o + DiscardSegment.NUM_SECTORS, true);
      if (num > MAX_DISCARD_SECTORS || !this.inRange(sector, num * SECTOR_SIZE)) return BlkStatus.IOERR;
    }
    for (let i = 0; i < count; i++) {
      const o = i * DiscardSegment.SIZE;
      const sector = v.getUint32(o + DiscardSegment.SECTOR + 4, true) * 2 ** 32 + v.getUint32(o + DiscardSegment.SECTOR, true);
      const bytes = v.getUint32(o + DiscardSegment.NUM_SECTORS, true) * SECTOR_SIZE;
      if (discard) this.disk.discard(sector * SECTOR_SIZE, bytes);
      else this.disk.writeZeroes(sector * SECTOR_SIZE, bytes, (v.getUint32(o + DiscardSegment.FLAGS, true) & DiscardSegment.F_UNMAP) !== 0);
    }
    if (discard) this.stats.discards++;
    else this.stats.writeZeroes++;
    return BlkStatus.OK;
  }

  /**
   * Moves `length` bytes between the disk at `diskOffset` and the chain's writable part (disk → guest)
   * or readable part (guest → disk) starting `skip` bytes in. Physically contiguous segments are
   * merged; a request that is still scattered (Linux's direct I/O: one 4 KiB page per segment) goes
   * through a bounce buffer, one system call instead of one per page.
   */
  private transfer(ctx: VirtioContext, toGuest: boolean, skip: number, length: number, diskOffset: number): void {
    const runs = this.runs(toGuest, skip, length);
    if (runs === 1 || length > BOUNCE_BYTES) {
      this.forEachRun(ctx, toGuest, skip, length, diskOffset, false);
      return;
    }
    if (this.bounceBytes.length < length) this.bounceBytes = Buffer.alloc(BOUNCE_BYTES);
    const bounce = this.bounceBytes.subarray(0, length);
    if (toGuest) this.disk.read(diskOffset, bounce);
    this.forEachRun(ctx, toGuest, skip, length, 0, true);
    if (!toGuest) this.disk.write(diskOffset, bounce);
  }

  /** Runs of physically contiguous guest memory in the data (the same walk as forEachRun). */
  private runs(toGuest: boolean, skip: number, length: number): number {
    const chain = this.chain;
    const end = toGuest ? chain.count : chain.readable;
    let left = length, runs = 0, runEnd = -1;
    for (let i = toGuest ? chain.readable : 0; i < end && left > 0; i++) {
      let l = chain.len[i]!;
      if (skip >= l) { skip -= l; continue; }
      const a = chain.addr[i]! + skip;
      l = Math.min(l - skip, left);
      skip = 0;
      if (a !== runEnd) runs++;
      runEnd = a + l;
      left -= l;
    }
    return runs;
  }

  /** Walks the data's runs: each moves between guest RAM and the disk at `pos`, or the bounce buffer at `pos` when `bounced`. */
  private forEachRun(ctx: VirtioContext, toGuest: boolean, skip: number, length: number, pos: number, bounced: boolean): void {
    const chain = this.chain;
    const end = toGuest ? chain.count : chain.readable;
    let left = length;
    let runAddr = 0, runLen = 0;
    for (let i = toGuest ? chain.readable : 0; i < end && left > 0; i++) {
      let l = chain.len[i]!;
      if (skip >= l) { skip -= l; continue; }
      const a = chain.addr[i]! + skip;
      l = Math.min(l - skip, left);
      skip = 0;
      if (runLen > 0 && runAddr + runLen === a) {
        runLen += l;
      } else {
        if (runLen > 0) pos = this.move(ctx, toGuest, runAddr, runLen, pos, bounced);
        runAddr = a;
        runLen = l;
      }
      left -= l;
    }
    if (runLen > 0) this.move(ctx, toGuest, runAddr, runLen, pos, bounced);
  }

  private move(ctx: VirtioContext, toGuest: boolean, addr: number, len: number, pos: number, bounced: boolean): number {
    const mem = ctx.mem;
    const off = mem.offset(addr, len); // >= 0: the chain was checked to lie in RAM
    if (bounced) {
      // Buffer.copy moves bytes between the two without a view object per segment.
      const guest = this.guestBytes(mem.bytes);
      if (toGuest) this.bounceBytes.copy(guest, off, pos, pos + len);
      else guest.copy(this.bounceBytes, pos, off, off + len);
    } else if (toGuest) {
      this.disk.read(pos, mem.bytes.subarray(off, off + len));
    } else {
      this.disk.write(pos, mem.bytes.subarray(off, off + len));
    }
    if (toGuest) mem.wrote(addr, len);
    return pos + len;
  }

  /** A Buffer over guest RAM (made once per RAM array). */
  private guestBytes(bytes: Uint8Array): Buffer {
    if (this.guestBuffer?.buffer !== bytes.buffer || this.guestBuffer.byteOffset !== bytes.byteOffset || this.guestBuffer.length !== bytes.length) {
      this.guestBuffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    }
    return this.guestBuffer;
  }
}
