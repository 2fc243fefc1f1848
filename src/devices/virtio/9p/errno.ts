/**
 * Linux errno values as Rlerror carries them (include/uapi/asm-generic/errno-base.h and errno.h;
 * RISC-V uses the generic numbers), and the mapping from host errors to them.
 */

export const enum Errno {
  EPERM = 1, ENOENT = 2, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
  EACCES = 13, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EISDIR = 21,
  EINVAL = 22, ENFILE = 23, EMFILE = 24, ETXTBSY = 26, EFBIG = 27, ENOSPC = 28, ESPIPE = 29,
  EROFS = 30, EMLINK = 31, ERANGE = 34, ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39,
  ELOOP = 40, ENODATA = 61, EPROTO = 71, EOVERFLOW = 75, EMSGSIZE = 90, ENOTSUP = 95, EDQUOT = 122,
}

/**
 * Host error codes by name. Node reports the host's own errno numbers; on Linux hosts those are
 * the generic ones too, but naming them keeps the mapping right on any host and documents it.
 */
const BY_CODE: Record<string, number> = {
  EPERM: Errno.EPERM, ENOENT: Errno.ENOENT, EIO: Errno.EIO, ENXIO: Errno.ENXIO, E2BIG: Errno.E2BIG,
  EBADF: Errno.EBADF, EAGAIN: Errno.EAGAIN, ENOMEM: Errno.ENOMEM, EACCES: Errno.EACCES,
  EBUSY: Errno.EBUSY, EEXIST: Errno.EEXIST, EXDEV: Errno.EXDEV, ENODEV: Errno.ENODEV,
  ENOTDIR: Errno.ENOTDIR, EISDIR: Errno.EISDIR, EINVAL: Errno.EINVAL, ENFILE: Errno.ENFILE,
  EMFILE: Errno.EMFILE, ETXTBSY: Errno.ETXTBSY, EFBIG: Errno.EFBIG, ENOSPC: Errno.ENOSPC,
  ESPIPE: Errno.ESPIPE, EROFS: Errno.EROFS, EMLINK: Errno.EMLINK, ERANGE: Errno.ERANGE,
  ENAMETOOLONG: Errno.ENAMETOOLONG, ENOSYS: Errno.ENOSYS, ENOTEMPTY: Errno.ENOTEMPTY,
  ELOOP: Errno.ELOOP, ENODATA: Errno.ENODATA, EOVERFLOW: Errno.EOVERFLOW, ENOTSUP: Errno.ENOTSUP,
  EOPNOTSUPP: Errno.ENOTSUP, EDQUOT: Errno.EDQUOT,
};

/**
 * The errno to report for an exception from a node:fs call. Node's own argument checks
 * (`ERR_*` codes, e.g. a value out of range) become EINVAL; anything unrecognised is EIO.
 */
export function errnoOf(err: unknown): number {
  if (typeof err !== 'object' || err === null) return Errno.EIO;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof code === 'string') {
    const known = BY_CODE[code];
    if (known !== undefined) return known;
    if (code.startsWith('ERR_')) return Errno.EINVAL;
  }
  // Other host errno values: Linux hosts share the generic numbering.
  if (typeof errno === 'number' && errno < 0 && errno > -134 && process.platform === 'linux') return -errno;
  return Errno.EIO;
}
