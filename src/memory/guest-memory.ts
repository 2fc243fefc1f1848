/**
 * Guest RAM as devices see it (DMA): bounds-checked access by guest physical address. Writes are
 * reported through `onWrite` so the CPU can drop translated code on the pages a device overwrote.
 * Every address and length here comes from the guest, so nothing is trusted. Offsets handed out
 * are of resident RAM (residency.ts): a range is brought in before its offset is returned.
 */
import { Residency } from './residency.js';

export class GuestMemory {
  /**
   * @param bytes guest RAM (a view into the VM's WebAssembly.Memory)
   * @param base guest physical address of bytes[0]
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly base: number,
    private readonly onWrite: (pa: number, length: number) => void = () => {},
    private readonly residency = new Residency(),
  ) {}

  get size(): number { return this.bytes.length; }

  /** Offset into `bytes` of [pa, pa+length), or -1 when any part lies outside RAM. */
  offset(pa: number, length: number): number {
    const off = pa - this.base;
    if (!(Number.isSafeInteger(off) && Number.isSafeInteger(length) && off >= 0 && length >= 0 && off + length <= this.bytes.length)) return -1;
    if (this.residency.pager !== undefined) this.residency.pager.ensure(off, length);
    return off;
  }

  /** A live view of [pa, pa+length) (no copy), or undefined when it is not all RAM. Writing through it must be followed by wrote(). */
  view(pa: number, length: number): Uint8Array | undefined {
    const off = this.offset(pa, length);
    return off < 0 ? undefined : this.bytes.subarray(off, off + length);
  }

  /** Copies guest bytes into `into`; false when the range is not all RAM. */
  read(pa: number, into: Uint8Array): boolean {
    const off = this.offset(pa, into.length);
    if (off < 0) return false;
    into.set(this.bytes.subarray(off, off + into.length));
    return true;
  }

  /** Copies `data` into guest RAM; false (and nothing written) when the range is not all RAM. */
  write(pa: number, data: Uint8Array): boolean {
    const off = this.offset(pa, data.length);
    if (off < 0) return false;
    this.bytes.set(data, off);
    if (data.length) this.onWrite(pa, data.length);
    return true;
  }

  /** Reports a write made through view(). */
  wrote(pa: number, length: number): void {
    if (length > 0) this.onWrite(pa, length);
  }

  readU16(pa: number): number { const o = this.offset(pa, 2); return o < 0 ? -1 : this.bytes[o] | (this.bytes[o + 1] << 8); }
  readU32(pa: number): number {
    const o = this.offset(pa, 4);
    return o < 0 ? -1 : (this.bytes[o] | (this.bytes[o + 1] << 8) | (this.bytes[o + 2] << 16) | (this.bytes[o + 3] << 24)) >>> 0;
  }
  writeU16(pa: number, v: number): boolean {
    const o = this.offset(pa, 2);
    if (o < 0) return false;
    this.bytes[o] = v; this.bytes[o + 1] = v >>> 8;
    this.onWrite(pa, 2);
    return true;
  }
  writeU32(pa: number, v: number): boolean {
    const o = this.offset(pa, 4);
    if (o < 0) return false;
    this.bytes[o] = v; this.bytes[o + 1] = v >>> 8; this.bytes[o + 2] = v >>> 16; this.bytes[o + 3] = v >>> 24;
    this.onWrite(pa, 4);
    return true;
  }
}
