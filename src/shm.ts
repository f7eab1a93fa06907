/**
 * `SharedMemory` and `ShareableList`: Python's `multiprocessing.shared_memory`. A segment is POSIX
 * shared memory (`/dev/shm/<name>` on Linux) mapped by the native addon, so any process or thread
 * that knows its name can map the same bytes, whatever the start method.
 *
 *   new SharedMemory({ create: true, size })  ── shm_open(O_CREAT|O_EXCL) + mmap ──► buf
 *   [reduce] ──► { name, size } ──► new SharedMemory({ name }) in the receiver ── shm_open + mmap ──► buf
 *
 * Lifetime: `close()` drops this object's mapping; `unlink()` removes the name (mappings stay valid
 * until they are released). As Python's resource tracker does, the creating process (or thread)
 * unlinks a segment it never unlinked when it exits normally, so nothing is left in /dev/shm. A
 * creator killed by a signal, or a "thread" child stopped by `terminate()`, runs no exit hook and
 * leaves its segments behind: call `unlink()` yourself when that can happen.
 *
 * Without the addon there is no way to map a segment: Node.js has no `mmap`, files read through `fs`
 * are copies, and a SharedArrayBuffer cannot be found by name from another thread. So every
 * constructor then throws a ProcessError saying why the addon is missing.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { ClosedError, FileExistsError, FileNotFoundError, ProcessError, describe } from "./errors.js";
import { checkOptionNames, optionNames } from "./internal/validate.js";
import { type Reduced, reduce, registerRebuilder } from "./internal/wire/codec.js";
import { type NativeShm, loadNative, nativeUnavailableReason } from "./internal/shm/native.js";

/** Options of `new SharedMemory(...)`, as Python's `SharedMemory(name, create, size, track=...)`. */
export interface SharedMemoryOptions {
  /** The segment's name, without a leading slash. Required to attach; generated (`psm_<hex>`) when creating without one. */
  name?: string;
  /** Create a new segment (true) or attach to an existing one (false, the default). */
  create?: boolean;
  /** Bytes to create: a whole number > 0, required with `create: true`. Ignored when attaching. */
  size?: number;
  /**
   * Unlink the segment when the creating process exits, unless it was unlinked before (default
   * true). Only a normal exit runs this: a creator killed by a signal leaves the segment behind.
   * With `false` the segment outlives its creator until someone calls `unlink()`.
   */
  track?: boolean;
}

const sharedMemoryOptionNames = optionNames<SharedMemoryOptions>({ name: true, create: true, size: true, track: true });

/** Names created here and not yet unlinked; the exit hook unlinks them. */
const tracked = new Set<string>();
let exitHookInstalled = false;

function native(): NativeShm {
  const addon = loadNative();
  if (!addon) {
    throw new ProcessError(
      `SharedMemory needs the native addon, which is ${nativeUnavailableReason()}. ` +
        "Reinstall the package where a C++ compiler is available; for memory shared between threads only, use a SharedArray.",
    );
  }
  return addon;
}

function track(name: string): void {
  tracked.add(name);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' runs in the main thread and, in a worker thread, when that thread exits on its own.
  process.on("exit", () => {
    const addon = loadNative();
    for (const n of tracked) addon?.unlink(`/${n}`);
    tracked.clear();
  });
}

function checkName(value: unknown): string {
  if (typeof value !== "string") throw new TypeError(`options.name must be a string (got ${describe(value)})`);
  const name = value.startsWith("/") ? value.slice(1) : value;
  if (name === "" || name.includes("/") || name.includes("\0") || Buffer.byteLength(name) > 250) {
    throw new TypeError(
      `options.name must be a non-empty name of at most 250 bytes without "/" or NUL (got ${describe(value)})`,
    );
  }
  return name;
}

function openError(error: unknown, name: string): Error {
  const code = (error as { code?: unknown })?.code;
  if (code === "EEXIST") {
    return new FileExistsError(
      `a shared memory segment named "${name}" already exists: attach to it with new SharedMemory("${name}"), or choose another name`,
      { cause: error },
    );
  }
  if (code === "ENOENT") {
    return new FileNotFoundError(
      `no shared memory segment is named "${name}": it was never created, or it was unlinked (its creator unlinks it when it exits)`,
      { cause: error },
    );
  }
  return new ProcessError(`cannot open shared memory segment "${name}": ${(error as Error)?.message}`, {
    cause: error,
  });
}

