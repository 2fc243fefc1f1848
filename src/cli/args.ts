/**
 * Options of `gasang run`. Every mistake is an InputError with a one-line message that the CLI
 * prints as is (exit status 2).
 */
import { InputError } from '../util/errors.js';
import { MAX_HARTS, RAM_OFFSET } from '../cpu/layout.js';

export const DEFAULT_MEMORY_MIB = 256;
export const DEFAULT_CPUS = 1;
export const DEFAULT_APPEND = 'console=ttyS0';
/** Guest RAM shares one 4 GiB WebAssembly memory with the hart state below RAM_OFFSET. */
export const MAX_MEMORY_MIB = Math.floor((2 ** 32 - RAM_OFFSET) / (1024 * 1024));
export const MAX_CPUS = MAX_HARTS;

/** Paths of the bundled guest and host firmware, resolved by the caller. */
export interface RunDefaults {
  kernel: string;
  initrd?: string;
  firmware: string;
  append?: string;
}

export interface RunOptions {
  kernel: string;
  /** undefined: boot without an initrd (--no-initrd, or no default). */
  initrd?: string;
  append: string;
  firmware: string;
  memoryMiB: number;
  cpus: number;
  /** --help was given: print RUN_USAGE and exit 0; the other fields hold defaults. */
  help: boolean;
}

export const RUN_USAGE = `Usage: gasang run [options]

Boot a RISC-V Linux guest on the virt board with its console on this terminal.

Options:
  --kernel PATH       Linux Image or Image.gz (default: the bundled guest)
  --initrd PATH       initramfs (default: the bundled one); --no-initrd boots without
  --append STRING     kernel command line (default: "${DEFAULT_APPEND}")
  --firmware PATH     OpenSBI fw_jump.bin or fw_dynamic.bin (alias: --bios)
  -m, --memory SIZE   guest RAM in MiB, or with an M/G suffix (default: ${DEFAULT_MEMORY_MIB}, at most ${MAX_MEMORY_MIB})
  --cpus N            harts, 1 to ${MAX_CPUS} (alias: -smp) (default: ${DEFAULT_CPUS})
  -h, --help          show this help

Options take their value as the next argument or after '=' (--memory=512).
On the console, Ctrl-A x quits, Ctrl-A h lists the other keys.`;

type Key = 'kernel' | 'initrd' | 'append' | 'firmware' | 'memory' | 'cpus';

const VALUE_FLAGS: Record<string, Key> = {
  '--kernel': 'kernel',
  '-kernel': 'kernel',
  '--initrd': 'initrd',
  '-initrd': 'initrd',
  '--append': 'append',
  '-append': 'append',
  '--firmware': 'firmware',
  '--bios': 'firmware',
  '-bios': 'firmware',
  '--memory': 'memory',
  '-m': 'memory',
  '--cpus': 'cpus',
  '--smp': 'cpus',
  '-smp': 'cpus',
};

const bad = (message: string): InputError => new InputError('bad-option', message);

/** Parses `gasang run` arguments (without the `run` word itself). */
export function parseRunArgs(argv: readonly string[], defaults: RunDefaults): RunOptions {
  const opts: RunOptions = {
    kernel: defaults.kernel,
    initrd: defaults.initrd,
    append: defaults.append ?? DEFAULT_APPEND,
    firmware: defaults.firmware,
    memoryMiB: DEFAULT_MEMORY_MIB,
    cpus: DEFAULT_CPUS,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      opts.help = true;
      continue;
    }
    if (arg === '--no-initrd') {
      opts.initrd = undefined;
      continue;
    }
    const eq = arg.startsWith('-') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = VALUE_FLAGS[flag];
    if (key === undefined) {
      if (arg.startsWith('-')) throw bad(`Unknown option ${flag} (see gasang run --help)`);
      throw bad(`Unexpected argument ${JSON.stringify(arg)} (see gasang run --help)`);
    }
    let value: string;
    if (eq > 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw bad(`${flag} needs a value`);
      value = argv[++i]!;
    }
    switch (key) {
      case 'kernel':
      case 'initrd':
      case 'firmware':
        if (value === '') throw bad(`${flag} needs a path`);
        opts[key] = value;
        break;
      case 'append':
        opts.append = value;
        break;
      case 'memory':
        opts.memoryMiB = parseMemory(flag, value);
        break;
      case 'cpus':
        opts.cpus = parseCpus(flag, value);
        break;
    }
  }
  return opts;
}

/** "512", "512M", "512MiB", "2G" → MiB. */
function parseMemory(flag: string, value: string): number {
  const m = /^(\d+)\s*(m|mib|mb|g|gib|gb)?$/i.exec(value.trim());
  if (!m) throw bad(`${flag} ${JSON.stringify(value)}: not a size in MiB (e.g. 512 or 1G)`);
  const n = Number(m[1]) * (m[2] && /^g/i.test(m[2]) ? 1024 : 1);
  if (n === 0) throw bad(`${flag} must be at least 1 MiB`);
  if (n > MAX_MEMORY_MIB) throw bad(`${flag} ${value}: at most ${MAX_MEMORY_MIB} MiB`);
  return n;
}

function parseCpus(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw bad(`${flag} ${JSON.stringify(value)}: not a number of CPUs`);
  const n = Number(value);
  if (n < 1 || n > MAX_CPUS) throw bad(`${flag} ${value}: must be 1 to ${MAX_CPUS}`);
  return n;
}
