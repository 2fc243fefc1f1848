/**
 * A small WebAssembly binary writer: just what gasang's code generators need (one imported memory,
 * imported host functions, a few defined functions, exports). Labels are named so generators can
 * branch without counting block depth.
 */
import { Op } from './opcodes.js';

export const enum T { I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c }
export type ValType = T;
export interface FuncType { params: ValType[]; results: ValType[] }

function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function sleb32(out: number[], v: number): void {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { out.push(b); return; }
    out.push(b | 0x80);
  }
}

function sleb64(out: number[], v: bigint): void {
  v = BigInt.asIntN(64, v);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) { out.push(b); return; }
    out.push(b | 0x80);
  }
}

const typeKey = (t: FuncType): string => `${t.params.join(',')}>${t.results.join(',')}`;

/** Body of one function. Locals are declared by name; labels are pushed/popped with the blocks. */
export class Code {
  readonly bytes: number[] = [];
  private readonly labels: (string | undefined)[] = [];
  private readonly localIndex = new Map<string, number>();
  private readonly localTypes: ValType[] = [];

  constructor(readonly type: FuncType, paramNames: string[]) {
    paramNames.forEach((n, i) => this.localIndex.set(n, i));
  }

  local(name: string, type: ValType): void {
    if (this.localIndex.has(name)) throw new Error(`local ${name} declared twice`);
    this.localIndex.set(name, this.type.params.length + this.localTypes.length);
    this.localTypes.push(type);
  }

  private idx(name: string): number {
    const i = this.localIndex.get(name);
    if (i === undefined) throw new Error(`unknown local ${name}`);
    return i;
  }

  op(...ops: number[]): this { for (const o of ops) this.bytes.push(o); return this; }
  get(name: string): this { this.bytes.push(Op.LocalGet); uleb(this.bytes, this.idx(name)); return this; }
  set(name: string): this { this.bytes.push(Op.LocalSet); uleb(this.bytes, this.idx(name)); return this; }
  tee(name: string): this { this.bytes.push(Op.LocalTee); uleb(this.bytes, this.idx(name)); return this; }
  i32(v: number): this { this.bytes.push(Op.I32Const); sleb32(this.bytes, v); return this; }
  i64(v: bigint | number): this { this.bytes.push(Op.I64Const); sleb64(this.bytes, BigInt(v)); return this; }
  f64(v: number): this {
    this.bytes.push(Op.F64Const);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  /** Memory access with natural-or-less alignment hint (0) and a constant offset. */
  mem(opcode: number, offset = 0): this { this.bytes.push(opcode, 0); uleb(this.bytes, offset); return this; }
  call(funcIndex: number): this { this.bytes.push(Op.Call); uleb(this.bytes, funcIndex); return this; }
  /** call_indirect through table 0 with the function type index `typeIndex`. */
  callIndirect(typeIndex: number): this { this.bytes.push(Op.CallIndirect); uleb(this.bytes, typeIndex); this.bytes.push(0); return this; }
  /** Tail call (the tail-call proposal, on in Node 20's V8). */
  returnCall(funcIndex: number): this { this.bytes.push(Op.ReturnCall); uleb(this.bytes, funcIndex); return this; }
  /** Tail call through table 0 (the tail-call proposal, on in Node 20's V8). */
  returnCallIndirect(typeIndex: number): this { this.bytes.push(Op.ReturnCallIndirect); uleb(this.bytes, typeIndex); this.bytes.push(0); return this; }

  block(label?: string, result?: ValType): this { this.bytes.push(Op.Block, result ?? 0x40); this.labels.push(label); return this; }
  loop(label?: string): this { this.bytes.push(Op.Loop, 0x40); this.labels.push(label); return this; }
  if(label?: string, result?: ValType): this { this.bytes.push(Op.If, result ?? 0x40); this.labels.push(label); return this; }
  else(): this { this.bytes.push(Op.Else); return this; }
  end(): this { this.bytes.push(Op.End); this.labels.pop(); return this; }

  private depth(label: string): number {
    for (let i = this.labels.length - 1; i >= 0; i--) if (this.labels[i] === label) return this.labels.length - 1 - i;
    throw new Error(`unknown label ${label}`);
  }
  br(label: string): this { this.bytes.push(Op.Br); uleb(this.bytes, this.depth(label)); return this; }
  brIf(label: string): this { this.bytes.push(Op.BrIf); uleb(this.bytes, this.depth(label)); return this; }
  brTable(targets: string[], dflt: string): this {
    this.bytes.push(Op.BrTable);
    uleb(this.bytes, targets.length);
    for (const t of targets) uleb(this.bytes, this.depth(t));
    uleb(this.bytes, this.depth(dflt));
    return this;
  }
  return(): this { this.bytes.push(Op.Return); return this; }

  /** Local declarations + body, as the code section wants them. */
  encode(): number[] {
    const out = this.localsHeader();
    for (const b of this.bytes) out.push(b);
    out.push(Op.End);
    return out;
  }

  /** The local declarations that precede the body (then `bytes`, then an `end` opcode). */
  localsHeader(): number[] {
    if (this.labels.length !== 0) throw new Error(`unclosed blocks: ${this.labels.length}`);
    const out: number[] = [];
    const groups: [number, ValType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [n, t] of groups) { uleb(out, n); out.push(t); }
    return out;
  }
}

interface ImportFn { module: string; name: string; type: number }
interface DefinedFn { type: number; code: Code; exportName?: string }

/** A module importing one memory (env.mem) and host functions; function indexes: imports first. */
export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly typeIdx = new Map<string, number>();
  private readonly imports: ImportFn[] = [];
  private readonly funcs: DefinedFn[] = [];
  private table: { module: string; name: string } | undefined;

