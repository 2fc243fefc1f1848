/**
 * Runs batches of generated sequences on QEMU and on gasang and explains the differences: for a
 * differing sequence it re-runs every prefix of its body (one more batch) to find the first unit
 * after which the two machines disagree, and reports that unit with its operands.
 */
import { RECORD_BYTES, bodyText, makeSequence, programText, type Group, type Sequence } from './generate.js';
import { build, runQemu, type QemuResult } from './qemu.js';
import { runGasang, type GasangOptions, type GasangResult } from './gasang-user.js';
import { diffRecords, operandValues, records, trapText, type FieldDiff } from './compare.js';

/** What `npm test` runs: DEFAULT_COUNT sequences per group and seed (× 8 groups × 3 seeds = 6144). */
export const DEFAULT_SEEDS = [1, 2, 3];
export const DEFAULT_COUNT = 256;

/** How many sequences go into one program (one as/ld/qemu run each); ~2 KiB of image per sequence. */
export const BATCH = 200;

export interface Mismatch {
  seq: Sequence;
  /** The first differing field, or the trap / error that ended gasang's run early. */
  summary: string;
}

interface BatchRun { qemu: QemuResult; gasang: GasangResult }

/** Assembles, then runs the program on both machines. Throws if QEMU itself did not run it cleanly (a generator bug). */
async function runBoth(seqs: readonly Sequence[], opts: GasangOptions, oracle?: Promise<QemuResult & { elf: Uint8Array }>): Promise<BatchRun> {
  const { elf, ...qemu } = await (oracle ?? runOracle(seqs));
  return { qemu, gasang: await runGasang(elf, opts) };
}

async function runOracle(seqs: readonly Sequence[]): Promise<QemuResult & { elf: Uint8Array }> {
  const built = await build(programText(seqs));
  try {
    const q = await runQemu(built.elfPath);
    if (q.code !== 0 || q.stdout.length !== seqs.length * RECORD_BYTES) {
      const s = seqs[Math.floor(q.stdout.length / RECORD_BYTES)] ?? seqs[0];
      throw new Error(`QEMU did not run the program cleanly (exit ${q.code}, signal ${q.signal}, ${q.stdout.length} bytes out) ` +
        `near ${s.group} seed ${s.seed} sequence ${s.index}: ${q.stderr.slice(0, 500)}`);
    }
    return { ...q, elf: built.elf };
  } finally {
    await built.dispose();
  }
}

/** Sequences whose dumps differ (in batch order). */
function mismatches(seqs: readonly Sequence[], run: BatchRun): Mismatch[] {
  const want = records(run.qemu.stdout), got = records(run.gasang.stdout);
  const out: Mismatch[] = [];
  for (let i = 0; i < seqs.length; i++) {
    if (i >= got.length) {
      const why = run.gasang.trap ? `gasang ${trapText(run.gasang.trap)}` : `gasang stopped: ${run.gasang.error ?? `exit ${run.gasang.exitCode}`}`;
      out.push({ seq: seqs[i], summary: why });
      break;
    }
    const d = diffRecords(want[i], got[i]);
    if (d.length) out.push({ seq: seqs[i], summary: diffText(d[0]) });
  }
  return out;
}

const diffText = (d: FieldDiff): string => `${d.field}: qemu ${d.expected}, gasang ${d.actual}`;

export interface CheckOptions extends GasangOptions {
  /** Sequences per program (default BATCH). */
  batch?: number;
  /** How many assemble+QEMU jobs may run at once while gasang runs the finished ones. */
  parallel?: number;
}

/** Runs `seqs` in batches and returns the differing ones. */
export async function check(seqs: readonly Sequence[], opts: CheckOptions = {}): Promise<Mismatch[]> {
  const batch = opts.batch ?? BATCH, parallel = opts.parallel ?? 3;
  const batches: Sequence[][] = [];
  for (let i = 0; i < seqs.length; i += batch) batches.push(seqs.slice(i, i + batch));
  const slot = limiter(parallel);
  const oracles = batches.map(b => slot(() => runOracle(b)));
  oracles.forEach(p => p.catch(() => undefined)); // awaited below, in order
  const out: Mismatch[] = [];
  for (let i = 0; i < batches.length; i++) out.push(...mismatches(batches[i], await runBoth(batches[i], opts, oracles[i])));
  return out;
}

export interface Culprit {
  /** Index of the first unit after which the states differ; -1 = already before the body (set-up or dump). */
  unit: number;
  text: string;
}

/** Finds the first unit of `seq` after which gasang and QEMU disagree, and explains it. */
export async function bisect(seq: Sequence, opts: GasangOptions = {}): Promise<Culprit> {
  const prefixes = Array.from({ length: seq.units.length + 1 }, (_, k) => ({ ...seq, units: seq.units.slice(0, k) }));
  const run = await runBoth(prefixes, opts);
  const want = records(run.qemu.stdout), got = records(run.gasang.stdout);
  for (let k = 0; k < prefixes.length; k++) {
    const unit = seq.units[k - 1] ?? [];
    const lines = unit.map(l => `      ${l}`).join('\n');
    if (k >= got.length) {
      const end = run.gasang.trap ? trapText(run.gasang.trap) : `gasang stopped: ${run.gasang.error ?? `exit ${run.gasang.exitCode}`}`;
      return {
        unit: k - 1,
        text: `unit ${k - 1} ends gasang's run with ${end}:\n${lines}\n  operands before it (qemu): ${k ? operandValues(unit, want[k - 1]).join(', ') : '-'}`,
      };
    }
    const d = diffRecords(want[k], got[k]);
    if (!d.length) continue;
    if (k === 0) return { unit: -1, text: `states differ before the first unit (set-up or dump): ${d.map(diffText).join('; ')}` };
    return {
      unit: k - 1,
      text: `first differing unit: #${k - 1} of ${seq.units.length}\n${lines}\n` +
        `  operands before it (qemu): ${operandValues(unit, want[k - 1]).join(', ')}\n` +
        `  after it:\n${d.map(x => `    ${diffText(x)}`).join('\n')}`,
    };
  }
  return { unit: -2, text: 'no prefix differs when run alone (state from earlier sequences leaks in?)' };
}

/** A failure message for one differing sequence: where, what, the culprit unit, how to re-run it, and its body. */
export async function explain(m: Mismatch, opts: GasangOptions = {}): Promise<string> {
  const s = m.seq;
  const culprit = await bisect(s, opts).then(c => c.text, (e: unknown) => `(bisection failed: ${String(e)})`);
  return [
    `gasang differs from qemu: group ${s.group}, seed ${s.seed}, sequence ${s.index}`,
    `  first difference: ${m.summary}`,
    `  ${culprit}`,
    `  reproduce: GASANG_DIFF_GROUP=${s.group} GASANG_DIFF_SEED=${s.seed} GASANG_DIFF_INDEX=${s.index} npm test`,
    '  sequence body:',
    bodyText(s).replace(/^/gm, '    '),
  ].join('\n');
}

/** Sequences `from..from+count-1` of (group, seed). */
export function sequences(group: Group, seed: number, count: number, from = 0): Sequence[] {
  return Array.from({ length: count }, (_, i) => makeSequence(group, seed, from + i));
}

function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async f => {
    while (active >= n) await new Promise<void>(r => waiting.push(r));
    active++;
    try { return await f(); } finally { active--; waiting.shift()?.(); }
  };
}
