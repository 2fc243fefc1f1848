/**
 * The `virt` board: CPU, RAM, CLINT, PLIC, UART, syscon, RTC on QEMU's memory map, booted with real
 * firmware, and the loop that runs its harts on one host thread (interleaved), sleeping while every
 * hart waits in WFI.
 */
import { Cpu } from '../cpu/index.js';
import { H } from '../cpu/layout.js';
import { Bus } from '../memory/bus.js';
import { Clint } from './clint.js';
import { Plic } from './plic.js';
import { Uart16550 } from './uart16550.js';
import { Syscon, type PowerEvent } from './syscon.js';
import { GoldfishRtc } from './rtc-goldfish.js';
import { buildVirtFdt } from './virt-fdt.js';
import { loadBoot } from './boot-loader.js';
import * as Map from './memory-map.js';
import type { HartInterrupts } from './irq.js';

export interface VirtSpec {
  memoryMiB: number;
  cpus: number;
  firmware: string;
  kernel: string;
  initrd?: string;
  append: string;
}

export interface VirtIo {
  /** Console bytes from the guest's UART. */
  output(bytes: Uint8Array): void;
}

export type PowerOff = { kind: PowerEvent; code: number };

/** Instructions a hart runs before the loop looks at timers and the other harts. */
const QUANTUM = 40_000;
/** Longest stretch of guest execution before the host event loop gets a turn (ms). */
const SLICE_MS = 8;

export class VirtMachine {
  readonly clint: Clint;
  readonly plic: Plic;
  readonly uart: Uart16550;
  readonly rtc: GoldfishRtc;
  /** Things the user should know about the boot layout (from the loader). */
  warnings: string[] = [];
  private power: PowerOff | undefined;
  private out: number[] = [];
  private wake: (() => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;

  private constructor(readonly spec: VirtSpec, readonly cpu: Cpu, readonly bus: Bus, private readonly io: VirtIo) {
    const irq: HartInterrupts = { setPending: (hart, bit, level) => cpu.harts[hart].setPending(bit, level) };
    this.clint = new Clint({ harts: spec.cpus, irq });
    this.plic = new Plic({ harts: spec.cpus, irq });
    this.uart = new Uart16550({ onOutput: b => this.out.push(b), setIrq: this.plic.line(Map.UART0_IRQ) });
    const syscon = new Syscon({ onPower: (kind, code) => { this.power = { kind, code }; cpu.stopped = true; } });
    const rtc = this.rtc = new GoldfishRtc({ setIrq: this.plic.line(Map.RTC_IRQ) });
    this.bus.map(Map.CLINT_BASE, Map.CLINT_SIZE, this.clint);
    this.bus.map(Map.PLIC_BASE, Map.PLIC_SIZE, this.plic);
    this.bus.map(Map.UART0_BASE, Map.UART0_SIZE, this.uart);
    this.bus.map(Map.TEST_BASE, Map.TEST_SIZE, syscon);
    this.bus.map(Map.RTC_BASE, Map.RTC_SIZE, rtc);
  }

  static async create(spec: VirtSpec, io: VirtIo): Promise<VirtMachine> {
    const bus = new Bus();
    let m: VirtMachine | undefined;
    const cpu = await Cpu.create({ ramBytes: spec.memoryMiB * 1024 * 1024, harts: spec.cpus, bus, mtime: () => m!.clint.mtime() });
    m = new VirtMachine(spec, cpu, bus, io);
    const boot = loadBoot(cpu.ram, {
      firmware: spec.firmware,
      kernel: spec.kernel,
      initrd: spec.initrd,
      fdt: initrd => buildVirtFdt({ memoryBytes: cpu.ram.length, harts: spec.cpus, bootargs: spec.append, initrd }),
    });
    for (const h of cpu.harts) h.reset(boot.pc, boot.a1, boot.a2);
    m.warnings = boot.warnings;
    return m;
  }

  /** Bytes typed at the console. */
  input(bytes: ArrayLike<number>): void {
    this.uart.pushInput(bytes);
    this.wake?.();
  }

  /** Asks the run loop to stop soon (Ctrl-A x). */
  stop(): void { this.power ??= { kind: 'poweroff', code: 0 }; this.cpu.stopped = true; this.wake?.(); }

  /** Runs until the guest powers off (or stop()); resolves with how it ended. */
  async run(): Promise<PowerOff> {
    const { cpu } = this;
    const harts = cpu.harts;
    while (!this.power) {
      const start = performance.now();
      let allWaiting = false;
      while (!this.power && performance.now() - start < SLICE_MS) {
        allWaiting = true;
        this.clint.update();
        this.rtc.update();
        for (let i = 0; i < harts.length && !this.power; i++) {
          const h = harts[i];
          if (h.waiting && h.wakeable()) h.waiting = false;
          if (h.waiting) continue;
          allWaiting = false;
          h.takeInterrupt();
          if (harts.length > 1) for (const o of harts) cpu.views.i32[(o.hb + H.RESV_VALID) >> 2] = 0;
          cpu.step(i, QUANTUM);
        }
        if (allWaiting) break;
      }
      this.flushOutput();
      if (this.power) break;
      if (allWaiting) await this.sleep(Math.min(this.clint.nextDeadlineMs(), this.rtc.nextDeadlineMs(), 100));
      else await new Promise(r => setImmediate(r));
    }
    this.flushOutput();
    return this.power!;
  }

  private flushOutput(): void {
    if (!this.out.length) return;
    this.io.output(Uint8Array.from(this.out));
    this.out = [];
  }

  private sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => { clearTimeout(this.wakeTimer); this.wake = undefined; resolve(); };
      this.wake = done;
      this.wakeTimer = setTimeout(done, Math.max(0, ms));
    });
  }
}
