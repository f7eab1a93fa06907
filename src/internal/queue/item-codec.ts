/**
 * Queue items as bytes.
 *
 *   packItem(x) ─► plain data (numbers, strings, booleans, null, undefined, plain arrays and objects)
 *              │     ─► a compact tagged form, written into a reused buffer
 *              └─► anything else ─► encode + v8.serialize, as before (its own first byte)
 *                    between threads of one process (the `local` transport), with the id under
 *                    which its SharedArrayBuffers were deposited for the receiver (thread-handoff.ts)
 *
 * v8.serialize costs microseconds per call even for a number, more than the whole trip through a
 * shared-memory ring; the compact form costs tens of nanoseconds. It is used only where it gives
 * exactly what structured clone gives: a plain object or array seen twice (a shared reference or a
 * cycle), a sparse array, an array with named properties, a proxy, or nesting deeper than 64
 * levels all take the v8 path, which keeps them as structured clone does.
 */
import { deserialize, serialize } from "node:v8";
import { types } from "node:util";
import { claim, deposit, release } from "../thread-handoff.js";
import { decodeOrImport, encode } from "../wire/codec.js";

/** How a queue's items travel: to any process, or only between threads of this one. */
export type ItemTransport = "bytes" | "local";

/** A v8-path item: whether it needs decoding, the value, and where its shared memory waits. */
interface V8Item {
  h: boolean;
  v: unknown;
  s?: string;
}

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT = 4;
const T_DOUBLE = 5;
const T_LATIN1 = 6;
const T_UTF16 = 7;
const T_ARRAY = 8;
const T_OBJECT = 9;
/**
 * The first byte of every v8.serialize output: v8's version tag, 0xFF, on Node.js; on Bun, whose
 * `node:v8` is JavaScriptCore's serializer, the low byte of its format version. Both ends of a
 * queue run the same runtime, and no compact tag may take this value.
 */
const V8 = serialize(null)[0]!;
if (V8 <= T_OBJECT) throw new Error(`the runtime's serializer starts its output with ${V8}, a compact item tag`);

const MAX_DEPTH = 64;
/** Longer arrays go to v8, whose loop over a dense array beats the named-property check here. */
const MAX_ARRAY = 4096;

let out = Buffer.allocUnsafeSlow(4096);
let outView: DataView = new DataView(out.buffer, out.byteOffset, out.length);
let pos = 0;
/** Views of the first bytes of `out`, by length, reused for short items (most are). */
let views: Uint8Array[] = [];
/** Objects met in this item: a short list (a Set costs more to clear than most items take to pack). */
const seenList: object[] = [];
let seenSet: Set<object> | undefined;

/**
 * The bytes of `item`: a view into a buffer that the next call reuses (see `ownedBytes`), or a
 * fresh array. Throws SerializationError for a value that cannot travel. Over `local`, shared memory
 * in the item is deposited for its receiver: bytes that are never delivered go to `releaseItem`.
 */
export function packItem(item: unknown, transport: ItemTransport = "bytes"): Uint8Array {
  pos = 0;
  let compact: boolean;
  try {
    compact = writeValue(item, 0);
  } finally {
    if (seenList.length > 0) {
      seenList.length = 0;
      seenSet = undefined;
    }
  }
  if (!compact) {
    const { value, changed, shared } = encode(item, transport, "item");
    const packed: V8Item = { h: changed, v: value };
    if (shared) packed.s = deposit(shared);
    return serialize(packed);
  }
  if (pos < 64) return (views[pos] ??= new Uint8Array(out.buffer, out.byteOffset, pos));
  return new Uint8Array(out.buffer, out.byteOffset, pos);
}

/** `bytes` from `packItem`, copied if they are a view into its reused buffer. */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  return bytes.buffer === out.buffer ? Uint8Array.prototype.slice.call(bytes) : bytes;
}

