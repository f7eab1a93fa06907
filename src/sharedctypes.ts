/**
 * `Value`, `SharedArray`, `RawValue` and `RawArray`: numbers in shared memory, with Python's
 * typecodes. A SharedArray is a real typed array over shared memory (so it indexes at typed-array
 * speed) with `getLock()` added; a Value reads and writes under its lock (an RLock by default).
 */
import { inspect } from "node:util";
import { ProcessError } from "./errors.js";
import { checkOptionNames, optionNames } from "./internal/validate.js";
import { Arrival } from "./internal/arrival.js";
import { type Reduced, type Transport, reduce, registerRebuilder } from "./internal/wire/codec.js";
import { memoryOf, resolveMethod } from "./backends/registry.js";
import type { StartMethod } from "./internal/runtime.js";
import { type Remote, needsFallback, remoteCreate, remoteSync } from "./internal/manager/fallback.js";
import { type Block, type BlockRef, allocate, attach, checkTransport } from "./internal/shm/shared-memory.js";
import { type Lock, RLock, SemLock } from "./synchronize.js";
import {
  type Scalar,
  type TypedArray,
  type Typecode,
  checkScalar,
  checkTypecode,
  classes,
} from "./internal/shm/typecodes.js";

export type { Scalar, Typecode };

/** Options of Value and SharedArray. */
export interface SharedOptions {
  /** true (default): a new RLock; false: none (like RawValue); or a Lock to use. */
  lock?: boolean | Lock;
  /** The start method of the processes that will share it (default: the global one, see `setStartMethod`). */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
}

const sharedOptionNames = optionNames<SharedOptions>({ lock: true, context: true });

/** The start method `options` of the constructor `where` ask for, once their names are checked. */
function methodOf(options: SharedOptions, where: string): StartMethod {
  checkOptionNames(options, sharedOptionNames, where);
  return resolveMethod(options, "primitives", where.replace(/^new |\(\)$/g, ""));
}

function lockFor(option: boolean | Lock | undefined, method: StartMethod): Lock | undefined {
  if (option === undefined || option === true) return new RLock({ context: method });
  if (option === false) return undefined;
  if (option instanceof SemLock) return option as Lock;
  throw new TypeError("options.lock must be true, false, or a Lock");
}

interface ValueState {
  typecode: Typecode;
  ref?: BlockRef;
  remote?: Remote;
  lock: Lock | null;
}

/** What a Value arriving from another process is made of. */
const valueArrival = new Arrival<{ lock: Lock | undefined; remote: Remote | undefined; block: Block | undefined }>();

/**
 * One number in shared memory, like Python's `multiprocessing.Value`. With a lock (the default),
 * each read and write of `.value` holds it; `counter.value += 1` is still two steps, so guard it
 * with `getLock()` or another lock.
 */
export class Value<T extends Typecode = Typecode> {
  readonly #typecode: T;
  readonly #block: Block | undefined;
  readonly #cell!: TypedArray;
  readonly #lock: Lock | undefined;
  readonly #remote: Remote | undefined;

