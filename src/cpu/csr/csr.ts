/**
 * The CSR table: which CSRs exist, who may access them, and their WARL write rules (as QEMU's
 * target/riscv/csr.c, in the small). Values are handled as 32-bit halves.
 */
import {
  ALL_INTERRUPTS, Csr, MEDELEG_WRITABLE, MIP_WRITABLE, MISA_HI, MISA_LO, MS, Priv, SSTATUS_MASK, S_INTERRUPTS,
} from './numbers.js';
import { PMP_ENTRIES, pmpCfg } from '../mmu/pmp.js';
import type { Hart } from '../hart.js';

/** Result of a read, in halves (reused; no allocation per access). */
export const out = { lo: 0, hi: 0 };

const counterBit = (n: number): number => n & 31;

function counterAllowed(h: Hart, n: number): boolean {
  const bit = 1 << counterBit(n);
  if (h.priv === Priv.M) return true;
  if (!(h.s.csrLo(Csr.mcounteren) & bit)) return false;
  return h.priv === Priv.S || (h.s.csrLo(Csr.scounteren) & bit) !== 0;
}

function setOut(lo: number, hi: number): true { out.lo = lo; out.hi = hi; return true; }
function setNum(v: number): true { return setOut(v % 0x1_0000_0000 | 0, Math.floor(v / 0x1_0000_0000) | 0); }

/** Reads CSR n into `out`; false when it does not exist or is not accessible (illegal instruction). */
export function readCsr(h: Hart, n: number): boolean {
  const s = h.s;
  switch (n) {
    case Csr.fflags: return h.fpOn() && setOut(s.csrLo(Csr.fcsr) & 0x1f, 0);
    case Csr.frm: return h.fpOn() && setOut((s.csrLo(Csr.fcsr) >>> 5) & 7, 0);
    case Csr.fcsr: return h.fpOn() && setOut(s.csrLo(Csr.fcsr) & 0xff, 0);
    case Csr.cycle: case Csr.instret: case Csr.time:
      if (!counterAllowed(h, n)) return false;
      return setNum(n === Csr.time ? h.mtime() : h.instret());
    case Csr.mcycle: case Csr.minstret: return setNum(h.instret());
    case Csr.sstatus: return setOut(s.csrLo(Csr.mstatus) & SSTATUS_MASK, s.csrHi(Csr.mstatus) & (0x8000_0000 | 3));
    case Csr.sie: return setOut(s.csrLo(Csr.mie) & s.csrLo(Csr.mideleg), 0);
    case Csr.sip: return setOut(h.mip() & s.csrLo(Csr.mideleg), 0);
    case Csr.mip: return setOut(h.mip(), 0);
    case Csr.satp:
      if (h.priv === Priv.S && s.csrLo(Csr.mstatus) & MS.TVM) return false;
      return setOut(s.csrLo(n), s.csrHi(n));
    case Csr.misa: return setOut(MISA_LO, MISA_HI);
    case Csr.mhartid: return setOut(h.index, 0);
    case Csr.mvendorid: case Csr.marchid: case Csr.mimpid: case Csr.mconfigptr: return setOut(0, 0);
    case Csr.tselect: case Csr.tdata1: case Csr.tdata2: case Csr.tdata3: case Csr.tinfo: return h.triggers.read(n);
    case Csr.stvec: case Csr.scounteren: case Csr.senvcfg: case Csr.sscratch: case Csr.sepc: case Csr.scause:
    case Csr.stval: case Csr.mstatus: case Csr.medeleg: case Csr.mideleg: case Csr.mie: case Csr.mtvec:
    case Csr.mcounteren: case Csr.menvcfg: case Csr.mcountinhibit: case Csr.mscratch: case Csr.mepc:
    case Csr.mcause: case Csr.mtval: case Csr.pmpcfg0: case Csr.pmpcfg2:
      return setOut(s.csrLo(n), s.csrHi(n));
  }
  if (n >= Csr.pmpaddr0 && n < Csr.pmpaddr0 + PMP_ENTRIES) return setOut(s.csrLo(n), s.csrHi(n));
  // Performance-monitoring counters and events exist and read as zero.
  if ((n >= 0xb03 && n <= 0xb1f) || (n >= 0x323 && n <= 0x33f)) return setOut(0, 0);
  if (n >= 0xc03 && n <= 0xc1f) return counterAllowed(h, n) && setOut(0, 0);
  return false;
}

