/**
 * NS16550A UART (reg-shift 0, 8-bit registers), modelled on QEMU's hw/char/serial.c so that
 * Linux's 8250 driver and OpenSBI's uart8250 driver both work.
 *
 *   off  DLAB=0 read / write     DLAB=1
 *   0    RBR / THR               DLL
 *   1    IER                     DLM
 *   2    IIR / FCR
 *   3    LCR (bit 7 = DLAB)
 *   4    MCR
 *   5    LSR
 *   6    MSR
 *   7    SCR
 *
 * Transmission is instantaneous: every THR write goes to onOutput at once, so THRE and TEMT are
 * always set. Reception is fed by pushInput into a FIFO (grows as needed up to RX_LIMIT bytes,
 * beyond which input is dropped with LSR.OE). Interrupt identification, highest first:
 * receiver line status (OE, IER.ELSI) > received data (IER.ERBFI; "data available" at or above
 * the FCR trigger level, "character timeout" below it) > THR empty (IER.ETBEI) > modem status (IER.EDSSI).
 */
import { GasangError } from '../util/errors.js';
import type { MmioDevice } from '../memory/bus.js';

const enum Reg { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 }

export const IER_ERBFI = 0x01;
export const IER_ETBEI = 0x02;
export const IER_ELSI = 0x04;
export const IER_EDSSI = 0x08;

export const IIR_NO_INT = 0x01;
export const IIR_MSI = 0x00;
export const IIR_THRI = 0x02;
export const IIR_RDI = 0x04;
export const IIR_RLSI = 0x06;
export const IIR_CTI = 0x0c;
export const IIR_FIFO_ENABLED = 0xc0;

export const FCR_FE = 0x01;
export const FCR_RFR = 0x02;
export const FCR_TFR = 0x04;

export const LCR_DLAB = 0x80;

export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08;
export const MCR_LOOP = 0x10;

export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_BI = 0x10;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;

export const MSR_DCTS = 0x01;
export const MSR_DDSR = 0x02;
export const MSR_TERI = 0x04;
export const MSR_DDCD = 0x08;
export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;

/** Receive trigger levels selected by FCR bits 7:6. */
const RX_TRIGGER = [1, 4, 8, 14] as const;
const RX_LIMIT = 1 << 20;

export interface Uart16550Options {
  /** One transmitted byte. Called synchronously from the guest's THR write; buffer on the host side. */
  onOutput: (byte: number) => void;
  /** Level of the UART's interrupt line (e.g. PLIC source 10); called when the level changes. */
  setIrq: (level: boolean) => void;
}

/** The UART's state for snapshots (plain JSON). */
export interface Uart16550State {
  ier: number;
  fcr: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  dll: number;
  dlm: number;
  thrIpending: boolean;
  rx: number[];
}

export class Uart16550 implements MmioDevice {
  readonly name = 'uart16550';
  private readonly onOutput: (byte: number) => void;
  private readonly setIrqLine: (level: boolean) => void;
  private ier = 0;
  private fcr = 0;
  private lcr = 0;
  private mcr = MCR_OUT2;
  /** Sticky error bits (OE, BI); DR, THRE and TEMT are computed. */
  private lsrErrors = 0;
  /** Modem status lines (upper nibble) and delta bits (lower nibble) when not in loopback. */
  private msr = MSR_DCD | MSR_DSR | MSR_CTS;
  private scr = 0;
  private dll = 0x0c;
  private dlm = 0;
  /** THR-empty interrupt pending: set when THR empties or ETBEI is enabled while empty, cleared by an IIR read reporting it or a THR write. */
  private thrIpending = false;
  private rxBuf = new Uint8Array(64);
  private rxHead = 0;
  private rxCount = 0;
  private irqLevel = false;

  constructor(opts: Uart16550Options) {
    this.onOutput = opts.onOutput;
    this.setIrqLine = opts.setIrq;
  }

  /** Host side: bytes typed by the user. Returns how many were accepted (all, unless RX_LIMIT is reached). */
  pushInput(bytes: ArrayLike<number>): number {
    let n = 0;
    for (; n < bytes.length; n++) {
      if (this.rxCount >= RX_LIMIT) {
        this.lsrErrors |= LSR_OE;
        break;
      }
      this.rxPush(bytes[n]! & 0xff);
    }
    this.updateIrq();
    return n;
  }

  /** Bytes waiting in the receive FIFO. */
  get rxPending(): number {
    return this.rxCount;
  }

  /** Host side: a break condition on the line (Linux turns it into SysRq on a console). */
  sendBreak(): void {
    this.rxPush(0);
    this.lsrErrors |= LSR_BI;
    this.updateIrq();
  }

