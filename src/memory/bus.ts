/** An MMIO device as the bus sees it: offsets are relative to the device's base; values unsigned. */
export interface MmioDevice {
  readonly name: string;
  /** size is 1, 2 or 4; 8-byte guest accesses arrive as two 4-byte accesses (low word first). */
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

interface Mapping { base: number; size: number; device: MmioDevice }

/** Dispatches guest physical accesses outside RAM to devices. Unmapped accesses report failure (the CPU raises an access fault). */
export class Bus {
  private readonly maps: Mapping[] = [];

  map(base: number, size: number, device: MmioDevice): void {
    for (const m of this.maps) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new Error(`MMIO region of ${device.name} overlaps ${m.device.name}`);
      }
    }
    this.maps.push({ base, size, device });
    this.maps.sort((a, b) => a.base - b.base);
  }

  find(addr: number): Mapping | undefined {
    for (const m of this.maps) if (addr >= m.base && addr < m.base + m.size) return m;
    return undefined;
  }

  /** Returns the value, or -1 when nothing is mapped there (values are unsigned, so -1 is free). */
  read(addr: number, size: 1 | 2 | 4): number {
    const m = this.find(addr);
    if (!m || addr + size > m.base + m.size) return -1;
    return m.device.read(addr - m.base, size) >>> 0;
  }

  /** Returns false when nothing is mapped there. */
  write(addr: number, size: 1 | 2 | 4, value: number): boolean {
    const m = this.find(addr);
    if (!m || addr + size > m.base + m.size) return false;
    m.device.write(addr - m.base, size, value >>> 0);
    return true;
  }
}

/** The `size`-byte part at byte `offset` (any alignment within the word) of a 32-bit register value. */
export function narrowRead(word: number, offset: number, size: 1 | 2 | 4): number {
  if (size === 4) return word >>> 0;
  return (word >>> ((offset & 3) * 8)) & (size === 1 ? 0xff : 0xffff);
}

/** A 32-bit register value with the `size`-byte part at byte `offset` replaced by `value`. */
export function mergeNarrow(word: number, offset: number, size: 1 | 2 | 4, value: number): number {
  if (size === 4) return value >>> 0;
  const shift = (offset & 3) * 8;
  const mask = (size === 1 ? 0xff : 0xffff) << shift;
  return ((word & ~mask) | ((value << shift) & mask)) >>> 0;
}
