/** Decoding one instruction word against the table, in TypeScript (translation time only). */
import type { HostSemantics } from '../../isa/types.js';
import type { Row } from '../../isa/rv64.js';

const popcount = (m: number): number => { let n = 0; for (let x = m >>> 0; x; x &= x - 1) n++; return n; };

/** A decoder that tries the most specific encodings first, as the interpreter's chains do. */
export function decoderFor(rows: readonly Row[]): (word: number) => Row | undefined {
  const byLen = (len: number): Row[] => rows.filter(r => r.len === len).sort((a, b) => popcount(b.mask) - popcount(a.mask));
  const full = byLen(4), comp = byLen(2);
  return word => {
    if ((word & 3) === 3) return full.find(r => (word & r.mask) === r.match);
    const w = word & 0xffff;
    return comp.find(r => (w & r.mask) === r.match);
  };
}

export const isHost = (row: Row): boolean =>
  typeof row.sem === 'object' && (row.sem as HostSemantics).kind === 'host';
