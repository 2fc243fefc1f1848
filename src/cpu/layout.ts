/**
 * Where guest-visible state lives in the VM's one WebAssembly.Memory.
 *
 *   0x0000_0000  global area (reserved)
 *   0x0001_0000  hart 0 state (HART_STRIDE bytes), hart 1, ... up to MAX_HARTS
 *   RAM_OFFSET   guest RAM (guest physical RAM_BASE maps here)
 *
 * Per hart, at byte offsets from the hart base (all little-endian):
 *   X      x0..x31, 32 × i64
 *   F      f0..f31, 32 × 64-bit (f32 values NaN-boxed: upper 32 bits all ones)
 *   PC     i64
 *   PRIV   i32 privilege mode (0 U, 1 S, 3 M)
 *   EXIT   i32 non-zero asks the interpreter loop to return to the host after this instruction
 *   FS_ON  i32 non-zero when mstatus.FS != Off (FP instructions legal)
 *   SCRATCH_ADDR / SCRATCH_VAL  i64 slots to pass 64-bit values across the wasm↔JS boundary
 *   RESV_ADDR i64 LR reservation (physical), RESV_VALID i32
 *   JIT_INSNS, BUDGET_END  i64 JIT statistics and the budget translated loops respect
 *   TRIGGERS  the debug triggers (csr/triggers.ts): TRIGGER_COUNT × {tdata1, tdata2} i64
 *   CSR    4096 × i64, indexed by CSR number (fcsr at 0x003 holds fflags | frm << 5)
 *   TLB    software TLB (see mmu/tlb.ts)
 */
export const HARTS_BASE = 0x1_0000;
export const HART_STRIDE = 0x8_0000;
export const MAX_HARTS = 8;
export const RAM_OFFSET = HARTS_BASE + HART_STRIDE * MAX_HARTS; // 0x41_0000
export const RAM_BASE = 0x8000_0000;

export const enum H {
  X = 0,
  F = 0x100,
  PC = 0x200,
  PRIV = 0x208,
  EXIT = 0x20c,
  FS_ON = 0x210,
  /** Interpreter's executed-instruction counter, flushed on every exit / host call. */
  INSTRET = 0x218,
  SCRATCH_ADDR = 0x220,
  SCRATCH_VAL = 0x228,
  RESV_ADDR = 0x230,
  RESV_VALID = 0x238,
  /** Byte offsets (from hart base) of the TLB sets currently used for fetch and for loads/stores. */
  TLB_FETCH = 0x240,
  TLB_LOAD = 0x244,
  TLB_STORE = 0x248,
  /** Instructions retired inside translated blocks (JIT statistics), i64. */
  JIT_INSNS = 0x250,
  /** INSTRET value at which the current run's budget is spent: translated loops stop there, i64. */
  BUDGET_END = 0x258,
  /** Debug triggers (csr/triggers.ts): per trigger, tdata1 then tdata2 (i64 each). */
  TRIGGERS = 0x300,
  CSR = 0x1000,
  TLB = 0x9000,
  /** JIT jump cache (jit/jit.ts): JC_ENTRIES × 32 bytes {tag i64 = pc, table index i32 (-1: none yet), priv i32, heat i32, host address of pc i32}. */
  JC = 0x3_9000,
}

/** A hart's architectural state: everything below the TLB (which, like the jump cache, is rebuilt, not saved). */
export const HART_STATE_BYTES = H.TLB;

export const JC_ENTRIES = 4096;
export const JC_ENTRY = 32;

export const hartBase = (hart: number): number => HARTS_BASE + hart * HART_STRIDE;
