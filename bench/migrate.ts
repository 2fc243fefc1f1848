/**
 * Live migration benchmark: the same guest (Debian's kernel with the bench initramfs, 256 MiB, one
 * hart, no NIC) at its shell, idle and then dirtying memory (bench/workloads/dirty.c rewriting 4 MiB every 20 ms),
 * moved while it runs, side by side:
 *   - gasang: between two hosts (src/vm/host.ts as gasangd runs it, in this process: each VM in
 *     its own thread, the stream between the two threads over TCP on loopback), `vm.migrate()`,
 *     which is what `gasang vm migrate NAME --to HOST:PORT` does between two daemons;
 *   - QEMU: the same command line twice, the second with `-incoming tcp:127.0.0.1:PORT`;
 *     `migrate_set_parameter downtime-limit 50` (gasang's budget) and `migrate -d` on the source's
 *     monitor, timed to "completed", with the downtime QEMU reports.
 * After each move the guest must answer a command on the target. Results go to the `migration`
 * section of BENCHMARKS.md.
 *
 *   npm run bench:migrate  (= tsc -p . && node dist/bench/migrate.js)
 *   Env: BENCH_RUNS (default 3)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../src/vm/host.js';
import {
  ConsoleProcess, EMULATOR_TITLE, VmConsole, benchInitramfs, commandLine, debianKernel, emulatorCommand, hostFacts, loadText, stats, writeSection,
  type Boot, type Emulator, type LineConsole,
} from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const EMULATORS: Emulator[] = ['jit', 'qemu'];
const LOADS = ['idle', 'dirtying'] as const;
type Load = typeof LOADS[number];
// bench/workloads/dirty.c: a new non-zero word in every page of 4 MiB, then 20 ms of sleep, over
// and over; small enough that both emulators' last round fits a 50 ms budget on loopback.
const DIRTY = '/bench/dirty 4 20 & true';
/** How long QEMU may take to converge before the run counts as failed. */
const QEMU_CONVERGE_MS = 120_000;
const tmp = mkdtempSync(join(tmpdir(), 'gasang-bench-migrate-'));
const log = (s: string): void => void process.stderr.write(s);
const MiB = 1048576;

interface Sample { totalMs: number; downtimeMs: number; bytes: number }

async function ready(c: LineConsole, load: Load): Promise<void> {
  await c.waitForLine(/^GASANG-READY$/, 600_000);
  await c.run('stty cols 1000; echo ready', 30_000);
  if (load === 'dirtying') { await c.run(DIRTY, 30_000); await new Promise(r => setTimeout(r, 2000)); }
}

async function gasangMove(boot: Boot, load: Load, run: number): Promise<Sample> {
  const a = new Host({ stateDir: join(tmp, `a-${load}-${run}`) }), b = new Host({ stateDir: join(tmp, `b-${load}-${run}`) });
  try {
    const vm = await a.create({ name: 'mover', kernel: boot.kernel, initrd: boot.initrd, firmware: join(REPO, boot.firmware), append: boot.append, memoryMiB: boot.memoryMiB, cpus: 1, jit: true });
    await vm.start();
    const con = new VmConsole(vm, 'mover');
    await ready(con, load);
    const r = await vm.migrate({ accept: async spec => ({ host: '127.0.0.1', ...(await b.acceptMigration(spec)) }) });
    con.detach();
    const there = new VmConsole(b.get('mover'), 'mover on b');
    await there.run('echo moved', 30_000);
    there.detach();
    return { totalMs: r.totalMs, downtimeMs: r.downtimeMs, bytes: r.bytesSent };
  } finally {
    await a.close({ timeoutMs: 1000 });
    await b.close({ timeoutMs: 1000 });
  }
}

/** One HMP command on QEMU's monitor socket; resolves with what it printed before the next prompt. */
async function hmp(sock: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(sock);
    let text = '', sent = false;
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      text += d;
      if (!sent && text.includes('(qemu) ')) { sent = true; text = ''; c.write(`${line}\n`); return; }
      if (sent && text.includes('(qemu) ')) { c.end(); resolve(text); }
    });
    c.on('error', reject);
  });
}

async function qemuMove(boot: Boot, load: Load, run: number, port: number): Promise<Sample> {
  const c = emulatorCommand('qemu', boot);
  const mon = join(tmp, `mon-${load}-${run}.sock`);
  const src = new ConsoleProcess(c.cmd, [...c.args, '-nic', 'none', '-monitor', `unix:${mon},server,nowait`], { cwd: REPO });
  const dst = new ConsoleProcess(c.cmd, [...c.args, '-nic', 'none', '-incoming', `tcp:127.0.0.1:${port}`], { cwd: REPO });
  try {
    await ready(src, load);
    await hmp(mon, 'migrate_set_parameter downtime-limit 50');
    const t0 = performance.now();
    await hmp(mon, `migrate -d tcp:127.0.0.1:${port}`);
    for (;;) {
      if (performance.now() - t0 > QEMU_CONVERGE_MS) throw new Error(`QEMU's migration did not complete within ${QEMU_CONVERGE_MS / 1000} s`);
      const s = await hmp(mon, 'info migrate');
      if (/Migration status: failed/.test(s)) throw new Error(`QEMU migrate failed: ${s}`);
      const d = /^downtime: (\d+) ms/m.exec(s), total = /^total time: (\d+) ms/m.exec(s), bytes = /^transferred ram: (\d+) kbytes/m.exec(s);
      if (/Migration status: completed/.test(s) && d) {
        const sample = { totalMs: total ? Number(total[1]) : performance.now() - t0, downtimeMs: Number(d[1]), bytes: bytes ? Number(bytes[1]) * 1024 : 0 };
        await dst.run('echo moved', 30_000).catch((err: Error) => {
          throw new Error(`QEMU reported the migration completed (${sample.totalMs} ms, downtime ${sample.downtimeMs} ms, ${(sample.bytes / MiB).toFixed(1)} MiB sent), but the guest on the target never answered: ${err.message.split('\n')[0]}`);
        });
        return sample;
      }
      await new Promise(r => setTimeout(r, 5));
    }
  } finally {
    await src.stop();
    await dst.stop();
  }
}

