/**
 * Snapshot benchmark: the same guest (Debian's kernel with the bench initramfs, 256 MiB, one
 * hart, no NIC) at its shell, saved and restored by gasang and by QEMU, side by side:
 *   - gasang: `gasang run --snapshot-on-exit FILE`, quit (Ctrl-A x) at the shell; the VM's hold
 *     time is what gasang reports, the size is the file's; then `gasang run --restore FILE`.
 *   - QEMU: the same machine with a monitor socket; `stop`, then `migrate "exec:cat > FILE"` (a
 *     whole-VM state file, as `virsh save` makes one), timed to "completed"; then the same
 *     command line with `-incoming "exec:cat FILE"`.
 * Restore is timed from the start of the new process to the guest's answer to a command typed
 * at once (`echo`), which includes starting the emulator itself. Results go to the `snapshot`
 * section of BENCHMARKS.md.
 *
 *   npm run bench:snapshot  (= tsc -p . && node dist/bench/snapshot.js)
 *   Env: BENCH_RUNS (default 3)
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConsoleProcess, EMULATOR_TITLE, benchInitramfs, commandLine, debianKernel, emulatorCommand, hostFacts, loadText, stats, writeSection,
  type Boot, type Emulator,
} from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const EMULATORS: Emulator[] = ['jit', 'qemu'];
const tmp = mkdtempSync(join(tmpdir(), 'gasang-bench-snapshot-'));
const log = (s: string): void => void process.stderr.write(s);
const MiB = 1048576;

interface Sample { saveMs: number; pauseMs: number; bytes: number; restoreMs: number }

/** The emulator's command line for `boot`, with `extra` arguments. */
function command(e: Emulator, boot: Boot, extra: string[]): { cmd: string; args: string[] } {
  const c = emulatorCommand(e, boot);
  return { cmd: c.cmd === 'node' ? process.execPath : c.cmd, args: [...c.args, ...extra] };
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

async function gasangRun(boot: Boot, file: string): Promise<Sample> {
  const c = command('jit', boot, ['--nic', 'none', '--snapshot-on-exit', file]);
  const p = new ConsoleProcess(c.cmd, c.args, { cwd: REPO });
  await p.waitForLine(/^GASANG-READY$/, 600_000);
  await p.run('stty cols 1000; echo ready', 30_000);
  const t0 = performance.now();
  await p.stop();
  const saveMs = performance.now() - t0;
  const said = /the VM held (\d+) ms/.exec(p.tail(5));
  if (!said) throw new Error(`no snapshot line from gasang: ${p.tail(5)}`);
  return { saveMs, pauseMs: Number(said[1]), bytes: statSync(file).size, restoreMs: await answer({ cmd: process.execPath, args: ['dist/src/cli/main.js', 'run', '--restore', file] }) };
}

async function qemuRun(boot: Boot, file: string, mon: string): Promise<Sample> {
  const c = command('qemu', boot, ['-nic', 'none', '-monitor', `unix:${mon},server,nowait`]);
  const p = new ConsoleProcess(c.cmd, c.args, { cwd: REPO });
  try {
    await p.waitForLine(/^GASANG-READY$/, 600_000);
    await p.run('stty cols 1000; echo ready', 30_000);
    const t0 = performance.now();
    await hmp(mon, `migrate "exec:cat > ${file}"`);
    let downtime: number;
    for (;;) {
      const s = await hmp(mon, 'info migrate');
      const d = /^downtime: (\d+) ms/m.exec(s);
      if (/Migration status: completed/.test(s) && d) { downtime = Number(d[1]); break; }
      if (/Migration status: failed/.test(s)) throw new Error(`QEMU migrate failed: ${s}`);
      await new Promise(r => setTimeout(r, 2));
    }
    const saveMs = performance.now() - t0;
    return { saveMs, pauseMs: downtime, bytes: statSync(file).size, restoreMs: await answer(command('qemu', boot, ['-nic', 'none', '-incoming', `exec:cat ${file}`])) };
  } finally {
    await p.stop();
  }
}

/**
 * Starts `c` (a restore) and types a command every 10 ms (what arrives before the restored UART
 * runs is lost on either emulator) until the guest answers; the time from the spawn to the answer.
 */
async function answer(c: { cmd: string; args: string[] }): Promise<number> {
  const t0 = performance.now();
  const p = new ConsoleProcess(c.cmd, c.args, { cwd: REPO });
  const typing = setInterval(() => p.send('echo re""stored\n'), 10);
  try {
    const i = await p.waitForLine(/^restored$/, 60_000);
    return p.lines[i]!.at - t0;
  } finally {
    clearInterval(typing);
    await p.stop();
  }
}

async function main(): Promise<void> {
  const facts = hostFacts(REPO);
  const debian = debianKernel();
  const boot: Boot = { firmware: 'guest/default/fw_jump.bin', kernel: debian.kernel, initrd: benchInitramfs(REPO), append: 'console=ttyS0', memoryMiB: 256 };
  const samples = new Map<Emulator, Sample[]>(EMULATORS.map(e => [e, []]));
  const failures: string[] = [];
  log(`snapshot bench: ${RUNS} runs; load average ${loadText(facts.loadAtStart)}\n`);
  for (let r = 1; r <= RUNS; r++) {
    for (const e of EMULATORS) {
      const file = join(tmp, `${e}-${r}.snap`);
      log(`run ${r}/${RUNS} ${EMULATOR_TITLE[e]} (load ${loadText(loadavg())}):`);
      try {
        const s = e === 'qemu' ? await qemuRun(boot, file, join(tmp, `mon-${r}.sock`)) : await gasangRun(boot, file);
        samples.get(e)!.push(s);
        log(` save ${s.saveMs.toFixed(0)} ms (held ${s.pauseMs.toFixed(0)} ms), ${(s.bytes / MiB).toFixed(1)} MiB, restore to answer ${s.restoreMs.toFixed(0)} ms\n`);
      } catch (err) {
        failures.push(`- run ${r}, ${EMULATOR_TITLE[e]}: ${(err as Error).message.split('\n')[0]}`);
        log(` FAILED: ${(err as Error).message.split('\n')[0]}\n`);
      }
      rmSync(file, { force: true });
    }
  }
  const cell = (e: Emulator, f: (s: Sample) => number, digits: number): string => {
    const xs = samples.get(e)!.map(f);
    if (!xs.length) return 'failed';
    const s = stats(xs);
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  const ratio = (f: (s: Sample) => number): string => {
    const a = samples.get('jit')!.map(f), b = samples.get('qemu')!.map(f);
    return a.length && b.length ? `${(stats(a).median / stats(b).median).toFixed(2)}×` : '–';
  };
  const rows: [string, (s: Sample) => number, number][] = [
    ['snapshot: guest held (ms; QEMU: the downtime its migration reports)', s => s.pauseMs, 0],
    ['snapshot: from the request to the file in place (ms; gasang: Ctrl-A x to exit)', s => s.saveMs, 0],
    ['snapshot file (MiB)', s => s.bytes / MiB, 1],
    ['restore: new process to the guest\'s answer to `echo` (ms)', s => s.restoreMs, 0],
  ];
  const out = [
    '## Snapshot and restore (bench/snapshot.ts)', '',
    `Measured ${facts.date} by \`npm run bench:snapshot\` (BENCH_RUNS=${RUNS}). Debian's kernel (${debian.release}) with the bench initramfs, 256 MiB, one hart, no NIC, at its shell. ` +
      'gasang: `--snapshot-on-exit FILE`, quit at the shell, then `--restore FILE` (src/snapshot: zero pages left out, CRC-32 per section, fsync and rename). ' +
      'QEMU: `migrate "exec:cat > FILE"` of the running VM on its monitor (its whole-VM state, pre-copy, then the guest held for the rest), then `-incoming "exec:cat FILE"`. ' +
      'Restore is timed from the spawn of the new process, so it includes starting the emulator; lower is better everywhere. Median (min–max).', '',
    `- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu}; gasang ${facts.commit}`,
    `- Load average at start: ${loadText(facts.loadAtStart)}; at end: ${loadText(loadavg())}`, '',
    '| figure | gasang | QEMU | gasang / QEMU |', '|---|---|---|---|',
    ...rows.map(([title, f, d]) => `| ${title} | ${cell('jit', f, d)} | ${cell('qemu', f, d)} | ${ratio(f)} |`),
    ...(failures.length ? ['', 'Failures:', ...failures] : []), '',
    'Commands (DEBIAN and BENCH as in the network section):', '', '```sh',
    commandLine('node', command('jit', boot, ['--nic', 'none', '--snapshot-on-exit', 'FILE']).args).replace(debian.kernel, 'DEBIAN/vmlinux').replace(boot.initrd, 'BENCH/initramfs.cpio.gz'),
    'node dist/src/cli/main.js run --restore FILE',
    commandLine('qemu-system-riscv64', command('qemu', boot, ['-nic', 'none', '-monitor', 'unix:MON,server,nowait']).args).replace(debian.kernel, 'DEBIAN/vmlinux').replace(boot.initrd, 'BENCH/initramfs.cpio.gz'),
    '# (qemu) migrate "exec:cat > FILE"; info migrate  — then the same command line with: -incoming "exec:cat FILE"',
    '# restore: typed every 10 ms until the guest answers: echo restored', '```', '',
    'What limits gasang here: RAM is scanned for zero pages and written while the guest is held (no copy-on-write or dirty tracking yet), and restore reads every stored page before the guest runs (no lazy loading yet); the issue\'s goal of an answer within 20 ms needs RAM loaded behind a per-page present map.',
  ];
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'snapshot', text);
  process.stdout.write(`${text}\n`);
  rmSync(tmp, { recursive: true, force: true });
}

main().catch(err => { process.stderr.write(`${(err as Error).stack}\n`); process.exit(1); });
