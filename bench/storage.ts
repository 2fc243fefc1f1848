/**
 * Storage benchmark: the same disk image on virtio-blk over virtio-mmio in gasang (`--drive`) and in
 * qemu-system-riscv64 -M virt (`-device virtio-blk-device`), Debian's stock kernel and the bench
 * initramfs on both. In the guest: sequential read and write with dd and direct I/O, and 4 KiB
 * random reads at queue depth 1 (/bench/randread). Images: raw and qcow2 (every cluster allocated),
 * a fresh copy for every boot. Results go to the `storage` section of BENCHMARKS.md.
 *
 *   npm run bench:storage  (= tsc -p . && node dist/bench/storage.js)
 *   Env: BENCH_RUNS (default 3), BENCH_FORMATS (default raw,qcow2), BENCH_MIB (MiB per dd, default 256),
 *        BENCH_RANDREAD_S (seconds of random reads, default 10), BENCH_TIMEOUT (s per command, default 600)
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EMULATOR_TITLE, benchInitramfs, bootToShell, commandLine, debianKernel, emulatorCommand, hostFacts, loadText, stats,
  timedBenchLines, writeSection, type Boot, type Emulator, type Stats, type TimedBench,
} from './lib.js';

const REPO = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FORMATS = (process.env.BENCH_FORMATS ?? 'raw,qcow2').split(',').map(s => s.trim()).filter(Boolean) as ('raw' | 'qcow2')[];
const MIB = Number(process.env.BENCH_MIB ?? 256);
const RANDREAD_S = Number(process.env.BENCH_RANDREAD_S ?? 10);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;
const EMULATORS: Emulator[] = ['jit', 'qemu'];
const BLOCK = 4096;
/** The disk: the first MIB MiB are read (sequentially and at random), the next MIB MiB are overwritten. */
const DISK_BYTES = 2 * MIB * 1048576;

/** The guest commands, in order; each prints one BENCH line (timed.c around dd, or randread itself). */
const TESTS = [
  { name: 'seqread', title: `sequential read, ${MIB} MiB, bs=1M, iflag=direct`, unit: 'MB/s',
    cmd: `/bench/timed seqread dd if=/dev/vda of=/dev/null bs=1M count=${MIB} iflag=direct` },
  { name: 'seqwrite', title: `sequential write, ${MIB} MiB of zeroes, bs=1M, oflag=direct, conv=fsync (one flush at the end)`, unit: 'MB/s',
    cmd: `/bench/timed seqwrite dd if=/dev/zero of=/dev/vda bs=1M count=${MIB} seek=${MIB} oflag=direct conv=fsync` },
  { name: 'randread', title: `4 KiB random reads, O_DIRECT, queue depth 1, ${RANDREAD_S} s over the first ${MIB} MiB`, unit: 'IOPS',
    cmd: `/bench/randread /dev/vda ${RANDREAD_S} ${MIB}` },
] as const;
type TestName = typeof TESTS[number]['name'];

const tmp = mkdtempSync(join(tmpdir(), 'gasang-bench-storage-'));
const log = (s: string): void => void process.stderr.write(s);
const range = (s: Stats, f: (x: number) => string): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${commandLine(cmd, args)} failed (status ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The figure of one BENCH line: MB/s (10^6 bytes/s) for dd, IOPS for randread. */
function figure(test: TestName, b: TimedBench): number {
  if (test === 'randread') return Number(b.fields.iops);
  return MIB * 1048576 / b.guestSeconds / 1e6;
}

/** Checks one BENCH line; returns why it is not a valid result, or undefined. */
function invalid(test: TestName, b: TimedBench): string | undefined {
  if (test === 'randread') return b.fields.errors !== '0' ? `${b.fields.errors} reads returned the wrong block` : undefined;
  return b.fields.status !== '0' ? `dd exit status ${b.fields.status}` : undefined;
}

/** The master raw image: each 4 KiB block starts with its own index (u64 LE), which randread checks. */
function makeMaster(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let pos = 0; pos < DISK_BYTES; pos += chunk.length) {
    for (let off = 0; off < chunk.length; off += BLOCK) chunk.writeUInt32LE((pos + off) / BLOCK, off); // high half stays 0
    writeSync(fd, chunk, 0, chunk.length, pos);
  }
  fsyncSync(fd);
  closeSync(fd);
}

/** A fresh copy of `from`, written back to disk so no host writeback runs during the test; it stays in the host page cache. */
function freshCopy(from: string, to: string): void {
  copyFileSync(from, to);
  const fd = openSync(to, 'r+');
  fsyncSync(fd);
  // Read it all once: the whole image is in the host page cache before the guest starts.
  const buf = Buffer.alloc(1 << 20);
  for (let pos = 0; readSync(fd, buf, 0, buf.length, pos) > 0; pos += buf.length);
  closeSync(fd);
}

