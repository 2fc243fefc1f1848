/**
 * How every console helper runs a command in a guest shell and finds its output: the typed line
 * makes the shell print a begin marker, the command's output, then an end marker with the exit
 * status, each marker on a line of its own.
 *
 * The markers are split by `""` in the typed line, so no echo of it (the tty's, the line
 * editor's, however it wraps at the terminal width) can be taken for them; the output is exactly
 * what lies between the two, never found by looking for the echo. The end marker counts only once
 * its line is complete: guest output reaches the host in arbitrary chunks (one may end between
 * the \r and \n of a line, or in the status digits).
 */
export interface ShellResult {
  /** What the command printed (stdout and whatever it sent there), line endings as \n. */
  output: string;
  /** Its exit status. */
  status: number;
  /** Where the end marker's line ends in the transcript (the next command's output starts after). */
  end: number;
}

export class ShellCommand {
  /** The line to type, newline included. */
  readonly typed: string;
  /** The line the shell prints before the output. */
  readonly begin: string;
  /** How the shell's last line starts (the exit status follows). */
  readonly endMark: string;

  constructor(readonly command: string) {
    const tag = Math.random().toString(36).slice(2, 10).padEnd(8, '0');
    this.begin = `GB-${tag}`;
    this.endMark = `GE-${tag}-`;
    // printf's leading \n ends an output line that has no newline of its own; parse() removes it.
    this.typed = `echo GB""-${tag}; ${command}; printf '\\n%s%s\\n' GE""-${tag}- $?\n`;
  }

  /** The result once `transcript` (console text from before the line was typed) holds it all. */
  parse(transcript: string, from = 0): ShellResult | undefined {
    const b = transcript.indexOf(this.begin, from);
    if (b < 0) return undefined;
    const start = transcript.indexOf('\n', b + this.begin.length) + 1;
    if (start === 0) return undefined;
    const e = transcript.indexOf(`\n${this.endMark}`, start - 1);
    if (e < 0) return undefined;
    const m = /^(\d+)\r?\n/.exec(transcript.slice(e + 1 + this.endMark.length, e + 1 + this.endMark.length + 8));
    if (!m) return undefined;
    const raw = transcript.slice(start, e).replace(/\r$/, '');
    return { output: raw.replace(/\r\n/g, '\n'), status: Number(m[1]), end: e + 1 + this.endMark.length + m[0].length };
  }
}

/** The output as the helpers' run() returns it: without its final newline, as `$(…)` would drop it. */
export const withoutFinalNewline = (s: string): string => (s.endsWith('\n') ? s.slice(0, -1) : s);
