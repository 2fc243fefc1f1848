/** The counters `gasang run --stats` prints when the VM ends. */
import type { Cpu } from '../cpu/cpu.js';
import { H } from '../cpu/layout.js';

export function statsLines(cpu: Cpu, seconds: number): string[] {
  let retired = 0, translated = 0;
  for (const h of cpu.harts) { retired += h.s.num(H.INSTRET); translated += h.s.num(H.JIT_INSNS); }
  const lines = [`${(retired / 1e6).toFixed(1)} M guest instructions in ${seconds.toFixed(2)} s: ${(retired / 1e6 / seconds).toFixed(1)} MIPS`];
  const jit = cpu.jit;
  if (!jit) return [...lines, 'JIT off (interpreter only)'];
  const s = jit.stats;
  const pct = retired ? (100 * translated / retired).toFixed(1) : '0.0';
  return [
    ...lines,
    `JIT (threshold ${cpu.jitThreshold}): ${pct} % of instructions ran translated; ${s.blocks} blocks, ${(s.bytes / 1024).toFixed(0)} KiB of wasm in ${s.modules} modules`,
    `JIT: ${s.installs} jump-cache installs, ${s.invalidations} code pages invalidated, ${s.untranslatable} hot pcs left to the interpreter; ` +
      `${s.translateMs.toFixed(0)} ms translating, ${s.compileMs.toFixed(0)} ms compiling on the VM thread`,
  ];
}
