/**
 * What crosses a process boundary, value by value.
 *
 *   encode(value) ──► plain structured-clone data ──(postMessage | v8.serialize)──► decode(value)
 *
 * Structured clone already carries objects, arrays, Map, Set, Date, BigInt, typed arrays and
 * ArrayBuffers. `encode` adds four things on top of it, in one walk:
 *   - it refuses what cannot travel (functions, symbols, sockets, promises) with a SerializationError
 *     that names the path of the value, e.g. `args[1].onDone is a function`;
 *   - library objects (Queue, Lock, Value, Connection, ...) implementing `[reduce]` become a small
 *     tagged record and arrive on the other side connected to the same underlying object;
 *   - errors keep their class, message, stack, own fields and cause, and arrive as native errors;
 *   - exported functions and instances of exported classes go by reference (module and name), as
 *     Python pickles them; the value is then wrapped with the list of references first, so that the
 *     receiver imports what it lacks (`decodeOrImport`) before the one synchronous decode walk.
 * `encode` returns `changed: false` when it found nothing of the last two kinds, so the receiver can
 * skip the decode walk entirely: the common case (numbers, strings, plain data) costs one read-only walk.
 *
 * Over the `local` transport (bytes between threads of one process), SharedArrayBuffers, and views
 * over them, are taken out of the value into `shared` and replaced by their index there: bytes cannot
 * hold shared memory, so the sender hands `shared` to the receiver another way (thread-handoff.ts).
 */
import { fileURLToPath } from "node:url";
import { ProcessError, RemoteError, SerializationError, describe, libraryErrors } from "../../errors.js";
import { type CodeRef, type ResolveHooks, codeRef, findLoaded, resolveCode } from "../reduction.js";
import { type Transport, runtime } from "../runtime.js";
import { fromElsewhere, nativeError } from "./remote-errors.js";

/** Implemented by library objects that can be passed to another process. */
export const reduce: unique symbol = Symbol.for("multiprocessing-ts.reduce") as never;

export type { Transport };

/** What a library object turns itself into for a transport; `kind` names its rebuilder. */
export interface Reduced {
  kind: string;
  state: unknown;
}

/** A library object that can cross a process boundary. */
export interface Reducible {
  [reduce](transport: Transport): Reduced;
}

const TAG = "\u0000mpts";
type Tagged =
  | { [TAG]: "h"; kind: string; state: unknown }
  | ({ [TAG]: "e" } & EncodedError)
  | { [TAG]: "b"; bytes: Uint8Array }
  | { [TAG]: "s"; i: number }
  | { [TAG]: "v"; type: string; i: number; offset: number; length: number }
  | { [TAG]: "f"; i: number }
  | { [TAG]: "c"; i: number; fields: Record<string, unknown> };

/** The whole value, when it names functions or classes: `refs` come first, so the receiver can import them. */
type WithRefs = { [TAG]: "r"; refs: CodeRef[]; v: unknown };

interface EncodedError {
  cls: string;
  chain: string[];
  name: string;
  message: string;
  stack: string | undefined;
  fields: Record<string, unknown>;
  cause?: unknown;
  hasCause: boolean;
  errors?: unknown[];
}

const rebuilders = new Map<string, (state: unknown) => unknown>();

/** Registers how a library object of `kind` is rebuilt in the receiving process. */
export function registerRebuilder(kind: string, rebuild: (state: unknown) => unknown): void {
  rebuilders.set(kind, rebuild);
}

const errorClasses = new Map<string, new (message?: string) => Error>([
  ["Error", Error],
  ["TypeError", TypeError],
  ["RangeError", RangeError],
  ["SyntaxError", SyntaxError],
  ["ReferenceError", ReferenceError],
  ["EvalError", EvalError],
  ["URIError", URIError],
  ["AggregateError", AggregateError as unknown as new (message?: string) => Error],
  ...Object.entries(libraryErrors),
]);

/**
 * Makes an error class rebuildable when it arrives from a worker. Built-in and library errors need
 * nothing; a class of your own otherwise arrives as a `RemoteError` with the original `name`.
 */
export function registerErrorClass(cls: new (...args: never[]) => Error): void {
  errorClasses.set(cls.name, cls as unknown as new (message?: string) => Error);
}

/** The result of encoding: the value to send, and whether the receiver must decode it. */
export interface Encoded {
  value: unknown;
  changed: boolean;
  /** Over the `local` transport: the shared memory the value refers to, to give to `decode`. */
  shared?: SharedArrayBuffer[];
}

