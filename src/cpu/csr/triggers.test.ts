// The Sdtrig trigger module (debug spec 1.0, "Sdtrig"; csr/triggers.ts): execute, load and store
// address triggers trap with cause 3 before the instruction or the access, in the modes they are
// set for, in the interpreter and with every block translated (jit/jit-testing MODES); the CSRs'
// WARL behaviour; trigger state travels with the hart's state bytes (snapshots, migration).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Csr, Priv } from './numbers.js';
import { H, HART_STATE_BYTES } from '../layout.js';
import type { Hart } from '../hart.js';
import { boot, DATA_BASE as DATA, LOG, MODES, PageTables, PTE, type Guest } from '../jit/jit-testing.js';

const R = { a0: 10, a1: 11, a2: 12, a3: 13, s2: 18, s3: 19, s4: 20 } as const;
const TYPE6 = 6n << 60n, TYPE2 = 2n << 60n, DISABLED = 15n << 60n;
const BIT = { load: 1n, store: 2n, execute: 4n, u: 8n, s: 16n, m: 64n } as const;
const MODE_BIT = { [Priv.U]: BIT.u, [Priv.S]: BIT.s, [Priv.M]: BIT.m } as const;
const MODE_NAME = { [Priv.U]: 'U', [Priv.S]: 'S', [Priv.M]: 'M' } as const;
const match = (m: number): bigint => BigInt(m) << 7n;
type Kind = 'execute' | 'load' | 'store';
/** tdata2 for each kind, as assembly leaving it in t0: the instruction `ex`, the word at DATA, the word at DATA + 8. */
const WATCHED: Record<Kind, string> = { execute: 'la t0, ex', load: 'mv t0, s0', store: 'addi t0, s0, 8' };

/** Sets trigger `index` from M-mode code (t0 is free). */
const arm = (index: number, tdata2: string, tdata1: bigint): string => `
  li t0, ${index}
  csrw tselect, t0
  ${tdata2}
  csrw tdata2, t0
  li t0, 0x${tdata1.toString(16)}
  csrw tdata1, t0`;

/**
 * Runs `ucode` (a loop of two rounds of an addi, a load of DATA and a store to DATA + 8) twice in
 * `mode`: first as is
 * (translated, with the JIT), then after `armCode` ran in M-mode. The M-mode handler logs
 * breakpoints (cause, tval, epc) and skips the instruction; an ecall ends a pass. M-mode code runs
 * with mstatus.MIE = `mie` (triggers never fire in M-mode while it is 0).
 */
const twoPasses = (mode: Priv, armCode: string, mie = true): string => `
  la t0, mtrap
  csrw mtvec, t0
  pmp_all
  li s0, ${DATA}
  li s1, 2
  la s2, ex
  la s3, ldi
  la s4, sti
  li a4, 0x77
pass:
  li a2, 0
  li a3, 0x5a5a
  sd zero, 8(s0)
  li t0, ${mie ? 1 << 7 : 0}
  csrs mstatus, t0
  enter ${mode}, ucode
.align 2
mtrap:
  csrr t6, mcause
  li t5, 3
  bne t6, t5, 1f
  sd t6, 0(s11)
  csrr t6, mtval
  sd t6, 8(s11)
  csrr t6, mepc
  sd t6, 16(s11)
  addi s11, s11, 24
  addi t6, t6, 4
  csrw mepc, t6
  mret
1:
  addi s1, s1, -1
  beqz s1, 2f
  ${armCode}
  j pass
2:
  halt
ucode:
  li t1, 2
again:
ex:  addi a2, a2, 1
ldi: ld a3, 0(s0)
sti: sd a4, 8(s0)
  addi t1, t1, -1
  bnez t1, again
  ecall`;

interface Outcome { log: { cause: bigint; tval: bigint; epc: bigint }[]; a2: bigint; a3: bigint; stored: bigint }

function outcome(g: Guest): Outcome {
  const n = Number(g.x(27) - BigInt(LOG)) / 24;
  const log = Array.from({ length: n }, (_, i) => ({ cause: g.rd64(LOG + 24 * i), tval: g.rd64(LOG + 24 * i + 8), epc: g.rd64(LOG + 24 * i + 16) }));
  return { log, a2: g.x(R.a2), a3: g.x(R.a3), stored: g.rd64(DATA + 8) };
}

