/**
 * Boot benchmark: gasang with its JIT, gasang's interpreter alone (--jit off) and
 * `qemu-system-riscv64 -M virt` (TCG) boot the same firmware, kernel and initramfs to the line
 * GASANG-READY printed by the guest's /init. Host wall time from spawn to the marker, runs
 * interleaved (JIT, interpreter, QEMU, JIT, ...), plus guest instructions per second measured
 * in-process with VirtMachine, JIT on and off. Results go to the `boot` section of BENCHMARKS.md.
 *
 *   npm run bench:boot     (= tsc -p . && node dist/bench/boot.js; `npm run bench` is the same)
 *   Env: BENCH_RUNS (default 5), BENCH_GUESTS (default debian,default), BENCH_TIMEOUT (s per boot, default 300)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VirtMachine } from '../src/machine/virt.js';
import {
  EMULATOR_TITLE, MarkerWatch, commandLine, debianKernel, emulatorCommand, hostFacts, secondsToMarker, stats, writeSection,
  type Boot, type Emulator, type Stats,
} from './lib.js';

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
    const { kernel, initrd, release } = debianKernel();
    return { name, title: `Debian stock kernel ${release}, busybox initramfs`, kernel, initrd, qemuKernel: kernel };
  }
  if (name === 'default') {
    const qemuKernel = join(tmp, 'Image');
    writeFileSync(qemuKernel, gunzipSync(readFileSync(join(REPO, 'guest/default/Image.gz'))));
    return { name, title: 'bundled guest/default (Linux 6.1), busybox initramfs', kernel: 'guest/default/Image.gz', initrd: 'guest/default/initramfs.cpio.gz', qemuKernel };
  }
  throw new Error(`unknown guest '${name}' in BENCH_GUESTS (known: debian, default)`);
}

const EMULATORS: Emulator[] = ['jit', 'interp', 'qemu'];

/** The boot of `g` on emulator `e` (QEMU gets the uncompressed kernel). */
const bootOf = (g: Guest, e: Emulator): Boot =>
  ({ firmware: FIRMWARE, kernel: e === 'qemu' ? g.qemuKernel : g.kernel, initrd: g.initrd, append: APPEND, memoryMiB: MEMORY_MIB });

function timedBoot(g: Guest, e: Emulator): Promise<number> {
  const { cmd, args } = emulatorCommand(e, bootOf(g, e));
  return secondsToMarker({
    cmd: cmd === 'node' ? process.execPath : cmd, args, cwd: REPO, marker: MARKER, timeoutMs: TIMEOUT_MS,
    stop: e === 'qemu' ? child => child.kill('SIGTERM') : child => child.stdin?.end(Buffer.from([0x01, 0x78])), // Ctrl-A x
  });
}

interface InProcess { instret: number; seconds: number; createSeconds: number }
type Engine = 'jit' | 'interp';

/** Boots in this process: seconds in VirtMachine.create, then guest instructions retired by hart 0 and wall seconds from vm.run() to the marker. */
async function inProcessBoot(g: Guest, engine: Engine): Promise<InProcess> {
  const watch = new MarkerWatch(MARKER);
  let result: InProcess | undefined;
  let t0 = performance.now();
  const vm: VirtMachine = await VirtMachine.create(
    { memoryMiB: MEMORY_MIB, cpus: 1, firmware: resolve(REPO, FIRMWARE), kernel: resolve(REPO, g.kernel), initrd: resolve(REPO, g.initrd), append: APPEND, jit: engine === 'jit' },
    { output: bytes => { if (!result && watch.feed(bytes)) { result = { instret: vm.cpu.harts[0].instret(), seconds: (performance.now() - t0) / 1000, createSeconds }; vm.stop(); } } },
  );
  const createSeconds = (performance.now() - t0) / 1000;
  const timer = setTimeout(() => vm.stop(), TIMEOUT_MS);
  t0 = performance.now();
  await vm.run();
  clearTimeout(timer);
  if (!result) throw new Error(`in-process ${g.name} (${engine}): no ${MARKER}; console tail:\n${watch.tail}`);
  return result;
}

