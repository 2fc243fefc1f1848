import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_APPEND, MAX_MEMORY_MIB, parseRunArgs, RUN_USAGE, type RunDefaults } from './args.js';
import { InputError } from '../util/errors.js';

const defaults: RunDefaults = {
  kernel: 'guest/default/Image.gz',
  initrd: 'guest/default/initramfs.cpio.gz',
  firmware: '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin',
};

function rejects(argv: string[], message: string | RegExp): void {
  assert.throws(() => parseRunArgs(argv, defaults), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.ok(!e.message.includes('\n'));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('no arguments: the defaults', () => {
  assert.deepEqual(parseRunArgs([], defaults), {
    kernel: defaults.kernel,
    initrd: defaults.initrd,
    firmware: defaults.firmware,
    append: DEFAULT_APPEND,
    memoryMiB: 256,
    cpus: 1,
    help: false,
  });
});

test('every option, as separate values and with =', () => {
  const o = parseRunArgs(
    ['--kernel', 'k', '--initrd=i', '--append', 'console=ttyS0 init=/bin/sh', '--firmware=f', '--memory', '512', '--cpus=4'],
    defaults,
  );
  assert.deepEqual(o, { kernel: 'k', initrd: 'i', append: 'console=ttyS0 init=/bin/sh', firmware: 'f', memoryMiB: 512, cpus: 4, help: false });
  assert.equal(parseRunArgs(['--append='], defaults).append, '', 'an empty command line is allowed');
  assert.equal(parseRunArgs(['--append=a=b c=d'], defaults).append, 'a=b c=d', 'only the first = splits');
});

test('QEMU-like aliases and size suffixes', () => {
  const o = parseRunArgs(['-m', '1G', '-smp', '2', '-bios', 'fw', '-kernel', 'k', '-append', 'x'], defaults);
  assert.equal(o.memoryMiB, 1024);
  assert.equal(o.cpus, 2);
  assert.equal(o.firmware, 'fw');
  assert.equal(o.kernel, 'k');
  assert.equal(o.append, 'x');
  assert.equal(parseRunArgs(['--memory=768M'], defaults).memoryMiB, 768);
  assert.equal(parseRunArgs(['--bios=x'], defaults).firmware, 'x');
});

test('--help and --no-initrd', () => {
  assert.equal(parseRunArgs(['--help'], defaults).help, true);
  assert.equal(parseRunArgs(['-h'], defaults).help, true);
  assert.equal(parseRunArgs(['--no-initrd'], defaults).initrd, undefined);
  assert.match(RUN_USAGE, /--kernel PATH/);
});

test('bad values are one-line InputErrors', () => {
  rejects(['--memory', '0'], '--memory must be at least 1 MiB');
  rejects(['--memory', 'lots'], '--memory "lots": not a size in MiB (e.g. 512 or 1G)');
  rejects(['-m', '-5'], '-m "-5": not a size in MiB (e.g. 512 or 1G)');
  rejects(['--memory', '1.5'], /not a size/);
  rejects(['--memory', String(MAX_MEMORY_MIB + 1)], `--memory ${MAX_MEMORY_MIB + 1}: at most ${MAX_MEMORY_MIB} MiB`);
  rejects(['--cpus', '0'], '--cpus 0: must be 1 to 8');
  rejects(['--cpus', '9'], '--cpus 9: must be 1 to 8');
  rejects(['--cpus=two'], '--cpus "two": not a number of CPUs');
  rejects(['--frobnicate'], 'Unknown option --frobnicate (see gasang run --help)');
  rejects(['--frobnicate=1'], 'Unknown option --frobnicate (see gasang run --help)');
  rejects(['Image'], 'Unexpected argument "Image" (see gasang run --help)');
  rejects(['--kernel'], '--kernel needs a value');
  rejects(['--kernel='], '--kernel needs a path');
});
