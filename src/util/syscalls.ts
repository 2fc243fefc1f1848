/**
 * The few Linux system calls Node lacks (TAP's ioctls, poll on a character device), through
 * koffi, the one native dependency: its npm package ships prebuilt binaries, so nothing is
 * compiled on install. Loaded on first use; where koffi or libc cannot be loaded, hostCalls()
 * says why and callers refuse the feature that needs it with that reason (everything else runs
 * without it).
 */
import { createRequire } from 'node:module';

export interface HostCalls {
  /** ioctl(fd, request, arg) with `arg` a buffer the kernel reads and may write; returns -1 and sets errno() on failure. */
  ioctlBuf(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl(fd, request, arg) with an integer argument. */
  ioctlInt(fd: number, request: number, arg: number): number;
  /** poll(fds, nfds, timeoutMs): `fds` holds nfds struct pollfd (int fd, short events, short revents). Blocks the calling thread. */
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
}

let loaded: HostCalls | string | undefined;

/** The calls, or a sentence saying why they are not available here. */
export function hostCalls(): HostCalls | string {
  if (loaded === undefined) loaded = load();
  return loaded;
}

function load(): HostCalls | string {
  if (process.platform !== 'linux') return `needs Linux (this host is ${process.platform})`;
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  } catch (err) {
    return `needs the koffi package, which cannot be loaded (${(err as Error).message.split('\n')[0]})`;
  }
  try {
    const libc = koffi.load('libc.so.6');
    const ioctlBuf = libc.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
    const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
    const poll = libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)');
    return {
      ioctlBuf: (fd, request, arg) => ioctlBuf(fd, request, arg) as number,
      ioctlInt: (fd, request, arg) => ioctlInt(fd, request, arg) as number,
      poll: (fds, nfds, timeoutMs) => poll(fds, nfds, timeoutMs) as number,
      errno: () => koffi.errno(),
    };
  } catch (err) {
    return `cannot call the C library through koffi (${(err as Error).message.split('\n')[0]})`;
  }
}
