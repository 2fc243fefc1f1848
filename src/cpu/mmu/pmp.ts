/** Physical memory protection: 16 entries, checked when the TLB is filled (privileged spec, "Physical Memory Protection"). */
import { Csr, Priv } from '../csr/numbers.js';
import { H } from '../layout.js';
import type { Slots } from '../state.js';
import { Access } from '../../isa/emit.js';

export const PMP_ENTRIES = 16;
const enum A { OFF = 0, TOR = 1, NA4 = 2, NAPOT = 3 }
const TWO32 = 0x1_0000_0000;

export function pmpCfg(s: Slots, i: number): number {
  const n = i < 8 ? Csr.pmpcfg0 : Csr.pmpcfg2;
  const j = i & 7;
  const word = j < 4 ? s.csrLo(n) : s.csrHi(n);
  return (word >>> ((j & 3) * 8)) & 0xff;
}

/** pmpaddr holds address bits 55:2. */
const pmpAddr = (s: Slots, i: number): number =>
  ((s.csrHi(Csr.pmpaddr0 + i) & 0x3f_ffff) * TWO32 + (s.csrLo(Csr.pmpaddr0 + i) >>> 0)) * 4;

function napot(s: Slots, i: number): [base: number, size: number] {
  let lo = s.csrLo(Csr.pmpaddr0 + i) >>> 0, hi = s.csrHi(Csr.pmpaddr0 + i) & 0x3f_ffff;
  let t = 0;
  while (t < 54 && ((t < 32 ? lo >>> t : hi >>> (t - 32)) & 1)) t++;
  if (t >= 50) return [0, Infinity];
  const size = 2 ** (t + 3);
  const v = (hi * TWO32 + lo) * 4;
  return [v - (v % size), size];
}

/**
 * Decoded entries, per Slots, rebuilt when any pmpcfg/pmpaddr word changes: checked on every use by
 * comparing the raw CSR words (a CSR write, a snapshot restore or a debugger may change them), which
 * is a tight loop over the state memory, while decoding is not.
 */
/** The PMP entries as decoded from the CSRs (pmpEntries); valid until the next pmp CSR change. */
export interface PmpEntries { raw: Int32Array; cfg: Uint8Array; base: Float64Array; end: Float64Array; active: number[] }
const decodedBy = new WeakMap<Slots, PmpEntries>();
/** pmpcfg0..3 (1 and 3 do not exist on RV64 and stay 0), then pmpaddr0..15: two i32 words each. */
const CFG_WORDS = 2 * 4, ADDR_WORDS = 2 * PMP_ENTRIES;
const RAW_WORDS = CFG_WORDS + ADDR_WORDS;
const cfgWord = (s: Slots): number => (s.base + H.CSR + Csr.pmpcfg0 * 8) >> 2;
const addrWord = (s: Slots): number => (s.base + H.CSR + Csr.pmpaddr0 * 8) >> 2;
let lastSlots: Slots | undefined;
let lastDecoded: PmpEntries | undefined;

function unchanged(s: Slots, raw: Int32Array): boolean {
  const m = s.v.i32;
  const c = cfgWord(s), a = addrWord(s);
  for (let k = 0; k < CFG_WORDS; k++) if (m[c + k] !== raw[k]) return false;
  for (let k = 0; k < ADDR_WORDS; k++) if (m[a + k] !== raw[CFG_WORDS + k]) return false;
  return true;
}

/** The hart's PMP entries, decoded again only when a pmpcfg/pmpaddr word changed. */
export function pmpEntries(s: Slots): PmpEntries {
  let d = s === lastSlots ? lastDecoded : decodedBy.get(s);
  if (d) {
    lastSlots = s;
    lastDecoded = d;
    if (unchanged(s, d.raw)) return d;
  } else {
    d = { raw: new Int32Array(RAW_WORDS), cfg: new Uint8Array(PMP_ENTRIES), base: new Float64Array(PMP_ENTRIES), end: new Float64Array(PMP_ENTRIES), active: [] };
    decodedBy.set(s, d);
    lastSlots = s;
    lastDecoded = d;
  }
  const m = s.v.i32;
  d.raw.set(m.subarray(cfgWord(s), cfgWord(s) + CFG_WORDS), 0);
  d.raw.set(m.subarray(addrWord(s), addrWord(s) + ADDR_WORDS), CFG_WORDS);
  d.active = [];
  for (let i = 0; i < PMP_ENTRIES; i++) {
    const cfg = d.cfg[i] = pmpCfg(s, i);
    const a = (cfg >> 3) & 3;
    if (a === A.OFF) continue;
    if (a === A.TOR) { d.base[i] = i === 0 ? 0 : pmpAddr(s, i - 1); d.end[i] = pmpAddr(s, i); }
    else if (a === A.NA4) { d.base[i] = pmpAddr(s, i); d.end[i] = d.base[i] + 4; }
    else { const [b, sz] = napot(s, i); d.base[i] = b; d.end[i] = b + sz; }
    d.active.push(i);
  }
  return d;
}

/** Whether [paddr, paddr+size) may be accessed under `d` (pmpEntries); M-mode is checked only against locked entries. */
export function pmpAllows(d: PmpEntries, paddr: number, size: number, access: Access, priv: Priv): boolean {
  for (const i of d.active) {
    const base = d.base[i]!, end = d.end[i]!, cfg = d.cfg[i]!;
    if (!(base < paddr + size && paddr < end)) continue;
    if (!(base <= paddr && paddr + size <= end)) return false; // partially covered
    if (priv === Priv.M && !(cfg & 0x80)) return true;
    const bit = access === Access.Fetch ? 4 : access === Access.Store ? 2 : 1;
    return (cfg & bit) !== 0;
  }
  return priv === Priv.M;
}
