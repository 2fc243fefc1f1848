import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_APPEND, MAX_MEMORY_MIB, parseRunArgs, RUN_USAGE, type RunDefaults } from './args.js';
import { InputError } from '../util/errors.js';

const defaults: RunDefaults = {
  kernel: 'guest/default/Image.gz',
  initrd: 'guest/default/initramfs.cpio.gz',
  firmware: '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin',
};

function rejects(argv: string[], message: string | RegExp): void {
  assert.throws(() => parseRunArgs(argv, defaults), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.ok(!e.message.includes('\n'));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('no arguments: the defaults', () => {
  assert.deepEqual(parseRunArgs([], defaults), {
    kernel: defaults.kernel,
    initrd: defaults.initrd,
    firmware: defaults.firmware,
    append: DEFAULT_APPEND,
    memoryMiB: 256,
    cpus: 1,
    drives: [],
    shares: [],
    nics: [{ kind: 'user', mac: Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56]), config: {} }],
    rng: true,
    jit: true,
    stats: false,
    help: false,
    board: [],
  });
});

test('--jit on|off and --stats', () => {
  assert.equal(parseRunArgs(['--jit', 'off'], defaults).jit, false);
  assert.equal(parseRunArgs(['--jit=on'], defaults).jit, true);
  assert.equal(parseRunArgs(['--stats'], defaults).stats, true);
  rejects(['--jit', 'fast'], '--jit "fast": must be on or off');
  rejects(['--jit'], '--jit needs a value');
});

test('every option, as separate values and with =', () => {
  const o = parseRunArgs(
    ['--kernel', 'k', '--initrd=i', '--append', 'console=ttyS0 init=/bin/sh', '--firmware=f', '--memory', '512', '--cpus=4'],
    defaults,
  );
  assert.deepEqual({ ...o, nics: o.nics.map(n => n.kind) }, { kernel: 'k', initrd: 'i', append: 'console=ttyS0 init=/bin/sh', firmware: 'f', memoryMiB: 512, cpus: 4, drives: [], shares: [], nics: ['user'], rng: true, jit: true, stats: false, help: false,
    board: ['--kernel=k', '--initrd=i', '--append=console=ttyS0 init=/bin/sh', '--firmware=f', '--memory=512', '--cpus=4'] });
  assert.equal(parseRunArgs(['--append='], defaults).append, '', 'an empty command line is allowed');
  assert.equal(parseRunArgs(['--append=a=b c=d'], defaults).append, 'a=b c=d', 'only the first = splits');
});

test('--restore and --snapshot-on-exit: the hardware comes from the snapshot, NICs may be replaced', () => {
  const o = parseRunArgs(['--restore', 'a.snap', '--snapshot-on-exit=b.snap', '--jit', 'off', '--stats'], defaults);
  assert.deepEqual([o.restore, o.snapshotOnExit, o.jit, o.stats, o.nics, o.board], ['a.snap', 'b.snap', false, true, [], []]);
  const n = parseRunArgs(['--restore', 'a.snap', '--nic', 'user,hostfwd=tcp::2222-:22', '-nic', 'none'], defaults);
  assert.deepEqual(n.board, ['--nic=user,hostfwd=tcp::2222-:22', '--nic=none']);
  assert.deepEqual(parseRunArgs(['--no-rng', '-m', '1G', '--drive', 'file=d.qcow2'], defaults).board, ['--no-rng', '-m=1G', '--drive=file=d.qcow2']);
  rejects(['--restore', 'a.snap', '-m', '512'], "-m cannot be given with --restore: the snapshot holds the VM's hardware (only --nic, --jit, --stats and --snapshot-on-exit apply)");
  rejects(['--restore', 'a.snap', '--no-rng'], /^--no-rng cannot be given with --restore/);
  rejects(['--restore='], '--restore needs a file name');
});

test('QEMU-like aliases and size suffixes', () => {
  const o = parseRunArgs(['-m', '1G', '-smp', '2', '-bios', 'fw', '-kernel', 'k', '-append', 'x'], defaults);
  assert.equal(o.memoryMiB, 1024);
  assert.equal(o.cpus, 2);
  assert.equal(o.firmware, 'fw');
  assert.equal(o.kernel, 'k');
  assert.equal(o.append, 'x');
  assert.equal(parseRunArgs(['--memory=768M'], defaults).memoryMiB, 768);
  assert.equal(parseRunArgs(['--bios=x'], defaults).firmware, 'x');
});

test('--help and --no-initrd', () => {
  assert.equal(parseRunArgs(['--help'], defaults).help, true);
  assert.equal(parseRunArgs(['-h'], defaults).help, true);
  assert.equal(parseRunArgs(['--no-initrd'], defaults).initrd, undefined);
  assert.match(RUN_USAGE, /--kernel PATH/);
});

