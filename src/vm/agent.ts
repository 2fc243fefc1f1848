/**
 * The host's side of the guest agent (guest/agent.sh): a virtio console every gasangd VM has,
 * which the guest's init serves when the kernel command line names it (AGENT_BOOTARG). The host
 * asks in lines and the agent answers in lines; a guest without the agent never answers, so
 * every request has a deadline. Used to give a clone its own identity.
 */
/** The board's first virtio console is hvc1: the SBI console is hvc0 in the bundled and Debian kernels. */
export const AGENT_BOOTARG = 'gasang.agent=hvc1';

export const withAgentBootarg = (append: string): string => (append === '' ? AGENT_BOOTARG : `${append} ${AGENT_BOOTARG}`);

/** Longest line kept from the guest: a hostile agent must not fill the host's memory. */
const MAX_LINE = 4096;

export class AgentChannel {
  private partial = '';
  private waiters: { match: RegExp; resolve: (line: string) => void }[] = [];

  constructor(private readonly send: (bytes: Uint8Array) => void) {}

  /** Bytes the guest wrote on the agent's port. */
  push(bytes: Uint8Array): void {
    const parts = (this.partial + Buffer.from(bytes).toString('latin1')).split('\n');
    this.partial = parts.pop()!.slice(-MAX_LINE);
    for (const line of parts) {
      const i = this.waiters.findIndex(w => w.match.test(line));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
    }
  }

  /** Sends `line` and resolves with the first answer matching `answer`; rejects after `timeoutMs`. */
  request(line: string, answer: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const w = { match: answer, resolve: (l: string) => { clearTimeout(timer); resolve(l); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter(x => x !== w);
        reject(new Error(`The guest agent did not answer "${line.split(' ')[0]}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
      this.send(Buffer.from(`${line}\n`));
    });
  }
}
