/**
 * The trigger module of Sdtrig (RISC-V debug spec 1.0, chapter "Sdtrig"; registers as in its
 * hwbp_registers.xml): TRIGGER_COUNT address triggers, each an mcontrol (type 2) or mcontrol6
 * (type 6), that match the virtual address of an instruction executed, a load or a store in the
 * modes their m/s/u bits select, with action 0: a breakpoint exception (cause 3, tval = the
 * address) before the instruction executes or the access happens.
 *
 * The generated code never looks at triggers, so they cost nothing until one is armed. A virtual
 * page holding an armed trigger's address is kept out of the TLB for that kind of access (every
 * page, for a range match), so each fetch or access there takes the host's slow path, which asks
 * fires(). Translated blocks are entered only after a fetch-TLB hit on their page (jump cache and
 * chaining alike), so code on a watched page falls back to the interpreter without dropping any
 * translation; the TLB is emptied whenever a trigger changes.
 *
 * WARL choices, as QEMU (target/riscv/debug.c) unless said:
 * - tselect keeps its value when written with an index of no trigger (QEMU, Spike).
 * - tdata1 written with a type other than 2 or 6 (0 included) disables the trigger: it reads
 *   type 15 with every other bit 0, as Spike does and as the spec asks of a write of 0 (QEMU
 *   ignores such writes). Triggers start disabled (Spike).
 * - Writable: load, store, execute, u, s, m and match 0 (equal), 2 (>=), 3 (<); other match values
 *   read 0. Read 0: dmode (no Debug Mode), action (only 0), chain, timing (always before), select
 *   (addresses only), size (any), hit, uncertain, vs/vu (no H), maskmax (no NAPOT).
 * - tdata2 holds any 64-bit value; tdata3 (textra) reads 0 and ignores writes: no extra condition.
 * - No tcontrol: reentrancy is solved by the spec's first option (as Spike): triggers do not match
 *   in M-mode while mstatus.MIE = 0, nor in S-mode while medeleg[3] = 1 and sstatus.SIE = 0.
 * - Compare values: the pc for execute; every byte accessed for loads and stores (the spec's
 *   recommendation), so a watched byte inside a wider access matches. tval is the address of the
 *   access (its lowest byte), as Spike. An AMO is both a load and a store; LR a load, SC a store.
 * - Known departure: a misaligned LR/SC/AMO raises its misaligned fault (checked inline, before
 *   the TLB) even where a trigger would have matched first.
 */
import { Access } from '../../isa/emit.js';
import { H } from '../layout.js';
import type { Slots } from '../state.js';
import { Cause, Csr, MS, Priv } from './numbers.js';
import { out } from './csr.js';

export const TRIGGER_COUNT = 4;

/** tdata1 bits (low word) of mcontrol and mcontrol6, which agree on these. */
const enum Bit { Load = 1, Store = 2, Execute = 4, U = 8, S = 16, M = 64, MatchShift = 7 }
const enum Match { Equal = 0, Ge = 2, Lt = 3 }
const WRITABLE = Bit.Load | Bit.Store | Bit.Execute | Bit.U | Bit.S | Bit.M;
/** tdata1's high word of a disabled trigger (type 15). */
const DISABLED_HI = 15 << 28;
/** tinfo: version 1 (Sdtrig 1.0); types 2 and 6 supported. */
const TINFO = (1 << 24) | (1 << 2) | (1 << 6);
/** tdata1's enable bit for each Access (Fetch, Load, Store). */
const ACCESS_BIT = [Bit.Execute, Bit.Load, Bit.Store];
const TWO32 = 0x1_0000_0000;

const tdata1At = (i: number): number => H.TRIGGERS + i * 16;
const tdata2At = (i: number): number => H.TRIGGERS + i * 16 + 8;
const isAddressTrigger = (hi: number): boolean => hi >>> 28 === 2 || hi >>> 28 === 6;
/** Virtual page number of a 64-bit address, exact as a number (below 2^52). */
const vpn = (lo: number, hi: number): number => (hi >>> 0) * 0x10_0000 + (lo >>> 12);
/** Unsigned 64-bit a < b, as halves. */
const below = (alo: number, ahi: number, blo: number, bhi: number): boolean =>
  (ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0));

/** Whether an access of `size` bytes at (lo, hi) has a byte that `match` relates to tdata2 = (tlo, thi). */
function matches(match: number, tlo: number, thi: number, lo: number, hi: number, size: number): boolean {
  if (match === Match.Lt) return below(lo, hi, tlo, thi);
  if (match === Match.Ge) {
    const last = (lo >>> 0) + size - 1;
    return !below(last | 0, last >= TWO32 ? (hi + 1) | 0 : hi, tlo, thi);
  }
  // Equal: tdata2 - address < size.
  const dlo = (tlo >>> 0) - (lo >>> 0);
  return ((thi - hi - (dlo < 0 ? 1 : 0)) | 0) === 0 && dlo >>> 0 < size;
}

export class Triggers {
  /** Bit (1 << Access) set while some trigger is armed for that access: only then do slow paths ask. */
  armed = 0;
  /** Per Access: the virtual pages kept out of the TLB (equal matches), or all of them (a range match). */
  private readonly pages: number[][] = [[], [], []];
  private readonly everyPage = [false, false, false];

