import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from './host.js';
import { checkFiles, checkSpec, planOf, BUNDLED_GUEST } from './spec.js';
import { HostError, type HostErrorKind } from './types.js';
import { tempDir } from './testing.js';

/** Asserts that `fn` throws HostError of `kind` whose message matches `message`. */
async function refuses(fn: () => unknown, kind: HostErrorKind, message: RegExp): Promise<void> {
  await assert.rejects(async () => fn(), (err: unknown) => {
    assert.ok(err instanceof HostError, `expected HostError, got ${String(err)}`);
    assert.equal(err.kind, kind);
    assert.equal(err.code, `host-${kind}`);
    assert.match(err.message, message);
    assert.match(err.message, /^[A-Za-z]/);
    return true;
  });
}

test('defaults are filled in and paths made absolute', () => {
  const s = checkSpec({ name: 'a', drives: [{ file: 'disk.img', overlay: true }] });
  assert.deepEqual({ ...s, drives: undefined }, { name: 'a', cpus: 1, memoryMiB: 256, cpuShares: 1024, drives: undefined });
  assert.equal(s.drives![0]!.file, join(process.cwd(), 'disk.img'));
  const plan = planOf(s, i => `/state/drive${i}.qcow2`);
  assert.equal(plan.kernel, BUNDLED_GUEST.kernel);
  assert.equal(plan.initrd, BUNDLED_GUEST.initrd);
  assert.equal(plan.append, 'console=ttyS0');
  assert.deepEqual(plan.drives[0], { kind: 'file', file: '/state/drive0.qcow2', format: 'qcow2', readOnly: false, throttle: undefined });
  assert.equal(planOf(checkSpec({ name: 'b', kernel: '/k' }), () => '').initrd, undefined, 'a custom kernel boots without the bundled initramfs');
});

test('impossible specs are invalid, each message naming the field', async () => {
  const cases: [unknown, RegExp][] = [
    [null, /^spec: must be an object/],
    [{}, /^name is required/],
    [{ name: 'Bad Name' }, /^name: "Bad Name" must be 1 to 63 lowercase letters/],
    [{ name: 'a'.repeat(64) }, /^name: .* must be 1 to 63/],
    [{ name: 'a', memoryMiB: 0 }, /^memoryMiB: 0 MiB is out of range \(1 to \d+ MiB\)/],
    [{ name: 'a', memoryMiB: 1.5 }, /^memoryMiB: must be an integer/],
    [{ name: 'a', cpus: 10_000 }, /^cpus: 10000 is out of range \(1 to \d+\)/],
    [{ name: 'a', cpus: 0 }, /^cpus: 0 is out of range/],
    [{ name: 'a', cpuShares: 0 }, /^cpuShares: 0 is out of range/],
    [{ name: 'a', cpuLimit: 150 }, /^cpuLimit: 150% is out of range \(1 to 100% for 1 CPU\)/],
    [{ name: 'a', cpuLimit: 0 }, /^cpuLimit: 0% is out of range/],
    [{ name: 'a', colour: 'red' }, /^Unknown field "colour" \(known: name, /],
    [{ name: 'a', drives: [{ file: '/x', sparkle: 1 }] }, /^drives\[0\]: unknown field "sparkle"/],
    [{ name: 'a', drives: [{}] }, /^drives\[0\]\.file is required/],
    [{ name: 'a', drives: [{ file: '/x', format: 'vmdk' }] }, /^drives\[0\]\.format: must be "raw" or "qcow2"/],
    [{ name: 'a', drives: [{ file: '/x', overlay: true, readonly: true }] }, /^drives\[0\]: overlay and readonly together/],
    [{ name: 'a', drives: 'disk.img' }, /^drives: must be an array/],
    [{ name: 'a', volumes: [{ mode: 'raid5', files: ['/a'] }] }, /^volumes\[0\]\.mode: must be/],
    [{ name: 'a', shares: [{ host: '/tmp', tag: 'a b' }] }, /^shares\[0\]\.tag: must be 1 to 255 bytes/],
    [{ name: 'a', drives: Array.from({ length: 6 }, () => ({ file: '/x' })) }, /^drives: 6 entries, at most 5/],
    [{ name: 'a', jit: 'yes' }, /^jit: must be true or false/],
    [{ name: 'a', append: 'x'.repeat(2000) }, /^append: longer than/],
    [{ name: 'a', nics: [{ type: 'vde' }] }, /^nics\[0\]\.type: must be "user", "tap" or "network"/],
    [{ name: 'a', nics: [{ type: 'tap', hostfwd: [] }] }, /^nics\[0\]: unknown field "hostfwd"/],
    [{ name: 'a', nics: [{ type: 'user', hostfwd: ['8080:80'] }] }, /^nics\[0\]: hostfwd=8080:80: expected/],
    [{ name: 'a', nics: [{ type: 'user', hostfwd: 'tcp::8080-:80' }] }, /^nics\[0\]\.hostfwd: must be an array/],
    [{ name: 'a', nics: [{ type: 'user', restrict: 'on' }] }, /^nics\[0\]\.restrict: must be true or false/],
    [{ name: 'a', nics: [{ type: 'user', net: '10.0.2.0/31' }] }, /^nics\[0\]: net 10\.0\.2\.0\/31: a network of at least 8 addresses/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', vlan: 2, trunk: { allowed: '10' } }] }, /^nics\[0\]\.trunk: vlan \(an access port\) and trunk exclude each other/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', trunk: { allowed: '10,5000' } }] }, /^nics\[0\]\.trunk: trunk\.allowed 5000 is not a VLAN id/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', trunk: { allowed: [] } }] }, /^nics\[0\]\.trunk: trunk\.allowed is empty/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', trunk: { allowed: '10', native: 0 } }] }, /^nics\[0\]\.trunk\.native: 0 is out of range/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', trunk: { allowed: '10', tagged: true } }] }, /^nics\[0\]\.trunk: unknown field "tagged"/],
    [{ name: 'a', nics: [{ type: 'network', network: 'lan', trunk: '10' }] }, /^nics\[0\]\.trunk: must be an object/],
  ];
  for (const [spec, message] of cases) await refuses(() => checkSpec(spec), 'invalid', message);
});

