/**
 * CPU benchmark: deterministic workloads (bench/workloads/*.c, static riscv64 binaries in the bench
 * initramfs) run inside Debian's stock kernel on three machines side by side — gasang with its JIT,
 * gasang's interpreter alone (--jit off) and qemu-system-riscv64 -M virt (TCG) — with the same
 * firmware, kernel, initramfs, memory and one hart. Each workload is timed by the guest's clock and
 * by the host's (arrival of its BENCH-START line to its BENCH line); checksums must agree across
 * machines. Results go to the `cpu` section of BENCHMARKS.md.
 *
 *   npm run bench:cpu      (= tsc -p . && node dist/bench/cpu.js)
 *   Env: BENCH_RUNS (default 3), BENCH_SCALE (multiplies every workload's scale, default 1),
 *        BENCH_WORKLOADS (default hash,sieve,nbody,muldiv,memwalk), BENCH_TIMEOUT (s per command, default 1200)
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  EMULATOR_TITLE, benchInitramfs, bootToShell, commandLine, debianKernel, emulatorCommand, hostFacts, loadText, stats,
  timedBenchLines, writeSection, type Boot, type Emulator, type Stats, type TimedBench,
} from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 1200) * 1000;
const EMULATORS: Emulator[] = ['jit', 'interp', 'qemu'];
/** Minimum QEMU guest seconds for a figure to mean something (timer ticks, start-up noise). */
const MIN_QEMU_SECONDS = 2;

/** Each program's scale argument, chosen so that QEMU TCG needs 2 s or more per result (on this host). */
const WORKLOADS: Record<string, { scale: number; results: string[]; what: string }> = {
  hash: { scale: 4, results: ['hash'], what: 'FNV-1a and xxHash64-style hashing of 64 KiB (loads, xor, rotates, 64-bit mul)' },
  sieve: { scale: 7, results: ['sieve'], what: 'sieve of Eratosthenes to 4 million (byte stores, branches, 4 MB)' },
  nbody: { scale: 2, results: ['nbody'], what: 'five-body simulation in double precision (fadd/fmul/fdiv/fsqrt/fma)' },
  muldiv: { scale: 3, results: ['muldiv'], what: '64- and 32-bit mul, mulh, div, rem (signed and unsigned)' },
  memwalk: { scale: 4, results: ['memwalk-chase', 'memwalk-seq'], what: 'dependent pointer chase over 32 MiB (chase), then sequential sums (seq)' },
};
const SELECTED = (process.env.BENCH_WORKLOADS ?? Object.keys(WORKLOADS).join(',')).split(',').map(s => s.trim()).filter(Boolean);

/** Every measurement of one result (e.g. memwalk-seq) on one machine, one per run, and the failures. */
interface Series { runs: TimedBench[]; failures: string[] }