  /** `changed` empties the hart's TLB, so pages newly watched are looked up again. */
  constructor(private readonly s: Slots, private readonly changed: () => void) {}

  /** Reads trigger CSR n (tselect..tinfo) into `out`. */
  read(n: number): true {
    const s = this.s, i = s.csrLo(Csr.tselect);
    if (n === Csr.tselect) { out.lo = i; out.hi = 0; }
    else if (n === Csr.tdata1) { out.lo = s.lo(tdata1At(i)); out.hi = s.hi(tdata1At(i)); }
    else if (n === Csr.tdata2) { out.lo = s.lo(tdata2At(i)); out.hi = s.hi(tdata2At(i)); }
    else { out.lo = n === Csr.tinfo ? TINFO : 0; out.hi = 0; }
    return true;
  }

  /** Writes trigger CSR n; tdata3 and tinfo ignore writes. */
  write(n: number, lo: number, hi: number): true {
    const s = this.s, i = s.csrLo(Csr.tselect);
    if (n === Csr.tselect) {
      if (hi === 0 && lo >>> 0 < TRIGGER_COUNT) s.setCsr(n, lo, 0);
      return true;
    }
    if (n === Csr.tdata1) this.setTdata1(i, lo, hi);
    else if (n === Csr.tdata2) s.set(tdata2At(i), lo, hi);
    else return true;
    this.update();
    this.changed();
    return true;
  }

  /**
   * Makes the stored triggers legal and recomputes what is armed: after a reset zeroed the state
   * (zeros read as disabled), or after a snapshot's bytes were restored (older ones hold zeros here).
   */
  resync(): void {
    const s = this.s;
    if (s.csrHi(Csr.tselect) !== 0 || s.csrLo(Csr.tselect) >>> 0 >= TRIGGER_COUNT) s.setCsr(Csr.tselect, 0, 0);
    for (let i = 0; i < TRIGGER_COUNT; i++) this.setTdata1(i, s.lo(tdata1At(i)), s.hi(tdata1At(i)));
    this.update();
  }

  /** Whether the TLB must not hold the page of (lo, hi) for `access`. */
  keepsOut(access: Access, lo: number, hi: number): boolean {
    // AMOs read through the store TLB: it serves no page that a load trigger watches either.
    return this.watches(access, lo, hi) || (access === Access.Store && this.watches(Access.Load, lo, hi));
  }

  private watches(access: Access, lo: number, hi: number): boolean {
    if (!(this.armed & (1 << access))) return false;
    return this.everyPage[access] || this.pages[access].includes(vpn(lo, hi));
  }

  /** Whether an access of `size` bytes at (lo, hi) (the pc, size 1, for Fetch) fires a trigger now. */
  fires(access: Access, lo: number, hi: number, size: number): boolean {
    if (!(this.armed & (1 << access))) return false;
    const s = this.s, priv = s.lo(H.PRIV) as Priv, ms = s.csrLo(Csr.mstatus);
    if (priv === Priv.M ? !(ms & MS.MIE) : priv === Priv.S && s.csrLo(Csr.medeleg) & (1 << Cause.Breakpoint) && !(ms & MS.SIE)) return false;
    const need = ACCESS_BIT[access] | (priv === Priv.M ? Bit.M : priv === Priv.S ? Bit.S : Bit.U);
    for (let i = 0; i < TRIGGER_COUNT; i++) {
      const c = s.lo(tdata1At(i));
      if ((c & need) !== need || !isAddressTrigger(s.hi(tdata1At(i)))) continue;
      if (matches((c >>> Bit.MatchShift) & 15, s.lo(tdata2At(i)), s.hi(tdata2At(i)), lo, hi, size)) return true;
    }
    return false;
  }

  private setTdata1(i: number, lo: number, hi: number): void {
    const match = (lo >>> Bit.MatchShift) & 15;
    const legalMatch = match === Match.Ge || match === Match.Lt ? match : Match.Equal;
    if (isAddressTrigger(hi)) this.s.set(tdata1At(i), (lo & WRITABLE) | (legalMatch << Bit.MatchShift), hi & (15 << 28));
    else this.s.set(tdata1At(i), 0, DISABLED_HI);
  }

  private update(): void {
    const s = this.s;
    this.armed = 0;
    for (let a = Access.Fetch; a <= Access.Store; a++) { this.pages[a].length = 0; this.everyPage[a] = false; }
    for (let i = 0; i < TRIGGER_COUNT; i++) {
      const c = s.lo(tdata1At(i));
      if (!isAddressTrigger(s.hi(tdata1At(i))) || !(c & (Bit.U | Bit.S | Bit.M))) continue;
      for (let a = Access.Fetch; a <= Access.Store; a++) {
        if (!(c & ACCESS_BIT[a])) continue;
        this.armed |= 1 << a;
        // A watched byte's access starts on its page or crosses into it (and crossing accesses take the slow path anyway).
        if (((c >>> Bit.MatchShift) & 15) === Match.Equal) this.pages[a].push(vpn(s.lo(tdata2At(i)), s.hi(tdata2At(i))));
        else this.everyPage[a] = true;
      }
    }
  }
}