  /**
   * @param typecode - Python's typecode: `"i"` int32, `"d"` float64, `"q"` int64 (bigint), ...
   * @param init - the first value (default 0).
   * @param options - the lock and the start method.
   */
  constructor(typecode: T, init?: Scalar<T>, options: SharedOptions = {}) {
    checkTypecode(typecode);
    this.#typecode = typecode;
    const arrived = valueArrival.take();
    if (arrived) {
      this.#lock = arrived.lock;
      this.#remote = arrived.remote;
      this.#block = arrived.block;
    } else {
      if (init !== undefined) checkScalar(typecode, init, "init");
      const method = methodOf(options, "new Value()");
      this.#lock = lockFor(options.lock, method);
      if (needsFallback(memoryOf(method))) this.#remote = remoteCreate("Value", [typecode, init]);
      else this.#block = allocate(8, memoryOf(method));
    }
    if (!this.#block) return;
    this.#cell = new classes[typecode](this.#block.buffer, this.#block.offset, 1);
    if (!arrived && init !== undefined) this.#cell[0] = init as never;
  }

  #read(): Scalar<T> {
    return (this.#remote ? remoteSync(this.#remote, "get") : this.#cell[0]) as Scalar<T>;
  }

  #write(value: Scalar<T>): void {
    if (this.#remote) remoteSync(this.#remote, "set", value);
    else this.#cell[0] = value as never;
  }

  /** The typecode. */
  get typecode(): T {
    return this.#typecode;
  }

  /** The number (bigint for 64-bit typecodes). */
  get value(): Scalar<T> {
    if (!this.#lock) return this.#read();
    this.#lock.acquireSync();
    try {
      return this.#read();
    } finally {
      this.#lock.release();
    }
  }

  /** Writes the number, holding the lock if there is one; a number of the wrong type throws a TypeError. */
  set value(value: Scalar<T>) {
    checkScalar(this.#typecode, value, "value");
    if (!this.#lock) {
      this.#write(value);
      return;
    }
    this.#lock.acquireSync();
    try {
      this.#write(value);
    } finally {
      this.#lock.release();
    }
  }

  /** The lock guarding this value; throws for a value made with `lock: false`. */
  getLock(): Lock {
    if (!this.#lock) throw new ProcessError("this value has no lock (it was made with lock: false)");
    return this.#lock;
  }

  /** @internal Sends the value to another process, where it is the same shared number (and the same lock). */
  [reduce](transport: Transport): Reduced {
    if (this.#block) checkTransport(this.#block.ref, transport, "Value");
    const state: ValueState = {
      typecode: this.#typecode,
      ref: this.#block?.ref,
      remote: this.#remote,
      lock: this.#lock ?? null,
    };
    return { kind: "mpts.Value", state };
  }

  /** Shows the typecode, the number, and `raw` for a value without a lock. */
  [inspect.custom](): string {
    return `Value<${this.#typecode}> { value: ${String(this.#read())}${this.#lock ? "" : ", raw"} }`;
  }
}

registerRebuilder("mpts.Value", (state) => {
  const s = state as ValueState;
  const made = { lock: s.lock ?? undefined, remote: s.remote, block: s.ref && attach(s.ref) };
  return valueArrival.with(made, () => new Value(s.typecode));
});

/** A Value without a lock, like Python's `RawValue`. */
export function RawValue<T extends Typecode>(typecode: T, init?: Scalar<T>, options: Omit<SharedOptions, "lock"> = {}) {
  return new Value(typecode, init, { ...options, lock: false });
}

/** A typed array over shared memory with Python's `Array` extras. */
export type SharedArray<T extends Typecode = Typecode> = TypedArrayFor<T> & {
  /** The lock for this array; index access itself is not locked (hold it around read-modify-write). */
  getLock(): Lock;
  /** The typecode it was made with. */
  readonly typecode: T;
};

type TypedArrayFor<T extends Typecode> = T extends "b"
  ? Int8Array
  : T extends "B"
    ? Uint8Array
    : T extends "h"
      ? Int16Array
      : T extends "H"
        ? Uint16Array
        : T extends "i"
          ? Int32Array
          : T extends "I"
            ? Uint32Array
            : T extends "l" | "q"
              ? BigInt64Array
              : T extends "L" | "Q"
                ? BigUint64Array
                : T extends "f"
                  ? Float32Array
                  : Float64Array;

interface ArrayState {
  typecode: Typecode;
  length: number;
  ref?: BlockRef;
  remote?: Remote;
  lock: Lock | null;
}

const arrays = new WeakMap<object, { typecode: Typecode; block?: Block; remote?: Remote; lock: Lock | undefined }>();
const prototypes = new Map<Typecode, object>();

function prototypeFor(typecode: Typecode): object {
  let proto = prototypes.get(typecode);
  if (!proto) {
    proto = Object.create(classes[typecode].prototype, {
      getLock: {
        value(this: object) {
          const lock = arrays.get(this)?.lock;
          if (!lock) throw new ProcessError("this array has no lock (it was made with lock: false)");
          return lock;
        },
      },
      typecode: { get: () => typecode },
      [reduce]: {
        value(this: TypedArray, transport: Transport): Reduced {
          const info = arrays.get(this)!;
          if (info.block) checkTransport(info.block.ref, transport, "SharedArray");
          const state: ArrayState = {
            typecode,
            length: this.length,
            ref: info.block?.ref,
            remote: info.remote,
            lock: info.lock ?? null,
          };
          return { kind: "mpts.SharedArray", state };
        },
      },
      [inspect.custom]: {
        value(this: TypedArray) {
          return `SharedArray<${typecode}>(${this.length}) [ ${Array.from(this.slice(0, 10) as ArrayLike<unknown>, String).join(", ")}${this.length > 10 ? ", …" : ""} ]`;
        },
      },
    });
    prototypes.set(typecode, proto as object);
  }
  return proto as object;
}

function makeArray(typecode: Typecode, length: number, block: Block, lock: Lock | undefined): TypedArray {
  const array = new classes[typecode](block.buffer, block.offset, length);
  Object.setPrototypeOf(array, prototypeFor(typecode));
  arrays.set(array, { typecode, block, lock });
  return array;
}

/**
 * A fixed-size array of numbers in shared memory, like Python's `multiprocessing.Array`:
 * `new SharedArray("i", 10)` or `new SharedArray("d", [1.5, 2.5])`. It is a real typed array
 * (`arr[i]`, `arr.length`, iteration) with `getLock()`.
 */
export const SharedArray = function SharedArray(
  this: unknown,
  typecode: Typecode,
  sizeOrItems: number | Iterable<number | bigint>,
  options: SharedOptions = {},
) {
  if (!new.target) throw new TypeError("SharedArray is a constructor: use new SharedArray(...)");
  checkTypecode(typecode);
  const items = typeof sizeOrItems === "number" ? undefined : Array.from(sizeOrItems);
  const length = items ? items.length : (sizeOrItems as number);
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`size must be a whole number >= 0 (got ${String(sizeOrItems)})`);
  }
  if (items) for (let i = 0; i < items.length; i++) checkScalar(typecode, items[i], `items[${i}]`);
  const method = methodOf(options, "new SharedArray()");
  const memory = memoryOf(method);
  if (needsFallback(memory)) {
    const remote = remoteCreate("Array", [typecode, items ?? length]);
    return remoteArray(typecode, length, remote, lockFor(options.lock, method));
  }
  const block = allocate(Math.max(8, length * classes[typecode].BYTES_PER_ELEMENT), memory);
  const array = makeArray(typecode, length, block, lockFor(options.lock, method));
  if (items) array.set(items as never);
  return array;
} as unknown as {
  /** Makes an array of `sizeOrItems` zeros, or of those items; `options` as for {@link Value}. */
  new <T extends Typecode>(
    typecode: T,
    sizeOrItems: number | Iterable<Scalar<T>>,
    options?: SharedOptions,
  ): SharedArray<T>;
  /** True for a SharedArray (a typed array alone is not one). */
  [Symbol.hasInstance](value: unknown): boolean;
};
Object.defineProperty(SharedArray, Symbol.hasInstance, { value: (value: unknown) => arrays.has(value as object) });

registerRebuilder("mpts.SharedArray", (state) => {
  const s = state as ArrayState;
  if (s.remote) return remoteArray(s.typecode, s.length, s.remote, s.lock ?? undefined);
  return makeArray(s.typecode, s.length, attach(s.ref!), s.lock ?? undefined);
});

/**
 * A SharedArray held by an agent server (no shared memory): indexing, `length`, iteration and `getLock()`
 * work, each access being a call; typed-array methods (`set`, `fill`, `subarray`...) do not.
 */
function remoteArray(typecode: Typecode, length: number, remote: Remote, lock: Lock | undefined): TypedArray {
  const index = (key: string | symbol) => (typeof key === "string" && /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1);
  const target = Object.create(prototypeFor(typecode), {
    length: { value: length },
    [Symbol.iterator]: { value: () => (remoteSync(remote, "toArray") as unknown[])[Symbol.iterator]() },
    [inspect.custom]: { value: () => `SharedArray<${typecode}>(${length}) { held by an agent server }` },
  });
  const proxy = new Proxy(target, {
    get(t, key) {
      const i = index(key);
      if (i < 0) return Reflect.get(t, key, proxy);
      return i < length ? remoteSync(remote, "get", i) : undefined;
    },
    set(t, key, value) {
      const i = index(key);
      if (i < 0) return Reflect.set(t, key, value);
      if (i >= length) return true;
      checkScalar(typecode, value, `array[${i}]`);
      remoteSync(remote, "set", i, value);
      return true;
    },
    has(t, key) {
      const i = index(key);
      return i < 0 ? Reflect.has(t, key) : i < length;
    },
  });
  arrays.set(proxy, { typecode, remote, lock });
  return proxy as TypedArray;
}

/** A SharedArray without a lock, like Python's `RawArray`. */
export function RawArray<T extends Typecode>(
  typecode: T,
  sizeOrItems: number | Iterable<Scalar<T>>,
  options: Omit<SharedOptions, "lock"> = {},
): SharedArray<T> {
  return new SharedArray(typecode, sizeOrItems, { ...options, lock: false });
}
