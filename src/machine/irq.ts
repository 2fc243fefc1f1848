/**
 * How board devices raise interrupts on harts. The CPU implements HartInterrupts; the CLINT
 * drives MSIP/MTIP and the PLIC drives MEIP/SEIP through it. Bits are `mip` bit numbers
 * (RISC-V Privileged Architecture §3.1.9).
 */
export interface HartInterrupts {
  /** Sets (level true) or clears mip[mipBit] of `hart`. Called whenever a device recomputes a line, possibly with an unchanged level. */
  setPending(hart: number, mipBit: number, level: boolean): void;
}

/** mip bit numbers. */
export const Mip = {
  SSIP: 1,
  MSIP: 3,
  STIP: 5,
  MTIP: 7,
  SEIP: 9,
  MEIP: 11,
} as const;

/** A level-triggered interrupt line into an interrupt controller (e.g. one PLIC source). */
export type IrqLine = (level: boolean) => void;
