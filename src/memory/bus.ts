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
