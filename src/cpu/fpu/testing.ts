/**
 * Test support for the FPU: one hart's state in a private buffer, instructions built from the
 * isa/rv-fd.ts rows by name, and BigInt accessors for registers and CSRs. Not used at run time.
 */
import { FD_INSNS, type FdRow } from '../../isa/rv-fd.js';
import { H, hartBase } from '../layout.js';
import { fpExecute, type FpState } from './execute.js';

export const FCSR = 0x003;
export const MSTATUS = 0x300;

const byName = new Map<string, FdRow>(FD_INSNS.map((r) => [r.name, r]));

export function row(name: string): FdRow {
  const r = byName.get(name);
  if (!r) throw new Error(`No FP instruction ${name}`);
  return r;
}

/** Whether the row's rm field is free (the instruction rounds, or at least decodes rm). */
export const hasRm = (r: FdRow): boolean => (r.mask & 0x7000) === 0;

export interface Regs { rd?: number; rs1?: number; rs2?: number; rs3?: number; rm?: number }

/** The instruction word for `name` with the given registers; rm defaults to 7 (dynamic) where it exists. */
export function encode(name: string, o: Regs = {}): number {
  const r = row(name);
  let w = r.match | ((o.rd ?? 0) << 7) | ((o.rs1 ?? 0) << 15);
  if ((r.mask & (31 << 20)) === 0) w |= (o.rs2 ?? 0) << 20;
  if ((r.mask & (31 << 27)) === 0) w |= (o.rs3 ?? 0) << 27;
  if (hasRm(r)) w |= (o.rm ?? 7) << 12;
  return w | 0;
}

const M64 = (1n << 64n) - 1n;

export class FpHarness {
  readonly hb = hartBase(0);
  readonly buf = new ArrayBuffer(hartBase(1));
  readonly s: FpState = {
    u32: new Uint32Array(this.buf), i32: new Int32Array(this.buf), f32: new Float32Array(this.buf),
    f64: new Float64Array(this.buf), u8: new Uint8Array(this.buf),
  };
  private readonly dv = new DataView(this.buf);

  private get64(off: number): bigint { return this.dv.getBigUint64(this.hb + off, true); }
  private set64(off: number, v: bigint): void { this.dv.setBigUint64(this.hb + off, v & M64, true); }

  f(r: number): bigint { return this.get64(H.F + 8 * r); }
  setF(r: number, v: bigint): void { this.set64(H.F + 8 * r, v); }
  /** A binary32 value NaN-boxed into f[r]. */
  setS(r: number, bits: number): void { this.setF(r, 0xffff_ffff_0000_0000n | BigInt(bits >>> 0)); }
  setD(r: number, v: number): void { this.dv.setFloat64(this.hb + H.F + 8 * r, v, true); }
  setFloat(r: number, v: number): void { const t = new DataView(new ArrayBuffer(4)); t.setFloat32(0, v); this.setS(r, t.getUint32(0)); }
  x(r: number): bigint { return this.get64(H.X + 8 * r); }
  setX(r: number, v: bigint): void { this.set64(H.X + 8 * r, v); }
  csr(n: number): bigint { return this.get64(H.CSR + 8 * n); }
  setCsr(n: number, v: bigint): void { this.set64(H.CSR + 8 * n, v); }

  get fflags(): number { return Number(this.csr(FCSR) & 31n); }
  set frm(v: number) { this.setCsr(FCSR, (this.csr(FCSR) & ~0xe0n) | (BigInt(v) << 5n)); }
  clearFlags(): void { this.setCsr(FCSR, this.csr(FCSR) & ~31n); }

  /** Runs one instruction; returns fpExecute's status (0 done, 1 illegal). */
  exec(name: string, o: Regs = {}): number {
    const sem = row(name).fp;
    return fpExecute(this.s, this.hb, sem.op, encode(name, o));
  }
}

/** Bits of a binary32 value. */
export function f32bits(v: number): number { const t = new DataView(new ArrayBuffer(4)); t.setFloat32(0, v); return t.getUint32(0); }
/** Bits of a binary64 value. */
export function f64bits(v: number): bigint { const t = new DataView(new ArrayBuffer(8)); t.setFloat64(0, v); return t.getBigUint64(0); }
export function f32of(bits: number): number { const t = new DataView(new ArrayBuffer(4)); t.setUint32(0, bits >>> 0); return t.getFloat32(0); }
export function f64of(bits: bigint): number { const t = new DataView(new ArrayBuffer(8)); t.setBigUint64(0, bits & M64); return t.getFloat64(0); }
