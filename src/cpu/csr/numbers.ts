/** CSR numbers and field bits used by the hart (privileged spec, "Control and Status Registers"). */
export const enum Csr {
  fflags = 0x001, frm = 0x002, fcsr = 0x003,
  cycle = 0xc00, time = 0xc01, instret = 0xc02,
  sstatus = 0x100, sie = 0x104, stvec = 0x105, scounteren = 0x106, senvcfg = 0x10a,
  sscratch = 0x140, sepc = 0x141, scause = 0x142, stval = 0x143, sip = 0x144, satp = 0x180,
  mstatus = 0x300, misa = 0x301, medeleg = 0x302, mideleg = 0x303, mie = 0x304, mtvec = 0x305,
  mcounteren = 0x306, menvcfg = 0x30a, mcountinhibit = 0x320,
  mscratch = 0x340, mepc = 0x341, mcause = 0x342, mtval = 0x343, mip = 0x344,
  pmpcfg0 = 0x3a0, pmpcfg2 = 0x3a2, pmpaddr0 = 0x3b0,
  tselect = 0x7a0, tdata1 = 0x7a1, tdata2 = 0x7a2, tdata3 = 0x7a3, tinfo = 0x7a4,
  mcycle = 0xb00, minstret = 0xb02,
  mvendorid = 0xf11, marchid = 0xf12, mimpid = 0xf13, mhartid = 0xf14, mconfigptr = 0xf15,
}

/** mstatus bits (low word). */
export const enum MS {
  SIE = 1 << 1, MIE = 1 << 3, SPIE = 1 << 5, UBE = 1 << 6, MPIE = 1 << 7, SPP = 1 << 8,
  MPP = 3 << 11, MPP_SHIFT = 11, FS = 3 << 13, FS_SHIFT = 13, XS = 3 << 15, MPRV = 1 << 17, SUM = 1 << 18,
  MXR = 1 << 19, TVM = 1 << 20, TW = 1 << 21, TSR = 1 << 22, VS = 3 << 9,
}

/** Interrupt numbers (mip/mie bits). */
export const enum Irq { SSI = 1, MSI = 3, STI = 5, MTI = 7, SEI = 9, MEI = 11 }

export const enum Priv { U = 0, S = 1, M = 3 }

export const enum Cause {
  InsnMisaligned = 0, InsnAccess = 1, Illegal = 2, Breakpoint = 3, LoadMisaligned = 4, LoadAccess = 5,
  StoreMisaligned = 6, StoreAccess = 7, EcallU = 8, EcallS = 9, EcallM = 11,
  InsnPage = 12, LoadPage = 13, StorePage = 15,
}

/** misa: MXL=2 (RV64) and extensions A C D F I M S U. */
export const MISA_LO = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);
export const MISA_HI = 2 << 30;

export const MSTATUS_WRITABLE = MS.SIE | MS.MIE | MS.SPIE | MS.MPIE | MS.SPP | MS.MPP | MS.FS | MS.MPRV | MS.SUM |
  MS.MXR | MS.TVM | MS.TW | MS.TSR;
export const SSTATUS_MASK = MS.SIE | MS.SPIE | MS.UBE | MS.SPP | MS.VS | MS.FS | MS.XS | MS.SUM | MS.MXR;
/** UXL = SXL = 2 (64-bit), fixed. */
export const MSTATUS_HI_FIXED = 0xa;

/** Interrupts that S-mode software may see/enable when delegated; the ones M-mode software can write in mip. */
export const S_INTERRUPTS = (1 << Irq.SSI) | (1 << Irq.STI) | (1 << Irq.SEI);
export const MIP_WRITABLE = S_INTERRUPTS;
export const ALL_INTERRUPTS = S_INTERRUPTS | (1 << Irq.MSI) | (1 << Irq.MTI) | (1 << Irq.MEI);
/** Exceptions that may be delegated to S-mode (all but ecall from M). */
export const MEDELEG_WRITABLE = 0xb3ff;