/** Boots `source` with 0x1234 at DATA, runs it to its halt; in JIT mode, checks code ran translated. */
async function run(source: string, jit: boolean, setup?: (g: Guest) => void): Promise<Guest> {
  const g = await boot(source, { jit, setup: g => { g.wr64(DATA, 0x1234n); setup?.(g); } });
  g.run(200_000);
  assert.ok(g.cpu.stopped, 'the program reached its halt');
  if (jit) assert.ok(g.jitInsns() > 0, 'some of it ran translated');
  return g;
}

const UNTOUCHED = { a2: 2n, a3: 0x1234n, stored: 0x77n };

for (const { name, jit } of MODES) {
  for (const mode of [Priv.U, Priv.S, Priv.M]) {
    for (const [kind, type] of [['execute', TYPE6], ['load', TYPE6], ['store', TYPE6], ['execute', TYPE2], ['store', TYPE2]] as const) {
      test(`${name}: ${MODE_NAME[mode]}-mode ${kind} trigger (type ${type >> 60n}) traps with cause 3 before it takes effect`, async () => {
        const g = await run(twoPasses(mode, arm(2, WATCHED[kind], type | MODE_BIT[mode] | BIT[kind])), jit);
        const r = outcome(g);
        const epc = g.x(kind === 'execute' ? R.s2 : kind === 'load' ? R.s3 : R.s4);
        const tval = kind === 'execute' ? epc : BigInt(kind === 'load' ? DATA : DATA + 8);
        assert.deepEqual(r.log, [{ cause: 3n, tval, epc }, { cause: 3n, tval, epc }], 'both rounds trap');
        // The instruction did nothing: the addi did not add, the load left a3, the store left memory.
        assert.deepEqual({ a2: r.a2, a3: r.a3, stored: r.stored },
          { ...UNTOUCHED, ...(kind === 'execute' ? { a2: 0n } : kind === 'load' ? { a3: 0x5a5an } : { stored: 0n }) });
        assert.equal(g.hart.priv, Priv.M);
      });
    }

    test(`${name}: triggers set for the other modes do not fire in ${MODE_NAME[mode]}-mode`, async () => {
      const others = (BIT.u | BIT.s | BIT.m) & ~MODE_BIT[mode];
      const g = await run(twoPasses(mode, (['execute', 'load', 'store'] as const)
        .map((kind, i) => arm(i, WATCHED[kind], TYPE6 | others | BIT[kind])).join('\n')), jit);
      assert.deepEqual(outcome(g), { log: [], ...UNTOUCHED });
    });
  }

  test(`${name}: M-mode triggers do not fire while mstatus.MIE = 0`, async () => {
    const g = await run(twoPasses(Priv.M, (['execute', 'load', 'store'] as const)
      .map((kind, i) => arm(i, WATCHED[kind], TYPE6 | BIT.m | BIT[kind])).join('\n'), false), jit);
    assert.deepEqual(outcome(g), { log: [], ...UNTOUCHED });
  });

  test(`${name}: a disabled trigger never fires, whatever else tdata1 was written with`, async () => {
    const all = BIT.u | BIT.s | BIT.m | BIT.execute | BIT.load | BIT.store;
    // Type 15 (disabled), 0 (written as 0: disabled), 3 (icount, not supported here).
    const g = await run(twoPasses(Priv.U, [15n << 60n, 0n, 3n << 60n].map((t, i) => arm(i, WATCHED.load, t | all)).join('\n')
      + `\n${arm(3, 'la t0, ex', all)}\n  csrr a5, tdata1`), jit);
    assert.deepEqual(outcome(g), { log: [], ...UNTOUCHED });
    assert.equal(g.x(15), DISABLED);
  });

  /** Runs `body` in M-mode with MIE = 1 and trigger 0 set as given; returns the breakpoints logged (tval, epc - start). */
  async function watch(body: string, tdata2: number, tdata1: bigint): Promise<{ tval: number; at: number }[]> {
    const g = await run(`
  la t0, mtrap
  csrw mtvec, t0
  csrsi mstatus, 8
  li s0, ${DATA}
  la s1, body
  ${arm(0, `li t0, ${tdata2}`, tdata1)}
body:
  ${body}
  halt
  record mtrap, m`, jit);
    return outcome(g).log.map(e => {
      assert.equal(e.cause, 3n);
      return { tval: Number(e.tval), at: Number(e.epc - g.x(9)) / 4 };
    });
  }

  test(`${name}: an equal match watches every byte of an access`, async () => {
    const hits = await watch(`
  lw a0, 0(s0)
  ld a0, 0(s0)
  lbu a0, 4(s0)
  lh a0, 5(s0)
  ld a0, -3(s0)
  sd a0, 4(s0)`, DATA + 4, TYPE6 | BIT.m | BIT.load);
    // The 5th crosses into the watched page from the one below.
    assert.deepEqual(hits, [{ tval: DATA, at: 1 }, { tval: DATA + 4, at: 2 }, { tval: DATA - 3, at: 4 }]);
  });

  test(`${name}: >= and < matches (match 2 and 3) against the access's bytes`, async () => {
    const body = `
  sd zero, 0xf8(s0)
  sb zero, 0x100(s0)
  sd zero, 0xf9(s0)
  sw zero, 0x200(s0)
  lb a0, 0xff(s0)`;
    assert.deepEqual(await watch(body, DATA + 0x100, TYPE6 | match(2) | BIT.m | BIT.store),
      [{ tval: DATA + 0x100, at: 1 }, { tval: DATA + 0xf9, at: 2 }, { tval: DATA + 0x200, at: 3 }]);
    assert.deepEqual(await watch(body, DATA + 0x100, TYPE2 | match(3) | BIT.m | BIT.store | BIT.load),
      [{ tval: DATA + 0xf8, at: 0 }, { tval: DATA + 0xf9, at: 2 }, { tval: DATA + 0xff, at: 4 }]);
  });

  test(`${name}: atomics: LR and the read of an AMO are loads, SC and the write of an AMO stores`, async () => {
    const body = `
  amoadd.d a0, a1, (s0)
  lr.d a0, (s0)
  sc.d a0, a1, (s0)
  amoswap.w a0, a1, (s0)`;
    assert.deepEqual(await watch(body, DATA, TYPE6 | BIT.m | BIT.load), [{ tval: DATA, at: 0 }, { tval: DATA, at: 1 }, { tval: DATA, at: 3 }]);
    assert.deepEqual(await watch(body, DATA, TYPE6 | BIT.m | BIT.store), [{ tval: DATA, at: 0 }, { tval: DATA, at: 2 }, { tval: DATA, at: 3 }]);
  });

  test(`${name}: Sv39 S-mode: triggers match virtual addresses, breakpoints delegated to S set stval`, async () => {
    const VA = 0x1000_0000, CODE_VA = 0x4000_0000;
    const pt = new PageTables(DATA + 0x1_0000);
    const { base, satp } = pt.root();
    pt.map(base, CODE_VA, 0x8000_0000, PTE.V | PTE.R | PTE.X | PTE.A, 2);
    pt.map(base, VA, DATA, PTE.V | PTE.R | PTE.W | PTE.A | PTE.D);
    const g = await run(`
  la t0, mtrap
  csrw mtvec, t0
  pmp_all
  li t0, 1 << 3
  csrw medeleg, t0
  li t0, 0x${satp.toString(16)}
  csrw satp, t0
  ${arm(1, `li t0, ${VA + 8}`, TYPE6 | BIT.s | BIT.load | BIT.store)}
  li s0, ${VA}
  la t0, strap
  li t1, ${CODE_VA - 0x8000_0000}
  add t0, t0, t1
  csrw stvec, t0
  csrsi mstatus, 2       # SIE: with breakpoints delegated, S-mode triggers need it
  enter 1, smode, ${CODE_VA - 0x8000_0000}
smode:
  ld a0, 0(s0)
  ld a1, 8(s0)
  sd a1, 16(s0)
  sd a1, 8(s0)
  halt
.align 2
strap:
  csrr a2, scause
  csrr a3, stval
  csrr a4, sepc
  addi a4, a4, 4
  csrw sepc, a4
  addi a5, a5, 1
  sret
.align 2
mtrap:
  csrr s5, mcause
  csrr s6, mepc
  halt`, jit, g => pt.apply(g));
    assert.equal(g.hart.priv, Priv.S, `trapped to M: mcause ${g.x(21)}, mepc 0x${g.x(22).toString(16)}`);
    assert.deepEqual([g.x(R.a2), g.x(R.a3), g.x(15)], [3n, BigInt(VA + 8), 2n]);
  });
}

