// Bad input everywhere: every public constructor and method, fed wrong types and out-of-range
// values, throws (or rejects with) a TypeError, RangeError or ProcessError that names the argument.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  Barrier,
  BaseManager,
  Client,
  Condition,
  Event,
  JoinableQueue,
  Listener,
  Lock,
  Manager,
  Pipe,
  Pool,
  Process,
  ProcessError,
  ProcessPoolExecutor,
  Queue,
  RLock,
  Semaphore,
  SharedArray,
  SharedMemory,
  ShareableList,
  Value,
  asCompleted,
  getContext,
  getStartMethod,
  setStartMethod,
  wait,
} from "multiprocessing-ts";
import { answer } from "./fixtures/chaos-tasks.ts";

type Case = [what: string, run: () => unknown, cls: new (...a: any[]) => Error, names: RegExp];

const pool = new Pool({ processes: 1, context: "thread" });
const executor = new ProcessPoolExecutor({ maxWorkers: 1, context: "thread" });
const closedQueue = new Queue();
closedQueue.close();
const [left] = Pipe();
const closedEnd = Pipe()[0];
closedEnd.close();
const lock = new Lock({ context: "thread" });
const event = new Event({ context: "thread" });
const barrier = new Barrier(2, { context: "thread" });
const cond = new Condition(undefined, { context: "thread" });

// An option name the library does not know is a TypeError naming it and the right spelling, as
// Python refuses an unexpected keyword argument.
const unknownOptions: [what: string, run: () => unknown, names: RegExp][] = [
  ["new Pool({ proceses })", () => new Pool({ proceses: 3 } as never), /'proceses'.*'processes'/],
  ["new Pool({ max_tasks_per_child })", () => new Pool({ max_tasks_per_child: 2 } as never), /'maxTasksPerChild'/],
  [
    "pool.map({ chunkSize })",
    () => pool.map(answer as never, [1], { chunkSize: 5 } as never),
    /'chunkSize'.*'chunksize'/,
  ],
  [
    "pool.map({ callback }), which only mapAsync takes",
    () => pool.map(answer as never, [1], { callback() {} } as never),
    /'callback'/,
  ],
  [
    "pool.mapAsync({ errorcallback })",
    () => pool.mapAsync(answer as never, [1], { errorcallback() {} } as never).get(),
    /'errorCallback'/,
  ],
  [
    "pool.starmap({ chunk_size })",
    () => pool.starmap(answer as never, [[]], { chunk_size: 1 } as never),
    /'chunksize'/,
  ],
  ["pool.apply({ timout })", () => pool.apply(answer, [], { timout: 5 } as never), /'timout'.*'timeout'/],
  ["pool.applyAsync({ callbak })", () => pool.applyAsync(answer, [], { callbak() {} } as never).get(), /'callback'/],
  ["pool.imap({ on_progress })", () => pool.imap(answer as never, [1], { on_progress() {} } as never), /'onProgress'/],
  ["pool.imapUnordered({ signl })", () => pool.imapUnordered(answer as never, [1], { signl: 1 } as never), /'signal'/],
  [
    "new ProcessPoolExecutor({ max_workers })",
    () => new ProcessPoolExecutor({ max_workers: 3 } as never),
    /'max_workers'.*'maxWorkers'/,
  ],
  ["executor.map({ chunk_size })", () => executor.map(answer as never, [1], { chunk_size: 2 } as never), /'chunksize'/],
  [
    "executor.shutdown({ cancel_futures })",
    () => executor.shutdown({ cancel_futures: true } as never),
    /'cancelFutures'/,
  ],
  ["executor.submitWith({ timout })", () => executor.submitWith({ timout: 5 } as never, answer), /'timeout'/],
  ["wait({ return_when })", () => wait([], { return_when: "FIRST_COMPLETED" } as never), /'returnWhen'/],
  ["new Process({ deamon })", () => new Process({ target: answer, deamon: true } as never), /'deamon'.*'daemon'/],
  ["new Queue(0, { ctx })", () => new Queue(0, { ctx: "thread" } as never), /'ctx'/],
  ["queue.put({ timout })", () => new Queue().put(1, { timout: 5 } as never), /'timeout'/],
  ["queue.get({ blocking })", () => new Queue().get({ blocking: false } as never), /'block'/],
  ["joinableQueue.join({ timeout })", () => new JoinableQueue().join({ timeout: 5 } as never), /'timeout'/],
  ["new Lock({ contxt })", () => new Lock({ contxt: "thread" } as never), /'contxt'.*'context'/],
  ["lock.acquire({ time_out })", () => lock.acquire({ time_out: 5 } as never), /'timeout'/],
  ["lock.acquireSync({ blok })", () => lock.acquireSync({ blok: false } as never), /'block'/],
  ["new Semaphore(1, { contex })", () => new Semaphore(1, { contex: "thread" } as never), /'context'/],
  ["new Event({ contex })", () => new Event({ contex: "thread" } as never), /'context'/],
  ["new Condition(undefined, { contex })", () => new Condition(undefined, { contex: "thread" } as never), /'context'/],
  ["new Barrier(2, { actoin })", () => new Barrier(2, { actoin() {} } as never), /'actoin'.*'action'/],
  ["new Value('i', 0, { locked })", () => new Value("i", 0, { locked: false } as never), /'lock'/],
  ["new SharedArray('i', 3, { contex })", () => new SharedArray("i", 3, { contex: "thread" } as never), /'context'/],
  [
    "new SharedMemory({ tracked })",
    () => new SharedMemory({ create: true, size: 8, tracked: false } as never),
    /'track'/,
  ],
  ["new ShareableList({ nmae })", () => new ShareableList([1], { nmae: "x" } as never), /'name'/],
  ["new Manager({ auth_key })", () => new Manager({ auth_key: "k" } as never), /'authkey'/],
  ["register({ expose })", () => BaseManager.register("X", undefined, { expose: ["f"] } as never), /'exposed'/],
  ["Listener.listen({ authKey })", () => Listener.listen(undefined, { authKey: "k" } as never), /'authKey'.*'authkey'/],
  ["Client({ authKey })", () => Client("/nonexistent/mpts.sock", { authKey: "k" } as never), /'authkey'/],
  ["setStartMethod({ forced })", () => setStartMethod("spawn", { forced: true } as never), /'force'/],
];