interface Cell { runs: TimedBench[]; failures: string[] }

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) throw new Error('dist/ missing: run npx tsc -p . first');
  const debian = debianKernel();
  const initrd = benchInitramfs(REPO);
  const qemuImg = run('qemu-img', ['--version']).split('\n')[0];

  // Masters: raw with the block pattern; qcow2 converted from it (every cluster allocated, since no block is all zeroes);
  // `expected` is what the disk must hold after the write test (the second half zeroes).
  const master = { raw: join(tmp, 'master.raw'), qcow2: join(tmp, 'master.qcow2') };
  makeMaster(master.raw);
  if (FORMATS.includes('qcow2')) run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', master.raw, master.qcow2]);
  const expected = join(tmp, 'expected.raw');
  copyFileSync(master.raw, expected);
  run('truncate', ['-s', String(MIB * 1048576), expected]);
  run('truncate', ['-s', String(DISK_BYTES), expected]);

  const facts = hostFacts(REPO);
  const cells = new Map<string, Cell>();
  const cell = (f: string, e: Emulator, t: TestName): Cell => {
    const k = `${f}/${e}/${t}`;
    if (!cells.has(k)) cells.set(k, { runs: [], failures: [] });
    return cells.get(k)!;
  };
  const boots = new Map<string, Boot>();
  const integrity: string[] = [];
  const bootFailures: string[] = [];

  log(`storage bench: ${RUNS} runs, formats ${FORMATS.join(', ')}, ${MIB} MiB; load average ${loadText(facts.loadAtStart)}\n`);
  for (let r = 1; r <= RUNS; r++) {
    for (const f of FORMATS) {
      for (const e of EMULATORS) {
        const disk = join(tmp, `disk.${f}`);
        freshCopy(master[f], disk);
        const boot: Boot = { firmware: 'guest/default/fw_jump.bin', kernel: debian.kernel, initrd, append: 'console=ttyS0 gasang.modules=1', memoryMiB: 256, drives: [{ file: disk, format: f }] };
        boots.set(`${f}/${e}`, boot);
        log(`run ${r}/${RUNS} ${f} ${EMULATOR_TITLE[e]}:`);
        let shell: Awaited<ReturnType<typeof bootToShell>> | undefined;
        try {
          shell = await bootToShell(e, boot, REPO, 600_000);
          await shell.run('while [ ! -b /dev/vda ]; do sleep 0.1; done', 60_000);
          for (const t of TESTS) {
            const c = cell(f, e, t.name);
            try {
              const res = await shell.run(t.cmd, TIMEOUT_MS);
              const b = timedBenchLines(res.lines).find(x => x.name === t.name);
              const bad = b ? invalid(t.name, b) : `no BENCH line (exit status ${res.status}); output:\n${res.lines.map(l => l.text).join('\n')}`;
              if (bad || !b) c.failures.push(`run ${r}: \`${t.cmd}\`: ${bad}`);
              else { c.runs.push(b); log(` ${t.name} ${figure(t.name, b).toFixed(0)} ${t.unit}`); }
            } catch (err) {
              c.failures.push(`run ${r}: \`${t.cmd}\`: ${(err as Error).message}`);
              throw err;
            }
          }
        } catch (err) {
          if (!shell) bootFailures.push(`- run ${r}, ${f}, ${EMULATOR_TITLE[e]}: boot failed: ${(err as Error).message}`);
          log(` FAILED: ${(err as Error).message.split('\n')[0]}`);
        } finally {
          await shell?.stop();
        }
        // What the guest wrote must be in the image, and a qcow2 image must still check clean.
        const cmp = spawnSync('qemu-img', ['compare', '-f', f, '-F', 'raw', disk, expected], { encoding: 'utf8' });
        const ok = cmp.status === 0;
        let check = '';
        if (f === 'qcow2') {
          const c = spawnSync('qemu-img', ['check', disk], { encoding: 'utf8' });
          check = c.status === 0 ? ', qemu-img check clean' : `, qemu-img check FAILED: ${(c.stdout + c.stderr).trim()}`;
        }
        integrity.push(`- run ${r}, ${f}, ${EMULATOR_TITLE[e]}: ${ok ? 'image identical to the expected contents' : `image DIFFERS from the expected contents: ${(cmp.stdout + cmp.stderr).trim()}`}${check}`);
        log(ok && !check.includes('FAILED') ? ', image ok\n' : ', image BAD\n');
      }
    }
  }
  const loadAtEnd = loadavg();

  const out: string[] = [];
  out.push('## Storage: virtio-blk in the guest (bench/storage.ts)', '');
  out.push(`Measured ${facts.date} by \`npm run bench:storage\` (\`node dist/bench/storage.js\`, BENCH_RUNS=${RUNS}, BENCH_FORMATS=${FORMATS.join(',')}, BENCH_MIB=${MIB}, BENCH_RANDREAD_S=${RANDREAD_S}).`,
    `Debian's stock kernel ${debian.release} with the bench initramfs (\`gasang.modules=1\` loads virtio-mmio and virtio-blk), 256 MiB, one hart, ` +
    `and one ${DISK_BYTES >> 20} MiB data disk on virtio-blk over virtio-mmio — the transport gasang has; on \`-M virt\` QEMU\'s \`-drive if=virtio\` ` +
    'would be virtio-pci, so QEMU gets `-drive if=none` + `-device virtio-blk-device` instead (QEMU defaults otherwise: cache=writeback, aio=threads). ' +
    'gasang runs with its JIT (the default). Every boot gets a fresh copy of the image, flushed to the host disk and then read once, so the ' +
    '**host page cache is warm** for both emulators (the figures measure the emulators\' I/O paths, not the host disk; guest-side caching is ' +
    `bypassed by O_DIRECT). The machines take turns (gasang, QEMU, per format; repeated ${RUNS}×). Median (min–max) of ${RUNS} run${RUNS === 1 ? '' : 's'}; ` +
    'MB/s is 10^6 bytes per guest second, the time taken by dd from fork to exit (`/bench/timed`, since busybox dd prints no rate).', '');
  out.push(`- Host: ${facts.cpuModel}, ${facts.cores} cores (shared with other users); Node ${facts.node}; QEMU ${facts.qemu} (TCG); ${qemuImg}; gasang ${facts.commit}`);
  out.push(`- Load average at start: ${loadText(facts.loadAtStart)}; at end: ${loadText(loadAtEnd)}`);
  out.push(`- Images: raw (${DISK_BYTES >> 20} MiB, each 4 KiB block starting with its index)` +
    (FORMATS.includes('qcow2') ? '; qcow2 v3 from it by `qemu-img convert -O qcow2` (64 KiB clusters, all allocated)' : ''));
  out.push('', '| image | test | gasang | QEMU | gasang / QEMU |', '|---|---|---|---|---|');
  const verdicts: string[] = [];
  for (const f of FORMATS) {
    for (const t of TESTS) {
      const g = cell(f, 'jit', t.name).runs.map(b => figure(t.name, b)), q = cell(f, 'qemu', t.name).runs.map(b => figure(t.name, b));
      const show = (xs: number[]): string => xs.length ? `${range(stats(xs), x => x.toFixed(0))} ${t.unit}` : 'failed';
      const x = g.length && q.length ? stats(g).median / stats(q).median : undefined;
      if (x !== undefined) verdicts.push(`${f} ${t.name} ${x.toFixed(2)}×`);
      out.push(`| ${f} | ${t.title} | ${show(g)} | ${show(q)} | ${x !== undefined ? `${x.toFixed(2)}×` : '–'} |`);
    }
  }
  const ratios = verdicts.map(v => Number(v.split(' ').at(-1)!.replace('×', '')));
  const failures = [...bootFailures, ...[...cells.entries()].flatMap(([k, c]) => c.failures.map(x => `- ${k}: ${x}`))];
  out.push('', `**Summary:** goal (gasang ≥ QEMU) met on ${ratios.filter(x => x >= 1).length} of ${ratios.length} figures (${verdicts.join(', ')})` +
    (failures.length ? `; ${failures.length} failure${failures.length === 1 ? '' : 's'} (below)` : '') +
    (integrity.some(l => /DIFFERS|FAILED/.test(l)) ? '; an image came out WRONG (below)' : '; every image came out as expected') + '.');
  if (failures.length) out.push('', '### Failures', '', ...failures);

  out.push('', 'Every run (figure; guest seconds / host seconds from the BENCH-START line to the BENCH line):', '');
  for (const f of FORMATS) {
    for (const t of TESTS) {
      out.push(`- ${f} ${t.name}: ${EMULATORS.map(e => `${EMULATOR_TITLE[e]} ${cell(f, e, t.name).runs.map(b => `${figure(t.name, b).toFixed(0)} (${b.guestSeconds.toFixed(2)}/${b.hostSeconds.toFixed(2)} s)`).join(', ') || 'none'}`).join('; ')}`);
    }
  }
  out.push('', `After each boot the image is compared with what it must hold (\`qemu-img compare\` against the master with its second ${MIB} MiB zeroed)` +
    (FORMATS.includes('qcow2') ? ' and a qcow2 image is checked with `qemu-img check`' : '') + ':', '', ...integrity);

  out.push('', `Commands (run from the repository root; DIR is a temporary directory; the disk is a fresh copy of the master before every boot):`, '', '```sh',
    'bash scripts/build-bench-guest.sh',
    `# DIR/master.raw: ${DISK_BYTES >> 20} MiB, the u64 index of each 4 KiB block at its start (written by bench/storage.ts)`);
  if (FORMATS.includes('qcow2')) out.push('qemu-img convert -f raw -O qcow2 DIR/master.raw DIR/master.qcow2');
  for (const f of FORMATS) {
    out.push(`cp DIR/master.${f} DIR/disk.${f}`);
    for (const e of EMULATORS) { const c = emulatorCommand(e, boots.get(`${f}/${e}`)!); out.push(commandLine(c.cmd, c.args).replaceAll(tmp, 'DIR')); }
  }
  out.push('# then, at the guest shell, after GASANG-READY:', 'stty cols 1000', 'while [ ! -b /dev/vda ]; do sleep 0.1; done', ...TESTS.map(t => t.cmd), '```');
  const text = out.join('\n');
  writeSection(join(REPO, 'BENCHMARKS.md'), 'storage', text);
  process.stdout.write(`${text}\n`);
}

try {
  await main();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