test('tselect keeps its value when written past the triggers; tinfo: types 2 and 6, version 1; triggers start disabled', async () => {
  const h = (await boot('halt', { jit: false })).hart;
  for (let i = 0n; i < 4n; i++) {
    h.csrWrite(Csr.tselect, i);
    assert.equal(h.csrRead(Csr.tselect), i);
    assert.equal(h.csrRead(Csr.tinfo), 0x0100_0044n);
    assert.equal(h.csrRead(Csr.tdata1), DISABLED);
  }
  for (const v of [4n, 100n, 1n << 32n, -1n]) {
    h.csrWrite(Csr.tselect, v);
    assert.equal(h.csrRead(Csr.tselect), 3n);
  }
});

test('tdata1 keeps only what is implemented; tdata2 is per trigger and 64 bits; tdata3 and tinfo ignore writes', async () => {
  const h = (await boot('halt', { jit: false })).hart;
  const written = (v: bigint): bigint => { h.csrWrite(Csr.tdata1, v); return h.csrRead(Csr.tdata1); };
  h.csrWrite(Csr.tselect, 1n);
  const low = (1n << 59n) - 1n; // every bit below dmode
  assert.equal(written(TYPE6 | (1n << 59n) | low), TYPE6 | 0x5fn, 'dmode, match 15 and the unimplemented fields read 0');
  assert.equal(written(TYPE2 | low), TYPE2 | 0x5fn);
  assert.equal(written(TYPE6 | match(2) | BIT.m | BIT.execute), TYPE6 | match(2) | BIT.m | BIT.execute);
  assert.equal(written(TYPE2 | match(3) | BIT.u | BIT.store), TYPE2 | match(3) | BIT.u | BIT.store);
  assert.equal(written(TYPE6 | match(1) | BIT.s | BIT.load), TYPE6 | BIT.s | BIT.load, 'NAPOT is not supported');
  assert.equal(written(TYPE6 | (1n << 12n) | BIT.m | BIT.load), TYPE6 | BIT.m | BIT.load, 'action 1 (Debug Mode) is not supported');
  assert.equal(written(0n), DISABLED);
  assert.equal(written((3n << 60n) | BIT.m), DISABLED);
  h.csrWrite(Csr.tdata2, 0xdead_beef_0123_4567n);
  h.csrWrite(Csr.tdata3, -1n);
  h.csrWrite(Csr.tinfo, 0n);
  assert.deepEqual([Csr.tdata2, Csr.tdata3, Csr.tinfo].map(n => h.csrRead(n)), [0xdead_beef_0123_4567n, 0n, 0x0100_0044n]);
  h.csrWrite(Csr.tselect, 0n);
  assert.equal(h.csrRead(Csr.tdata2), 0n);
});