/** Encodes `value` for `transport`; `path` names it in error messages (e.g. `"args"`). */
export function encode(value: unknown, transport: Transport, path: string): Encoded {
  // Most arguments and results are primitives, or arrays of them (an argument list, a chunk of a
  // map): one typeof per element says so, without the walker, its map of objects seen and its paths.
  if (isPlain(value)) return { value, changed: false };
  const walker = new Encoder(transport);
  const out = walker.walk(value, path);
  const shared = walker.shared;
  if (walker.refs)
    return { value: { [TAG]: "r", refs: walker.refs, v: out } satisfies WithRefs, changed: true, shared };
  return { value: out, changed: walker.changed, shared };
}

/** True for a primitive other than a symbol, or a plain array of those: what `encode` returns as it is. */
function isPlain(value: unknown): boolean {
  const type = typeof value;
  if (type !== "object") return type !== "function" && type !== "symbol";
  if (value === null) return true;
  if (!Array.isArray(value) || Object.getPrototypeOf(value) !== Array.prototype) return false;
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    const kind = typeof item;
    if ((kind === "object" && item !== null) || kind === "function" || kind === "symbol") return false;
  }
  return true;
}

/** Functions and classes by `refKey`: every one this process sent or rebuilt. */
const known = new Map<string, Function>();

function refKey(ref: CodeRef): string {
  return `${ref.module}\u0000${ref.name}\u0000${ref.text}`;
}

class Encoder {
  changed = false;
  refs: CodeRef[] | undefined;
  /** Over the `local` transport: the SharedArrayBuffers met, in index order. */
  shared: SharedArrayBuffer[] | undefined;
  #sharedIndex: Map<SharedArrayBuffer, number> | undefined;
  #refIndex: Map<Function, number> | undefined;
  #seen: Map<object, unknown> | undefined;
  constructor(readonly transport: Transport) {}

