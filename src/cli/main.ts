#!/usr/bin/env node
/** `gasang` command line: `gasang run [options]` boots a VM in the foreground on this terminal. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { GasangError, InputError } from '../util/errors.js';
import { VirtMachine, type VirtDrive, type VirtNic } from '../machine/virt.js';
import { openNic } from '../net/nic.js';
import { StorageError } from '../storage/block.js';
import { ShareError } from '../devices/virtio/9p/host-root.js';
import { openDrives, openShares, snapshotDrives, type AttachContext } from '../vm/attach.js';
import { parseRunArgs, RUN_USAGE } from './args.js';
import { MachineSnapshot, revertDrives, snapshotMachine, snapshotMachineLive, checkDrives as checkSnapshotDrives } from '../snapshot/index.js';
import { restoredOptions, restoreError, runSnapshotSpec } from './run-snapshot.js';
import { attachConsole } from './terminal.js';
import { statsLines } from './stats.js';
import { runImage } from './image.js';
import { runVm } from './vm.js';
import { runNet } from './net.js';

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
  vm      create, start, stop, list and attach to VMs run by the gasangd daemon (gasang vm --help)
  net     networks of the gasangd daemon: create, list, inspect, remove (gasang net --help)

${RUN_USAGE}`;

/** One line on stderr, also readable while the terminal is in raw mode. */
const report = (line: string): void => { process.stderr.write(`gasang: ${line}${process.stderr.isTTY ? '\r\n' : '\n'}`); };

/** Files the user named that cannot be used are user mistakes (one line, status 2). */
function asInput(flag: string, err: unknown): unknown {
  if (err instanceof StorageError && err.kind !== 'io') return new InputError('bad-drive', `${flag}: ${err.message}`, { cause: err });
  if (err instanceof ShareError) return new InputError('bad-share', `--share: ${err.message}`, { cause: err });
  return err;
}

/** Opening drives and shares for `run`: errors in the files the user named become InputErrors. */
const ATTACH: AttachContext = { fail: (what, err) => asInput(`--${what}`, err), log: report };