/** Writes CSR n (already known readable); false when the write is illegal. */
export function writeCsr(h: Hart, n: number, lo: number, hi: number): boolean {
  const s = h.s;
  switch (n) {
    case Csr.fflags: s.setCsr(Csr.fcsr, (s.csrLo(Csr.fcsr) & ~0x1f) | (lo & 0x1f), 0); h.markFpDirty(); return true;
    case Csr.frm: s.setCsr(Csr.fcsr, (s.csrLo(Csr.fcsr) & 0x1f) | ((lo & 7) << 5), 0); h.markFpDirty(); return true;
    case Csr.fcsr: s.setCsr(Csr.fcsr, lo & 0xff, 0); h.markFpDirty(); return true;
    case Csr.mstatus: h.setMstatus(lo); return true;
    case Csr.sstatus: h.setMstatus((s.csrLo(Csr.mstatus) & ~SSTATUS_MASK) | (lo & SSTATUS_MASK)); return true;
    case Csr.mie: s.setCsr(n, lo & ALL_INTERRUPTS, 0); return true;
    case Csr.sie: {
      const d = s.csrLo(Csr.mideleg);
      s.setCsr(Csr.mie, (s.csrLo(Csr.mie) & ~d) | (lo & d & S_INTERRUPTS), 0);
      return true;
    }
    case Csr.mip: s.setCsr(n, (s.csrLo(n) & ~MIP_WRITABLE) | (lo & MIP_WRITABLE), 0); return true;
    case Csr.sip: {
      const m = s.csrLo(Csr.mideleg) & (1 << 1); // only SSIP is writable from S-mode
      s.setCsr(Csr.mip, (s.csrLo(Csr.mip) & ~m) | (lo & m), 0);
      return true;
    }
    case Csr.medeleg: s.setCsr(n, lo & MEDELEG_WRITABLE, 0); return true;
    case Csr.mideleg: s.setCsr(n, lo & S_INTERRUPTS, 0); return true;
    case Csr.mtvec: case Csr.stvec: s.setCsr(n, lo & ~2, hi); return true; // modes 0 and 1 only
    case Csr.mepc: case Csr.sepc: s.setCsr(n, lo & ~1, hi); return true;
    case Csr.mcounteren: case Csr.scounteren: s.setCsr(n, lo, 0); return true;
    case Csr.mcountinhibit: s.setCsr(n, lo & ~2, 0); return true;
    case Csr.menvcfg: case Csr.senvcfg: s.setCsr(n, lo & 1, 0); return true; // FIOM only
    case Csr.mscratch: case Csr.sscratch: case Csr.mtval: case Csr.stval: s.setCsr(n, lo, hi); return true;
    case Csr.mcause: case Csr.scause: s.setCsr(n, lo, hi & 0x8000_0000); return true;
    case Csr.satp: {
      const mode = hi >>> 28;
      if (mode !== 0 && mode !== 8 && mode !== 9) return true; // unsupported mode: the write has no effect
      s.setCsr(n, lo, (hi & 0xf000_0fff)); // no ASID bits
      h.mmu.flush(false);
      return true;
    }
    case Csr.mcycle: case Csr.minstret: h.setInstret(hi, lo); return true;
    case Csr.tselect: case Csr.tdata1: case Csr.tdata2: case Csr.tdata3: case Csr.tinfo: return h.triggers.write(n, lo, hi);
    case Csr.pmpcfg0: case Csr.pmpcfg2: {
      // Keep locked entries; the reserved R=0,W=1 combination is not writable.
      const fix = (w: number, old: number): number => {
        let r = 0;
        for (let b = 0; b < 32; b += 8) {
          let c = (w >>> b) & 0xff;
          const o = (old >>> b) & 0xff;
          if (o & 0x80) c = o;
          else if ((c & 3) === 2) c &= ~2;
          r |= (c & 0x9f) << b;
        }
        return r;
      };
      s.setCsr(n, fix(lo, s.csrLo(n)), fix(hi, s.csrHi(n)));
      h.mmu.flush(true);
      return true;
    }
  }
  if (n >= Csr.pmpaddr0 && n < Csr.pmpaddr0 + PMP_ENTRIES) {
    // A locked entry's address is frozen, and so is the one below a locked TOR entry.
    const i = n - Csr.pmpaddr0;
    const next = i + 1 < PMP_ENTRIES ? pmpCfg(s, i + 1) : 0;
    if (pmpCfg(s, i) & 0x80 || (next & 0x80 && ((next >> 3) & 3) === 1)) return true;
    s.setCsr(n, lo, hi & 0x3f_ffff);
    h.mmu.flush(true);
    return true;
  }
  if ((n >= 0xb03 && n <= 0xb1f) || (n >= 0x323 && n <= 0x33f)) return true;
  // Read-only CSRs (misa, mhartid, ...) ignore writes when the encoding allows writing.
  return n === Csr.misa;
}

