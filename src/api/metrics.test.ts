import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestDaemon } from './testing.js';

/**
 * Parses the text exposition format strictly: a HELP and a TYPE line before each family's samples,
 * metric and label names as the format allows, label values quoted with only \\, \" and \n
 * escaped, one float per sample, no family repeated.
 */
function parseExposition(text: string): Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }> {
  const families = new Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }>();
  let current: string | undefined;
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (m) {
      assert.ok(!families.has(m[1]!), `${m[1]} described once`);
      current = m[1];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.equal(m[1], current, 'TYPE follows its HELP');
      families.set(m[1]!, { type: m[2]!, samples: [] });
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    assert.equal(m[1], current, `${m[1]} sample under its own family`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/gy;
      let lm: RegExpExecArray | null;
      let end = 0;
      while ((lm = re.exec(m[2])) !== null) { labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)); end = re.lastIndex; }
      assert.equal(end, m[2].length, `labels parse: ${m[2]}`);
    }
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `a number: ${m[3]}`);
    families.get(current!)!.samples.push({ labels, value });
  }
  return families;
}

test('GET /metrics: per-VM usage, host figures and request counts in the exposition format', async () => {
  const d = await startTestDaemon();
  try {
    await d.client.create({ name: 'm1', memoryMiB: 64 });
    await d.client.create({ name: 'm2', cpus: 2 });
    await d.client.action('m1', 'start');
    const vm = d.host.get('m1');
    Object.assign(vm.usage, { cpuSeconds: 12.5, instructions: 3_000_000_000, mmioExits: 4242, diskReadBytes: 1 << 20, diskWriteBytes: 512 });

    const r = await d.client.request('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const fam = parseExposition(r.text);
    const value = (name: string, labels: Record<string, string>): number | undefined =>
      fam.get(name)?.samples.find(s => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

    assert.equal(fam.get('gasang_vm_cpu_seconds_total')!.type, 'counter');
    assert.equal(value('gasang_vm_cpu_seconds_total', { vm: 'm1', id: vm.id }), 12.5);
    assert.equal(value('gasang_vm_instructions_total', { vm: 'm1' }), 3_000_000_000);
    assert.equal(value('gasang_vm_mmio_exits_total', { vm: 'm1' }), 4242);
    assert.equal(value('gasang_vm_guest_memory_bytes', { vm: 'm1' }), 64 * 1024 * 1024);
    assert.equal(value('gasang_vm_host_overhead_bytes', { vm: 'm1' }), 5 * 1024 * 1024);
    assert.equal(value('gasang_vm_disk_read_bytes_total', { vm: 'm1' }), 1 << 20);
    assert.equal(value('gasang_vm_disk_written_bytes_total', { vm: 'm1' }), 512);
    assert.equal(value('gasang_vm_cpus', { vm: 'm2' }), 2);
    assert.equal(value('gasang_vm_state', { vm: 'm1', state: 'running' }), 1);
    assert.equal(value('gasang_vm_state', { vm: 'm1', state: 'stopped' }), 0);
    assert.equal(value('gasang_vm_state', { vm: 'm2', state: 'created' }), 1);
    assert.equal(fam.get('gasang_vm_state')!.samples.length, 14, 'seven states per VM');
    assert.equal(value('gasang_host_memory_committed_bytes', {}), 64 * 1024 * 1024);
    assert.equal(value('gasang_host_memory_limit_bytes', {}), 1024 * 1024 * 1024);
    assert.equal(value('gasang_host_cores', {}), 2);
    assert.equal(value('gasang_http_requests_total', { method: 'POST', status: '201' }), 2);
    assert.equal(value('gasang_http_requests_total', { method: 'POST', status: '200' }), 1);
    for (const [name, f] of fam) if (f.type === 'counter') assert.match(name, /_total$/);
  } finally {
    await d.close();
  }
});