async function run(argv: string[]): Promise<number> {
  const given = parseRunArgs(argv, BUNDLED);
  if (given.help) { process.stdout.write(RUN_USAGE); return 0; }
  const cwd = process.cwd();
  let opts = given;
  let spec = runSnapshotSpec(given, cwd);
  let saved: MachineSnapshot | undefined;
  const restoreStart = performance.now();
  if (given.restore) {
    try {
      saved = MachineSnapshot.open(given.restore);
      ({ opts, spec } = restoredOptions(given.restore, saved.spec, given, BUNDLED));
      revertDrives(saved.disks);
    } catch (err) {
      saved?.close();
      throw restoreError(err);
    }
  }
  const shares = openShares(opts.shares, ATTACH);
  let drives: VirtDrive[] = [];
  const nics: VirtNic[] = [];
  let vm: VirtMachine;
  try {
    drives = openDrives(opts.drives, ATTACH);
    if (opts.snapshotOnExit) checkSnapshotDrives(snapshotDrives(opts.drives, drives, cwd));
    for (const nic of opts.nics) nics.push({ mac: nic.mac, backend: await openNic('--nic', nic, report) });
    const board = { memoryMiB: opts.memoryMiB, cpus: opts.cpus, drives, nics, rng: opts.rng, devices: shares, jit: opts.jit };
    const io = { output: (bytes: Uint8Array) => process.stdout.write(bytes), log: report };
    vm = saved
      ? await saved.restore(board, io, { onRamLoaded: st => { if (opts.stats) report(`snapshot RAM all in ${st.ms.toFixed(0)} ms after the restore: ${st.onDemand} pages when first touched, ${st.background} streamed`); } })
        .catch(err => { throw restoreError(err); })
      : await VirtMachine.create({ ...board, firmware: opts.firmware, kernel: opts.kernel, initrd: opts.initrd, append: opts.append }, io);
  } catch (err) {
    for (const d of drives) d.disk.close();
    for (const s of shares) s.close();
    for (const n of nics) n.backend.close();
    throw err;
  } finally {
    saved?.close();
  }
  for (const w of vm.warnings) process.stderr.write(`gasang: warning: ${w}\n`);
  if (saved && opts.stats) report(`restored in ${(performance.now() - restoreStart).toFixed(1)} ms: the guest runs while its RAM is paged in`);
  let snapshotFailed = false, quitting = false, writing = false, quitAfterWrite = false;
  /** SIGUSR1 with --snapshot-on-exit: a snapshot of the running VM now (held only for its state); it runs on. */
  const snapshotNow = (): void => {
    if (!opts.snapshotOnExit) { report('SIGUSR1: no --snapshot-on-exit FILE to write a snapshot to'); return; }
    if (writing) { report('SIGUSR1: a snapshot is being written already'); return; }
    writing = true;
    snapshotMachineLive(opts.snapshotOnExit, vm, spec, snapshotDrives(opts.drives, drives, cwd)).then(
      st => report(`snapshot written to ${opts.snapshotOnExit}: ${(st.bytes / 1048576).toFixed(1)} MiB, ${st.storedPages} of ${st.ramPages} RAM pages stored, the VM held ${st.pauseMs.toFixed(0)} ms, the file in place after ${st.totalMs.toFixed(0)} ms; the VM runs on`),
      (err: unknown) => {
        if (!(err instanceof GasangError)) throw err;
        report(`no snapshot: ${err.message}`);
      },
    ).finally(() => {
      writing = false;
      if (quitAfterWrite) quit();
    });
  };
  /** Quitting: with --snapshot-on-exit, the snapshot first; if it cannot be written the VM runs on (quit again to end it). */
  const quit = (): void => {
    if (writing) { quitAfterWrite = true; return; } // one snapshot at a time: the quit's comes after
    if (opts.snapshotOnExit && !snapshotFailed) {
      try {
        const st = snapshotMachine(opts.snapshotOnExit, vm, spec, snapshotDrives(opts.drives, drives, cwd));
        report(`snapshot written to ${opts.snapshotOnExit}: ${(st.bytes / 1048576).toFixed(1)} MiB, ${st.storedPages} of ${st.ramPages} RAM pages stored, the VM held ${st.pauseMs.toFixed(0)} ms`);
      } catch (err) {
        if (!(err instanceof GasangError)) throw err;
        snapshotFailed = true;
        report(`no snapshot: ${err.message}; the VM runs on (quit again to end it without a snapshot)`);
        return;
      }
    }
    quitting = true;
    vm.stop();
  };
  const console = attachConsole({
    input: process.stdin,
    output: { write: (b: Uint8Array) => process.stdout.write(b) },
    onInput: bytes => vm.input(bytes),
    onQuit: quit,
  });
  process.on('SIGTERM', quit);
  process.on('SIGUSR1', snapshotNow);
  const started = performance.now();
  try {
    const end = await vm.run().catch(err => { throw saved ? restoreError(err) : err; });
    if (opts.snapshotOnExit && !quitting) report(`the guest ended (${end.kind}): no snapshot written`);
    return end.kind === 'fail' ? (end.code || 1) : 0;
  } finally {
    process.off('SIGTERM', quit);
    process.off('SIGUSR1', snapshotNow);
    console.detach();
    if (opts.stats) for (const line of statsLines(vm.cpu, (performance.now() - started) / 1000)) process.stderr.write(`gasang: ${line}\n`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE); return cmd ? 0 : 2; }
  if (cmd === 'run') return run(rest);
  if (cmd === 'image') return runImage(rest, { out: t => process.stdout.write(t), err: t => process.stderr.write(t), progress: process.stderr.isTTY === true });
  const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t), stdin: process.stdin, stdout: process.stdout, env: process.env, cwd: process.cwd() };
  if (cmd === 'vm') return runVm(rest, io);
  if (cmd === 'net') return runNet(rest, io);
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