test('missing files are refused by name', async () => {
  const { dir, cleanup } = tempDir('spec');
  try {
    await refuses(() => checkFiles(checkSpec({ name: 'a', kernel: join(dir, 'nope') })), 'invalid', /^kernel: .*nope: no such file/);
    await refuses(() => checkFiles(checkSpec({ name: 'a', drives: [{ file: join(dir, 'gone.img') }] })), 'invalid', /^drives\[0\]\.file: .*gone\.img: no such file/);
    await refuses(() => checkFiles(checkSpec({ name: 'a', kernel: dir })), 'invalid', /^kernel: .*: not a regular file/);
    await refuses(() => checkFiles(checkSpec({ name: 'a', shares: [{ host: join(dir, 'nodir'), tag: 't' }] })), 'invalid', /^shares\[0\]\.host: .*: no such directory/);
    checkFiles(checkSpec({ name: 'a' })); // the bundled guest is there
  } finally {
    cleanup();
  }
});

test('the host refuses duplicates, unknown VMs, forbidden transitions and overcommit', async () => {
  const { dir, cleanup } = tempDir('host-errors');
  // 0.001 × host RAM is far below 256 MiB: no VM may start, and none boots in this test.
  const host = new Host({ stateDir: dir, memoryOvercommit: 0.001 });
  try {
    const a = await host.create({ name: 'a' });
    await refuses(() => host.create({ name: 'a', memoryMiB: 64 }), 'conflict', /^A VM named a already exists/);
    await refuses(() => host.create({ name: 'b', cpus: 10_000 }), 'invalid', /^cpus: 10000 is out of range/);
    await refuses(() => host.create({ name: 'b', memoryMiB: 0 }), 'invalid', /^memoryMiB: 0 MiB is out of range/);
    await refuses(() => host.create({ name: 'b', kernel: join(dir, 'missing-Image') }), 'invalid', /^kernel: .*missing-Image: no such file/);
    await refuses(() => host.create({ name: 'b', drives: [{ file: join(dir, 'missing.qcow2'), overlay: true }] }), 'invalid', /^drives\[0\]\.file: .*no such file/);
    await refuses(() => host.create({ name: 'b', nonsense: true } as never), 'invalid', /^Unknown field "nonsense"/);
    assert.deepEqual(host.list().map(v => v.spec.name), ['a'], 'refused specs leave nothing behind');
    await refuses(() => host.get('zzz'), 'not-found', /^No VM named "zzz"/);
    await refuses(() => host.remove('zzz'), 'not-found', /^No VM named "zzz"/);
    await refuses(() => a.pause(), 'conflict', /^Cannot pause a: it is created/);
    await refuses(() => a.resume(), 'conflict', /^Cannot resume a: it is created/);
    const limitMiB = Math.floor(host.resources().memoryLimitBytes / 2 ** 20);
    await refuses(() => a.start(), 'resources', new RegExp(`^Starting a needs 256 MiB of guest RAM, but 0 MiB are committed to running VMs and the limit is ${limitMiB} MiB \\(memoryOvercommit 0.001 × \\d+ MiB of host RAM\\)`));
    assert.equal(a.info().state, 'created');
    assert.equal(host.get(a.id), a, 'by id as well as by name');
    await host.remove('a');
    assert.deepEqual(host.list(), []);
  } finally {
    await host.close();
    cleanup();
  }
});

