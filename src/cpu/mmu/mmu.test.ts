// Sv39/Sv48 translation and PMP from the privileged spec (supervisor.adoc: "Sv39", "Sv48", "Virtual Address
// Translation Process", SUM/MXR, SFENCE.VMA; machine.adoc: "Physical Memory Protection").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Csr, Priv } from '../csr/numbers.js';
import { boot, DATA_BASE as DATA, MS, type Machine } from '../interp/privileged-testing.js';

const V = 1, R = 2, W = 4, X = 8, U = 16, A = 64, D = 128;
const RW = V | R | W | A | D;
const PT_BASE = 0x8030_0000;
/** U-mode code runs at this alias of RAM (a U gigapage); S code runs identity-mapped. */
const UALIAS = 0x4000_0000;
/** S code reads test parameters here. */
const MAILBOX = DATA + 0x800;

/** Builds page tables in guest memory: the root at PT_BASE, further tables allocated after it. */
class PageTables {
  private next = PT_BASE + 4096;
  constructor(private readonly m: Machine, readonly mode: 8 | 9) {}
  get satp(): bigint { return (BigInt(this.mode) << 60n) | BigInt(PT_BASE / 4096); }
  /** Maps va → pa with a leaf at `level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB, 3: 512 GiB); returns the leaf PTE's address. */
  map(va: number | bigint, pa: number, flags: number, level = 0): number {
    const vpn = (l: number): number => Number((BigInt(va) >> BigInt(12 + 9 * l)) & 511n);
    let table = PT_BASE;
    for (let l = this.mode === 8 ? 2 : 3; l > level; l--) {
      const at = table + vpn(l) * 8;
      let pte = this.m.rd64(at);
      if (!(pte & 1n)) { pte = (BigInt(this.next / 4096) << 10n) | 1n; this.next += 4096; this.m.wr64(at, pte); }
      table = Number(pte >> 10n) * 4096;
    }
    const at = table + vpn(level) * 8;
    this.m.wr64(at, (BigInt(Math.floor(pa / 4096)) << 10n) | BigInt(flags));
    return at;
  }
}

interface Opts { mode?: 8 | 9; priv?: 0 | 1; medeleg?: number; mstatus?: bigint; pre?: string }

/**
 * Runs `body` in S (identity-mapped code) or U (code at RAM + UALIAS) under paging; traps are logged
 * by `record` handlers (in M, or in S for exceptions delegated with `medeleg`) and resumed.
 */
async function paged(body: string, build: (pt: PageTables, m: Machine) => void, o: Opts = {}): Promise<Machine> {
  const mode = o.mode ?? 8, priv = o.priv ?? 1;
  let pt: PageTables | undefined;
  const src = `
    la t0, mh
    csrw mtvec, t0
    la t0, sh
    csrw stvec, t0
    pmp_all
    li t0, ${o.medeleg ?? 0}
    csrw medeleg, t0
    li t0, ${o.mstatus ?? 0n}
    csrs mstatus, t0
    li t0, SATP_PLACEHOLDER
    csrw satp, t0
    sfence.vma
    ${o.pre ?? ''}
    enter ${priv}, body, ${priv === 0 ? UALIAS : 0}
    record mh, m
    record sh, s
body:
    ${body}
    halt`;
  return boot(src.replace('SATP_PLACEHOLDER', String((BigInt(mode) << 60n) | BigInt(PT_BASE / 4096))), m => {
    pt = new PageTables(m, mode);
    pt.map(0x8000_0000, 0x8000_0000, RW | X, 2);
    pt.map(0x8000_0000 + UALIAS, 0x8000_0000, RW | X | U, 2);
    build(pt, m);
  });
}

const causes = (m: Machine): [bigint, bigint][] => m.log().map(e => [e.cause, e.tval]);

