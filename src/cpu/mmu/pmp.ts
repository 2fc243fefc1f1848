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

/** Whether [paddr, paddr+size) may be accessed; M-mode is checked only against locked entries. */
export function pmpAllows(s: Slots, paddr: number, size: number, access: Access, priv: Priv): boolean {
  for (let i = 0; i < PMP_ENTRIES; i++) {
    const cfg = pmpCfg(s, i);
    const a = (cfg >> 3) & 3;
    if (a === A.OFF) continue;
    let base: number, end: number;
    if (a === A.TOR) { base = i === 0 ? 0 : pmpAddr(s, i - 1); end = pmpAddr(s, i); }
    else if (a === A.NA4) { base = pmpAddr(s, i); end = base + 4; }
    else { const [b, sz] = napot(s, i); base = b; end = b + sz; }
    if (!(base < paddr + size && paddr < end)) continue;
    if (!(base <= paddr && paddr + size <= end)) return false; // partially covered
    if (priv === Priv.M && !(cfg & 0x80)) return true;
    const bit = access === Access.Fetch ? 4 : access === Access.Store ? 2 : 1;
    return (cfg & bit) !== 0;
  }
  return priv === Priv.M;
}