test('trigger CSRs are M-mode only; tcontrol, mcontext and scontext do not exist', async () => {
  const g = await boot(`
  la t0, mtrap
  csrw mtvec, t0
  pmp_all
  csrr a0, 0x7a5
  csrr a0, 0x7a8
  csrr a0, 0x5a8
  csrr a0, tinfo
  enter 1, smode
smode:
  csrr a0, tselect
  csrw tdata1, zero
  halt
  record mtrap, m`, { jit: false });
  g.run();
  assert.deepEqual(outcome(g).log.map(e => e.cause), [2n, 2n, 2n, 2n, 2n]);
  assert.equal(g.x(R.a0), 0x0100_0044n);
});

test('triggers live in the hart state bytes: copied into another hart (snapshot, migration) they fire there; zeros read disabled', async () => {
  const src = `
  la t0, mtrap
  csrw mtvec, t0
  csrsi mstatus, 8
  li s0, ${DATA}
  li a3, 0x5a5a
  ld a3, 0(s0)
  halt
.align 2
mtrap:
  csrr a0, mcause
  csrr a1, mtval
  halt`;
  const from = (await boot(src, { jit: false })).hart;
  from.csrWrite(Csr.tselect, 3n);
  from.csrWrite(Csr.tdata2, BigInt(DATA));
  from.csrWrite(Csr.tdata1, TYPE6 | BIT.m | BIT.load);
  const stateOf = (h: Hart): Uint8Array => new Uint8Array(h.s.v.memory.buffer, h.hb, HART_STATE_BYTES);
  for (const { jit } of MODES) {
    const to = await boot(src, { jit, setup: g => g.wr64(DATA, 0x1234n) });
    stateOf(to.hart).set(stateOf(from));
    to.hart.restoreHost(from.saveHost());
    to.run();
    assert.deepEqual([to.x(R.a0), to.x(R.a1), to.x(R.a3)], [3n, BigInt(DATA), 0x5a5an]);
    assert.equal(to.hart.csrRead(Csr.tselect), 3n);
    // An older snapshot holds zeros where the triggers are: they come back disabled.
    stateOf(to.hart).fill(0, H.TRIGGERS, H.TRIGGERS + 4 * 16);
    to.hart.restoreHost(from.saveHost());
    assert.equal(to.hart.csrRead(Csr.tdata1), DISABLED);
  }
});
