/**
 * Boot benchmark: gasang and `qemu-system-riscv64 -M virt` (TCG) boot the same firmware, kernel and
 * initramfs to the line GASANG-READY printed by the guest's /init. Host wall time from spawn to the
 * marker, runs interleaved (gasang, QEMU, gasang, QEMU, ...), plus the interpreter's guest
 * instructions per second measured in-process with VirtMachine. Results go to the `boot` section
 * of BENCHMARKS.md.
 *
 *   npm run bench          (= tsc -p . && node dist/bench/boot.js)
 *   Env: BENCH_RUNS (default 5), BENCH_GUESTS (default debian,default), BENCH_TIMEOUT (s per boot, default 300)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VirtMachine } from '../src/machine/virt.js';
import { MarkerWatch, commandLine, hostFacts, secondsToMarker, stats, writeSection, type Stats } from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const MARKER = 'GASANG-READY';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 300) * 1000;
const GUESTS = (process.env.BENCH_GUESTS ?? 'debian,default').split(',').map(s => s.trim()).filter(Boolean);
const FIRMWARE = 'guest/default/fw_jump.bin';
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;

interface Guest {
  name: string;
  title: string;
  kernel: string;
  initrd: string;
  /** Kernel file for QEMU (which cannot boot a gzip-compressed Image). */
  qemuKernel: string;
}

const tmp = mkdtempSync(join(tmpdir(), 'gasang-bench-'));

function guest(name: string): Guest {
  if (name === 'debian') {
    const dir = join(process.env.GASANG_CACHE ?? join(homedir(), '.cache', 'gasang'), 'debian');
    const kernel = join(dir, 'vmlinux'), initrd = join(dir, 'initramfs.cpio.gz');
    if (!existsSync(kernel) || !existsSync(initrd)) throw new Error(`${kernel} or ${initrd} missing: run scripts/fetch-debian-guest.sh first`);
    const release = readFileSync(join(dir, 'kernel-version'), 'utf8').trim();
    return { name, title: `Debian stock kernel ${release}, busybox initramfs`, kernel, initrd, qemuKernel: kernel };
  }
  if (name === 'default') {
    const qemuKernel = join(tmp, 'Image');
    writeFileSync(qemuKernel, gunzipSync(readFileSync(join(REPO, 'guest/default/Image.gz'))));
    return { name, title: 'bundled guest/default (Linux 6.1), busybox initramfs', kernel: 'guest/default/Image.gz', initrd: 'guest/default/initramfs.cpio.gz', qemuKernel };
  }
  throw new Error(`unknown guest '${name}' in BENCH_GUESTS (known: debian, default)`);
}

const gasangArgs = (g: Guest): string[] => ['dist/src/cli/main.js', 'run', '--kernel', g.kernel, '--initrd', g.initrd, '--firmware', FIRMWARE,
  '--append', APPEND, '--memory', String(MEMORY_MIB), '--cpus', '1'];
const qemuArgs = (g: Guest): string[] => ['-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic',
  '-bios', FIRMWARE, '-kernel', g.qemuKernel, '-initrd', g.initrd, '-append', APPEND];

const gasangBoot = (g: Guest): Promise<number> => secondsToMarker({
  cmd: process.execPath, args: gasangArgs(g), cwd: REPO, marker: MARKER, timeoutMs: TIMEOUT_MS,
  stop: child => child.stdin?.end(Buffer.from([0x01, 0x78])), // Ctrl-A x
});
const qemuBoot = (g: Guest): Promise<number> => secondsToMarker({
  cmd: 'qemu-system-riscv64', args: qemuArgs(g), cwd: REPO, marker: MARKER, timeoutMs: TIMEOUT_MS,
  stop: child => child.kill('SIGTERM'),
});

interface InProcess { instret: number; seconds: number; createSeconds: number }

/** Boots in this process: seconds in VirtMachine.create, then guest instructions retired by hart 0 and wall seconds from vm.run() to the marker. */
async function inProcessBoot(g: Guest): Promise<InProcess> {
  const watch = new MarkerWatch(MARKER);
  let result: InProcess | undefined;
  let t0 = performance.now();
  const vm: VirtMachine = await VirtMachine.create(
    { memoryMiB: MEMORY_MIB, cpus: 1, firmware: resolve(REPO, FIRMWARE), kernel: resolve(REPO, g.kernel), initrd: resolve(REPO, g.initrd), append: APPEND },
    { output: bytes => { if (!result && watch.feed(bytes)) { result = { instret: vm.cpu.harts[0].instret(), seconds: (performance.now() - t0) / 1000, createSeconds }; vm.stop(); } } },
  );
  const createSeconds = (performance.now() - t0) / 1000;
  const timer = setTimeout(() => vm.stop(), TIMEOUT_MS);
  t0 = performance.now();
  await vm.run();
  clearTimeout(timer);
  if (!result) throw new Error(`in-process ${g.name}: no ${MARKER}; console tail:\n${watch.tail}`);
  return result;
}

