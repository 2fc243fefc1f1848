/** The whole RV64GC + Zba/Zbb/Zbs/Zicond instruction table: every row the interpreter, JIT and disassembler are built from. */
import { RV64_INSNS, type Row } from './rv64.js';
import { RVC_INSNS } from './rvc.js';
import { FD_INSNS } from './rv-fd.js';
import { BITMANIP_INSNS } from './rv-bitmanip.js';

export const ALL_INSNS: readonly Row[] = [...RV64_INSNS, ...RVC_INSNS, ...FD_INSNS, ...BITMANIP_INSNS];
export type { Row } from './rv64.js';
