/**
 * Start methods as Python's contexts: `getContext("thread")` returns the library's constructors
 * bound to that method, so `new ctx.Process(...)`, `new ctx.Pool(2)` and `new ctx.Queue()` use it
 * without passing `{ context }` each time.
 */
import { DEFAULT_METHOD, checkMethod, startMethodNames } from "./backends/registry.js";
import { ProcessError } from "./errors.js";
import { type StartMethod, runtime } from "./internal/runtime.js";
import { checkOptionNames, optionNames } from "./internal/validate.js";
import { Pool, type PoolOptions } from "./pool.js";
import { ProcessPoolExecutor, type ExecutorOptions } from "./executor.js";
import { Process, type ProcessOptions } from "./process.js";
import { JoinableQueue, Queue, SimpleQueue } from "./queues.js";
import { type SharedOptions, SharedArray, type Typecode, Value, type Scalar } from "./sharedctypes.js";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  Lock,
  type PrimitiveOptions,
  RLock,
  Semaphore,
} from "./synchronize.js";

export type { StartMethod };

/** The library's constructors bound to one start method. */
export interface Context {
  /** The start method every constructor of this context uses: `"spawn"` or `"thread"`. */
  readonly startMethod: StartMethod;
  /** {@link Process}, with `context` defaulting to this context's start method. */
  readonly Process: typeof Process;
  /** {@link Pool}, with `context` defaulting to this context's start method. */
  readonly Pool: typeof Pool;
  /** {@link ProcessPoolExecutor}, with `context` defaulting to this context's start method. */
  readonly ProcessPoolExecutor: typeof ProcessPoolExecutor;
  /** {@link Queue}, with `context` defaulting to this context's start method. */
  readonly Queue: typeof Queue;
  /** {@link SimpleQueue}, with `context` defaulting to this context's start method. */
  readonly SimpleQueue: typeof SimpleQueue;
  /** {@link JoinableQueue}, with `context` defaulting to this context's start method. */
  readonly JoinableQueue: typeof JoinableQueue;
  /** {@link Lock}, with `context` defaulting to this context's start method. */
  readonly Lock: typeof Lock;
  /** {@link RLock}, with `context` defaulting to this context's start method. */
  readonly RLock: typeof RLock;
  /** {@link Semaphore}, with `context` defaulting to this context's start method. */
  readonly Semaphore: typeof Semaphore;
  /** {@link BoundedSemaphore}, with `context` defaulting to this context's start method. */
  readonly BoundedSemaphore: typeof BoundedSemaphore;
  /** {@link Event}, with `context` defaulting to this context's start method. */
  readonly Event: typeof Event;
  /** {@link Condition}, with `context` defaulting to this context's start method. */
  readonly Condition: typeof Condition;
  /** {@link Barrier}, with `context` defaulting to this context's start method. */
  readonly Barrier: typeof Barrier;
  /** {@link Value}, with `context` defaulting to this context's start method. */
  readonly Value: typeof Value;
  /** {@link SharedArray}, with `context` defaulting to this context's start method. */
  readonly SharedArray: typeof SharedArray;
  /** This context's start method. */
  getStartMethod(): StartMethod;
}

const contexts = new Map<StartMethod, Context>();

