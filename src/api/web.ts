/**
 * What the daemon serves besides the API: the web page (its HTML here, its script compiled from
 * web/app.ts), xterm.js from node_modules, and docs/openapi.json. Files are read on first use and
 * kept.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The package root (this file runs from dist/src/api). */
const root = join(here, '..', '..', '..');

export const OPENAPI_FILE = join(root, 'docs', 'openapi.json');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gasang</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/xterm.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; color: #1d2125; background: #f6f7f8; }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em; background: #1d2125; color: #eee; }
  header h1 { font-size: 1.2em; margin: 0; }
  main { padding: 1em 1.2em; }
  table { border-collapse: collapse; background: #fff; min-width: 40em; }
  th, td { text-align: left; padding: .35em .8em; border-bottom: 1px solid #e3e5e8; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.network { white-space: pre; font-size: 0.85em; }
  tr.selected { background: #eef4ff; }
  .state-running { color: #137333; } .state-paused { color: #b06000; } .state-crashed { color: #c5221f; }
  button { margin-right: .3em; }
  #console-panel { margin-top: 1.2em; }
  #console-panel h2 { font-size: 1em; font-weight: 600; }
  #terminal { display: inline-block; }
  #message { color: #c5221f; min-height: 1.2em; }
</style>
<script type="importmap">{ "imports": { "@xterm/xterm": "/ui/xterm.mjs" } }</script>
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<header><h1>gasang</h1><span id="host"></span></header>
<main>
  <p id="message" role="alert"></p>
  <table id="vms">
    <thead><tr><th>Name</th><th>State</th><th>CPUs</th><th>CPU use</th><th>Memory</th><th>Network</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="empty" hidden>No VMs yet: <code>gasang vm create --name NAME</code>.</p>
  <section id="console-panel" hidden>
    <h2>Console of <span id="console-name"></span> <small id="console-mode"></small></h2>
    <div id="terminal"></div>
  </section>
</main>
</body>
</html>
`;

export class WebAssets {
  private cache = new Map<string, Buffer>();

  private file(path: string): Buffer {
    let b = this.cache.get(path);
    if (!b) { b = readFileSync(path); this.cache.set(path, b); }
    return b;
  }

  private xtermDir(): string {
    return dirname(dirname(createRequire(import.meta.url).resolve('@xterm/xterm')));
  }

  page(): string { return PAGE; }
  appScript(): Buffer { return this.file(join(here, 'web', 'app.js')); }
  xtermScript(): Buffer { return this.file(join(this.xtermDir(), 'lib', 'xterm.mjs')); }
  xtermStyle(): Buffer { return this.file(join(this.xtermDir(), 'css', 'xterm.css')); }
  openapi(): Buffer { return this.file(OPENAPI_FILE); }
}
