/**
 * The board's power button: the host's graceful "please power off" (`gasang vm stop`), the request
 * a stock guest acts on before the host forces the machine off.
 *
 * Why a virtio console port and not a gpio-keys KEY_POWER input device (what QEMU's arm `virt`
 * board offers, on a PL061): neither guest kernel gasang boots could act on one. Debian's riscv64
 * kernel (6.12, config-6.12.*) builds the SiFive GPIO controller in but has CONFIG_KEYBOARD_GPIO
 * (and _POLLED) unset — gpio-keys does not exist, not even as a module — and evdev and virtio-input
 * are modules our Debian initramfs does not carry; the bundled 6.1 kernel is tinyconfig without
 * GPIOLIB (guest/default/kernel-fragment.config). No riscv64 kernel powers off by itself on a
 * host event either (no ACPI, no SBI notification; magic SysRq over a serial BREAK is Debian-only
 * and ungraceful). Both kernels do build virtio-console in, so the button is a port the guest's
 * init listens on — what QEMU's guest agent is to libvirt's `shutdown --mode=agent` on boards
 * without ACPI, and what systemd-logind or acpid are to a power key: guest/init.sh reads a line
 * from it (no polling, so an idle guest stays idle) and powers off cleanly on `poweroff`. A guest
 * without such a listener ignores the press, and the host forces the stop after its timeout.
 *
 * The port is the last virtio console on the board, so it is the highest-numbered hvc terminal
 * (hvc1 on the bundled kernel, whose SBI console is hvc0; hvc0 on Debian's). The kernel command
 * line carries POWER_BOOTARG so init knows the port is there and is not some other console.
 */
import { VirtioConsole } from '../devices/virtio/console/device.js';

/** On the kernel command line when the board has the button. */
export const POWER_BOOTARG = 'gasang.power=1';
/** One press: a line the guest's listener reads. */
const PRESS = new TextEncoder().encode('poweroff\n');

export class PowerButton {
  /** The virtio device the machine maps on a slot. */
  readonly device: VirtioConsole;
  /** Presses so far (each one queues a request line for the guest). */
  presses = 0;

  constructor() {
    // Whatever the guest writes back on the port (an echo) is of no interest.
    this.device = new VirtioConsole({ output: () => {} });
  }

  /** Queues a power-off request; the guest sees it once its driver posts receive buffers. */
  press(): void {
    this.presses++;
    this.device.input(PRESS);
  }
}

/** The command line with POWER_BOOTARG added. */
export function withPowerBootarg(append: string): string {
  return append === '' ? POWER_BOOTARG : `${append} ${POWER_BOOTARG}`;
}
