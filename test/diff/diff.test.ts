// Differential tests: random RV64GC sequences run on gasang's CPU and on qemu-riscv64-static must
// leave identical registers, fcsr and memory.
//
//   GASANG_DIFF_SEED=7[,8]     seeds to run instead of the defaults
//   GASANG_DIFF_COUNT=1000     sequences per (group, seed)
//   GASANG_DIFF_GROUP=fp[,int] groups to run (int muldiv atomic branch compressed fp mixed)
//   GASANG_DIFF_INDEX=17       only that sequence (with the seed and group from a failure message)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUPS, makeSequence, type Group } from './generate.js';
import { DEFAULT_COUNT, DEFAULT_SEEDS, check, explain, sequences } from './harness.js';
import { missingTools } from './qemu.js';

/** How many differing sequences get a full (bisected) explanation in one failure message. */
const EXPLAIN = 3;

const env = process.env;
const list = (v: string | undefined): string[] | undefined => v?.split(',').map(s => s.trim()).filter(Boolean);
const seeds = list(env.GASANG_DIFF_SEED)?.map(Number) ?? DEFAULT_SEEDS;
const count = env.GASANG_DIFF_COUNT ? Number(env.GASANG_DIFF_COUNT) : DEFAULT_COUNT;
const groups = (list(env.GASANG_DIFF_GROUP) ?? GROUPS) as Group[];
const only = env.GASANG_DIFF_INDEX !== undefined ? Number(env.GASANG_DIFF_INDEX) : undefined;

for (const g of groups) if (!GROUPS.includes(g)) throw new Error(`GASANG_DIFF_GROUP: unknown group ${g} (have ${GROUPS.join(', ')})`);
for (const s of seeds) if (!Number.isSafeInteger(s)) throw new Error(`GASANG_DIFF_SEED: not an integer: ${s}`);
if (!Number.isSafeInteger(count) || count < 1) throw new Error(`GASANG_DIFF_COUNT: not a positive integer: ${env.GASANG_DIFF_COUNT}`);
if (only !== undefined && !(Number.isSafeInteger(only) && only >= 0)) throw new Error(`GASANG_DIFF_INDEX: not an index: ${env.GASANG_DIFF_INDEX}`);

const missing = missingTools();
if (missing.length && env.CI) throw new Error(`Differential tests need ${missing.join(', ')} (see .ci/install-host-tools.sh)`);
const skip = missing.length ? `needs ${missing.join(', ')}` : false;

for (const group of groups) {
  for (const seed of seeds) {
    const n = only === undefined ? count : 1;
    test(`gasang matches qemu: ${group}, seed ${seed}, ${only === undefined ? `${n} sequences` : `sequence ${only}`}`, { skip }, async () => {
      const seqs = only === undefined ? sequences(group, seed, n) : [makeSequence(group, seed, only)];
      const bad = await check(seqs);
      if (!bad.length) return;
      const details: string[] = [];
      for (const m of bad.slice(0, EXPLAIN)) details.push(await explain(m));
      const rest = bad.slice(EXPLAIN).map(m => `  sequence ${m.seq.index}: ${m.summary}`);
      assert.fail(`${bad.length} of ${seqs.length} sequences differ\n\n${details.join('\n\n')}` +
        (rest.length ? `\n\nother differing sequences:\n${rest.join('\n')}` : ''));
    });
  }
}