/** A reused buffer to copy an item's bytes into (`inbox`), then decode them from (`unpackInbox`). */
let inboxBuffer = Buffer.allocUnsafeSlow(4096);
let inboxView = new DataView(inboxBuffer.buffer, inboxBuffer.byteOffset, inboxBuffer.length);

let input: Buffer = inboxBuffer;
let inputView: DataView = inboxView;
let at = 0;

/** The item `bytes` (from `packItem`) hold. */
export function unpackItem(bytes: Uint8Array): unknown {
  if (bytes[0] === V8) return unpackV8(bytes);
  input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  inputView = new DataView(input.buffer, input.byteOffset, input.byteLength);
  at = 0;
  return readValue();
}

/** A buffer of at least `length` bytes to copy an item into; decode it with `unpackInbox` before the next call. */
export function inbox(length: number): Uint8Array {
  if (length > inboxBuffer.length) {
    inboxBuffer = Buffer.allocUnsafeSlow(Math.max(length, inboxBuffer.length * 2));
    inboxView = new DataView(inboxBuffer.buffer, inboxBuffer.byteOffset, inboxBuffer.length);
  }
  return inboxBuffer;
}

/** The item whose `length` bytes were copied into the `inbox`. */
export function unpackInbox(length: number): unknown {
  const first = inboxBuffer[0];
  if (first === T_INT) return inboxView.getInt32(1, true);
  // from a copy: v8.deserialize makes a typed array in the item a view of the bytes it reads, and the
  // inbox holds the next item's bytes next time
  if (first === V8) return unpackV8(Uint8Array.prototype.slice.call(inboxBuffer, 0, length));
  input = inboxBuffer;
  inputView = inboxView;
  at = 0;
  return readValue();
}

/** Whether `bytes` may have deposited shared memory (then give it back with `releaseItem` if undelivered). */
export function mayHoldShared(bytes: Uint8Array): boolean {
  return bytes[0] === V8;
}

/** Gives back the shared memory deposited for an item whose bytes were not delivered. */
export function releaseItem(bytes: Uint8Array): void {
  if (bytes[0] !== V8) return;
  const { s } = deserialize(bytes) as V8Item;
  if (s !== undefined) release(s);
}

function unpackV8(bytes: Uint8Array): unknown {
  const { h, v, s } = deserialize(bytes) as V8Item;
  // a Promise while a module is imported, or while shared memory comes from the thread holding
  // it: every caller returns it from an async get
  if (s === undefined) return h ? decodeOrImport(v) : v;
  const shared = claim(s);
  return shared instanceof Promise
    ? shared.then((sabs) => decodeOrImport(v, undefined, sabs))
    : decodeOrImport(v, undefined, shared);
}

function ensure(bytes: number): void {
  if (pos + bytes <= out.length) return;
  const bigger = Buffer.allocUnsafeSlow(Math.max(pos + bytes, out.length * 2));
  out.copy(bigger, 0, 0, pos);
  out = bigger;
  outView = new DataView(out.buffer, out.byteOffset, out.length);
  views = [];
}

/** Writes `value` in the compact form; false when it must take the v8 path instead. */
function writeValue(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "number":
      if ((value | 0) === value && (value !== 0 || 1 / value > 0)) {
        ensure(5);
        out[pos] = T_INT;
        outView.setInt32(pos + 1, value, true);
        pos += 5;
      } else {
        ensure(9);
        out[pos] = T_DOUBLE;
        outView.setFloat64(pos + 1, value, true);
        pos += 9;
      }
      return true;
    case "string":
      writeString(value);
      return true;
    case "boolean":
      ensure(1);
      out[pos++] = value ? T_TRUE : T_FALSE;
      return true;
    case "undefined":
      ensure(1);
      out[pos++] = T_UNDEFINED;
      return true;
    case "object":
      if (value === null) {
        ensure(1);
        out[pos++] = T_NULL;
        return true;
      }
      if (depth >= MAX_DEPTH || seenBefore(value)) return false;
      return Array.isArray(value) ? writeArray(value, depth) : writeObject(value, depth);
    default:
      return false;
  }
}

