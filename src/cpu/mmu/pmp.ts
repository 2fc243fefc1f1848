/** Physical memory protection: 16 entries, checked when the TLB is filled (privileged spec, "Physical Memory Protection"). */
import { Csr, Priv } from '../csr/numbers.js';
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

/** Decoded entries, per Slots, rebuilt when any pmpcfg/pmpaddr word changes (checked by comparing raw words). */
interface Decoded { raw: Int32Array; cfg: Uint8Array; base: Float64Array; end: Float64Array; active: number[] }
const decodedBy = new WeakMap<Slots, Decoded>();
const RAW_WORDS = 4 + 2 * PMP_ENTRIES;

function rawWord(s: Slots, k: number): number {
  if (k < 4) { const n = k < 2 ? Csr.pmpcfg0 : Csr.pmpcfg2; return k & 1 ? s.csrHi(n) : s.csrLo(n); }
  const i = (k - 4) >> 1;
  return k & 1 ? s.csrHi(Csr.pmpaddr0 + i) : s.csrLo(Csr.pmpaddr0 + i);
}

function decoded(s: Slots): Decoded {
  let d = decodedBy.get(s);
  if (d) {
    let same = true;
    for (let k = 0; k < RAW_WORDS && same; k++) same = d.raw[k] === rawWord(s, k);
    if (same) return d;
  } else {
    d = { raw: new Int32Array(RAW_WORDS), cfg: new Uint8Array(PMP_ENTRIES), base: new Float64Array(PMP_ENTRIES), end: new Float64Array(PMP_ENTRIES), active: [] };
    decodedBy.set(s, d);
  }
  for (let k = 0; k < RAW_WORDS; k++) d.raw[k] = rawWord(s, k);
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

/** Whether [paddr, paddr+size) may be accessed; M-mode is checked only against locked entries. */
export function pmpAllows(s: Slots, paddr: number, size: number, access: Access, priv: Priv): boolean {
  const d = decoded(s);
  for (const i of d.active) {
    const base = d.base[i], end = d.end[i], cfg = d.cfg[i];
    if (!(base < paddr + size && paddr < end)) continue;
    if (!(base <= paddr && paddr + size <= end)) return false; // partially covered
    if (priv === Priv.M && !(cfg & 0x80)) return true;
    const bit = access === Access.Fetch ? 4 : access === Access.Store ? 2 : 1;
    return (cfg & bit) !== 0;
  }
  return priv === Priv.M;
}