  constructor(private readonly memoryPages: number, private readonly maxPages = memoryPages) {}

  /** Imports a funcref table as table 0 (for call_indirect). */
  importTable(module: string, name: string): void { this.table = { module, name }; }

  typeOf(t: FuncType): number {
    const k = typeKey(t);
    let i = this.typeIdx.get(k);
    if (i === undefined) { i = this.types.length; this.types.push(t); this.typeIdx.set(k, i); }
    return i;
  }

  /** Must be called before any addFunction, so import indexes stay stable. */
  importFunction(module: string, name: string, type: FuncType): number {
    if (this.funcs.length) throw new Error('imports must precede functions');
    this.imports.push({ module, name, type: this.typeOf(type) });
    return this.imports.length - 1;
  }

  /** Reserves the index of a function whose body is supplied later with define(). */
  declareFunction(type: FuncType, exportName?: string): number {
    this.funcs.push({ type: this.typeOf(type), code: undefined as unknown as Code, exportName });
    return this.imports.length + this.funcs.length - 1;
  }

  define(index: number, code: Code): void { this.funcs[index - this.imports.length].code = code; }

  encode(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, body: number[]): void => { out.push(id); uleb(out, body.length); for (const b of body) out.push(b); };
    const name = (o: number[], s: string): void => { const b = Buffer.from(s, 'utf8'); uleb(o, b.length); for (const x of b) o.push(x); };

    const types: number[] = [];
    uleb(types, this.types.length);
    for (const t of this.types) {
      types.push(0x60);
      uleb(types, t.params.length); types.push(...t.params);
      uleb(types, t.results.length); types.push(...t.results);
    }
    section(1, types);

    const imps: number[] = [];
    uleb(imps, this.imports.length + 1 + (this.table ? 1 : 0));
    name(imps, 'env'); name(imps, 'mem'); imps.push(0x02, 0x01); uleb(imps, this.memoryPages); uleb(imps, this.maxPages);
    if (this.table) { name(imps, this.table.module); name(imps, this.table.name); imps.push(0x01, 0x70, 0x00, 0x00); }
    for (const i of this.imports) { name(imps, i.module); name(imps, i.name); imps.push(0x00); uleb(imps, i.type); }
    section(2, imps);

    const fns: number[] = [];
    uleb(fns, this.funcs.length);
    for (const f of this.funcs) uleb(fns, f.type);
    section(3, fns);

    const exps: number[] = [];
    const exported = this.funcs.map((f, i) => [f, i] as const).filter(([f]) => f.exportName);
    uleb(exps, exported.length);
    for (const [f, i] of exported) { name(exps, f.exportName!); exps.push(0x00); uleb(exps, this.imports.length + i); }
    section(7, exps);

    // The code section is the bulk: its function bodies are copied once, straight into the result.
    const bodies = this.funcs.map(f => {
      if (!f.code) throw new Error('declared function never defined');
      const head = f.code.localsHeader(), size: number[] = [];
      uleb(size, head.length + f.code.bytes.length + 1);
      return { size, head, bytes: f.code.bytes };
    });
    const count: number[] = [];
    uleb(count, this.funcs.length);
    let length = count.length;
    for (const b of bodies) length += b.size.length + b.head.length + b.bytes.length + 1;
    out.push(10); uleb(out, length);
    const result = new Uint8Array(out.length + length);
    result.set(out);
    let at = out.length;
    const put = (xs: readonly number[]): void => { result.set(xs, at); at += xs.length; };
    put(count);
    for (const b of bodies) { put(b.size); put(b.head); put(b.bytes); result[at++] = Op.End; }
    return result;
  }
}
