/**
 * Names another backing file in a qcow2 image's header without touching its data (what
 * `qemu-img rebase -u` does): for an overlay copied to where its base is reached by another
 * relative name (block migration between state directories of different depths).
 */
import { StorageError } from '../block.js';
import { HostFile } from '../host-file.js';
import { readHeader } from './image.js';
import { H, MAX_BACKING_NAME } from './layout.js';

export function setBackingName(path: string, name: string): void {
  const file = HostFile.open(path, false);
  try {
    const h = readHeader(file);
    if (h.backingFile === name) return;
    const probe = new Uint8Array(16);
    file.read(0, probe);
    const v = new DataView(probe.buffer);
    const offset = v.getUint32(H.backingFileOffset[0]) * 2 ** 32 + v.getUint32(H.backingFileOffset[0] + 4);
    const bytes = new TextEncoder().encode(name);
    if (h.backingFile === undefined || offset === 0) throw new StorageError('bad-spec', `${path} has no backing file to rename`);
    // The name is the last thing in the header cluster: a longer one must still end inside it.
    if (bytes.length === 0 || bytes.length > MAX_BACKING_NAME || offset + bytes.length > 2 ** h.clusterBits) {
      throw new StorageError('bad-spec', `${path}: the backing file name ${JSON.stringify(name)} does not fit its header`);
    }
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, bytes.length);
    file.write(offset, bytes);
    file.write(H.backingFileSize[0], size);
    file.sync();
  } finally {
    file.close();
  }
}
