#!/usr/bin/env node
/** `gasang` command line: `gasang run [options]` boots a VM in the foreground on this terminal. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { GasangError, InputError } from '../util/errors.js';
import { VirtMachine } from '../machine/virt.js';
import { parseRunArgs, RUN_USAGE } from './args.js';
import { attachConsole } from './terminal.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUNDLED = {
  kernel: join(root, 'guest', 'default', 'Image.gz'),
  initrd: join(root, 'guest', 'default', 'initramfs.cpio.gz'),
  firmware: join(root, 'guest', 'default', 'fw_jump.bin'),
};

const USAGE = `Usage: gasang <command> [options]

Commands:
  run     boot a virtual machine with its serial console on this terminal

${RUN_USAGE}`;

async function run(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv, BUNDLED);
  if (opts.help) { process.stdout.write(RUN_USAGE); return 0; }
  const vm = await VirtMachine.create(
    { memoryMiB: opts.memoryMiB, cpus: opts.cpus, firmware: opts.firmware, kernel: opts.kernel, initrd: opts.initrd, append: opts.append },
    { output: bytes => process.stdout.write(bytes) },
  );
  for (const w of vm.warnings) process.stderr.write(`gasang: warning: ${w}\n`);
  const console = attachConsole({
    input: process.stdin,
    output: { write: (b: Uint8Array) => process.stdout.write(b) },
    onInput: bytes => vm.input(bytes),
    onQuit: () => vm.stop(),
  });
  try {
    const end = await vm.run();
    return end.kind === 'fail' ? (end.code || 1) : 0;
  } finally {
    console.detach();
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE); return cmd ? 0 : 2; }
  if (cmd === 'run') return run(rest);
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
