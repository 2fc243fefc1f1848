/** A VM of a gasangd child process, with its WebSocket console ready for commands (for the console stress). */
import { join } from 'node:path';
import { ConsoleSession, DaemonProcess } from './gasangd-session.js';
import { READY } from './guest.js';

export async function consoleOfDaemonVm(dir: string, spec: { kernel: string; initrd: string; cpus: number }): Promise<{ console: ConsoleSession; close: () => Promise<void> }> {
  const daemon = await DaemonProcess.start(join(dir, 'gasangd.sock'), ['--state-dir', join(dir, 'state')]);
  const api = daemon.client;
  await api.create({ name: 'stress', memoryMiB: 256, ...spec });
  const con = new ConsoleSession(await api.console('stress', { write: true }));
  await api.action('stress', 'start');
  await con.waitFor(READY, 180_000);
  return { console: con, close: async () => { con.ws.close(); await daemon.stop(); } };
}
