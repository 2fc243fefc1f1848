/**
 * virtio-blk request layout and parsing (VIRTIO 1.x §5.2.6 "Device Operation"), kept apart from
 * execution (device.ts). A request is one descriptor chain:
 *
 *   device-readable:  struct virtio_blk_req header (16 bytes) [+ data for OUT / DISCARD / WRITE_ZEROES]
 *   device-writable:  [data for IN / GET_ID] + u8 status (the chain's last writable byte)
 *
 * Parsing only reads the header and locates the data and status; it does not judge the request
 * (that is the device's job, with status codes).
 */
import type { GuestMemory } from '../../../memory/guest-memory.js';
import type { DescChain } from '../queue.js';

/** struct virtio_blk_req header, little-endian. */
export const enum BlkHeader {
  TYPE = 0, // le32 BlkType
  RESERVED = 4, // le32
  SECTOR = 8, // le64, in 512-byte units whatever blk_size says
  SIZE = 16,
}

export const BlkType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** struct virtio_blk_discard_write_zeroes, the data of DISCARD and WRITE_ZEROES, little-endian. */
export const enum DiscardSegment {
  SECTOR = 0, // le64
  NUM_SECTORS = 8, // le32
  FLAGS = 12, // le32: bit 0 unmap, others reserved
  SIZE = 16,
  F_UNMAP = 1,
}

export const SECTOR_SIZE = 512;
/** GET_ID answers with up to 20 bytes of serial (§5.2.6, VIRTIO_BLK_ID_BYTES). */
export const ID_BYTES = 20;

/** One parsed request; the device reuses a single instance. */
export class BlkRequest {
  type = 0;
  /** Sector from the header; -1 when it is too large to be a byte offset we can represent (answered IOERR). */
  sector = 0;
  /** Bytes of data: readable bytes after the header (OUT, DISCARD, WRITE_ZEROES) or writable bytes before the status (IN, GET_ID). */
  readableData = 0;
  writableData = 0;
  /** Guest physical address of the status byte. */
  statusAddr = 0;
  private readonly header = new Uint8Array(BlkHeader.SIZE);
  private readonly headerView = new DataView(this.header.buffer);

  /** Reads `chain`'s header and status location. False when the chain cannot carry a request (no room for header or status). */
  parse(chain: DescChain, mem: GuestMemory): boolean {
    if (chain.readableBytes < BlkHeader.SIZE || chain.writableBytes < 1) return false;
    if (chain.read(mem, 0, this.header) !== BlkHeader.SIZE) return false;
    const h = this.headerView;
    this.type = h.getUint32(BlkHeader.TYPE, true);
    const lo = h.getUint32(BlkHeader.SECTOR, true);
    const hi = h.getUint32(BlkHeader.SECTOR + 4, true);
    // Sectors at or above 2^44 are beyond any byte offset below 2^53: reject rather than lose precision.
    this.sector = hi < 0x1000 ? hi * 2 ** 32 + lo : -1;
    this.readableData = chain.readableBytes - BlkHeader.SIZE;
    this.writableData = chain.writableBytes - 1;
    // The status byte is the last byte of the last non-empty writable segment.
    let i = chain.count - 1;
    while (chain.len[i] === 0) i--; // stops at a writable segment: writableBytes >= 1
    this.statusAddr = chain.addr[i]! + chain.len[i]! - 1;
    return true;
  }
}
