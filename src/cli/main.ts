#!/usr/bin/env node
/** `gasang` command line: `gasang run [options]` boots a VM in the foreground on this terminal. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { GasangError, InputError } from '../util/errors.js';
import { VirtMachine, type VirtDrive } from '../machine/virt.js';
import { openDisk } from '../storage/open.js';
import { openVolume } from '../storage/volume/index.js';
import { IoThrottle } from '../storage/throttle.js';
import { StorageError, type BlockDevice } from '../storage/block.js';
import { VirtioNineP } from '../devices/virtio/9p/device.js';
import { ShareError } from '../devices/virtio/9p/host-root.js';
import { parseRunArgs, RUN_USAGE, type DriveOption, type ShareOption } from './args.js';
import { attachConsole } from './terminal.js';
import { statsLines } from './stats.js';
import { runImage } from './image.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUNDLED = {
  kernel: join(root, 'guest', 'default', 'Image.gz'),
  initrd: join(root, 'guest', 'default', 'initramfs.cpio.gz'),
  firmware: join(root, 'guest', 'default', 'fw_jump.bin'),
};

const USAGE = `Usage: gasang <command> [options]

Commands:
  run     boot a virtual machine with its serial console on this terminal
  image   create, inspect, check, snapshot and commit disk images (gasang image --help)

${RUN_USAGE}`;

/** One line on stderr, also readable while the terminal is in raw mode. */
const report = (line: string): void => { process.stderr.write(`gasang: ${line}${process.stderr.isTTY ? '\r\n' : '\n'}`); };

/** Files the user named that cannot be used are user mistakes (one line, status 2). */
function asInput(flag: string, err: unknown): unknown {
  if (err instanceof StorageError && err.kind !== 'io') return new InputError('bad-drive', `${flag}: ${err.message}`, { cause: err });
  if (err instanceof ShareError) return new InputError('bad-share', `--share: ${err.message}`, { cause: err });
  return err;
}

/** Opens every disk and volume, closing those already open if one fails. */
function openDrives(list: DriveOption[]): VirtDrive[] {
  const opened: VirtDrive[] = [];
  try {
    for (const d of list) {
      const throttle = d.throttle ? new IoThrottle(d.throttle) : undefined;
      opened.push({ disk: d.kind === 'file' ? openFile(d.file, d.format, d.readOnly) : openVolumeOf(d), throttle, serial: d.serial });
    }
    return opened;
  } catch (err) {
    for (const o of opened) o.disk.close();
    throw err;
  }
}

function openFile(file: string, format: 'raw' | 'qcow2' | undefined, readOnly: boolean): BlockDevice {
  try {
    return openDisk({ file, format, readOnly });
  } catch (err) {
    throw asInput('--drive', err);
  }
}

function openVolumeOf(v: Extract<DriveOption, { kind: 'volume' }>): BlockDevice {
  const members: BlockDevice[] = [];
  try {
    for (const file of v.files) members.push(openDisk({ file, readOnly: v.readOnly }));
    return openVolume({ mode: v.mode, members, stripeBytes: v.stripeBytes, readOnly: v.readOnly, memberPaths: v.mode === 'mirror' ? v.files : undefined, log: report });
  } catch (err) {
    for (const m of members) m.close();
    throw asInput('--volume', err);
  }
}

function openShares(list: ShareOption[]): VirtioNineP[] {
  try {
    return list.map(s => new VirtioNineP({ root: s.host, tag: s.tag, readOnly: s.readOnly }));
  } catch (err) {
    throw asInput('--share', err);
  }
}

async function run(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv, BUNDLED);
  if (opts.help) { process.stdout.write(RUN_USAGE); return 0; }
  const shares = openShares(opts.shares);
  let drives: VirtDrive[] = [];
  let vm: VirtMachine;
  try {
    drives = openDrives(opts.drives);
    vm = await VirtMachine.create(
      {
        memoryMiB: opts.memoryMiB, cpus: opts.cpus, firmware: opts.firmware, kernel: opts.kernel, initrd: opts.initrd, append: opts.append,
        drives, rng: opts.rng, devices: shares, jit: opts.jit,
      },
      { output: bytes => process.stdout.write(bytes), log: report },
    );
  } catch (err) {
    for (const d of drives) d.disk.close();
    for (const s of shares) s.close();
    throw err;
  }
  for (const w of vm.warnings) process.stderr.write(`gasang: warning: ${w}\n`);
  const console = attachConsole({
    input: process.stdin,
    output: { write: (b: Uint8Array) => process.stdout.write(b) },
    onInput: bytes => vm.input(bytes),
    onQuit: () => vm.stop(),
  });
  const started = performance.now();
  try {
    const end = await vm.run();
    return end.kind === 'fail' ? (end.code || 1) : 0;
  } finally {
    console.detach();
    if (opts.stats) for (const line of statsLines(vm.cpu, (performance.now() - started) / 1000)) process.stderr.write(`gasang: ${line}\n`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE); return cmd ? 0 : 2; }
  if (cmd === 'run') return run(rest);
  if (cmd === 'image') return runImage(rest, { out: t => process.stdout.write(t), err: t => process.stderr.write(t), progress: process.stderr.isTTY === true });
  throw new InputError('unknown-command', `Unknown command '${cmd}' (try: gasang run --help)`);
}

main(process.argv.slice(2)).then(
  code => process.exit(code),
  (err: unknown) => {
    if (err instanceof InputError) { process.stderr.write(`gasang: ${err.message}\n`); process.exit(2); }
    if (err instanceof GasangError) { process.stderr.write(`gasang: ${err.message}\n`); process.exit(1); }
    throw err;
  },
);