for (const mode of [8, 9] as const) {
  const sv = mode === 8 ? 'Sv39' : 'Sv48';

  test(`${sv}: 4 KiB pages translate to other physical pages`, async () => {
    const m = await paged(`
      li t1, 0x10000000
      li t2, 0x10001000
      ld a0, 0(t1)
      ld a1, 0(t2)
      li a2, 0x3333
      sd a2, 8(t1)`, (pt, m) => {
      pt.map(0x1000_0000, DATA + 0x1000, RW);
      pt.map(0x1000_1000, DATA, RW);
      m.wr64(DATA, 0x1111n);
      m.wr64(DATA + 0x1000, 0x2222n);
    }, { mode });
    assert.deepEqual(causes(m), []);
    assert.equal(m.hart.priv, Priv.S);
    assert.equal(m.hart.x(10), 0x2222n);
    assert.equal(m.hart.x(11), 0x1111n);
    assert.equal(m.rd64(DATA + 0x1008), 0x3333n);
  });

  test(`${sv}: 2 MiB and 1 GiB superpages`, async () => {
    const m = await paged(`
      li t1, 0x10212340
      ld a0, 0(t1)
      li t1, 0x103ffff8
      li a1, 0x5555
      sd a1, 0(t1)
      li t1, 0x40100000
      ld a2, 0(t1)`, (pt, m) => {
      pt.map(0x1020_0000, 0x8040_0000, RW, 1);
      pt.map(0x4000_0000, 0x8000_0000, RW, 2);
      m.wr64(0x8041_2340, 0xabcn);
      m.wr64(DATA, 0xdefn);
    }, { mode });
    assert.deepEqual(causes(m), []);
    assert.equal(m.hart.x(10), 0xabcn);
    assert.equal(m.rd64(0x805f_fff8), 0x5555n);
    assert.equal(m.hart.x(12), 0xdefn);
  });

  test(`${sv}: a misaligned superpage is a page fault`, async () => {
    const m = await paged(`
      li t1, 0x10200000
      ld a0, 0(t1)
      li t2, 0x40000000
      ld a1, 0(t2)`, pt => {
      pt.map(0x1020_0000, 0x8040_1000, RW, 1);
      pt.map(0x4000_0000, 0x8020_0000, RW, 2);
    }, { mode });
    assert.deepEqual(causes(m), [[13n, 0x1020_0000n], [13n, 0x4000_0000n]]);
  });

  test(`${sv}: hardware sets A on access and D on store`, async () => {
    let pteLoad = 0, pteStore = 0;
    const m = await paged(`
      li t1, 0x10000000
      ld a0, 0(t1)
      li t2, 0x10001000
      sd a0, 0(t2)`, pt => {
      pteLoad = pt.map(0x1000_0000, DATA, V | R | W);
      pteStore = pt.map(0x1000_1000, DATA + 0x1000, V | R | W);
    }, { mode });
    assert.deepEqual(causes(m), []);
    assert.equal(m.rd64(pteLoad) & BigInt(A | D), BigInt(A));
    assert.equal(m.rd64(pteStore) & BigInt(A | D), BigInt(A | D));
  });

  test(`${sv}: unmapped load/store/fetch fault with causes 13/15/12 and stval = the address (delegated to S)`, async () => {
    const m = await paged(`
      li t1, 0x10000010
      ld a0, 0(t1)
      sd a0, 8(t1)
      jalr ra, 4(t1)`, () => {}, { mode, medeleg: (1 << 12) | (1 << 13) | (1 << 15) });
    assert.deepEqual(causes(m), [[13n, 0x1000_0010n], [15n, 0x1000_0018n], [12n, 0x1000_0014n]]);
    assert.equal(m.hart.csrRead(Csr.mcause), 0n, 'M not involved');
    assert.equal(m.hart.priv, Priv.S);
  });

  test(`${sv}: non-canonical addresses fault`, async () => {
    const bad = mode === 8 ? [0x40_0000_0000n, 0x8000_0000_1000_0000n] : [0x8000_0000_0000n, 0x8000_0000_1000_0000n];
    const m = await paged(`
      li t1, ${bad[0]}
      ld a0, 0(t1)
      li t2, ${bad[1]}
      sd a0, 0(t2)
      jalr ra, 0(t1)`, pt => {
      // Would be mapped if the upper bits were ignored.
      pt.map(0x1000_0000, DATA, RW | X);
    }, { mode });
    assert.deepEqual(causes(m), [[13n, bad[0]], [15n, bad[1]], [12n, bad[0]]]);
  });
}

