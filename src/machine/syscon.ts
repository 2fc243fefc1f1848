/**
 * SiFive test finisher (`sifive,test0` / `sifive,test1` / `syscon`, QEMU hw/misc/sifive_test.c).
 * A 32-bit write to offset 0 whose low 16 bits are a command: 0x5555 pass (power off),
 * 0x7777 reset, 0x3333 fail with exit code in bits 31:16. Linux's syscon-poweroff/-reboot
 * drivers and OpenSBI's reset driver write here. Reads return 0.
 */
import type { MmioDevice } from '../memory/bus.js';

export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;

export type PowerEvent = 'poweroff' | 'reboot' | 'fail';

export interface SysconOptions {
  /** The guest asked to power off (code 0), reboot (code 0) or fail with `code` (0..65535). */
  onPower: (kind: PowerEvent, code: number) => void;
}

export class Syscon implements MmioDevice {
  readonly name = 'syscon';
  private readonly onPower: (kind: PowerEvent, code: number) => void;

  constructor(opts: SysconOptions) {
    this.onPower = opts.onPower;
  }

  read(_offset: number, _size: 1 | 2 | 4): number {
    return 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset !== 0 || size === 1) return;
    const status = value & 0xffff;
    const code = size === 4 ? value >>> 16 : 0;
    if (status === FINISHER_PASS) this.onPower('poweroff', 0);
    else if (status === FINISHER_RESET) this.onPower('reboot', 0);
    else if (status === FINISHER_FAIL) this.onPower('fail', code);
  }
}
