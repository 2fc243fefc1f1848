/**
 * Options of `gasang run`. Every mistake is an InputError with a one-line message that the CLI
 * prints as is (exit status 2).
 */
import { InputError } from '../util/errors.js';
import { splitOptions } from '../util/split-options.js';
import { MAX_HARTS, RAM_OFFSET } from '../cpu/layout.js';
import { VIRTIO_COUNT } from '../machine/memory-map.js';
import type { ThrottleLimits } from '../storage/throttle.js';
import type { AttachDrive, AttachFile, AttachShare, AttachVolume } from '../vm/attach.js';
import { parseNic, type NicConfig } from '../net/nic.js';

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

/** --drive, --volume and --share: the declarations src/vm/attach.ts opens. */
export type DriveFileOption = AttachFile;
export type DriveVolumeOption = AttachVolume;
export type DriveOption = AttachDrive;
export type ShareOption = AttachShare;

export interface RunOptions {
  kernel: string;
  /** undefined: boot without an initrd (--no-initrd, or no default). */
  initrd?: string;
  append: string;
  firmware: string;
  memoryMiB: number;
  cpus: number;
  /** Disks in command-line order (--drive and --volume): the first is /dev/vda. */
  drives: DriveOption[];
  shares: ShareOption[];
  /** Network cards in command-line order (--nic): the first is eth0. */
  nics: NicConfig[];
  /** virtio-rng entropy device (--no-rng turns it off). */
  rng: boolean;
  /** Translate hot guest code to WebAssembly (--jit on|off, default on). */
  jit: boolean;
  /** Print CPU and JIT counters on stderr when the VM ends (--stats). */
  stats: boolean;
  /** --restore FILE: continue the VM of a snapshot instead of booting (its hardware comes from the snapshot). */
  restore?: string;
  /** --snapshot-on-exit FILE: when the user quits (Ctrl-A x, SIGTERM), write a snapshot first. */
  snapshotOnExit?: string;
  /**
   * The options that define the VM's hardware, as `--flag=value` (NICs as `--nic=…`), in order:
   * what a snapshot keeps to rebuild the VM on restore.
   */
  board: string[];
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
  --drive file=PATH[,format=raw|qcow2][,readonly=on|off][,iops=N][,bps=N][,serial=S]
                      a virtio disk (repeatable; the first is /dev/vda). The format is probed
                      when not given. Throttling: iops=N requests/s, bps=N bytes/s (K/M/G
                      suffixes), iops_burst=N, bps_burst=N
  --volume mode=linear|stripe|mirror,files=A:B[:...][,stripe=SIZE][,readonly=on|off][,iops=N][,bps=N]
                      one virtio disk made of several images; files are separated by ':'
                      (stripe: chunk size, default 64K)
  --share host=DIR,tag=TAG[,readonly=on|off]
                      a host directory for the guest to mount with
                      mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt
  --nic user[,hostfwd=[tcp|udp]:[HOSTADDR]:PORT-[GUESTADDR]:GPORT]...[,restrict=on]
            [,allow=HOST[/PREFIX][:PORT]]...[,hostloopback=off][,net=10.0.2.0/24]
            [,host=ADDR][,dns=ADDR][,dhcpstart=ADDR][,hostname=NAME][,domain=NAME]
            [,resolver=ADDR[:PORT]][,mac=MAC]
                      a virtio network card on a user-mode network (no privileges, as QEMU's
                      -nic user): DHCP gives the guest 10.0.2.15, the gateway 10.0.2.2 is the
                      host's 127.0.0.1, DNS at 10.0.2.3 goes to the host's resolver; hostfwd
                      forwards a host port into the guest; restrict=on cuts the guest off from
                      everything but forwarded connections and allow= destinations
  --nic tap[,ifname=NAME][,mac=52:54:00:12:34:56]
                      a virtio network card on a host TAP device: attaches NAME, or creates it
                      (root or CAP_NET_ADMIN). NICs are repeatable, the first is eth0; the
                      guest's init configures it by DHCP. Without --nic: one user NIC, as
                      QEMU; --nic none: no network card
  --no-rng            no virtio-rng entropy device (default: one, the guest's /dev/hwrng)
  --jit on|off        translate hot guest code to WebAssembly (default: on; the environment
                      variable GASANG_JIT_THRESHOLD=N sets how many visits make code hot)
  --stats             print CPU and JIT counters on stderr when the VM ends
  --snapshot-on-exit FILE
                      when you quit (Ctrl-A x) or gasang gets SIGTERM, save the whole VM
                      (harts, RAM, devices; each writable qcow2 drive gets an internal
                      snapshot of the same instant) to FILE, replacing it atomically;
                      SIGUSR1 saves it there while the VM runs on (held only for its state)
  --restore FILE      continue the VM saved in FILE instead of booting: its hardware, drives
                      and shares come from the snapshot (the drives return to its instant);
                      --nic replaces its NICs (as many as it had), --jit and --stats apply
  -h, --help          show this help

Options take their value as the next argument or after '=' (--memory=512).
In key=value lists a comma inside a value is written twice (file=a,,b.img names "a,b.img").
At most ${VIRTIO_COUNT} virtio devices (drives, shares, NICs and the entropy device) in all.
On the console, Ctrl-A x quits, Ctrl-A h lists the other keys.`;

type Key = 'kernel' | 'initrd' | 'append' | 'firmware' | 'memory' | 'cpus' | 'drive' | 'volume' | 'share' | 'nic' | 'jit' | 'restore' | 'snapshot';

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
  '--drive': 'drive',
  '-drive': 'drive',
  '--volume': 'volume',
  '--share': 'share',
  '--nic': 'nic',
  '-nic': 'nic',
  '--jit': 'jit',
  '--restore': 'restore',
  '--snapshot-on-exit': 'snapshot',
};

/** What a snapshot restores by itself: these cannot be given beside --restore. */
const BOARD_KEYS: ReadonlySet<Key> = new Set(['kernel', 'initrd', 'append', 'firmware', 'memory', 'cpus', 'drive', 'volume', 'share']);

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
    drives: [],
    shares: [],
    nics: [],
    rng: true,
    jit: true,
    stats: false,
    help: false,
    board: [],
  };
  let nicGiven = false;
  const boardGiven: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      opts.help = true;
      continue;
    }
    if (arg === '--no-initrd') {
      opts.initrd = undefined;
      opts.board.push(arg);
      boardGiven.push(arg);
      continue;
    }
    if (arg === '--stats') {
      opts.stats = true;
      continue;
    }
    if (arg === '--rng' || arg === '--no-rng') {
      opts.rng = arg === '--rng';
      opts.board.push(arg);
      boardGiven.push(arg);
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
    if (BOARD_KEYS.has(key)) boardGiven.push(flag);
    if (key !== 'restore' && key !== 'snapshot' && key !== 'jit') opts.board.push(`${key === 'nic' ? '--nic' : flag}=${value}`);
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
      case 'drive':
        opts.drives.push(parseDrive(flag, value));
        break;
      case 'volume':
        opts.drives.push(parseVolume(flag, value));
        break;
      case 'share':
        opts.shares.push(parseShare(flag, value));
        break;
      case 'nic': {
        nicGiven = true;
        const nic = parseNic(flag, value, opts.nics.length);
        if (nic) opts.nics.push(nic);
        break;
      }
      case 'jit':
        if (value !== 'on' && value !== 'off') throw bad(`${flag} ${JSON.stringify(value)}: must be on or off`);
        opts.jit = value === 'on';
        break;
      case 'restore':
      case 'snapshot':
        if (value === '') throw bad(`${flag} needs a file name`);
        if (key === 'restore') opts.restore = value;
        else opts.snapshotOnExit = value;
        break;
    }
  }
  if (opts.restore !== undefined && boardGiven.length > 0) {
    throw bad(`${boardGiven[0]} cannot be given with --restore: the snapshot holds the VM's hardware (only --nic, --jit, --stats and --snapshot-on-exit apply)`);
  }
  // The snapshot's NICs stand unless --nic replaces them.
  if (opts.restore !== undefined && !nicGiven) return opts;
  // As QEMU: without any --nic, one card on a user-mode network.
  if (!nicGiven) opts.nics.push(parseNic('--nic', 'user', 0)!);
  const devices = opts.drives.length + opts.shares.length + opts.nics.length + (opts.rng ? 1 : 0);
  if (devices > VIRTIO_COUNT) {
    throw bad(`${devices} virtio devices (drives, shares, NICs${opts.rng ? ', the entropy device' : ''}): the board has ${VIRTIO_COUNT} slots`);
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

/**
 * "a=1,b=x,,y" → {a: "1", b: "x,y"} (QEMU's syntax: a doubled comma is a literal comma). Keys
 * must be in `allowed`, once each.
 */
function keyValues(flag: string, value: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of splitOptions(value)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad(`${flag} ${JSON.stringify(item)}: expected key=value (keys: ${allowed.join(', ')})`);
    const key = item.slice(0, eq);
    if (!allowed.includes(key)) throw bad(`${flag}: unknown key ${JSON.stringify(key)} (keys: ${allowed.join(', ')})`);
    if (out.has(key)) throw bad(`${flag}: ${key} given twice`);
    out.set(key, item.slice(eq + 1));
  }
  return out;
}

const THROTTLE_KEYS = ['iops', 'bps', 'iops_burst', 'bps_burst'] as const;

function onOff(flag: string, key: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === 'false') return false;
  throw bad(`${flag}: ${key}=${value}: expected on or off`);
}

