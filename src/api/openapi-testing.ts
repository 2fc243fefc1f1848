/**
 * Test support: docs/openapi.json loaded, and a JSON Schema validator for the subset that document
 * uses (type, properties, required, additionalProperties, items, enum, const, allOf, $ref to
 * #/components/..., minimum/maximum, minLength/maxLength, pattern, minItems/maxItems,
 * maxProperties, format date-time). Any other keyword is an error, so the document cannot use
 * something this validator would silently ignore.
 */
import { readFileSync } from 'node:fs';
import { OPENAPI_FILE } from './web.js';

export type Schema = Record<string, unknown>;

export interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
}

export const loadOpenApi = (): OpenApiDoc => JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as OpenApiDoc;

/** Keywords that only describe (no effect on validity). */
const ANNOTATIONS = new Set(['description', 'default', 'example', 'examples', 'title', 'summary']);
const CHECKED = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'allOf', '$ref', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'maxProperties', 'format']);

const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

export class SchemaValidator {
  constructor(private readonly doc: OpenApiDoc) {}

  /** Follows a local reference such as #/components/schemas/VmInfo. */
  resolve<T = Schema>(ref: string): T {
    if (!ref.startsWith('#/')) throw new Error(`Only local references are supported: ${ref}`);
    let node: unknown = this.doc;
    for (const part of ref.slice(2).split('/')) {
      node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      if (node === undefined) throw new Error(`Dangling reference ${ref}`);
    }
    return node as T;
  }

  /** Problems found (empty: valid), each with the JSON path where it is. */
  validate(schema: Schema, value: unknown, path = '$'): string[] {
    const errors: string[] = [];
    for (const k of Object.keys(schema)) {
      if (!CHECKED.has(k) && !ANNOTATIONS.has(k)) throw new Error(`Schema keyword ${k} at ${path} is not supported by this validator`);
    }
    if (typeof schema.$ref === 'string') errors.push(...this.validate(this.resolve(schema.$ref), value, path));
    if (Array.isArray(schema.allOf)) for (const s of schema.allOf as Schema[]) errors.push(...this.validate(s, value, path));
    if (schema.type !== undefined && !typeMatches(schema.type as string | string[], value)) {
      errors.push(`${path}: expected ${JSON.stringify(schema.type)}, got ${describe(value)}`);
      return errors;
    }
    if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: ${value} < minimum ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: ${value} > maximum ${schema.maximum}`);
    }
    if (typeof value === 'string') {
      const len = [...value].length;
      if (typeof schema.minLength === 'number' && len < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
      if (typeof schema.maxLength === 'number' && len > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
      if (schema.format === 'date-time' && !DATE_TIME.test(value)) errors.push(`${path}: ${JSON.stringify(value)} is not a date-time`);
    }
    if (Array.isArray(value)) {
      if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${path}: fewer than ${schema.minItems} items`);
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) errors.push(`${path}: more than ${schema.maxItems} items`);
      if (schema.items) value.forEach((v, i) => errors.push(...this.validate(schema.items as Schema, v, `${path}[${i}]`)));
    }
    if (isObject(value)) {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in value)) errors.push(`${path}: ${r} is required`);
      if (typeof schema.maxProperties === 'number' && Object.keys(value).length > schema.maxProperties) errors.push(`${path}: more than ${schema.maxProperties} properties`);
      for (const [k, v] of Object.entries(value)) {
        if (props[k]) errors.push(...this.validate(props[k], v, `${path}.${k}`));
        else if (schema.additionalProperties === false) errors.push(`${path}: unknown property ${k}`);
        else if (isObject(schema.additionalProperties)) errors.push(...this.validate(schema.additionalProperties, v, `${path}.${k}`));
      }
    }
    return errors;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeMatches(type: string | string[], v: unknown): boolean {
  const types = Array.isArray(type) ? type : [type];
  return types.some(t => {
    switch (t) {
      case 'object': return isObject(v);
      case 'array': return Array.isArray(v);
      case 'string': return typeof v === 'string';
      case 'boolean': return typeof v === 'boolean';
      case 'number': return typeof v === 'number' && Number.isFinite(v);
      case 'integer': return typeof v === 'number' && Number.isInteger(v);
      case 'null': return v === null;
      default: throw new Error(`Unknown type ${t}`);
    }
  });
}

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** An operation's documented response for `status`, references followed. */
export interface DocumentedResponse {
  content?: Record<string, { schema?: Schema }>;
  headers?: Record<string, unknown>;
}

/** The documented operation matching a concrete method and path (templates filled in), or undefined. */
export function findOperation(doc: OpenApiDoc, method: string, path: string): { template: string; op: Record<string, unknown> } | undefined {
  for (const [template, item] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    const op = item[method.toLowerCase()];
    if (re.test(path) && op) return { template, op: op as Record<string, unknown> };
  }
  return undefined;
}