test('Sv48: 512 GiB pages; the same address is not canonical under Sv39', async () => {
  const body = `
    li t1, 0x8080100000
    ld a0, 0(t1)`;
  const build = (pt: PageTables, m: Machine): void => {
    if (pt.mode === 9) pt.map(0x80_0000_0000n, 0, RW, 3);
    m.wr64(DATA, 0x77n);
  };
  const m48 = await paged(body, build, { mode: 9 });
  assert.deepEqual(causes(m48), []);
  assert.equal(m48.hart.x(10), 0x77n);
  const m39 = await paged(body, build, { mode: 8 });
  assert.deepEqual(causes(m39), [[13n, 0x80_8010_0000n]]);
});

test('U bit: S needs SUM to load/store U pages and can never execute them', async () => {
  const m = await paged(`
    li t1, 0x10000000
    ld a0, 0(t1)           # SUM = 0: fault
    li t0, 1 << 18
    csrs sstatus, t0
    ld a1, 0(t1)
    sd a1, 8(t1)
    li t2, 0x10001000
    jalr ra, 0(t2)         # U page, even with SUM: fault`, (pt, m) => {
    pt.map(0x1000_0000, DATA, RW | U);
    pt.map(0x1000_1000, 0x8000_0000, RW | X | U);
    m.wr64(DATA, 0x99n);
  });
  assert.deepEqual(causes(m), [[13n, 0x1000_0000n], [12n, 0x1000_1000n]]);
  assert.equal(m.hart.x(11), 0x99n);
  assert.equal(m.rd64(DATA + 8), 0x99n);
});

test('U bit: U cannot load, store or execute S pages; can use U pages', async () => {
  const m = await paged(`
    li t1, 0x10000000
    ld a0, 0(t1)
    sd a0, 0(t1)
    jalr ra, 0(t1)
    li t2, 0x10001000
    ld a1, 0(t2)
    sd a1, 8(t2)`, (pt, m) => {
    pt.map(0x1000_0000, DATA, RW | X);
    pt.map(0x1000_1000, DATA + 0x1000, RW | U);
    m.wr64(DATA + 0x1000, 0x42n);
  }, { priv: 0, mstatus: MS.SUM });
  assert.deepEqual(causes(m), [[13n, 0x1000_0000n], [15n, 0x1000_0000n], [12n, 0x1000_0000n]]);
  assert.equal(m.hart.priv, Priv.U);
  assert.equal(m.hart.x(11), 0x42n);
  assert.equal(m.rd64(DATA + 0x1008), 0x42n);
});

test('MXR: loads from execute-only pages fault unless MXR is set', async () => {
  const m = await paged(`
    li t1, 0x10000000
    ld a0, 0(t1)
    li t0, 1 << 19
    csrs sstatus, t0
    ld a1, 0(t1)
    sd a1, 8(t1)           # still not writable`, (pt, m) => {
    pt.map(0x1000_0000, DATA, V | X | A | D);
    m.wr64(DATA, 0x5en);
  });
  assert.deepEqual(causes(m), [[13n, 0x1000_0000n], [15n, 0x1000_0008n]]);
  assert.equal(m.hart.x(11), 0x5en);
});

test('stores and AMOs to a read-only page fault with cause 15 and write nothing', async () => {
  const m = await paged(`
    li t1, 0x10000000
    li a0, -1
    sd a0, 0(t1)
    amoadd.d a1, a0, (t1)
    ld a2, 0(t1)`, (pt, m) => {
    pt.map(0x1000_0000, DATA, V | R | A | D);
    m.wr64(DATA, 12n);
  });
  assert.deepEqual(causes(m), [[15n, 0x1000_0000n], [15n, 0x1000_0000n]]);
  assert.equal(m.hart.x(12), 12n);
  assert.equal(m.rd64(DATA), 12n);
});