test('bad values are one-line InputErrors', () => {
  rejects(['--memory', '0'], '--memory must be at least 1 MiB');
  rejects(['--memory', 'lots'], '--memory "lots": not a size in MiB (e.g. 512 or 1G)');
  rejects(['-m', '-5'], '-m "-5": not a size in MiB (e.g. 512 or 1G)');
  rejects(['--memory', '1.5'], /not a size/);
  rejects(['--memory', String(MAX_MEMORY_MIB + 1)], `--memory ${MAX_MEMORY_MIB + 1}: at most ${MAX_MEMORY_MIB} MiB`);
  rejects(['--cpus', '0'], '--cpus 0: must be 1 to 8');
  rejects(['--cpus', '9'], '--cpus 9: must be 1 to 8');
  rejects(['--cpus=two'], '--cpus "two": not a number of CPUs');
  rejects(['--frobnicate'], 'Unknown option --frobnicate (see gasang run --help)');
  rejects(['--frobnicate=1'], 'Unknown option --frobnicate (see gasang run --help)');
  rejects(['Image'], 'Unexpected argument "Image" (see gasang run --help)');
  rejects(['--kernel'], '--kernel needs a value');
  rejects(['--kernel='], '--kernel needs a path');
});

test('--drive and --volume: disks in command-line order, QEMU key=value syntax', () => {
  const o = parseRunArgs([
    '--drive', 'file=a.img',
    '--volume=mode=stripe,files=m0.qcow2:m1.img:m2.img,stripe=128K,readonly=on',
    '-drive', 'file=we,,ird.qcow2,format=qcow2,readonly=off,iops=200,bps=10M,bps_burst=1M,serial=disk-2',
    '--volume', 'mode=mirror,files=x:y',
  ], defaults);
  assert.deepEqual(o.drives, [
    { kind: 'file', file: 'a.img', format: undefined, readOnly: false, throttle: undefined, serial: undefined },
    { kind: 'volume', mode: 'stripe', files: ['m0.qcow2', 'm1.img', 'm2.img'], stripeBytes: 128 * 1024, readOnly: true, throttle: undefined, serial: undefined },
    { kind: 'file', file: 'we,ird.qcow2', format: 'qcow2', readOnly: false, throttle: { iops: 200, bps: 10 * 1024 * 1024, bpsBurst: 1024 * 1024 }, serial: 'disk-2' },
    { kind: 'volume', mode: 'mirror', files: ['x', 'y'], stripeBytes: undefined, readOnly: false, throttle: undefined, serial: undefined },
  ]);
  assert.equal(parseRunArgs(['--drive', 'file=a,readonly=yes'], defaults).drives[0]!.readOnly, true);
});

test('--share and --rng/--no-rng', () => {
  const o = parseRunArgs(['--share', 'host=/srv/data,tag=data', '--share=host=/ro,tag=ro,readonly=on', '--no-rng'], defaults);
  assert.deepEqual(o.shares, [{ host: '/srv/data', tag: 'data', readOnly: false }, { host: '/ro', tag: 'ro', readOnly: true }]);
  assert.equal(o.rng, false);
  assert.equal(parseRunArgs(['--no-rng', '--rng'], defaults).rng, true);
  assert.match(RUN_USAGE, /--drive file=PATH/);
  assert.match(RUN_USAGE, /separated by ':'/);
});

test('--nic tap and none: each NIC gets the next default MAC unless given one', () => {
  const o = parseRunArgs(['--nic', 'tap', '--nic=none', '--nic', 'tap,ifname=tap7,mac=02:00:00:00:00:2a'], defaults);
  assert.deepEqual(o.nics.map(n => ({ ...n, mac: Array.from(n.mac) })), [
    { kind: 'tap', mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56] },
    { kind: 'tap', ifname: 'tap7', mac: [2, 0, 0, 0, 0, 0x2a] },
  ]);
  assert.deepEqual(parseRunArgs(['--nic', 'none'], defaults).nics, []);
  rejects(['--nic', 'vde'], '--nic "vde": the NIC type is user, tap, network=NAME or none');
  rejects(['--nic', 'tap,ifname='], /^--nic: ifname=: a device name of 1 to 15 characters/);
  rejects(['--nic', 'tap,mac=01:00:5e:00:00:01'], '--nic mac: 01:00:5e:00:00:01 is a multicast address; a NIC needs a unicast one');
  rejects(['--nic', 'tap,mac=zz'], '--nic mac: "zz" is not a MAC address (like 52:54:00:12:34:56)');
  rejects(['--nic', 'tap,speed=10'], '--nic: unknown key "speed" for a tap NIC (keys: ifname, mac)');
});

