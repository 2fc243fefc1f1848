/**
 * The long console stress run (the CI test runs a short one):
 *   node dist/scripts/console-stress.js [--commands N] [--seed S] [--via guest|cli|gasangd]
 *        [--kernel bundled|debian] [--cpus N]
 * GASANG_JIT_THRESHOLD=1 forces the JIT. Prints every lost command and a summary; exit status 1 if any was lost.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED, DEBIAN, Guest, READY } from '../test/integration/guest.js';
import { CliSession } from '../test/integration/cli-session.js';
import { stressConsole, type Shell } from '../test/integration/console-stress.js';
import { consoleOfDaemonVm } from '../test/integration/console-stress-daemon.js';

const { values } = parseArgs({ options: {
  commands: { type: 'string', default: '2000' }, seed: { type: 'string', default: '1' },
  via: { type: 'string', default: 'guest' }, kernel: { type: 'string', default: 'bundled' }, cpus: { type: 'string', default: '1' },
} });
const count = Number(values.commands), seed = Number(values.seed), cpus = Number(values.cpus);
const files = values.kernel === 'debian' ? DEBIAN : BUNDLED;
let shell: Shell;
let close: () => Promise<void>;
if (values.via === 'cli') {
  const s = new CliSession(['--kernel', files.kernel, '--initrd', files.initrd, '--cpus', String(cpus)]);
  await s.waitFor(READY);
  shell = s;
  close = async () => { s.kill(); await s.exited; };
} else if (values.via === 'gasangd') {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-stress-'));
  const d = await consoleOfDaemonVm(dir, { ...files, cpus });
  shell = d.console;
  close = async () => { await d.close(); rmSync(dir, { recursive: true, force: true }); };
} else {
  const g = await Guest.boot({ ...files, cpus });
  await g.waitFor(READY);
  shell = g;
  close = () => g.kill();
}
const r = await stressConsole(shell, count, seed);
for (const l of r.lost) console.log(`lost ${l}`);
console.log(`${r.commands} commands via ${values.via} (${values.kernel}, ${cpus} hart${cpus > 1 ? 's' : ''}, JIT threshold ${process.env.GASANG_JIT_THRESHOLD ?? 'default'}): ${r.lost.length} lost, ${r.seconds.toFixed(1)} s`);
await close();
process.exit(r.lost.length ? 1 : 0);