test('a corrupt kernel fails the start, not the host; the VM stays startable', async () => {
  const { dir, cleanup } = tempDir('host-badkernel');
  const host = new Host({ stateDir: dir });
  try {
    const kernel = join(dir, 'Image.gz');
    writeFileSync(kernel, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]));
    const vm = await host.create({ name: 'bad', kernel, memoryMiB: 32 });
    await refuses(() => vm.start(), 'invalid', /^Cannot start bad: kernel .*Image\.gz: corrupt gzip data/);
    assert.equal(vm.info().state, 'created');
    assert.equal(host.resources().memoryCommittedBytes, 0);
  } finally {
    await host.close();
    cleanup();
  }
});

test('one host per state directory', async () => {
  const { dir, cleanup } = tempDir('host-lock');
  const host = new Host({ stateDir: dir });
  try {
    await refuses(() => new Host({ stateDir: dir }), 'conflict', /^This process already has a host open on /);
  } finally {
    await host.close();
  }
  const again = new Host({ stateDir: dir });
  await again.close();
  cleanup();
});

test('NICs: a user NIC keeps its keys and gets a MAC from the VM\'s name; the plan holds the parsed network', () => {
  const s = checkSpec({ name: 'web', nics: [{ type: 'user', hostfwd: ['tcp:127.0.0.1:8080-:80'], restrict: true, allow: ['10.0.2.2:9000'] }, { type: 'tap', ifname: 'tap3' }] });
  assert.deepEqual(s.nics, [
    { type: 'user', hostfwd: ['tcp:127.0.0.1:8080-:80'], restrict: true, allow: ['10.0.2.2:9000'], mac: s.nics![0]!.mac },
    { type: 'tap', ifname: 'tap3', mac: s.nics![1]!.mac },
  ]);
  assert.match(s.nics![0]!.mac!, /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
  assert.notEqual(s.nics![0]!.mac, s.nics![1]!.mac);
  const [user, tap] = planOf(s, () => '').nics;
  assert.deepEqual(user?.kind === 'user' && user.config, {
    restrict: true, outbound: [{ host: '10.0.2.2', port: 9000 }], hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 }],
  });
  assert.deepEqual(tap, { kind: 'tap', ifname: 'tap3', mac: tap!.mac });
});

test('a network NIC as a trunk port: the spec keeps its VLANs and the plan passes them to the switch', () => {
  const s = checkSpec({ name: 'router', nics: [{ type: 'network', network: 'lan', trunk: { allowed: '10,20-22', native: 1 } }] });
  assert.deepEqual(s.nics, [{ type: 'network', network: 'lan', trunk: { allowed: '10,20-22', native: 1 }, mac: s.nics![0]!.mac }]);
  const [nic] = planOf(s, () => '').nics;
  assert.deepEqual(nic?.kind === 'network' && nic.trunk, { allowed: '10,20-22', native: 1 });
});
