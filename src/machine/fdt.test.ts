import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtcDecompile, hasDtc } from './dtc-testing.js';
import {
  buildFdt, fdtFind, fdtNode, fdtProp, fdtValue as v, FDT_MAGIC, FdtHeader, FdtToken, parseFdt, type FdtNode,
} from './fdt.js';

const sample = (): FdtNode =>
  fdtNode('', { '#address-cells': v.u32(2), '#size-cells': v.u32(2), compatible: v.string('acme,board') }, [
    fdtNode('chosen', { bootargs: v.string('console=ttyS0 quiet'), 'linux,initrd-start': v.u64(0x1_8820_0000) }),
    fdtNode('memory@80000000', { device_type: v.string('memory'), reg: v.u64(0x8000_0000, 0x1000_0000) }),
    fdtNode('soc', { compatible: v.strings('simple-bus', 'acme,bus'), ranges: v.empty() }, [
      fdtNode('serial@10000000', { compatible: v.string('ns16550a'), reg: v.u64(0x1000_0000, 0x100) }),
    ]),
  ]);

test('header fields, block layout and tokens follow the v17 format', () => {
  const blob = buildFdt(sample(), { bootCpuidPhys: 3, reservations: [{ address: 0x8000_0000, size: 0x20_0000 }] });
  const dv = new DataView(blob.buffer);
  assert.equal(dv.getUint32(FdtHeader.MAGIC), FDT_MAGIC);
  assert.equal(dv.getUint32(FdtHeader.TOTALSIZE), blob.length);
  assert.equal(dv.getUint32(FdtHeader.VERSION), 17);
  assert.equal(dv.getUint32(FdtHeader.LAST_COMP_VERSION), 16);
  assert.equal(dv.getUint32(FdtHeader.BOOT_CPUID_PHYS), 3);
  const rsv = dv.getUint32(FdtHeader.OFF_MEM_RSVMAP);
  const struct = dv.getUint32(FdtHeader.OFF_DT_STRUCT);
  const strings = dv.getUint32(FdtHeader.OFF_DT_STRINGS);
  assert.equal(rsv % 8, 0);
  assert.equal(struct % 4, 0);
  assert.equal(struct, rsv + 32, 'one entry + terminator');
  assert.equal(dv.getUint32(rsv + 4), 0x8000_0000);
  assert.equal(dv.getUint32(rsv + 12), 0x20_0000);
  assert.equal(strings, struct + dv.getUint32(FdtHeader.SIZE_DT_STRUCT));
  assert.equal(blob.length, strings + dv.getUint32(FdtHeader.SIZE_DT_STRINGS));
  assert.equal(dv.getUint32(struct), FdtToken.BEGIN_NODE);
  assert.equal(dv.getUint32(strings - 4), FdtToken.END);
  // Strings block: each property name once ("compatible" and "reg" are used several times).
  const names = new TextDecoder().decode(blob.subarray(strings)).split('\0').filter(Boolean);
  assert.deepEqual(names, ['#address-cells', '#size-cells', 'compatible', 'bootargs', 'linux,initrd-start', 'device_type', 'reg', 'ranges']);
});

test('dtc decompiles the output to the expected source', { skip: !hasDtc && 'dtc not installed' }, () => {
  const dts = dtcDecompile(buildFdt(sample(), { reservations: [{ address: 0x8000_0000, size: 0x20_0000 }] }));
  assert.equal(
    dts,
    `/dts-v1/;

/memreserve/\t0x0000000080000000 0x0000000000200000;
/ {
\t#address-cells = <0x02>;
\t#size-cells = <0x02>;
\tcompatible = "acme,board";

\tchosen {
\t\tbootargs = "console=ttyS0 quiet";
\t\tlinux,initrd-start = <0x01 0x88200000>;
\t};

\tmemory@80000000 {
\t\tdevice_type = "memory";
\t\treg = <0x00 0x80000000 0x00 0x10000000>;
\t};

\tsoc {
\t\tcompatible = "simple-bus\\0acme,bus";
\t\tranges;

\t\tserial@10000000 {
\t\t\tcompatible = "ns16550a";
\t\t\treg = <0x00 0x10000000 0x00 0x100>;
\t\t};
\t};
};
`,
  );
});

test('parseFdt reads back what buildFdt wrote', () => {
  const tree = sample();
  const parsed = parseFdt(buildFdt(tree, { bootCpuidPhys: 1, reservations: [{ address: 0x1_0000_0000, size: 4096 }] }));
  assert.deepEqual(parsed.root, tree);
  assert.deepEqual(parsed.reservations, [{ address: 0x1_0000_0000, size: 4096 }]);
  assert.equal(parsed.bootCpuidPhys, 1);
  const serial = fdtFind(parsed.root, '/soc/serial@10000000');
  assert.ok(serial);
  assert.deepEqual(fdtProp(serial, 'compatible'), v.string('ns16550a'));
  assert.equal(fdtFind(parsed.root, '/soc/nope'), undefined);
});

test('values: u32 and u64 cells are big-endian; string lists are NUL-separated', () => {
  assert.deepEqual([...v.u32(1, 0xdeadbeef)], [0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual([...v.u64(0x1_0000_0002)], [0, 0, 0, 1, 0, 0, 0, 2]);
  assert.deepEqual([...v.u64(0xffff_ffff_ffff_ffffn)], [255, 255, 255, 255, 255, 255, 255, 255]);
  assert.deepEqual([...v.strings('a', 'bc')], [0x61, 0, 0x62, 0x63, 0]);
  assert.throws(() => v.u32(-1), /not a u32/);
  assert.throws(() => v.u64(2 ** 60), /safe integer/);
});

test('invalid trees are refused', () => {
  assert.throws(() => buildFdt(fdtNode('x')), /Root node/);
  assert.throws(() => buildFdt(fdtNode('', {}, [fdtNode('bad name')])), /Invalid node name/);
  assert.throws(() => buildFdt(fdtNode('', {}, [fdtNode('a'), fdtNode('a')])), /Duplicate node/);
  assert.throws(() => buildFdt({ name: '', props: [{ name: 'p', value: v.empty() }, { name: 'p', value: v.empty() }], children: [] }), /Duplicate property/);
  assert.throws(() => parseFdt(new Uint8Array(64)), /bad magic/);
  const blob = buildFdt(sample());
  assert.throws(() => parseFdt(blob.subarray(0, blob.length - 8)), /truncated/);
});