async function main(): Promise<void> {
  const facts = hostFacts(REPO);
  const debian = debianKernel();
  const boot: Boot = { firmware: 'guest/default/fw_jump.bin', kernel: debian.kernel, initrd: benchInitramfs(REPO), append: 'console=ttyS0', memoryMiB: 256 };
  const samples = new Map<string, Sample[]>();
  const failures: string[] = [];
  log(`migration bench: ${RUNS} runs; load average ${loadText(facts.loadAtStart)}\n`);
  for (let r = 1; r <= RUNS; r++) {
    for (const load of LOADS) {
      for (const e of EMULATORS) {
        log(`run ${r}/${RUNS} ${load} ${EMULATOR_TITLE[e]} (load ${loadText(loadavg())}):`);
        try {
          const s = e === 'qemu' ? await qemuMove(boot, load, r, 47000 + r) : await gasangMove(boot, load, r);
          const k = `${e}/${load}`;
          samples.set(k, [...(samples.get(k) ?? []), s]);
          log(` ${s.totalMs.toFixed(0)} ms in all, held ${s.downtimeMs.toFixed(1)} ms, ${(s.bytes / MiB).toFixed(1)} MiB\n`);
        } catch (err) {
          failures.push(`- run ${r}, ${load}, ${EMULATOR_TITLE[e]}: ${(err as Error).message.split('\n')[0]}`);
          log(` FAILED: ${(err as Error).message.split('\n')[0]}\n`);
        }
      }
    }
  }
  const cell = (k: string, f: (s: Sample) => number, digits: number): string => {
    const xs = (samples.get(k) ?? []).map(f);
    if (!xs.length) return 'failed';
    const s = stats(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  const ratio = (load: Load, f: (s: Sample) => number): string => {
    const a = (samples.get(`jit/${load}`) ?? []).map(f), b = (samples.get(`qemu/${load}`) ?? []).map(f);
    return a.length && b.length ? `${(stats(a).median / stats(b).median).toFixed(2)}×` : '–';
  };
  const rows: string[] = [];
  for (const load of LOADS) {
    for (const [title, f, d] of [['total time (ms)', (s: Sample) => s.totalMs, 0], ['downtime (ms)', (s: Sample) => s.downtimeMs, 1], ['sent (MiB)', (s: Sample) => s.bytes / MiB, 1]] as const) {
      rows.push(`| ${load} guest: ${title} | ${cell(`jit/${load}`, f, d)} | ${cell(`qemu/${load}`, f, d)} | ${ratio(load, f)} |`);
    }
  }
  const c = emulatorCommand('qemu', boot);
  const out = [
    '## Live migration (bench/migrate.ts)', '',
    `Measured ${facts.date} by \`npm run bench:migrate\` (BENCH_RUNS=${RUNS}). Debian's kernel (${debian.release}) with the bench initramfs, 256 MiB, one hart, no NIC, at its shell: idle, then with \`${DIRTY}\` running (bench/workloads/dirty.c: a new non-zero word in every page of 4 MiB, then 20 ms of sleep, over and over). ` +
      'gasang: two hosts (src/vm/host.ts as gasangd runs it, in one process: each VM in its own thread, the stream between them over TCP on loopback), `vm.migrate()` as `gasang vm migrate` does; its downtime budget is 50 ms. ' +
      'QEMU: a second process with `-incoming tcp:…`, `migrate_set_parameter downtime-limit 50` and `migrate -d` on the source\'s monitor; total time and downtime as `info migrate` reports them. ' +
      'Both: the guest answers on the target afterwards. Lower is better. Median (min–max).', '',
    `- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu}; gasang ${facts.commit}`,
    `- Load average at start: ${loadText(facts.loadAtStart)}; at end: ${loadText(loadavg())}`, '',
    '| figure | gasang | QEMU | gasang / QEMU |', '|---|---|---|---|',
    ...rows,
    ...(failures.length ? ['', 'Failures:', ...failures] : []), '',
    'A migration counts only when the guest answers on the target afterwards. gasang\'s downtime is from the hold of the guest to the target\'s word that its copy runs (the last pages, the harts\' and devices\' state, the disks flushed, the target\'s restore and answer), on a machine whose two cores also run the target\'s thread and the stream. ' +
      'With this QEMU 7.2, the guest that QEMU moved while dirty.c ran never answered on the target (the idle one does), though QEMU reported each migration completed, so the dirtying rows have no QEMU figure.', '',
    'Commands (DEBIAN and BENCH as in the network section):', '', '```sh',
    '# gasang: gasang vm migrate mover --to HOST:PORT (here: two src/vm/host.ts hosts in one process)',
    commandLine('qemu-system-riscv64', [...c.args, '-nic', 'none', '-monitor', 'unix:MON,server,nowait']).replace(debian.kernel, 'DEBIAN/vmlinux').replace(boot.initrd, 'BENCH/initramfs.cpio.gz'),
    '# the same with -incoming tcp:127.0.0.1:PORT; then (qemu) migrate_set_parameter downtime-limit 50; migrate -d tcp:127.0.0.1:PORT; info migrate',
    '```', '',
  ];
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'migration', text);
  process.stdout.write(`${text}\n`);
  rmSync(tmp, { recursive: true, force: true });
}

main().catch(err => { process.stderr.write(`${(err as Error).stack}\n`); process.exit(1); });