/**
 * A block of memory that any process or thread can map by name, like Python's
 * `multiprocessing.shared_memory.SharedMemory`.
 *
 * ```ts
 * const shm = new SharedMemory({ create: true, size: 1024 });
 * shm.buf[0] = 42;                       // a Uint8Array over the segment
 * const other = new SharedMemory(shm.name); // in any process: the same bytes
 * ```
 *
 * Passing a SharedMemory to another process (as a Process argument, through a Queue, ...) sends its
 * name; the receiver attaches to the segment, which must not have been unlinked yet. Reads and
 * writes are not synchronized: guard them with a Lock when several processes write.
 */
export class SharedMemory {
  readonly #name: string;
  readonly #size: number;
  #buf: Uint8Array | undefined;

  /**
   * Creates a segment (`{ create: true, size }`, optionally with a `name`) or attaches to one
   * (`{ name }`, or just the name). Throws FileExistsError when creating a name that exists,
   * FileNotFoundError when attaching a name that does not, RangeError for a missing or bad `size`
   * when creating, TypeError for a missing name when attaching or an option of the wrong type, and
   * ProcessError when the native addon is unavailable.
   */
  constructor(options: SharedMemoryOptions | string) {
    if (typeof options === "string") options = { name: options };
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `options must be a segment name or an object such as { create: true, size: 1024 } (got ${describe(options)})`,
      );
    }
    checkOptionNames(options, sharedMemoryOptionNames, "new SharedMemory()");
    const { create = false, size, track: trackIt = true } = options;
    if (typeof create !== "boolean") throw new TypeError(`options.create must be a boolean (got ${describe(create)})`);
    if (typeof trackIt !== "boolean") throw new TypeError(`options.track must be a boolean (got ${describe(trackIt)})`);
    if (size !== undefined && typeof size !== "number") {
      throw new TypeError(`options.size must be a number of bytes (got ${describe(size)})`);
    }
    let name = options.name === undefined ? undefined : checkName(options.name);
    const addon = native();
    let buffer: ArrayBuffer;
    if (create) {
      if (size === undefined || !Number.isSafeInteger(size) || size <= 0) {
        throw new RangeError(`options.size must be a whole number of bytes > 0 when creating (got ${String(size)})`);
      }
      for (;;) {
        const chosen = name ?? `psm_${randomBytes(8).toString("hex")}`;
        try {
          buffer = addon.open(`/${chosen}`, size, true);
          name = chosen;
          break;
        } catch (error) {
          // a generated name that happens to exist: pick another, as Python does
          if (name === undefined && (error as { code?: unknown })?.code === "EEXIST") continue;
          throw openError(error, chosen);
        }
      }
      if (trackIt) track(name);
    } else {
      if (name === undefined) {
        throw new TypeError(
          "options.name is required to attach to a segment; to make a new one pass { create: true, size }",
        );
      }
      try {
        // size 0: the addon maps the segment's real size
        buffer = addon.open(`/${name}`, 0, false);
      } catch (error) {
        throw openError(error, name);
      }
    }
    this.#name = name;
    this.#size = buffer.byteLength;
    this.#buf = new Uint8Array(buffer);
  }

  /** The segment's name, without a leading slash: give it to `new SharedMemory(name)` to attach. */
  get name(): string {
    return this.#name;
  }

  /** The segment's size in bytes (when attaching, the size it was created with). */
  get size(): number {
    return this.#size;
  }

  /** The bytes of the segment, shared with every process that maps it. Throws ClosedError after `close()`. */
  get buf(): Uint8Array {
    if (!this.#buf) {
      throw new ClosedError(
        `shared memory segment "${this.#name}" was closed in this process: attach again with new SharedMemory("${this.#name}")`,
      );
    }
    return this.#buf;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#buf === undefined;
  }

  /**
   * Releases this object's mapping (idempotent); `buf` then throws. The segment itself stays until
   * unlinked, and other processes keep their mappings. Views already taken from `buf` keep the
   * memory mapped until they are garbage collected.
   */
  close(): void {
    this.#buf = undefined;
  }

  /**
   * Removes the segment's name, so no one can attach to it any more; existing mappings, here and in
   * other processes, stay valid. Call it once, from any process. Throws FileNotFoundError if the
   * name is already gone.
   */
  unlink(): void {
    tracked.delete(this.#name);
    if (!native().unlink(`/${this.#name}`)) {
      throw new FileNotFoundError(`no shared memory segment is named "${this.#name}": it was already unlinked`);
    }
  }

  /** Same as `close()`, for `using shm = new SharedMemory(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Sends the segment by name; the receiver attaches to it. */
  [reduce](): Reduced {
    return { kind: "mpts.SharedMemory", state: { name: this.#name, size: this.#size } };
  }

  /** Shows name, size and whether it is closed. */
  [inspect.custom](): string {
    return `SharedMemory { name: '${this.#name}', size: ${this.#size}${this.#buf ? "" : ", closed"} }`;
  }
}

registerRebuilder("mpts.SharedMemory", (state) => new SharedMemory({ name: (state as { name: string }).name }));

// ---------------------------------------------------------------------------------------------------
// ShareableList
//
// Segment layout (little-endian), readable by any attacher without being told the format:
//
//   0   u32 MAGIC ("MPSL")       4   u32 count
//   8   count × 16-byte slot descriptors: u32 offset, u32 capacity, u32 length, u8 kind, 3 pad
//   …   data, 8-byte aligned: each slot `capacity` bytes at `offset` (8 for numbers, bool, null)
//
// `length` is the byte length of a str or bytes value (so, unlike Python, trailing NUL bytes survive).
// A slot keeps its capacity for life; its kind changes with the value assigned.

/** The values a ShareableList holds: Python's int, float, bool, str, bytes and None. */
export type Shareable = number | bigint | boolean | string | Uint8Array | null;

/** Options of `new ShareableList(...)`. */
export interface ShareableListOptions {
  /** The segment's name: generated when creating without one; required to attach. */
  name?: string;
}

const shareableListOptionNames = optionNames<ShareableListOptions>({ name: true });

const MAGIC = 0x4c53504d;
const HEADER = 8;
const SLOT = 16;

const Kind = { Null: 0, Int: 1, Float: 2, Bool: 3, BigInt: 4, Str: 5, Bytes: 6 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** A value ready to write: its kind and, for str and bytes, its bytes. */
interface Encoded {
  kind: Kind;
  value: Shareable;
  bytes?: Uint8Array;
}

function encodeItem(value: unknown, what: string): Encoded {
  switch (typeof value) {
    case "number":
      return { kind: Number.isSafeInteger(value) && !Object.is(value, -0) ? Kind.Int : Kind.Float, value };
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new RangeError(`${what} must fit in 64 bits (got ${value}n)`);
      }
      return { kind: Kind.BigInt, value };
    case "boolean":
      return { kind: Kind.Bool, value };
    case "string":
      return { kind: Kind.Str, value, bytes: Buffer.from(value, "utf8") };
    case "object":
      if (value === null) return { kind: Kind.Null, value };
      if (value instanceof Uint8Array) return { kind: Kind.Bytes, value, bytes: value };
  }
  throw new TypeError(`${what} must be a number, bigint, boolean, string, Uint8Array or null (got ${describe(value)})`);
}

const formats: Record<Kind, string> = {
  [Kind.Null]: "x",
  [Kind.Int]: "q",
  [Kind.Float]: "d",
  [Kind.Bool]: "?",
  [Kind.BigInt]: "q",
  [Kind.Str]: "s",
  [Kind.Bytes]: "s",
};

function sameItem(a: Shareable, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }
  return a === b;
}

/**
 * A fixed-length list of numbers, bigints, booleans, strings, byte arrays and nulls stored in one
 * SharedMemory segment, like Python's `multiprocessing.shared_memory.ShareableList`.
 *
 * ```ts
 * const list = new ShareableList([1, 2.5, "hello", null]);
 * list.set(-1, true);
 * const same = ShareableList.attach(list.shm.name); // in any process
 * ```
 *
 * Each slot is sized when the list is created: 8 bytes for a number, bigint, boolean or null, and
 * the UTF-8 (or byte) length of a string or Uint8Array rounded up to 8. A slot can later hold any
 * value that fits; a longer string or Uint8Array throws a RangeError. Integers that are safe
 * integers are stored as int64 (`"q"`), other numbers as float64 (`"d"`), bigints as int64. Reads
 * and writes are not synchronized: guard them with a Lock when several processes write. It travels
 * to other processes by name, like its SharedMemory.
 */
export class ShareableList<T extends Shareable = Shareable> implements Iterable<T> {
  readonly #shm: SharedMemory;
  readonly #length: number;
  #view: DataView | undefined;

  /**
   * `new ShareableList(sequence, { name? })` creates a list holding `sequence`'s items;
   * `new ShareableList(null, { name })` attaches to an existing one (see `ShareableList.attach`).
   * Throws TypeError for an item of another type, RangeError for a bigint outside 64 bits, and the
   * errors of `new SharedMemory` (FileExistsError, FileNotFoundError, ...).
   */
  constructor(sequence: Iterable<T> | null | undefined, options: ShareableListOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`options must be an object such as { name: "my-list" } (got ${describe(options)})`);
    }
    checkOptionNames(options, shareableListOptionNames, "new ShareableList()");
    if (sequence === null || sequence === undefined) {
      if (options.name === undefined) {
        throw new TypeError("options.name is required to attach to a ShareableList; to make one pass a sequence");
      }
      this.#shm = new SharedMemory({ name: options.name });
      const view = this.#dataView();
      if (this.#shm.size < HEADER || view.getUint32(0, true) !== MAGIC) {
        throw new ProcessError(`shared memory segment "${this.#shm.name}" does not hold a ShareableList`);
      }
      this.#length = view.getUint32(4, true);
      return;
    }
    if (typeof (sequence as Partial<Iterable<T>>)[Symbol.iterator] !== "function") {
      throw new TypeError(`sequence must be an iterable of items, or null to attach (got ${describe(sequence)})`);
    }
    const items = Array.from(sequence, (item, i) => encodeItem(item, `sequence[${i}]`));
    const capacities = items.map((item) => (item.bytes ? Math.max(8, align8(item.bytes.length)) : 8));
    const dataStart = align8(HEADER + SLOT * items.length);
    const size = dataStart + capacities.reduce((a, b) => a + b, 0);
    this.#shm = new SharedMemory({ ...(options.name === undefined ? {} : { name: options.name }), create: true, size });
    this.#length = items.length;
    const view = this.#dataView();
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, items.length, true);
    let offset = dataStart;
    for (let i = 0; i < items.length; i++) {
      view.setUint32(HEADER + SLOT * i, offset, true);
      view.setUint32(HEADER + SLOT * i + 4, capacities[i]!, true);
      this.#write(i, items[i]!);
      offset += capacities[i]!;
    }
  }

  /** Attaches to the ShareableList in segment `name`, made by this or another process. */
  static attach<T extends Shareable = Shareable>(name: string): ShareableList<T> {
    return new ShareableList<T>(null, { name });
  }

  /** The SharedMemory holding the list: `list.shm.close()`, `list.shm.unlink()`. */
  get shm(): SharedMemory {
    return this.#shm;
  }

  /** The number of items, fixed at creation. */
  get length(): number {
    return this.#length;
  }

  /**
   * The items' current storage as a Python struct format, one code per slot separated by spaces:
   * `q` (int64: safe integers and bigints), `d` (float64), `?` (bool), `x` (null), `<n>s` (a string
   * or bytes slot of n bytes), e.g. `"q d 8s"`.
   */
  get format(): string {
    const view = this.#dataView();
    const codes: string[] = [];
    for (let i = 0; i < this.#length; i++) {
      const kind = this.#kind(view, i);
      codes.push(kind === Kind.Str || kind === Kind.Bytes ? `${this.#capacity(view, i)}s` : formats[kind]);
    }
    return codes.join(" ");
  }

  /** The item at `index`; a negative index counts from the end. Strings and bytes are copies. */
  get(index: number): T {
    const i = this.#index(index);
    const view = this.#dataView();
    const offset = view.getUint32(HEADER + SLOT * i, true);
    const kind = this.#kind(view, i);
    switch (kind) {
      case Kind.Null:
        return null as T;
      case Kind.Int:
        return Number(view.getBigInt64(offset, true)) as T;
      case Kind.Float:
        return view.getFloat64(offset, true) as T;
      case Kind.Bool:
        return (view.getUint8(offset) !== 0) as T;
      case Kind.BigInt:
        return view.getBigInt64(offset, true) as T;
      case Kind.Str:
      case Kind.Bytes: {
        const length = view.getUint32(HEADER + SLOT * i + 8, true);
        const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, length);
        return (kind === Kind.Str ? Buffer.from(bytes).toString("utf8") : bytes.slice()) as T;
      }
    }
  }

  /**
   * Stores `value` at `index` (negative counts from the end). Throws RangeError when a string or
   * Uint8Array is longer than the slot's storage, TypeError for a value of another type.
   */
  set(index: number, value: T): void {
    const i = this.#index(index);
    this.#write(i, encodeItem(value, "value"));
  }

  /** How many items equal `value` (`===`; Uint8Arrays by content). */
  count(value: T): number {
    let n = 0;
    for (const item of this) if (sameItem(item, value)) n++;
    return n;
  }

  /** The index of the first item equal to `value` (`===`; Uint8Arrays by content); throws RangeError if none is. */
  index(value: T): number {
    for (let i = 0; i < this.#length; i++) if (sameItem(this.get(i), value)) return i;
    throw new RangeError(`${describe(value)} is not in the ShareableList`);
  }

  /** The items, copied into a new array. */
  toArray(): T[] {
    return Array.from(this);
  }

  /** Iterates over the items, reading each from shared memory when reached. */
  *[Symbol.iterator](): Iterator<T> {
    this.#dataView(); // a closed list throws even when empty
    for (let i = 0; i < this.#length; i++) yield this.get(i);
  }

  /** @internal Sends the list by name; the receiver attaches to it. */
  [reduce](): Reduced {
    return { kind: "mpts.ShareableList", state: { name: this.#shm.name } };
  }

  /** Shows the items and the segment's name. */
  [inspect.custom](depth: number, options: object): string {
    if (this.#shm.closed) return `ShareableList { name: '${this.#shm.name}', closed }`;
    return `ShareableList(${inspect(this.toArray(), { ...options, depth })}, name='${this.#shm.name}')`;
  }

  #dataView(): DataView {
    const buf = this.#shm.buf; // throws ClosedError after shm.close()
    if (this.#view?.buffer !== buf.buffer) this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    return this.#view;
  }

  #index(index: number): number {
    if (typeof index !== "number" || !Number.isInteger(index)) {
      throw new TypeError(`index must be an integer (got ${describe(index)})`);
    }
    const i = index < 0 ? index + this.#length : index;
    if (i < 0 || i >= this.#length) {
      throw new RangeError(`index ${index} is out of range for a ShareableList of length ${this.#length}`);
    }
    return i;
  }

  #kind(view: DataView, i: number): Kind {
    const kind = view.getUint8(HEADER + SLOT * i + 12);
    if (kind > Kind.Bytes) {
      throw new ProcessError(`slot ${i} of ShareableList "${this.#shm.name}" is corrupt (kind ${kind})`);
    }
    return kind as Kind;
  }

  #capacity(view: DataView, i: number): number {
    return view.getUint32(HEADER + SLOT * i + 4, true);
  }

  #write(i: number, item: Encoded): void {
    const view = this.#dataView();
    const slot = HEADER + SLOT * i;
    const offset = view.getUint32(slot, true);
    if (item.bytes) {
      const capacity = this.#capacity(view, i);
      if (item.bytes.length > capacity) {
        throw new RangeError(
          `${item.kind === Kind.Str ? "string" : "Uint8Array"} of ${item.bytes.length} bytes exceeds available storage of slot ${i} (${capacity} bytes)`,
        );
      }
      new Uint8Array(view.buffer, view.byteOffset + offset, capacity).set(item.bytes);
      view.setUint32(slot + 8, item.bytes.length, true);
    } else {
      switch (item.kind) {
        case Kind.Int:
          view.setBigInt64(offset, BigInt(item.value as number), true);
          break;
        case Kind.Float:
          view.setFloat64(offset, item.value as number, true);
          break;
        case Kind.Bool:
          view.setUint8(offset, item.value ? 1 : 0);
          break;
        case Kind.BigInt:
          view.setBigInt64(offset, item.value as bigint, true);
          break;
      }
    }
    view.setUint8(slot + 12, item.kind);
  }
}

registerRebuilder("mpts.ShareableList", (state) => ShareableList.attach((state as { name: string }).name));
