/**
 * Resident memory of the VMs' guest RAM, read from /proc/self/smaps: each VM's RAM is one
 * WebAssembly.Memory, a private read-write mapping of exactly its byte length (V8 keeps the
 * guard region around it inaccessible, a separate mapping), so mappings are matched by size.
 */
import { readFileSync } from 'node:fs';

/** Sum of the resident bytes of one rw-p mapping per entry of `sizes` (bytes), matched by length. */
export function residentOfSize(sizes: readonly number[]): number {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'latin1');
  } catch {
    return 0;
  }
  const wanted = new Map<number, number>();
  for (const s of sizes) wanted.set(s, (wanted.get(s) ?? 0) + 1);
  let total = 0;
  let counting = false;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (head) {
      const size = parseInt(head[2]!, 16) - parseInt(head[1]!, 16);
      const left = wanted.get(size) ?? 0;
      counting = head[3] === 'rw-p' && left > 0;
      if (counting) wanted.set(size, left - 1);
      continue;
    }
    if (counting && line.startsWith('Rss:')) {
      total += Number(/(\d+)/.exec(line)![1]) * 1024;
      counting = false;
    }
  }
  return total;
}
