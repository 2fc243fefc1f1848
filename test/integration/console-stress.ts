/**
 * Console stress: many shell commands of varied lengths typed into a guest, every output and exit
 * status checked exactly. Typed lines run from a few bytes to past the 80-column wrap of the line
 * editor and past the 8250 driver's 256-byte receive batch; outputs from nothing to several KiB,
 * with and without a final newline, on stdout and stderr; some commands are typed ahead, while the
 * previous one still runs.
 */
import type { ShellResult } from './shell-command.js';

/** Anything that can type a command and wait for its result (Guest, CliSession, ConsoleSession). */
export interface Shell {
  exec(command: string, timeoutMs?: number): Promise<ShellResult>;
}

interface Case { command: string; output: string; status: number }

/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:=+';

function word(rand: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return s;
}

function makeCase(rand: () => number, i: number): Case {
  const len = [1, 8, 40, 75, 120, 300, 700][Math.floor(rand() * 7)]!;
  const w = word(rand, Math.max(1, len - 12)) + i;
  switch (i % 7) {
    case 0: return { command: `echo ${w}`, output: `${w}\n`, status: 0 };
    case 1: return { command: `printf %s ${w}`, output: w, status: 0 };
    case 2: return { command: `echo ${w} >&2`, output: `${w}\n`, status: 0 }; // stderr shares the console with stdout
    case 3: return { command: `ls /no-such-${w.slice(0, 30)} 2>/dev/null`, output: '', status: 1 };
    case 4: {
      const n = 1 + Math.floor(rand() * 400);
      let out = '';
      for (let k = 1; k <= n; k++) out += `${k}\n`;
      return { command: `seq 1 ${n}`, output: out, status: 0 };
    }
    case 5: return { command: `true`, output: '', status: 0 };
    default: {
      const a = word(rand, 1 + Math.floor(rand() * 20)), b = word(rand, 1 + Math.floor(rand() * 20));
      return { command: `printf '%s\\n%s\\n' ${a} ${b}; (exit ${i % 5})`, output: `${a}\n${b}\n`, status: i % 5 };
    }
  }
}

export interface StressReport {
  commands: number;
  lost: string[];
  seconds: number;
}

/**
 * Runs `count` commands on `shell` and reports every one whose output or status differed.
 * Every `typeAhead`-th command is typed together with the next one.
 */
export async function stressConsole(shell: Shell, count: number, seed = 1, typeAhead = 9): Promise<StressReport> {
  const rand = prng(seed);
  const lost: string[] = [];
  const started = performance.now();
  const check = (c: Case, r: ShellResult, i: number): void => {
    const want = c.output;
    if (r.output !== want || r.status !== c.status) {
      let at = 0;
      while (at < want.length && r.output[at] === want[at]) at++;
      const near = (s: string): string => JSON.stringify(s.slice(Math.max(0, at - 40), at + 160));
      lost.push(`#${i} ${JSON.stringify(c.command.slice(0, 80))}: status ${r.status} (want ${c.status}), ${r.output.length} bytes (want ${want.length}), `
        + `first difference at ${at}: got ${near(r.output)}, want ${near(want)}`);
    }
  };
  for (let i = 0; i < count; i++) {
    const c = makeCase(rand, i);
    if (typeAhead > 0 && i % typeAhead === typeAhead - 1 && i + 1 < count) {
      const d = makeCase(rand, i + 1);
      const [r1, r2] = await Promise.all([shell.exec(`sleep 0.02; ${c.command}`), shell.exec(d.command)]);
      check(c, r1, i);
      check(d, r2, i + 1);
      i++;
    } else {
      check(c, await shell.exec(c.command), i);
    }
  }
  return { commands: count, lost, seconds: (performance.now() - started) / 1000 };
}