const log = (s: string): void => void process.stderr.write(s);
const s2 = (x: number): string => x.toFixed(2);
const range = (s: Stats, f: (x: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
const median = (xs: number[]): number | undefined => xs.length ? stats(xs).median : undefined;

/** Boots `e` once and runs every selected workload in it; a failed workload is recorded and the machine rebooted for the next. */
async function runMachine(e: Emulator, boot: Boot, series: Map<string, Map<Emulator, Series>>, run: number): Promise<void> {
  let shell: Awaited<ReturnType<typeof bootToShell>> | undefined;
  for (const w of SELECTED) {
    const spec = WORKLOADS[w];
    const cmd = `/bench/${w} ${spec.scale * SCALE}`;
    const fail = (why: string): void => { for (const r of spec.results) series.get(r)!.get(e)!.failures.push(`run ${run}: \`${cmd}\`: ${why}`); };
    try {
      shell ??= await bootToShell(e, boot, REPO, 600_000);
    } catch (err) {
      fail(`boot failed: ${(err as Error).message}`);
      continue;
    }
    log(`  ${w}`);
    try {
      const r = await shell.run(cmd, TIMEOUT_MS);
      const got = timedBenchLines(r.lines);
      for (const name of spec.results) {
        const b = got.find(x => x.name === name);
        if (b) {
          series.get(name)!.get(e)!.runs.push(b);
          log(` ${s2(b.guestSeconds)}s`);
        } else {
          series.get(name)!.get(e)!.failures.push(`run ${run}: \`${cmd}\`: no BENCH ${name} line (exit status ${r.status}); output:\n${r.lines.map(l => l.text).join('\n')}`);
        }
      }
      if (r.status !== 0 && got.length === spec.results.length) fail(`exit status ${r.status}`);
    } catch (err) {
      fail((err as Error).message);
      log(' FAILED');
      await shell.stop();
      shell = undefined;
    }
  }
  log('\n');
  await shell?.stop();
}

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) throw new Error('dist/ missing: run npx tsc -p . first');
  for (const w of SELECTED) if (!WORKLOADS[w]) throw new Error(`unknown workload '${w}' in BENCH_WORKLOADS (known: ${Object.keys(WORKLOADS).join(', ')})`);
  const debian = debianKernel();
  const boot: Boot = { firmware: 'guest/default/fw_jump.bin', kernel: debian.kernel, initrd: benchInitramfs(REPO), append: 'console=ttyS0', memoryMiB: 256 };
  const facts = hostFacts(REPO);
  const results = SELECTED.flatMap(w => WORKLOADS[w].results);
  const series = new Map(results.map(r => [r, new Map(EMULATORS.map(e => [e, { runs: [], failures: [] } as Series]))]));

  log(`cpu bench: ${RUNS} runs of ${SELECTED.join(', ')} (scale ×${SCALE}); load average ${loadText(facts.loadAtStart)}\n`);
  for (let run = 1; run <= RUNS; run++) {
    for (const e of EMULATORS) {
      log(`run ${run}/${RUNS} ${EMULATOR_TITLE[e]}:`);
      await runMachine(e, boot, series, run);
    }
  }
  const loadAtEnd = loadavg();

  const get = (r: string, e: Emulator): Series => series.get(r)!.get(e)!;
  const guest = (r: string, e: Emulator): number[] => get(r, e).runs.map(b => b.guestSeconds);
  const host = (r: string, e: Emulator): number[] => get(r, e).runs.map(b => b.hostSeconds);
  const cell = (xs: number[]): string => xs.length ? range(stats(xs), s2) : 'failed';
  const ratio = (a: number | undefined, b: number | undefined): string => a !== undefined && b !== undefined ? `${(a / b).toFixed(2)}×` : '–';
  /** gasang's instruction count for the result (JIT runs, else interpreter runs): the work is the same on every machine. */
  const gasangInsns = (r: string): number | undefined =>
    median(get(r, 'jit').runs.flatMap(b => b.insns ?? [])) ?? median(get(r, 'interp').runs.flatMap(b => b.insns ?? []));

  // Checksums: every run on every machine must print the same one.
  const checksumRows: string[] = [];
  const mismatches: string[] = [];
  for (const r of results) {
    const seen = new Map<string, string[]>();
    for (const e of EMULATORS) get(r, e).runs.forEach((b, i) => {
      const c = b.checksum ?? 'none';
      seen.set(c, [...(seen.get(c) ?? []), `${EMULATOR_TITLE[e]} run ${i + 1}`]);
    });
    const agree = seen.size === 1;
    if (!agree) mismatches.push(r);
    checksumRows.push(`| ${r} | ${[...seen.entries()].map(([c, who]) => agree ? `\`${c}\`` : `\`${c}\` (${who.join(', ')})`).join('; ')} | ${agree ? 'yes' : '**NO**'} |`);
  }

  const out: string[] = [];
  out.push('## CPU-bound workloads in the guest (bench/cpu.ts)', '');
  out.push(`Measured ${facts.date} by \`npm run bench:cpu\` (\`node dist/bench/cpu.js\`, BENCH_RUNS=${RUNS}, BENCH_SCALE=${SCALE}, BENCH_WORKLOADS=${SELECTED.join(',')}).`,
    `Debian's stock kernel ${debian.release} with the bench initramfs (busybox + static riscv64 workloads from bench/workloads, ` +
    'gcc -O2, built by scripts/build-bench-guest.sh), 256 MiB, one hart, on three machines: gasang with its JIT (`--jit on`, the default), ' +
    'gasang\'s interpreter alone (`--jit off`) and QEMU TCG. Each machine boots once per run and runs the workloads one after the other ' +
    `at its shell; the machines take turns (JIT, interpreter, QEMU; repeated ${RUNS}×). Median (min–max) of ${RUNS} run${RUNS === 1 ? '' : 's'}.`, '');
  out.push(`- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu} (TCG); gasang ${facts.commit}`);
  out.push(`- Load average at start: ${loadText(facts.loadAtStart)}; at end: ${loadText(loadAtEnd)}`);
  out.push('', 'Workloads (`/bench/NAME SCALE` in the guest; the scale multiplies the iteration count):', '');
  for (const w of SELECTED) out.push(`- ${w} (scale ${WORKLOADS[w].scale * SCALE}): ${WORKLOADS[w].what}`);

  out.push('', '### Guest seconds', '',
    'The workload\'s own measurement: `CLOCK_MONOTONIC` around its loop (set-up excluded). Both emulators drive the guest clock from the host\'s clock. ' +
    `"JIT gain" is interpreter time / JIT time. Goal: gasang (JIT) ≤ 1.5× QEMU.`, '',
    '| result | gasang JIT (s) | gasang interpreter (s) | QEMU (s) | JIT / QEMU | interpreter / QEMU | JIT gain |', '|---|---|---|---|---|---|---|');
  for (const r of results) {
    const j = median(guest(r, 'jit')), i = median(guest(r, 'interp')), q = median(guest(r, 'qemu'));
    out.push(`| ${r} | ${cell(guest(r, 'jit'))} | ${cell(guest(r, 'interp'))} | ${cell(guest(r, 'qemu'))} | ${ratio(j, q)} | ${ratio(i, q)} | ${ratio(i, j)} |`);
  }

  out.push('', '### Host seconds', '',
    'The same interval seen from the host: arrival of the workload\'s `BENCH-START` line on the emulator\'s stdout to arrival of its `BENCH` result line ' +
    '(includes the console\'s latency for those two lines).', '',
    '| result | gasang JIT (s) | gasang interpreter (s) | QEMU (s) | JIT / QEMU | JIT gain |', '|---|---|---|---|---|---|');
  for (const r of results) {
    const j = median(host(r, 'jit')), i = median(host(r, 'interp')), q = median(host(r, 'qemu'));
    out.push(`| ${r} | ${cell(host(r, 'jit'))} | ${cell(host(r, 'interp'))} | ${cell(host(r, 'qemu'))} | ${ratio(j, q)} | ${ratio(i, j)} |`);
  }

  const qemuRates = results.flatMap(r => get(r, 'qemu').runs.flatMap(b => b.insns !== undefined ? [b.insns / b.guestSeconds / 1e6] : []));
  out.push('', '### Guest MIPS', '',
    'Instructions retired while the workload ran (the guest\'s `perf_event_open` PERF_COUNT_HW_INSTRUCTIONS, through the SBI PMU from the hart\'s ' +
    'instret; kernel time during the interval included) / guest seconds. gasang counts retired instructions exactly. ' +
    'QEMU\'s counter is exact only with `-icount`, which this TCG run does not use: ' +
    (qemuRates.length
      ? `its reported count grew at ${range(stats(qemuRates), x => x.toFixed(0))} million per guest second whatever the workload, i.e. it follows the host clock. `
      : 'it reported no count here. ') +
    'So the QEMU column (marked *) is gasang\'s instruction count for the same, checksum-identical work divided by QEMU\'s guest seconds.', '',
    '| result | instructions (millions, gasang) | gasang JIT MIPS | gasang interpreter MIPS | QEMU MIPS* |', '|---|---|---|---|---|');
  const mips = (r: string, e: Emulator): string => {
    const xs = get(r, e).runs.flatMap(b => b.insns !== undefined ? [b.insns / b.guestSeconds / 1e6] : []);
    return xs.length ? range(stats(xs), x => x.toFixed(0)) : 'n/a';
  };
  for (const r of results) {
    const n = gasangInsns(r), q = guest(r, 'qemu');
    const qm = n !== undefined && q.length ? range(stats(q.map(s => n / s / 1e6)), x => x.toFixed(0)) : 'n/a';
    out.push(`| ${r} | ${n !== undefined ? (n / 1e6).toFixed(0) : 'n/a'} | ${mips(r, 'jit')} | ${mips(r, 'interp')} | ${qm} |`);
  }

  out.push('', '### Checksums', '', 'A function of the work done only (never of time), printed by every run on every machine.', '',
    '| result | checksum | same everywhere |', '|---|---|---|', ...checksumRows);

  const failures = results.flatMap(r => EMULATORS.flatMap(e => get(r, e).failures.map(f => `- ${EMULATOR_TITLE[e]}, ${r}: ${f}`)));
  if (failures.length) out.push('', '### Failures', '', ...[...new Set(failures)]);

  out.push('', 'Every run (guest s / host s):', '');
  for (const r of results) {
    out.push(`- ${r}: ${EMULATORS.map(e => `${EMULATOR_TITLE[e]} ${get(r, e).runs.map(b => `${s2(b.guestSeconds)}/${s2(b.hostSeconds)}`).join(', ') || 'none'}`).join('; ')}`);
  }

  // One honest line against the goal.
  const ratios = results.flatMap(r => {
    const j = median(guest(r, 'jit')), q = median(guest(r, 'qemu'));
    return j !== undefined && q !== undefined ? [{ r, x: j / q }] : [];
  });
  const met = ratios.filter(x => x.x <= 1.5);
  const worst = ratios.reduce<{ r: string; x: number } | undefined>((a, b) => !a || b.x > a.x ? b : a, undefined);
  const best = ratios.reduce<{ r: string; x: number } | undefined>((a, b) => !a || b.x < a.x ? b : a, undefined);
  const short = results.filter(r => (median(guest(r, 'qemu')) ?? Infinity) < MIN_QEMU_SECONDS);
  out.push('', `**Summary:** goal (gasang JIT ≤ 1.5× QEMU) met on ${met.length} of ${results.length} results` +
    (best && worst ? `; from ${best.x.toFixed(2)}× (${best.r}) to ${worst.x.toFixed(2)}× (${worst.r})` : '') +
    (mismatches.length ? `; checksums DIFFER on ${mismatches.join(', ')}` : '; checksums agree everywhere') +
    (failures.length ? `; ${failures.length} failure${failures.length === 1 ? '' : 's'} (above)` : '') +
    (short.length ? `; QEMU ran under ${MIN_QEMU_SECONDS} s on ${short.join(', ')} (too short to mean much)` : '') + '.');

  out.push('', 'Commands (run from the repository root; each machine is stopped with Ctrl-A x once its workloads are done):', '', '```sh',
    'bash scripts/build-bench-guest.sh', ...EMULATORS.map(e => { const c = emulatorCommand(e, boot); return commandLine(c.cmd, c.args); }),
    '# then, at the guest shell, after GASANG-READY:', 'stty cols 1000', ...SELECTED.map(w => `/bench/${w} ${WORKLOADS[w].scale * SCALE}`), '```');
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'cpu', text);
  process.stdout.write(`${text}\n`);
}

await main();
