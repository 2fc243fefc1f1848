/**
 * Helpers for the 9P tests: a NinePServer over a fresh temporary folder with a client of it
 * (client-testing.ts), and the folder layout the escape tests aim at.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestClient } from './client-testing.js';
import { NinePServer, type NinePServerOptions } from './server.js';

/** The fid the tests attach the share's root to. */
export const ROOT = 0;

/** A fresh temporary folder `base` holding `root` (to share) and `outside` (beside the share, for escapes to aim at). */
export function shareDirs(prefix: string): { base: string; root: string; outside: string } {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const root = join(base, 'root'), outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  return { base, root, outside };
}

export interface TestShareOptions extends Partial<Omit<NinePServerOptions, 'root'>> {
  /** Names the temporary folder (default 'gasang-9p-'). */
  prefix?: string;
  /** Share base/root with base/outside beside it (shareDirs), rather than the temporary folder itself. */
  outside?: boolean;
  /** The client's response buffer (TestClient's default if not given). */
  responseSize?: number;
}

/** A writable NinePServer over a fresh temporary folder, and a client of it (not yet in a session). */
export class TestShare {
  /** The temporary folder close() removes: `root` itself, or the parent of `root` and `outside`. */
  readonly base: string;
  readonly root: string;
  /** base/outside with the `outside` option, else ''. */
  readonly outside: string;
  readonly server: NinePServer;
  readonly c: TestClient;

  constructor(opts: TestShareOptions = {}) {
    const { prefix = 'gasang-9p-', outside = false, responseSize, ...serverOpts } = opts;
    if (outside) {
      ({ base: this.base, root: this.root, outside: this.outside } = shareDirs(prefix));
    } else {
      this.base = this.root = mkdtempSync(join(tmpdir(), prefix));
      this.outside = '';
    }
    this.server = new NinePServer({ readOnly: false, tag: 'share', ...serverOpts, root: this.root });
    this.c = new TestClient(this.server, responseSize);
  }

  /** Tversion (msize: the client's response buffer), then Tattach of the share's root to fid ROOT. */
  attach(): TestClient {
    this.c.version();
    this.c.attach(ROOT);
    return this.c;
  }

  /** Ends the server (releasing its host descriptors) and removes the temporary folder. */
  close(): void {
    this.server.close();
    rmSync(this.base, { recursive: true });
  }
}

/** Runs `fn` on a fresh TestShare, and closes it whatever happens. */
export function withShare(opts: TestShareOptions, fn: (share: TestShare) => void): void {
  const share = new TestShare(opts);
  try {
    fn(share);
  } finally {
    share.close();
  }
}