  walk(value: unknown, path: string): unknown {
    switch (typeof value) {
      case "function":
        this.changed = true;
        return { [TAG]: "f", i: this.#reference(value, path, "function") };
      case "symbol":
        throw new SerializationError(`${path} is a symbol, which cannot be sent to another process.`);
      case "object":
        if (value === null) return value;
        return this.#object(value, path);
      default:
        return value;
    }
  }

  #object(value: object, path: string): unknown {
    const seen = (this.#seen ??= new Map());
    if (seen.has(value)) return seen.get(value);
    const reducer = (value as Partial<Reducible>)[reduce];
    if (typeof reducer === "function") {
      const { kind, state } = reducer.call(value, this.transport);
      this.changed = true;
      const out = { [TAG]: "h", kind, state: this.walk(state, `${path} (${kind})`) };
      seen.set(value, out);
      return out;
    }
    if (value instanceof Error) {
      this.changed = true;
      const out = this.#error(value, path);
      seen.set(value, out);
      return out;
    }
    if (Array.isArray(value)) {
      seen.set(value, value);
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        const next = typeof item === "object" || typeof item === "function" || typeof item === "symbol";
        const out = next ? this.walk(item, `${path}[${i}]`) : item;
        if (out !== item && !copy) copy = value.slice(0, i);
        if (copy) copy.push(out);
      }
      if (copy) seen.set(value, copy);
      return copy ?? value;
    }
    if (ArrayBuffer.isView(value)) {
      if (this.transport === "local" && value.buffer instanceof SharedArrayBuffer) {
        // v8.serialize would copy the view's bytes: send the memory itself, and where the view is
        const length = value instanceof DataView ? value.byteLength : (value as unknown as { length: number }).length;
        const type = Buffer.isBuffer(value) ? "Buffer" : value.constructor.name;
        if (type !== "Buffer" && !viewTypes.has(type)) {
          throw new SerializationError(
            `${path} is a ${type} over a SharedArrayBuffer; send the SharedArrayBuffer itself.`,
          );
        }
        const out: Tagged = { [TAG]: "v", type, i: this.#share(value.buffer), offset: value.byteOffset, length };
        seen.set(value, out);
        return out;
      }
      // postMessage delivers a Buffer as a plain Uint8Array (v8.serialize keeps it a Buffer)
      if (this.transport === "clone" && Buffer.isBuffer(value)) {
        this.changed = true;
        const out: Tagged = { [TAG]: "b", bytes: bufferBytes(value) };
        seen.set(value, out);
        return out;
      }
      return value;
    }
    if (value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return value;
    if (value instanceof SharedArrayBuffer) {
      if (this.transport === "local") return { [TAG]: "s", i: this.#share(value) } satisfies Tagged;
      if (this.transport === "bytes") {
        throw new SerializationError(
          `${path} is a SharedArrayBuffer, which only worker threads can share. Use the "thread" start method, or a SharedArray or SharedMemory.`,
        );
      }
      return value;
    }
    if (value instanceof Map) return this.#map(value, path);
    if (value instanceof Set) return this.#set(value, path);
    this.#refuseHostObject(value, path);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null && !isBoxedPrimitive(value)) {
      const cls = (proto as { constructor?: unknown }).constructor;
      if (typeof cls === "function" && cls !== Object) return this.#instance(value, cls, path);
    }
    seen.set(value, value);
    let copy: Record<string, unknown> | undefined;
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const item = (value as Record<string, unknown>)[key];
      const next = typeof item === "object" || typeof item === "function" || typeof item === "symbol";
      const out = next ? this.walk(item, `${path}.${key}`) : item;
      if (out !== item && !copy) {
        copy = {};
        for (let j = 0; j < i; j++) copy[keys[j]!] = (value as Record<string, unknown>)[keys[j]!];
      }
      if (copy) copy[key] = out;
    }
    if (copy) seen.set(value, copy);
    return copy ?? value;
  }

  /** The index of `sab` in `shared` (the `local` transport). */
  #share(sab: SharedArrayBuffer): number {
    this.changed = true;
    const index = (this.#sharedIndex ??= new Map()).get(sab);
    if (index !== undefined) return index;
    this.shared ??= [];
    this.#sharedIndex.set(sab, this.shared.length);
    return this.shared.push(sab) - 1;
  }

  /**
   * The index in `refs` of exported function or class `fn`, as Python pickles one: by reference
   * (its module and name), never by value. Anything not exported cannot travel.
   */
  #reference(fn: Function, path: string, what: "function" | "class"): number {
    const index = (this.#refIndex ??= new Map()).get(fn);
    if (index !== undefined) return index;
    let ref: CodeRef | undefined;
    if (!Function.prototype.toString.call(fn).endsWith("{ [native code] }")) {
      try {
        ref = codeRef(fn, path);
      } catch {
        ref = undefined;
      }
    }
    if (!ref?.exported || ref.module === undefined) {
      const label = fn.name ? `${what} ${fn.name}` : `an anonymous ${what}`;
      throw new SerializationError(
        what === "function"
          ? `${path} is a function (${label}), which cannot be sent to another process: only a function ` +
              "exported from its module travels (by reference). Export it, or pass data instead."
          : `${path} is an instance of class ${fn.name || "(anonymous)"}, which cannot be sent to another ` +
              "process: only an instance of a class exported from its module travels (its fields, with the " +
              "class imported again on the other side). Export the class, or send a plain object instead.",
      );
    }
    known.set(refKey(ref), fn);
    this.refs ??= [];
    this.#refIndex.set(fn, this.refs.length);
    this.refs.push(ref);
    return this.refs.length - 1;
  }

  /** An instance of a class: its own fields, and the class by reference. */
  #instance(value: object, cls: Function, path: string): Tagged {
    this.changed = true;
    const fields: Record<string, unknown> = {};
    const out: Tagged = { [TAG]: "c", i: this.#reference(cls, path, "class"), fields };
    this.#seen!.set(value, out);
    for (const key of Object.keys(value))
      fields[key] = this.walk((value as Record<string, unknown>)[key], `${path}.${key}`);
    return out;
  }

  #map(value: Map<unknown, unknown>, path: string): unknown {
    let changed = false;
    const entries: [unknown, unknown][] = [];
    for (const [k, v] of value) {
      const kk = this.walk(k, `${path}.<key>`);
      const vv = this.walk(v, `${path}.get(${typeof k === "string" ? JSON.stringify(k) : String(k)})`);
      if (kk !== k || vv !== v) changed = true;
      entries.push([kk, vv]);
    }
    return changed ? new Map(entries) : value;
  }