function makeContext(method: StartMethod): Context {
  class BoundProcess extends Process {
    constructor(options: ProcessOptions = {}) {
      super(isObject(options) ? { context: method, ...options } : options);
    }
  }
  class BoundPool extends Pool {
    constructor(options?: number | PoolOptions) {
      super(
        isObject(options)
          ? { context: method, ...options }
          : options === undefined || typeof options === "number"
            ? { context: method, processes: options }
            : options,
      );
    }
  }
  class BoundExecutor extends ProcessPoolExecutor {
    constructor(options: ExecutorOptions = {}) {
      super(isObject(options) ? { context: method, ...options } : options);
    }
  }
  const bind = <O extends PrimitiveOptions>(options: O | undefined): O => ({ context: method, ...options }) as O;
  class BoundLock extends Lock {
    constructor(options?: PrimitiveOptions) {
      super(bind(options));
    }
  }
  class BoundRLock extends RLock {
    constructor(options?: PrimitiveOptions) {
      super(bind(options));
    }
  }
  class BoundSemaphore extends Semaphore {
    constructor(value?: number, options?: PrimitiveOptions) {
      super(value, bind(options));
    }
  }
  class BoundBoundedSemaphore extends BoundedSemaphore {
    constructor(value?: number, options?: PrimitiveOptions) {
      super(value, bind(options));
    }
  }
  class BoundEvent extends Event {
    constructor(options?: PrimitiveOptions) {
      super(bind(options));
    }
  }
  class BoundCondition extends Condition {
    constructor(lock?: Lock, options?: PrimitiveOptions) {
      super(lock, bind(options));
    }
  }
  class BoundQueue<T = unknown> extends Queue<T> {
    constructor(maxsize?: number, options?: PrimitiveOptions) {
      super(maxsize, bind(options));
    }
  }
  class BoundSimpleQueue<T = unknown> extends SimpleQueue<T> {
    constructor(options?: PrimitiveOptions) {
      super(bind(options));
    }
  }
  class BoundJoinableQueue<T = unknown> extends JoinableQueue<T> {
    constructor(maxsize?: number, options?: PrimitiveOptions) {
      super(maxsize, bind(options));
    }
  }
  class BoundBarrier extends Barrier {
    constructor(parties: number, options?: PrimitiveOptions & { action?: () => unknown; timeout?: number }) {
      super(parties, bind(options));
    }
  }
  class BoundValue<T extends Typecode = Typecode> extends Value<T> {
    constructor(typecode: T, init?: Scalar<T>, options?: SharedOptions) {
      super(typecode, init, bind(options));
    }
  }
  // biome-ignore lint/complexity/useArrowFunction: callers write `new ctx.SharedArray(...)`, and an arrow cannot be constructed
  const BoundSharedArray = function <T extends Typecode>(
    typecode: T,
    sizeOrItems: number | Iterable<Scalar<T>>,
    options?: SharedOptions,
  ) {
    return new SharedArray(typecode, sizeOrItems, bind(options));
  } as unknown as typeof SharedArray;
  Object.defineProperty(BoundSharedArray, Symbol.hasInstance, { value: (v: unknown) => v instanceof SharedArray });
  for (const [cls, name] of [
    [BoundProcess, "Process"],
    [BoundPool, "Pool"],
    [BoundExecutor, "ProcessPoolExecutor"],
    [BoundLock, "Lock"],
    [BoundRLock, "RLock"],
    [BoundSemaphore, "Semaphore"],
    [BoundBoundedSemaphore, "BoundedSemaphore"],
    [BoundEvent, "Event"],
    [BoundCondition, "Condition"],
    [BoundQueue, "Queue"],
    [BoundSimpleQueue, "SimpleQueue"],
    [BoundJoinableQueue, "JoinableQueue"],
    [BoundBarrier, "Barrier"],
    [BoundValue, "Value"],
    [BoundSharedArray, "SharedArray"],
  ] as const) {
    Object.defineProperty(cls, "name", { value: name });
  }
  return Object.freeze({
    startMethod: method,
    Process: BoundProcess,
    Pool: BoundPool,
    ProcessPoolExecutor: BoundExecutor,
    Queue: BoundQueue as typeof Queue,
    SimpleQueue: BoundSimpleQueue as typeof SimpleQueue,
    JoinableQueue: BoundJoinableQueue as typeof JoinableQueue,
    Lock: BoundLock,
    RLock: BoundRLock,
    Semaphore: BoundSemaphore,
    BoundedSemaphore: BoundBoundedSemaphore,
    Event: BoundEvent,
    Condition: BoundCondition,
    Barrier: BoundBarrier,
    Value: BoundValue as typeof Value,
    SharedArray: BoundSharedArray,
    getStartMethod: () => method,
  });
}

/**
 * The constructors bound to `method` ("spawn" or "thread"); without an argument, the default
 * method's. "fork" and "forkserver" throw: Node.js cannot fork.
 */
export function getContext(method?: StartMethod): Context {
  const m = method === undefined ? getStartMethod() : checkMethod(method);
  let ctx = contexts.get(m);
  if (!ctx) contexts.set(m, (ctx = makeContext(m)));
  return ctx;
}

const setStartMethodOptionNames = optionNames<NonNullable<Parameters<typeof setStartMethod>[1]>>({ force: true });

/**
 * Sets the default start method for this program (and its children). Like Python, it may be set
 * once; pass `{ force: true }` to change it again.
 */
export function setStartMethod(method: StartMethod, options: { force?: boolean } = {}): void {
  const m = checkMethod(method);
  checkOptionNames(options, setStartMethodOptionNames, "setStartMethod()");
  if (runtime.startMethod !== undefined && runtime.startMethod !== m && !options.force && !runtime.child) {
    throw new ProcessError(
      `the start method was already set to "${runtime.startMethod}"; pass { force: true } to change it`,
    );
  }
  runtime.startMethod = m;
}

/** The default start method: "spawn" unless `setStartMethod` chose another. */
export function getStartMethod(): StartMethod {
  return runtime.startMethod ?? DEFAULT_METHOD;
}

/** Every start method, the default first. */
export function getAllStartMethods(): StartMethod[] {
  const current = getStartMethod();
  return [current, ...startMethodNames().filter((m) => m !== current)];
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === "object";
}