/** "4096", "64K", "10M", "1G" → the number (binary multiples). */
function size(flag: string, key: string, value: string): number {
  const m = /^(\d+)([kmg])?$/i.exec(value);
  if (!m) throw bad(`${flag}: ${key}=${value}: not a number (suffixes K, M, G allowed)`);
  const n = Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] ?? ' ').toLowerCase());
  if (!Number.isSafeInteger(n)) throw bad(`${flag}: ${key}=${value}: too large`);
  return n;
}

function throttle(flag: string, kv: Map<string, string>): ThrottleLimits | undefined {
  const limits: ThrottleLimits = {};
  const set = (key: string, into: keyof ThrottleLimits): void => {
    const v = kv.get(key);
    if (v === undefined) return;
    const n = size(flag, key, v);
    if (n === 0) throw bad(`${flag}: ${key} must be at least 1`);
    limits[into] = n;
  };
  set('iops', 'iops');
  set('bps', 'bps');
  set('iops_burst', 'iopsBurst');
  set('bps_burst', 'bpsBurst');
  if (limits.iopsBurst !== undefined && limits.iops === undefined) throw bad(`${flag}: iops_burst needs iops`);
  if (limits.bpsBurst !== undefined && limits.bps === undefined) throw bad(`${flag}: bps_burst needs bps`);
  return limits.iops !== undefined || limits.bps !== undefined ? limits : undefined;
}