/** Whether `object` was met before in this item (a cycle or a shared reference); notes it if not. */
function seenBefore(object: object): boolean {
  if (seenSet) {
    if (seenSet.has(object)) return true;
    seenSet.add(object);
    return false;
  }
  for (let i = 0; i < seenList.length; i++) if (seenList[i] === object) return true;
  seenList.push(object);
  if (seenList.length > 32) seenSet = new Set(seenList);
  return false;
}

function writeArray(array: unknown[], depth: number): boolean {
  const length = array.length;
  if (length > MAX_ARRAY || Object.getPrototypeOf(array) !== Array.prototype || types.isProxy(array)) return false;
  ensure(5);
  out[pos] = T_ARRAY;
  outView.setUint32(pos + 1, length, true);
  pos += 5;
  for (let i = 0; i < length; i++) {
    const item = array[i];
    if (item === undefined && !(i in array)) return false;
    if (!writeValue(item, depth + 1)) return false;
  }
  // named properties (a RegExp match's `index`, say) travel with structured clone: leave them to v8
  return Object.keys(array).length === length;
}

function writeObject(object: object, depth: number): boolean {
  const proto = Object.getPrototypeOf(object);
  if ((proto !== Object.prototype && proto !== null) || types.isProxy(object)) return false;
  const keys = Object.keys(object);
  ensure(5);
  out[pos] = T_OBJECT;
  outView.setUint32(pos + 1, keys.length, true);
  pos += 5;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    writeString(key);
    if (!writeValue((object as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

function writeString(s: string): void {
  const length = s.length;
  let latin1 = true;
  for (let i = 0; i < length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      latin1 = false;
      break;
    }
  }
  if (latin1) {
    ensure(5 + length);
    out[pos] = T_LATIN1;
    outView.setUint32(pos + 1, length, true);
    pos += 5;
    if (length <= 32) for (let i = 0; i < length; i++) out[pos + i] = s.charCodeAt(i);
    else out.write(s, pos, length, "latin1");
    pos += length;
  } else {
    // UTF-16 code units as they are: lone surrogates survive, as they do in structured clone
    ensure(5 + 2 * length);
    out[pos] = T_UTF16;
    outView.setUint32(pos + 1, length, true);
    pos += 5;
    out.write(s, pos, 2 * length, "utf16le");
    pos += 2 * length;
  }
}

function readValue(): unknown {
  const tag = input[at++];
  switch (tag) {
    case T_UNDEFINED:
      return undefined;
    case T_NULL:
      return null;
    case T_FALSE:
      return false;
    case T_TRUE:
      return true;
    case T_INT: {
      const value = inputView.getInt32(at, true);
      at += 4;
      return value;
    }
    case T_DOUBLE: {
      const value = inputView.getFloat64(at, true);
      at += 8;
      return value;
    }
    case T_LATIN1:
    case T_UTF16:
      at--;
      return readString();
    case T_ARRAY: {
      const length = inputView.getUint32(at, true);
      at += 4;
      const array: unknown[] = [];
      for (let i = 0; i < length; i++) array.push(readValue());
      return array;
    }
    case T_OBJECT: {
      const count = inputView.getUint32(at, true);
      at += 4;
      const object: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) {
        const key = readString();
        const value = readValue();
        if (key === "__proto__") {
          Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
        } else object[key] = value;
      }
      return object;
    }
    default:
      throw new Error(`corrupt queue item: unknown tag ${tag}`);
  }
}

function readString(): string {
  const tag = input[at];
  const length = inputView.getUint32(at + 1, true);
  at += 5;
  if (tag === T_LATIN1) {
    let s: string;
    if (length <= 16) {
      s = "";
      for (let i = 0; i < length; i++) s += String.fromCharCode(input[at + i]!);
    } else s = input.toString("latin1", at, at + length);
    at += length;
    return s;
  }
  const s = input.toString("utf16le", at, at + 2 * length);
  at += 2 * length;
  return s;
}