  #set(value: Set<unknown>, path: string): unknown {
    let changed = false;
    const items: unknown[] = [];
    for (const v of value) {
      const vv = this.walk(v, `${path}.<item>`);
      if (vv !== v) changed = true;
      items.push(vv);
    }
    return changed ? new Set(items) : value;
  }

  #refuseHostObject(value: object, path: string): void {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) return;
    if (value instanceof Promise) {
      throw new SerializationError(`${path} is a Promise; await it and send its value instead.`);
    }
    if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
      throw new SerializationError(`${path} is ${describe(value)}, which cannot be sent to another process.`);
    }
    const v = value as { on?: unknown; emit?: unknown };
    if (typeof v.on === "function" && typeof v.emit === "function") {
      throw new SerializationError(
        `${path} is ${describe(value)} (an event emitter such as a socket or stream), which cannot be sent to another process.`,
      );
    }
  }

  #error(error: Error, path: string): Tagged {
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(error)) {
      if (key === "stack" || key === "message" || key === "cause") continue;
      try {
        fields[key] = this.walk((error as unknown as Record<string, unknown>)[key], `${path}.${key}`);
      } catch {
        // a field that cannot travel is dropped rather than losing the whole error
      }
    }
    const chain: string[] = [];
    for (let p = Object.getPrototypeOf(error); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      if (typeof p.constructor?.name === "string") chain.push(p.constructor.name);
    }
    const hasCause = "cause" in error;
    let cause: unknown;
    if (hasCause) {
      try {
        cause = this.walk(error.cause, `${path}.cause`);
      } catch {
        cause = String(error.cause);
      }
    }
    const errors =
      error instanceof AggregateError ? error.errors.map((e, i) => this.walk(e, `${path}.errors[${i}]`)) : undefined;
    return {
      [TAG]: "e",
      cls: chain[0] ?? "Error",
      chain,
      name: String(error.name),
      message: String(error.message),
      stack: typeof error.stack === "string" ? error.stack : undefined,
      fields,
      hasCause,
      cause,
      errors,
    };
  }
}

/**
 * The bytes of a Buffer, for postMessage: a small Buffer is a view into a shared 8 KiB pool, which
 * would be cloned whole, so it is copied out; a Buffer over shared memory stays shared.
 */
function bufferBytes(buffer: Buffer): Uint8Array {
  const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength;
  if (whole || buffer.buffer instanceof SharedArrayBuffer) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  return Uint8Array.prototype.slice.call(buffer);
}

function isBoxedPrimitive(value: object): boolean {
  return value instanceof String || value instanceof Number || value instanceof Boolean || value instanceof BigInt;
}

/**
 * Rebuilds what `encode` produced (call only when `changed` was true), when every function and
 * class it names is already known here; otherwise use `decodeOrImport`. `shared` is what the
 * `local` transport took out of the value (`Encoded.shared`).
 */
export function decode(value: unknown, shared: SharedArrayBuffer[] = []): unknown {
  const refs = isWithRefs(value) ? value.refs.map(knownRef) : [];
  return new Decoder(refs, shared).walk(isWithRefs(value) ? value.v : value);
}

/**
 * Rebuilds what `encode` produced: at once when every function and class it names is known here,
 * or a Promise when some module must be imported first (`hooks` watch that import in a child).
 */
export function decodeOrImport(value: unknown, hooks?: ResolveHooks, shared?: SharedArrayBuffer[]): unknown {
  const imports = importsFor(value, hooks);
  return imports ? imports.then(() => decode(value, shared)) : decode(value, shared);
}

/**
 * Imports what an encoded `value` names and this process does not know yet; undefined when
 * nothing needs importing (then `decode` works at once).
 */
export function importsFor(value: unknown, hooks?: ResolveHooks): Promise<void> | undefined {
  if (!isWithRefs(value) || value.refs.every((ref) => known.has(refKey(ref)))) return undefined;
  return Promise.all(value.refs.map((ref) => locate(ref, hooks))).then(() => {});
}

function isWithRefs(value: unknown): value is WithRefs {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[TAG] === "r";
}

function knownRef(ref: CodeRef): Function {
  const fn = known.get(refKey(ref));
  if (!fn) throw new ProcessError(`'${ref.name}' from ${ref.module} is not loaded here: decode with decodeOrImport`);
  return fn;
}

const noHooks: ResolveHooks = { importing() {} };

/** Finds the function or class `ref` names: imported, or (the entry script, in the main process) in memory. */
async function locate(ref: CodeRef, hooks: ResolveHooks | undefined): Promise<void> {
  const key = refKey(ref);
  if (known.has(key)) return;
  let fn: Function | undefined;
  if (!runtime.child && isEntry(ref.module)) fn = findLoaded(ref);
  fn ??= await resolveCode({ ...ref, source: undefined }, hooks ?? noHooks);
  known.set(key, fn);
}

function isEntry(module: string | undefined): boolean {
  const entry = process.argv[1];
  if (!module || !entry) return false;
  try {
    const path = fileURLToPath(module);
    return path === entry || path.replace(/\.[cm]?[jt]s$/, "") === entry.replace(/\.[cm]?[jt]s$/, "");
  } catch {
    return false;
  }
}