test('a changed PTE is used after sfence.vma (all, and by address)', async () => {
  for (const fence of ['sfence.vma', 'sfence.vma t1', 'sfence.vma t1, zero']) {
    const m = await paged(`
      li t1, 0x10000000
      ld a0, 0(t1)
      li a1, 0xaa
      sd a1, 8(t1)
      li t2, ${MAILBOX}
      ld a4, 0(t2)           # PTE address
      ld a5, 8(t2)           # new PTE
      sd a5, 0(a4)
      ${fence}
      ld a2, 0(t1)
      li a3, 0xbb
      sd a3, 8(t1)`, (pt, m) => {
      m.wr64(MAILBOX, BigInt(pt.map(0x1000_0000, DATA, RW)));
      m.wr64(MAILBOX + 8, (BigInt((DATA + 0x1000) / 4096) << 10n) | BigInt(RW));
      m.wr64(DATA, 1n);
      m.wr64(DATA + 0x1000, 2n);
    });
    assert.deepEqual(causes(m), [], fence);
    assert.deepEqual([m.hart.x(10), m.hart.x(12)], [1n, 2n], fence);
    assert.deepEqual([m.rd64(DATA + 8), m.rd64(DATA + 0x1008)], [0xaan, 0xbbn], fence);
  }
});

test('satp: a write with an unsupported mode (Sv57, Sv64, reserved) has no effect', async () => {
  const m = await boot(`
    li t0, (8 << 60) | 0x80300
    csrw satp, t0
    li t1, (10 << 60) | 0x12345
    csrw satp, t1
    csrr a0, satp
    li t1, (11 << 60) | 0x12345
    csrw satp, t1
    li t1, (3 << 60) | 0x12345
    csrw satp, t1
    csrr a1, satp
    halt`);
  assert.equal(m.hart.x(10), (8n << 60n) | 0x80300n);
  assert.equal(m.hart.x(11), (8n << 60n) | 0x80300n);
});

test('an access crossing into an unmapped page faults at the second page and writes nothing', async () => {
  const m = await paged(`
    li t1, 0x10000ffc
    li a0, -1
    sd a0, 0(t1)
    li t2, 0x10000ffe
    sw a0, 0(t2)
    li a1, 7
    ld a1, 0(t1)
    li t3, 0x10002ffc
    ld a2, 0(t3)           # crossing into a mapped page elsewhere in RAM`, (pt, m) => {
    pt.map(0x1000_0000, DATA, RW);
    pt.map(0x1000_2000, DATA + 0x2000, RW);
    pt.map(0x1000_3000, DATA + 0x5000, RW);
    m.wr64(DATA + 0xff8, 0x1122334455667788n);
    m.wr64(DATA + 0x2ff8, 0x4444333322221111n);
    m.wr64(DATA + 0x5000, 0x8888777766665555n);
  });
  assert.deepEqual(causes(m), [[15n, 0x1000_1000n], [15n, 0x1000_1000n], [13n, 0x1000_1000n]]);
  assert.equal(m.rd64(DATA + 0xff8), 0x1122334455667788n);
  assert.equal(m.hart.x(11), 7n);
  assert.equal(m.hart.x(12), 0x6666555544443333n);
});

// ---- PMP ----

const napot = (base: number, size: number): bigint => BigInt(Math.floor((base + size / 2 - 1) / 4));
const CODE_RWX = `
    li t0, ${napot(0x8000_0000, 0x1_0000)}
    csrw pmpaddr0, t0`;

test('a page-table walk blocked by PMP is an access fault of the original type', async () => {
  const m = await paged(`
    li t1, 0x10000000
    ld a0, 0(t1)
    sd a0, 0(t1)`, pt => { pt.map(0x1000_0000, DATA, RW); }, {
    pre: `li t0, ${napot(PT_BASE + 0x1000, 0x1000)}
      csrw pmpaddr0, t0
      li t0, 0x18
      csrw pmpcfg0, t0`,
  });
  assert.deepEqual(causes(m), [[5n, 0x1000_0000n], [7n, 0x1000_0000n]]);
});

