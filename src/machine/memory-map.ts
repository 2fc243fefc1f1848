/**
 * The physical memory map of the board, as QEMU's `virt` machine lays it out
 * (hw/riscv/virt.c `virt_memmap`), so guests built for `qemu-system-riscv64 -M virt`
 * find their devices where they expect them.
 *
 *   0x0010_0000  TEST     sifive,test0 finisher / syscon (poweroff, reboot)
 *   0x0010_1000  RTC      google,goldfish-rtc
 *   0x0200_0000  CLINT    msip, mtimecmp, mtime
 *   0x0c00_0000  PLIC     SiFive PLIC, 2 contexts per hart (M, S)
 *   0x1000_0000  UART0    NS16550A
 *   0x1000_1000  VIRTIO   8 virtio-mmio slots, 0x1000 apart
 *   0x8000_0000  DRAM
 */
import { RAM_BASE } from '../cpu/layout.js';

export { RAM_BASE };

export const TEST_BASE = 0x0010_0000;
export const TEST_SIZE = 0x1000;

export const RTC_BASE = 0x0010_1000;
export const RTC_SIZE = 0x1000;

export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x1_0000;

export const PLIC_BASE = 0x0c00_0000;
/** QEMU sizes the PLIC window for its maximum hart count; only 2 contexts per configured hart respond. */
export const PLIC_SIZE = 0x60_0000;

export const UART0_BASE = 0x1000_0000;
export const UART0_SIZE = 0x100;
/** Input clock of the 16550 (the device-tree `clock-frequency`); Linux derives the divisor from it. */
export const UART0_CLOCK_HZ = 3_686_400;

export const VIRTIO_BASE = 0x1000_1000;
export const VIRTIO_STRIDE = 0x1000;
export const VIRTIO_SIZE = 0x1000;
export const VIRTIO_COUNT = 8;

/** PLIC interrupt sources (0 is reserved and never fires). */
export const UART0_IRQ = 10;
export const RTC_IRQ = 11;
/** virtio slot i uses source VIRTIO_IRQ + i (1..8). */
export const VIRTIO_IRQ = 1;

/** Number of PLIC sources including the reserved source 0; `riscv,ndev` is one less. */
export const PLIC_SOURCES = 96;
export const PLIC_NDEV = PLIC_SOURCES - 1;
/** Priorities are 0..PLIC_MAX_PRIORITY (QEMU virt: VIRT_IRQCHIP_NUM_PRIORITIES = 7). */
export const PLIC_MAX_PRIORITY = 7;

/** mtime / the `time` CSR tick at 10 MHz (device tree `timebase-frequency`). */
export const TIMEBASE_HZ = 10_000_000;

export const virtioBase = (slot: number): number => VIRTIO_BASE + slot * VIRTIO_STRIDE;
export const virtioIrq = (slot: number): number => VIRTIO_IRQ + slot;
