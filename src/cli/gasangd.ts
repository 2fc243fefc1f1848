#!/usr/bin/env -S node --v8-pool-size=1
/**
 * gasangd: the host daemon. Opens the host on a state directory, serves the REST API on a Unix
 * socket (and on TCP with a bearer token when --listen is given), logs JSON lines on stderr, and
 * on SIGTERM or SIGINT stops its VMs (gracefully, then forced) and exits.
 *
 * One V8 background thread (--v8-pool-size=1, in the line above): with many VM isolates, V8's
 * background tasks spread over its default pool cost more than the work (50 idle VMs: 2.3 % of a
 * core instead of 3.5-4.5 %, measured); the VM threads themselves do the emulation.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { GasangError, InputError } from '../util/errors.js';
import { Host } from '../vm/host.js';
import { ApiServer, jsonLogger } from '../api/server.js';
import { defaultSocketPath, defaultStateDir } from '../api/paths.js';

export const GASANGD_USAGE = `Usage: gasangd [options]

Runs VMs for gasang vm and the REST API (docs/openapi.json); the web page is at / .

Options:
  --socket PATH          Unix socket, mode 0600 (default: $GASANG_SOCKET or ${defaultSocketPath()})
  --state-dir DIR        where VM specs (SQLite) and overlays live (default: ${defaultStateDir()})
  --listen [HOST:]PORT   also serve TCP (default host 127.0.0.1); every request needs the token
  --token-file FILE      the TCP token (at least 16 characters; or $GASANGD_TOKEN)
  --memory-overcommit R  guest RAM of running VMs may reach R × host RAM (default 1.5)
  --cores N              host cores the scheduler hands out (default: all)
  --stop-timeout SECONDS how long VMs get to power off when the daemon stops (default 30)
  -h, --help             show this help
`;

export interface DaemonOptions {
  socketPath: string;
  stateDir: string;
  listen?: { host: string; port: number };
  token?: string;
  memoryOvercommit?: number;
  cores?: number;
  stopTimeoutMs: number;
  help: boolean;
}

const bad = (message: string): InputError => new InputError('bad-option', message);

function number(flag: string, v: string, min: number, integer: boolean): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) throw bad(`${flag} ${JSON.stringify(v)}: must be ${integer ? 'an integer' : 'a number'} of at least ${min}`);
  return n;
}

export function parseDaemonArgs(argv: readonly string[], env: NodeJS.ProcessEnv): DaemonOptions {
  const opts: DaemonOptions = { socketPath: defaultSocketPath(env), stateDir: defaultStateDir(env), stopTimeoutMs: 30_000, help: false };
  let tokenFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') { opts.help = true; continue; }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (!['--socket', '--state-dir', '--listen', '--token-file', '--memory-overcommit', '--cores', '--stop-timeout'].includes(flag)) {
      throw bad(arg.startsWith('-') ? `Unknown option ${flag} (see gasangd --help)` : `Unexpected argument ${JSON.stringify(arg)}`);
    }
    if (value === undefined || value === '') throw bad(`${flag} needs a value`);
    switch (flag) {
      case '--socket': opts.socketPath = value; break;
      case '--state-dir': opts.stateDir = value; break;
      case '--token-file': tokenFile = value; break;
      case '--memory-overcommit': opts.memoryOvercommit = number(flag, value, 0.01, false); break;
      case '--cores': opts.cores = number(flag, value, 1, true); break;
      case '--stop-timeout': opts.stopTimeoutMs = number(flag, value, 0, false) * 1000; break;
      case '--listen': {
        const m = /^(?:(.*):)?(\d+)$/.exec(value);
        if (!m || Number(m[2]) > 65535) throw bad(`--listen ${JSON.stringify(value)}: expected [HOST:]PORT`);
        opts.listen = { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port: Number(m[2]) };
        break;
      }
    }
  }
  if (tokenFile) {
    try { opts.token = readFileSync(tokenFile, 'utf8').trim(); } catch (err) { throw bad(`--token-file ${tokenFile}: ${(err as Error).message}`); }
  } else if (env.GASANGD_TOKEN) opts.token = env.GASANGD_TOKEN;
  if (opts.listen && !opts.token) throw bad('--listen needs a token (--token-file FILE or $GASANGD_TOKEN): TCP clients must authenticate');
  if (opts.token !== undefined && opts.token.length < 16) throw bad('The API token must be at least 16 characters');
  return opts;
}

async function main(argv: string[]): Promise<number> {
  const opts = parseDaemonArgs(argv, process.env);
  if (opts.help) { process.stdout.write(GASANGD_USAGE); return 0; }
  const log = jsonLogger;
  const host = new Host({
    stateDir: opts.stateDir, memoryOvercommit: opts.memoryOvercommit, cores: opts.cores,
    onLog: (vm, line) => log({ msg: 'vm', vm, line }),
  });
  const server = new ApiServer({ host, log });
  try {
    await server.listenUnix(opts.socketPath);
    if (opts.listen) await server.listenTcp(opts.listen.port, opts.listen.host, opts.token!);
  } catch (err) {
    await server.close();
    await host.close({ timeoutMs: 0 });
    throw err;
  }
  log({ msg: 'started', stateDir: opts.stateDir, vms: host.list().length, pid: process.pid });
  return new Promise<number>(resolve => {
    let stopping = false;
    const shutdown = (signal: NodeJS.Signals): void => {
      if (stopping) { log({ msg: 'second signal: exiting now', signal }); process.exit(1); }
      stopping = true;
      log({ msg: 'stopping', signal });
      void (async () => {
        await server.close();
        await host.close({ timeoutMs: opts.stopTimeoutMs });
        log({ msg: 'stopped' });
        resolve(0);
      })();
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });
}

// Run only as the program, also through npm's bin symlink (tests import parseDaemonArgs).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    (err: unknown) => {
      if (err instanceof GasangError) {
        process.stderr.write(`gasangd: ${err.message}\n`);
        process.exit(err instanceof InputError ? 2 : 1);
      }
      throw err;
    },
  );
}