const cases: Case[] = [
  ...unknownOptions.map(([what, run, names]): Case => [`unknown option: ${what}`, run, TypeError, names]),
  // Process
  ["Process(options: 5)", () => new Process(5 as never), TypeError, /options/],
  ["Process target not a function", () => new Process({ target: 3 as never }), TypeError, /target/],
  ["Process args not an array", () => new Process({ target: answer, args: 1 as never }), TypeError, /args/],
  ["Process name not a string", () => new Process({ target: answer, name: 1 as never }), TypeError, /name/],
  ["Process daemon not a boolean", () => new Process({ target: answer, daemon: "yes" as never }), TypeError, /daemon/],
  ["Process maxHeapMb 0", () => new Process({ target: answer, maxHeapMb: 0 }), RangeError, /maxHeapMb/],
  ["Process context fork", () => new Process({ target: answer, context: "fork" as never }), ProcessError, /fork/],
  ["Process context bogus", () => new Process({ target: answer, context: "bogus" as never }), TypeError, /context/],
  ["Process.join before start", () => new Process({ target: answer }).join(), ProcessError, /not started/],
  ["Process.join(-1)", () => new Process({ target: answer }).join(-1), RangeError, /timeout/],
  // Pool
  ["Pool(0)", () => new Pool(0), RangeError, /processes/],
  ["Pool(-1)", () => new Pool(-1), RangeError, /processes/],
  ["Pool(1.5)", () => new Pool(1.5), TypeError, /processes/],
  ["Pool maxTasksPerChild 0", () => new Pool({ maxTasksPerChild: 0 }), RangeError, /maxTasksPerChild/],
  ["Pool retries -1", () => new Pool({ retries: -1 }), RangeError, /retries/],
  ["Pool maxHeapMb NaN", () => new Pool({ maxHeapMb: Number.NaN }), TypeError, /maxHeapMb/],
  ["Pool initializer not a function", () => new Pool({ initializer: 1 as never }), TypeError, /initializer/],
  ["Pool initargs not an array", () => new Pool({ initargs: 1 as never }), TypeError, /initargs/],
  ["Pool.map fn not a function", () => pool.map(1 as never, [1]), TypeError, /fn/],
  ["Pool.map items not iterable", () => pool.map(answer as never, 5 as never), TypeError, /items/],
  ["Pool.map chunksize 0", () => pool.map(answer as never, [1], { chunksize: 0 }), RangeError, /chunksize/],
  ["Pool.map timeout -1", () => pool.map(answer as never, [1], { timeout: -1 }), RangeError, /timeout/],
  ["Pool.map timeout NaN", () => pool.map(answer as never, [1], { timeout: Number.NaN }), RangeError, /timeout/],
  ["Pool.map signal not a signal", () => pool.map(answer as never, [1], { signal: {} as never }), TypeError, /signal/],
  ["Pool.apply args not an array", () => pool.apply(answer, 1 as never), TypeError, /args/],
  [
    "Pool.applyAsync callback",
    () => pool.applyAsync(answer, [], { callback: 1 as never }).get(),
    TypeError,
    /callback/,
  ],
  ["Pool.imap onProgress", () => pool.imap(answer as never, [1], { onProgress: 1 as never }), TypeError, /onProgress/],
  ["AsyncResult.get(-5)", () => pool.applyAsync(answer).get(-5), RangeError, /timeout/],
  // ProcessPoolExecutor
  ["Executor maxWorkers 0", () => new ProcessPoolExecutor({ maxWorkers: 0 }), RangeError, /maxWorkers/],
  ["Executor retries 1.5", () => new ProcessPoolExecutor({ retries: 1.5 }), TypeError, /retries/],
  ["Executor.submit not a function", () => (executor.submit as (f: unknown) => unknown)(1), TypeError, /fn/],
  ["Future.result(-1)", () => executor.submit(answer).result(-1), RangeError, /timeout/],
  ["wait() not futures", () => wait(5 as never), TypeError, /futures|fs/],
  ["asCompleted timeout NaN", () => asCompleted([], Number.NaN)[Symbol.asyncIterator]().next(), RangeError, /timeout/],
  // Queue and Pipe
  ["Queue('x')", () => new Queue("x" as never), TypeError, /maxsize/],
  ["Queue.put timeout -1", () => new Queue().put(1, { timeout: -1 }), RangeError, /timeout/],
  ["Queue.get block 'no'", () => new Queue().get({ block: "no" as never }), TypeError, /block/],
  ["Queue.put on a closed queue", () => closedQueue.put(1), ProcessError, /closed/],
  ["Queue.put a function", () => new Queue().put(() => 1), ProcessError, /function/],
  ["JoinableQueue.join signal", () => new JoinableQueue().join({ signal: 1 as never }), TypeError, /signal/],
  ["Pipe('yes')", () => Pipe("yes" as never), TypeError, /duplex/],
  ["Connection.poll(-1)", () => left.poll(-1), RangeError, /timeout/],
  ["Connection.sendBytes offset", () => left.sendBytes(new Uint8Array(4), 9), RangeError, /offset/],
  ["Connection.sendBytes size", () => left.sendBytes(new Uint8Array(4), 1, 9), RangeError, /size/],
  ["closed Connection.send", () => closedEnd.send(1), ProcessError, /closed/],
  // Synchronization and shared values
  ["Lock.acquire timeout NaN", () => lock.acquire({ timeout: Number.NaN }), RangeError, /timeout/],
  ["Lock.acquireSync block 1", () => lock.acquireSync({ block: 1 as never }), TypeError, /block/],
  ["RLock context bogus", () => new RLock({ context: "x" as never }), TypeError, /context/],
  ["Semaphore(-1)", () => new Semaphore(-1), RangeError, /value/],
  ["Semaphore('2')", () => new Semaphore("2" as never), TypeError, /value/],
  ["Event.wait(-1)", () => event.wait(-1), RangeError, /timeout/],
  ["Condition(lock: 5)", () => new Condition(5 as never), TypeError, /lock/],
  ["Condition.notify(-1)", () => cond.notify(-1), RangeError, /n/],
  ["Barrier(0)", () => new Barrier(0), RangeError, /parties/],
  ["Barrier action 5", () => new Barrier(2, { action: 5 as never }), TypeError, /action/],
  ["Barrier.wait(-1)", () => barrier.wait(-1), RangeError, /timeout/],
  ["Value('x')", () => new Value("x" as never, 0 as never), TypeError, /typecode/],
  ["Value('i', 'one')", () => new Value("i", "one" as never), TypeError, /init/],
  ["Value('q', 1) needs a bigint", () => new Value("q", 1 as never), TypeError, /bigint/],
  ["Value lock 'navalue'", () => new Value("i", 0, { lock: "navalue" as never }), TypeError, /lock/],
  ["SharedArray('i', -1)", () => new SharedArray("i", -1), RangeError, /size/],
  ["SharedArray('x', 3)", () => new SharedArray("x" as never, 3), TypeError, /typecode/],
  ["SharedMemory size 0", () => new SharedMemory({ create: true, size: 0 }), RangeError, /size/],
  ["SharedMemory without a name", () => new SharedMemory({}), TypeError, /name/],
  ["ShareableList of a function", () => new ShareableList([(() => 1) as never]), TypeError, /item|0/],
  // Managers, Listener and Client
  ["Manager options 5", () => new Manager(5 as never), TypeError, /options/],
  ["Manager address 42", () => new Manager({ address: 42 as never }), TypeError, /address/],
  ["Manager authkey 5", () => new Manager({ authkey: 5 as never }), TypeError, /authkey/],
  ["register without a typeid", () => BaseManager.register("" as never), TypeError, /typeid/],
  ["register exposed 'f'", () => BaseManager.register("X", undefined, { exposed: "f" as never }), TypeError, /exposed/],
  ["create before start", () => new Manager().create("dict"), ProcessError, /start\(\)/],
  ["connect without an address", () => new BaseManager().connect(), TypeError, /address/],
  ["Listener port 70000", () => Listener.listen(["127.0.0.1", 70_000]), RangeError, /port/],
  ["Client(42)", () => Client(42 as never), TypeError, /address/],
  // Start methods
  ["getContext('fork')", () => getContext("fork" as never), ProcessError, /fork/],
  ["setStartMethod('x')", () => setStartMethod("x" as never), TypeError, /start method/],
  [
    "setStartMethod again without force",
    () => {
      const was = getStartMethod();
      setStartMethod("spawn", { force: true });
      try {
        setStartMethod("thread");
      } finally {
        setStartMethod(was, { force: true });
      }
    },
    ProcessError,
    /force: true/,
  ],
];

describe("bad input everywhere", { timeout: 60_000 }, () => {
  after(async () => {
    await pool.terminate();
    await executor.shutdown();
  });
  for (const [what, run, cls, names] of cases) {
    test(what, async () => {
      let error: unknown;
      try {
        await run();
      } catch (e) {
        error = e;
      }
      assert.ok(
        error instanceof cls,
        `${what}: expected ${cls.name}, got ${error === undefined ? "no error" : String(error)}`,
      );
      assert.match((error as Error).message, names, `${what}: the message names the argument`);
    });
  }
});
