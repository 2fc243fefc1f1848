/**
 * The thread that waits for a TAP device to have frames (tap.ts starts one per device): poll(2)
 * blocks this thread, never the VM's event loop or libuv's small shared thread pool. It only
 * signals readiness; the VM thread reads the frames itself when its guest has room for them.
 *
 * state[0]: POLLING (this thread polls) → READY (set here, message posted; the VM thread drains
 * the device, then stores POLLING and notifies) … STOP (set by the VM thread: exit).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hostCalls } from '../../util/syscalls.js';

export const enum PollState { POLLING = 0, READY = 1, STOP = 2 }
export interface PollerData { fd: number; state: Int32Array }

const POLLIN = 1;
/** How often a quiet device looks at STOP. */
const POLL_MS = 200;

if (parentPort && workerData && (workerData as { tapPoller?: boolean }).tapPoller) {
  const { fd, state } = workerData as PollerData;
  const calls = hostCalls();
  if (typeof calls === 'string') throw new Error(`TAP poller ${calls}`);
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, POLLIN, true);
  while (Atomics.load(state, 0) !== PollState.STOP) {
    if (Atomics.load(state, 0) === PollState.READY) {
      Atomics.wait(state, 0, PollState.READY, POLL_MS);
      continue;
    }
    const n = calls.poll(pfd, 1, POLL_MS);
    if (n > 0 && Atomics.compareExchange(state, 0, PollState.POLLING, PollState.READY) === PollState.POLLING) parentPort.postMessage(0);
  }
}