for (const priv of [1, 0] as const) {
  test(`PMP NAPOT/TOR: ${priv ? 'S' : 'U'} accesses outside allowed regions are access faults 1/5/7`, async () => {
    const m = await boot(`
      la t0, mh
      csrw mtvec, t0
      ${CODE_RWX}
      li t0, ${DATA / 4}
      csrw pmpaddr1, t0
      li t0, ${(DATA + 0x1000) / 4}
      csrw pmpaddr2, t0
      li t0, 0x09001f      # 0: NAPOT RWX, 1: OFF (TOR base), 2: TOR R
      csrw pmpcfg0, t0
      li t2, ${DATA + 0x2000}
      li a3, 5
      sd a3, 0(t2)         # M: no entry matches, succeeds
      ld a4, 0(t2)
      enter ${priv}, low
      record mh, m
low:
      li t1, ${DATA}
      ld a0, 0(t1)
      sd a0, 0(t1)
      ld a1, 0(t2)
      sd a1, 0(t2)
      jalr ra, 0(t1)
      halt`);
    assert.equal(m.hart.x(14), 5n);
    assert.deepEqual(causes(m), [[7n, BigInt(DATA)], [5n, BigInt(DATA + 0x2000)], [7n, BigInt(DATA + 0x2000)], [1n, BigInt(DATA)]]);
    assert.equal(m.hart.priv, priv);
  });
}

test('PMP: the lowest-numbered matching entry decides; NA4; partial matches fail',
  async () => {
  const m = await boot(`
    la t0, mh
    csrw mtvec, t0
    pmp_all                # entry 15: everything RWX
    li t0, ${napot(DATA, 0x1000)}
    csrw pmpaddr0, t0
    li t0, ${(DATA + 0x1804) / 4}
    csrw pmpaddr1, t0
    li t0, 0x1119          # 0: NAPOT R, 1: NA4 R
    csrw pmpcfg0, t0
    enter 1, s
    record mh, m
s:  li t1, ${DATA}
    ld a0, 0(t1)
    sd a0, 0(t1)           # entry 0 (R) decides, not entry 15
    li t2, ${DATA + 0x1800}
    lw a1, 4(t2)
    sw a0, 4(t2)           # entry 1
    sw a0, 8(t2)
    ld a2, 0(t2)           # aligned, but entry 1 matches only its upper half
    sd a2, 16(t2)
    halt`);
  assert.deepEqual(causes(m), [[7n, BigInt(DATA)], [7n, BigInt(DATA + 0x1804)], [5n, BigInt(DATA + 0x1800)]]);
});

test('PMP: a locked entry applies to M-mode', async () => {
  const m = await boot(`
    la t0, mh
    csrw mtvec, t0
    li t0, ${napot(DATA, 0x1000)}
    csrw pmpaddr0, t0
    li t0, 0x99            # L, NAPOT, R
    csrw pmpcfg0, t0
    li t1, ${DATA}
    ld a0, 0(t1)
    sd a0, 0(t1)
    sd a0, 0x100(t1)
    li t2, ${DATA + 0x1000}
    sd a0, 0(t2)           # no entry matches: M succeeds
    halt
    record mh, m`);
  assert.deepEqual(causes(m), [[7n, BigInt(DATA)], [7n, BigInt(DATA + 0x100)]]);
});

test('PMP: writes to a locked entry\'s pmpcfg and pmpaddr are ignored', async () => {
  const m = await boot(`
    li t0, ${napot(DATA, 0x1000)}
    csrw pmpaddr0, t0
    li t0, 0x99            # L, NAPOT, R
    csrw pmpcfg0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    csrw pmpaddr0, zero
    csrr a1, pmpcfg0
    csrr a2, pmpaddr0
    halt`);
  assert.equal(m.hart.x(11) & 0xffn, 0x99n, 'pmp0cfg');
  assert.equal(m.hart.x(12), napot(DATA, 0x1000), 'pmpaddr0');
});