test('bad drive, volume and share values are one-line InputErrors', () => {
  rejects(['--drive', 'format=raw'], '--drive needs file=PATH');
  rejects(['--drive', 'file='], '--drive needs file=PATH');
  rejects(['--drive', 'a.img'], /^--drive "a.img": expected key=value \(keys: file, format, readonly, serial, iops, bps, iops_burst, bps_burst\)$/);
  rejects(['--drive', 'file=a,format=vmdk'], '--drive: format=vmdk: expected raw or qcow2');
  rejects(['--drive', 'file=a,readonly=maybe'], '--drive: readonly=maybe: expected on or off');
  rejects(['--drive', 'file=a,cache=none'], /^--drive: unknown key "cache"/);
  rejects(['--drive', 'file=a,file=b'], '--drive: file given twice');
  rejects(['--drive', 'file=a,iops=-1'], '--drive: iops=-1: not a number (suffixes K, M, G allowed)');
  rejects(['--drive', 'file=a,bps=0'], '--drive: bps must be at least 1');
  rejects(['--drive', 'file=a,iops_burst=5'], '--drive: iops_burst needs iops');
  rejects(['--drive', 'file=a,serial=much-too-long-for-virtio'], '--drive: serial must be 1 to 20 printable ASCII characters');
  rejects(['--volume', 'files=a:b'], '--volume needs mode=linear, stripe or mirror');
  rejects(['--volume', 'mode=raid5,files=a:b'], '--volume needs mode=linear, stripe or mirror');
  rejects(['--volume', 'mode=linear'], "--volume needs files=A:B (image files separated by ':')");
  rejects(['--volume', 'mode=linear,files=a::b'], '--volume: files=a::b: an empty file name');
  rejects(['--volume', 'mode=linear,files=a:b,stripe=64K'], '--volume: stripe= is for mode=stripe');
  rejects(['--volume', 'mode=stripe,files=a:b,stripe=1000'], '--volume: stripe=1000: must be a positive multiple of 512 bytes');
  rejects(['--share', 'tag=t'], '--share needs host=DIR');
  rejects(['--share', 'host=/x'], '--share needs tag=TAG (the name the guest mounts)');
  rejects(['--share', 'host=/x,tag=a b'], '--share: tag must be 1 to 255 bytes without spaces or commas');
  rejects(['--drive'], '--drive needs a value');
  const many = Array.from({ length: 8 }, (_, i) => `--drive=file=d${i}`);
  rejects(many, '10 virtio devices (drives, shares, NICs, the entropy device): the board has 8 slots');
  rejects([...many, '--no-rng'], '9 virtio devices (drives, shares, NICs): the board has 8 slots'); // the default NIC counts
  assert.equal(parseRunArgs([...many, '--no-rng', '--nic', 'none'], defaults).drives.length, 8);
});

test('--nic user: QEMU\'s keys, forwarded ports and policy; mistakes are one line naming the key', () => {
  const o = parseRunArgs(['--nic', 'user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.15:53,restrict=on,allow=10.0.2.2:8000,hostname=vm1', '--nic', 'user,net=192.168.7.0/24,mac=02:00:00:00:00:07'], defaults);
  const [a, b] = o.nics;
  assert.equal(a?.kind, 'user');
  assert.equal(Array.from(a!.mac).join(), '82,84,0,18,52,86');
  assert.deepEqual(a?.kind === 'user' && a.config, {
    hostname: 'vm1', restrict: true, outbound: [{ host: '10.0.2.2', port: 8000 }],
    hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 }, { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 5353, guestAddr: '10.0.2.15', guestPort: 53 }],
  });
  assert.deepEqual(b?.kind === 'user' && b.config, { net: '192.168.7.0/24' });
  rejects(['--nic', 'user,hostfwd=8080:80'], /^--nic: hostfwd=8080:80: expected \[tcp\|udp\]:\[HOSTADDR\]:HOSTPORT-\[GUESTADDR\]:GUESTPORT/);
  rejects(['--nic', 'user,hostfwd=tcp::0-:80'], '--nic: hostfwd=tcp::0-:80: host port "0": a port number from 1 to 65535');
  rejects(['--nic', 'user,restrict=maybe'], '--nic: restrict=maybe: on or off');
  rejects(['--nic', 'user,net=10.0.2.0/30'], '--nic: net 10.0.2.0/30: a network of at least 8 addresses (prefix at most 29)');
  rejects(['--nic', 'user,dns=10.0.3.3'], '--nic: dns 10.0.3.3 is not a host address in 10.0.2.0/24');
  rejects(['--nic', 'user,speed=10'], /^--nic: unknown key "speed" for a user NIC \(keys: net, host/);
});