function serial(flag: string, kv: Map<string, string>): string | undefined {
  const s = kv.get('serial');
  if (s !== undefined && !/^[\x20-\x7e]{1,20}$/.test(s)) throw bad(`${flag}: serial must be 1 to 20 printable ASCII characters`);
  return s;
}

function parseDrive(flag: string, value: string): DriveFileOption {
  const kv = keyValues(flag, value, ['file', 'format', 'readonly', 'serial', ...THROTTLE_KEYS]);
  const file = kv.get('file');
  if (!file) throw bad(`${flag} needs file=PATH`);
  const format = kv.get('format');
  if (format !== undefined && format !== 'raw' && format !== 'qcow2') throw bad(`${flag}: format=${format}: expected raw or qcow2`);
  return { kind: 'file', file, format, readOnly: onOff(flag, 'readonly', kv.get('readonly')), throttle: throttle(flag, kv), serial: serial(flag, kv) };
}

function parseVolume(flag: string, value: string): DriveVolumeOption {
  const kv = keyValues(flag, value, ['mode', 'files', 'stripe', 'readonly', 'serial', ...THROTTLE_KEYS]);
  const mode = kv.get('mode');
  if (mode !== 'linear' && mode !== 'stripe' && mode !== 'mirror') throw bad(`${flag} needs mode=linear, stripe or mirror`);
  const list = kv.get('files');
  if (!list) throw bad(`${flag} needs files=A:B (image files separated by ':')`);
  const files = list.split(':');
  if (files.some(f => f === '')) throw bad(`${flag}: files=${list}: an empty file name`);
  let stripeBytes: number | undefined;
  const stripe = kv.get('stripe');
  if (stripe !== undefined) {
    if (mode !== 'stripe') throw bad(`${flag}: stripe= is for mode=stripe`);
    stripeBytes = size(flag, 'stripe', stripe);
    if (stripeBytes === 0 || stripeBytes % 512 !== 0) throw bad(`${flag}: stripe=${stripe}: must be a positive multiple of 512 bytes`);
  }
  return { kind: 'volume', mode, files, stripeBytes, readOnly: onOff(flag, 'readonly', kv.get('readonly')), throttle: throttle(flag, kv), serial: serial(flag, kv) };
}

function parseShare(flag: string, value: string): ShareOption {
  const kv = keyValues(flag, value, ['host', 'tag', 'readonly']);
  const host = kv.get('host');
  if (!host) throw bad(`${flag} needs host=DIR`);
  const tag = kv.get('tag');
  if (!tag) throw bad(`${flag} needs tag=TAG (the name the guest mounts)`);
  if (/[\s\0,]/.test(tag) || Buffer.byteLength(tag) > 255) throw bad(`${flag}: tag must be 1 to 255 bytes without spaces or commas`);
  return { host, tag, readOnly: onOff(flag, 'readonly', kv.get('readonly')) };
}