  /** Registers are 8 bits wide (reg-shift 0); a wider access sees the register at its address only. */
  read(offset: number, _size: 1 | 2 | 4): number {
    return this.read8(offset & 7);
  }

  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    this.write8(offset & 7, value & 0xff);
  }

  /** Back to power-on state (keeps callbacks). */
  reset(): void {
    this.ier = 0;
    this.fcr = 0;
    this.lcr = 0;
    this.mcr = MCR_OUT2;
    this.lsrErrors = 0;
    this.msr = MSR_DCD | MSR_DSR | MSR_CTS;
    this.scr = 0;
    this.dll = 0x0c;
    this.dlm = 0;
    this.thrIpending = false;
    this.rxHead = 0;
    this.rxCount = 0;
    this.updateIrq();
  }

  save(): Uart16550State {
    const rx: number[] = [];
    for (let i = 0; i < this.rxCount; i++) rx.push(this.rxBuf[(this.rxHead + i) & (this.rxBuf.length - 1)]!);
    return {
      ier: this.ier, fcr: this.fcr, lcr: this.lcr, mcr: this.mcr, lsr: this.lsrErrors, msr: this.msr,
      scr: this.scr, dll: this.dll, dlm: this.dlm, thrIpending: this.thrIpending, rx,
    };
  }

  restore(s: Uart16550State): void {
    if (s.rx.length > RX_LIMIT) throw new GasangError('uart-restore', `UART state holds ${s.rx.length} bytes, more than ${RX_LIMIT}`);
    this.ier = s.ier & 0x0f;
    this.fcr = s.fcr & 0xc9;
    this.lcr = s.lcr & 0xff;
    this.mcr = s.mcr & 0x1f;
    this.lsrErrors = s.lsr & (LSR_OE | LSR_BI);
    this.msr = s.msr & 0xff;
    this.scr = s.scr & 0xff;
    this.dll = s.dll & 0xff;
    this.dlm = s.dlm & 0xff;
    this.thrIpending = s.thrIpending;
    this.rxHead = 0;
    this.rxCount = 0;
    for (const b of s.rx) this.rxPush(b & 0xff);
    this.irqLevel = !this.computeIrq();
    this.updateIrq();
  }

  private read8(reg: number): number {
    switch (reg) {
      case Reg.RBR_THR: {
        if (this.lcr & LCR_DLAB) return this.dll;
        if (this.rxCount === 0) return 0;
        const b = this.rxBuf[this.rxHead]!;
        this.rxHead = (this.rxHead + 1) & (this.rxBuf.length - 1);
        this.rxCount--;
        this.updateIrq();
        return b;
      }
      case Reg.IER:
        return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case Reg.IIR_FCR: {
        const id = this.interruptId();
        if (id === IIR_THRI) {
          this.thrIpending = false;
          this.updateIrq();
        }
        return id | (this.fcr & FCR_FE ? IIR_FIFO_ENABLED : 0);
      }
      case Reg.LCR:
        return this.lcr;
      case Reg.MCR:
        return this.mcr;
      case Reg.LSR: {
        const v = this.lsr();
        if (this.lsrErrors) {
          this.lsrErrors = 0;
          this.updateIrq();
        }
        return v;
      }
      case Reg.MSR: {
        if (this.mcr & MCR_LOOP) {
          // Loopback: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
          const m = this.mcr;
          return ((m & MCR_DTR) << 5) | ((m & MCR_RTS) << 3) | ((m & MCR_OUT1) << 4) | ((m & MCR_OUT2) << 4);
        }
        const v = this.msr;
        if (v & 0x0f) {
          this.msr &= 0xf0;
          this.updateIrq();
        }
        return v;
      }
      default:
        return this.scr;
    }
  }

  private write8(reg: number, v: number): void {
    switch (reg) {
      case Reg.RBR_THR:
        if (this.lcr & LCR_DLAB) {
          this.dll = v;
          return;
        }
        if (this.mcr & MCR_LOOP) this.rxPush(v);
        else this.onOutput(v);
        // The byte left at once: THR is empty again, which raises THRE if enabled.
        this.thrIpending = true;
        this.updateIrq();
        return;
      case Reg.IER: {
        if (this.lcr & LCR_DLAB) {
          this.dlm = v;
          return;
        }
        const enabling = (v & IER_ETBEI) !== 0 && (this.ier & IER_ETBEI) === 0;
        this.ier = v & 0x0f;
        // Enabling ETBEI while THR is empty (always, here) raises the THRE interrupt, as on real parts.
        if (enabling) this.thrIpending = true;
        this.updateIrq();
        return;
      }
      case Reg.IIR_FCR: {
        if ((v ^ this.fcr) & FCR_FE || v & FCR_RFR) {
          this.rxHead = 0;
          this.rxCount = 0;
        }
        this.fcr = v & 0xc9;
        this.updateIrq();
        return;
      }
      case Reg.LCR:
        this.lcr = v;
        return;
      case Reg.MCR:
        this.mcr = v & 0x1f;
        this.updateIrq();
        return;
      case Reg.LSR:
      case Reg.MSR:
        return; // read-only (factory test registers on real parts)
      default:
        this.scr = v;
    }
  }

  private lsr(): number {
    return LSR_THRE | LSR_TEMT | this.lsrErrors | (this.rxCount > 0 ? LSR_DR : 0);
  }

  /** IIR interrupt identification (bits 3:0), IIR_NO_INT when nothing is pending. */
  private interruptId(): number {
    const ier = this.ier;
    if (ier & IER_ELSI && this.lsrErrors & (LSR_OE | LSR_BI)) return IIR_RLSI;
    if (ier & IER_ERBFI && this.rxCount > 0) {
      const trigger = this.fcr & FCR_FE ? RX_TRIGGER[this.fcr >> 6]! : 1;
      return this.rxCount >= trigger ? IIR_RDI : IIR_CTI;
    }
    if (ier & IER_ETBEI && this.thrIpending) return IIR_THRI;
    if (ier & IER_EDSSI && !(this.mcr & MCR_LOOP) && this.msr & 0x0f) return IIR_MSI;
    return IIR_NO_INT;
  }

  private computeIrq(): boolean {
    return this.interruptId() !== IIR_NO_INT;
  }

  private updateIrq(): void {
    const level = this.computeIrq();
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrqLine(level);
    }
  }

  private rxPush(b: number): void {
    if (this.rxCount === this.rxBuf.length) {
      const bigger = new Uint8Array(this.rxBuf.length * 2);
      for (let i = 0; i < this.rxCount; i++) bigger[i] = this.rxBuf[(this.rxHead + i) & (this.rxBuf.length - 1)]!;
      this.rxBuf = bigger;
      this.rxHead = 0;
    }
    this.rxBuf[(this.rxHead + this.rxCount) & (this.rxBuf.length - 1)] = b;
    this.rxCount++;
  }
}