const s2 = (x: number): string => x.toFixed(2);
const range = (s: Stats, f: (x: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) throw new Error('dist/ missing: run npx tsc -p . first');
  const facts = hostFacts(REPO);
  const guests = GUESTS.map(guest);
  const times = new Map(guests.map(g => [g.name, { gasang: [] as number[], qemu: [] as number[], inproc: [] as InProcess[] }]));
  const log = (s: string): void => void process.stderr.write(s);

  log(`boot bench: ${RUNS} runs of ${GUESTS.join(', ')}; load average ${facts.loadAtStart.map(s2).join(' ')}\n`);
  for (let run = 1; run <= RUNS; run++) {
    for (const g of guests) {
      const t = times.get(g.name)!;
      log(`run ${run}/${RUNS} ${g.name}: gasang `);
      t.gasang.push(await gasangBoot(g));
      log(`${s2(t.gasang.at(-1)!)} s, qemu `);
      t.qemu.push(await qemuBoot(g));
      log(`${s2(t.qemu.at(-1)!)} s, in-process `);
      t.inproc.push(await inProcessBoot(g));
      const p = t.inproc.at(-1)!;
      log(`${s2(p.seconds)} s ${(p.instret / p.seconds / 1e6).toFixed(1)} MIPS\n`);
    }
  }
  const loadAtEnd = loadavg();

  const out: string[] = [];
  out.push(`## Boot to \`${MARKER}\` (bench/boot.ts)`, '');
  out.push(`Measured ${facts.date} by \`npm run bench\` (\`node dist/bench/boot.js\`, BENCH_RUNS=${RUNS}, BENCH_GUESTS=${GUESTS.join(',')}).`,
    'Host wall-clock seconds from spawning the emulator to the guest\'s /init printing the marker line; ' +
    `${RUNS} run${RUNS === 1 ? '' : 's'} of each, interleaved (gasang, QEMU, in-process gasang, then the next guest; repeated). Median (min–max).`, '');
  out.push(`- Host: ${facts.cpuModel}, ${facts.cores} cores; Node ${facts.node}; QEMU ${facts.qemu} (TCG); gasang ${facts.commit}`);
  out.push(`- Load average at start: ${facts.loadAtStart.map(s2).join(' ')}; at end: ${loadAtEnd.map(s2).join(' ')}`);
  if (facts.loadAtStart[0] > 0.5) {
    out.push('', `> **Warning:** the 1-minute load average was ${s2(facts.loadAtStart[0])} (> 0.5) when the benchmark started: other processes were running, so the figures are noisier and likely slower than on an idle host.`);
  }
  out.push('', '| guest | gasang CLI (s) | QEMU (s) | gasang / QEMU |', '|---|---|---|---|');
  for (const g of guests) {
    const t = times.get(g.name)!;
    const a = stats(t.gasang), b = stats(t.qemu);
    out.push(`| ${g.name}: ${g.title} | ${range(a, s2)} | ${range(b, s2)} | ${(a.median / b.median).toFixed(2)}× |`);
  }
  out.push('', 'Interpreter speed, in-process (`VirtMachine` from dist/src/machine/virt.js, one hart): guest instructions retired by ' +
    `hart 0 up to the marker (\`instret()\`) divided by the wall time from \`vm.run()\` to the marker (boot-image loading excluded; ` +
    'time the guest spends idle in WFI is included). `create` is the time in `VirtMachine.create` (loading and unpacking the images, ' +
    'building the interpreter). These runs share the benchmark\'s Node process, so from the second run on its JavaScript is already warm.', '');
  out.push('| guest | create (s) | instructions to marker (millions) | run to marker (s) | MIPS |', '|---|---|---|---|---|');
  for (const g of guests) {
    const p = times.get(g.name)!.inproc;
    out.push(`| ${g.name} | ${range(stats(p.map(x => x.createSeconds)), s2)} | ${range(stats(p.map(x => x.instret / 1e6)), x => x.toFixed(0))} | ${range(stats(p.map(x => x.seconds)), s2)} ` +
      `| ${range(stats(p.map(x => x.instret / x.seconds / 1e6)), x => x.toFixed(1))} |`);
  }
  out.push('', 'Every run (s):', '');
  for (const g of guests) {
    const t = times.get(g.name)!;
    out.push(`- ${g.name}: gasang ${t.gasang.map(s2).join(', ')}; QEMU ${t.qemu.map(s2).join(', ')}; in-process ${t.inproc.map(p => s2(p.seconds)).join(', ')}`);
  }
  out.push('', 'Commands (run from the repository root; gasang is stopped with Ctrl-A x on its stdin, QEMU with SIGTERM, once the marker is seen):', '', '```sh');
  for (const g of guests) {
    if (g.qemuKernel !== g.kernel) out.push(`gunzip -c ${g.kernel} > ${g.qemuKernel}`);
    out.push(commandLine('node', gasangArgs(g)), commandLine('qemu-system-riscv64', qemuArgs(g)));
  }
  out.push('```');
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'boot', text);
  process.stdout.write(`${text}\n`);
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