/** The views the `local` transport carries over shared memory (and Buffer), by constructor name. */
const viewTypes = new Map<string, new (buffer: SharedArrayBuffer, offset: number, length: number) => unknown>(
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    DataView,
  ].map((c) => [c.name, c as never]),
);

class Decoder {
  #seen = new Map<object, unknown>();
  constructor(
    readonly refs: Function[],
    readonly shared: SharedArrayBuffer[],
  ) {}

  walk(value: unknown): unknown {
    if (typeof value !== "object" || value === null) return value;
    if (this.#seen.has(value)) return this.#seen.get(value);
    if (Array.isArray(value)) {
      this.#seen.set(value, value);
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (typeof item === "object" && item !== null) value[i] = this.walk(item);
      }
      return value;
    }
    if (value instanceof Map) {
      const out = new Map();
      this.#seen.set(value, out);
      for (const [k, v] of value) out.set(this.walk(k), this.walk(v));
      return out;
    }
    if (value instanceof Set) {
      const out = new Set();
      this.#seen.set(value, out);
      for (const v of value) out.add(this.walk(v));
      return out;
    }
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) {
      return value;
    }
    if (value instanceof SharedArrayBuffer) return value;
    const record = value as Record<string, unknown>;
    const tag = record[TAG];
    if (tag === "h") {
      const kind = record.kind as string;
      const rebuild = rebuilders.get(kind);
      if (!rebuild) throw new ProcessError(`cannot rebuild a ${kind} in this process: its module is not loaded`);
      const out = rebuild(this.walk(record.state));
      this.#seen.set(value, out);
      return out;
    }
    if (tag === "e") {
      const out = this.#error(record as unknown as EncodedError);
      this.#seen.set(value, out);
      return out;
    }
    if (tag === "f") return this.refs[record.i as number];
    if (tag === "c") {
      const cls = this.refs[record.i as number] as { prototype: object };
      const out = Object.create(cls.prototype) as Record<string, unknown>;
      this.#seen.set(value, out);
      const fields = record.fields as Record<string, unknown>;
      for (const key of Object.keys(fields)) {
        // defined, not assigned: a setter of the class's must not run, as its constructor does not
        Object.defineProperty(out, key, {
          value: this.walk(fields[key]),
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
      return out;
    }
    if (tag === "s") return this.#sharedBuffer(record.i as number);
    if (tag === "v") {
      const buffer = this.#sharedBuffer(record.i as number);
      const [offset, length] = [record.offset as number, record.length as number];
      const type = viewTypes.get(record.type as string);
      let out: unknown;
      if (record.type === "Buffer") out = Buffer.from(buffer, offset, length);
      else if (type) out = new type(buffer, offset, length);
      else throw new ProcessError(`cannot rebuild a ${String(record.type)} over shared memory here`);
      this.#seen.set(value, out);
      return out;
    }
    if (tag === "b") {
      const bytes = record.bytes as Uint8Array;
      const out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.#seen.set(value, out);
      return out;
    }
    this.#seen.set(value, value);
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === "object" && item !== null) record[key] = this.walk(item);
    }
    return value;
  }

  #sharedBuffer(i: number): SharedArrayBuffer {
    const buffer = this.shared[i];
    if (!buffer) throw new ProcessError("shared memory this value refers to did not arrive with it");
    return buffer;
  }

  #error(e: EncodedError): Error {
    const cls = errorClasses.get(e.cls) ?? RemoteError;
    const error = nativeError(cls, e.message);
    const define = (key: string | symbol, value: unknown) =>
      Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: false });
    if (e.stack !== undefined) define("stack", e.stack);
    if (error.name !== e.name) define("name", e.name);
    for (const [key, value] of Object.entries(e.fields)) {
      Object.defineProperty(error, key, {
        value: this.walk(value),
        writable: true,
        configurable: true,
        enumerable: true,
      });
    }
    if (e.hasCause) define("cause", this.walk(e.cause));
    if (e.errors)
      define(
        "errors",
        e.errors.map((x) => this.walk(x)),
      );
    if (cls === RemoteError) define("remoteClass", e.cls);
    define(fromElsewhere, true);
    return error;
  }
}

/** Encodes an error on its own (for results that failed); always needs decoding. */
export function encodeError(error: unknown, transport: Transport): unknown {
  if (error instanceof Error) return encode(error, transport, "error").value;
  return encode(new RemoteError(`a non-Error value was thrown: ${safeString(error)}`), transport, "error").value;
}

function safeString(value: unknown): string {
  try {
    return typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}