const s2 = (x: number): string => x.toFixed(2);
const range = (s: Stats, f: (x: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) throw new Error('dist/ missing: run npx tsc -p . first');
  const facts = hostFacts(REPO);
  const guests = GUESTS.map(guest);
  const times = new Map(guests.map(g => [g.name, {
    cli: { jit: [] as number[], interp: [] as number[], qemu: [] as number[] } as Record<Emulator, number[]>,
    inproc: { jit: [] as InProcess[], interp: [] as InProcess[] } as Record<Engine, InProcess[]>,
  }]));
  const log = (s: string): void => void process.stderr.write(s);

  log(`boot bench: ${RUNS} runs of ${GUESTS.join(', ')}; load average ${facts.loadAtStart.map(s2).join(' ')}\n`);
  for (let run = 1; run <= RUNS; run++) {
    for (const g of guests) {
      const t = times.get(g.name)!;
      log(`run ${run}/${RUNS} ${g.name}:`);
      for (const e of EMULATORS) {
        t.cli[e].push(await timedBoot(g, e));
        log(` ${EMULATOR_TITLE[e]} ${s2(t.cli[e].at(-1)!)} s,`);
      }
      for (const engine of ['jit', 'interp'] as const) {
        const p = await inProcessBoot(g, engine);
        t.inproc[engine].push(p);
        log(` in-process ${engine} ${s2(p.seconds)} s ${(p.instret / p.seconds / 1e6).toFixed(1)} MIPS${engine === 'jit' ? ',' : '\n'}`);
      }
    }
  }
  const loadAtEnd = loadavg();

  const out: string[] = [];
  out.push(`## Boot to \`${MARKER}\` (bench/boot.ts)`, '');
  out.push(`Measured ${facts.date} by \`npm run bench:boot\` (\`node dist/bench/boot.js\`, BENCH_RUNS=${RUNS}, BENCH_GUESTS=${GUESTS.join(',')}).`,
    'Host wall-clock seconds from spawning the emulator to the guest\'s /init printing the marker line, on gasang with its JIT (`--jit on`, the default), ' +
    'gasang\'s interpreter alone (`--jit off`) and QEMU TCG; ' +
    `${RUNS} run${RUNS === 1 ? '' : 's'} of each, interleaved (JIT, interpreter, QEMU, in-process JIT and interpreter, then the next guest; repeated). ` +
    'Median (min–max). "JIT gain" is interpreter time / JIT time. Goal: gasang ≤ 1.0× QEMU.', '');
  out.push(`- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu} (TCG); gasang ${facts.commit}`);
  out.push(`- Load average at start: ${facts.loadAtStart.map(s2).join(' ')}; at end: ${loadAtEnd.map(s2).join(' ')}`);
  if (facts.loadAtStart[0] > 0.5) {
    out.push('', `> **Warning:** the 1-minute load average was ${s2(facts.loadAtStart[0])} (> 0.5) when the benchmark started: other processes were running, so the figures are noisier and likely slower than on an idle host.`);
  }
  out.push('', '| guest | gasang JIT (s) | gasang interpreter (s) | QEMU (s) | JIT / QEMU | interpreter / QEMU | JIT gain |', '|---|---|---|---|---|---|---|');
  const summary: string[] = [];
  for (const g of guests) {
    const t = times.get(g.name)!.cli;
    const [j, i, q] = EMULATORS.map(e => stats(t[e]));
    out.push(`| ${g.name}: ${g.title} | ${range(j, s2)} | ${range(i, s2)} | ${range(q, s2)} | ${(j.median / q.median).toFixed(2)}× | ${(i.median / q.median).toFixed(2)}× | ${(i.median / j.median).toFixed(2)}× |`);
    summary.push(`${g.name} ${(j.median / q.median).toFixed(2)}× QEMU (JIT gain ${(i.median / j.median).toFixed(2)}×)`);
  }
  out.push('', 'Guest speed, in-process (`VirtMachine` from dist/src/machine/virt.js, one hart, `jit: true` and `jit: false`): guest instructions retired by ' +
    `hart 0 up to the marker (\`instret()\`) divided by the wall time from \`vm.run()\` to the marker (boot-image loading excluded; ` +
    'time the guest spends idle in WFI is included). `create` is the time in `VirtMachine.create` (loading and unpacking the images, ' +
    'building the interpreter). These runs share the benchmark\'s Node process, so from the second run on its JavaScript is already warm.', '');
  out.push('| guest | engine | create (s) | instructions to marker (millions) | run to marker (s) | MIPS |', '|---|---|---|---|---|---|');
  for (const g of guests) {
    for (const engine of ['jit', 'interp'] as const) {
      const p = times.get(g.name)!.inproc[engine];
      out.push(`| ${g.name} | ${EMULATOR_TITLE[engine]} | ${range(stats(p.map(x => x.createSeconds)), s2)} | ${range(stats(p.map(x => x.instret / 1e6)), x => x.toFixed(0))} | ${range(stats(p.map(x => x.seconds)), s2)} ` +
        `| ${range(stats(p.map(x => x.instret / x.seconds / 1e6)), x => x.toFixed(1))} |`);
    }
  }
  out.push('', 'Every run (s):', '');
  for (const g of guests) {
    const t = times.get(g.name)!;
    out.push(`- ${g.name}: ${EMULATORS.map(e => `${EMULATOR_TITLE[e]} ${t.cli[e].map(s2).join(', ')}`).join('; ')}; ` +
      `in-process JIT ${t.inproc.jit.map(p => s2(p.seconds)).join(', ')}; in-process interpreter ${t.inproc.interp.map(p => s2(p.seconds)).join(', ')}`);
  }
  out.push('', `**Summary:** goal (gasang ≤ 1.0× QEMU's boot time) ${summary.every(x => Number(x.split(' ')[1].replace('×', '')) <= 1) ? 'met' : 'not met'}: ${summary.join('; ')}.`);
  out.push('', 'Commands (run from the repository root; gasang is stopped with Ctrl-A x on its stdin, QEMU with SIGTERM, once the marker is seen):', '', '```sh');
  for (const g of guests) {
    if (g.qemuKernel !== g.kernel) out.push(`gunzip -c ${g.kernel} > ${g.qemuKernel}`);
    for (const e of EMULATORS) { const c = emulatorCommand(e, bootOf(g, e)); out.push(commandLine(c.cmd, c.args)); }
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
