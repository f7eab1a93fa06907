/**
 * multiprocessing-ts: Python's `multiprocessing` and `ProcessPoolExecutor` for TypeScript on Node.js.
 * This file only re-exports; each concept lives in its own module.
 */
export { getAllStartMethods, getContext, getStartMethod, setStartMethod } from "./context.js";
export type { Context, StartMethod } from "./context.js";
export {
  AuthenticationError,
  BootstrapError,
  BrokerLostError,
  BrokenBarrierError,
  BrokenProcessPool,
  CancelledError,
  ClosedError,
  EOFError,
  Empty,
  FileExistsError,
  FileNotFoundError,
  Full,
  NoWorkersError,
  ProcessError,
  RemoteError,
  SerializationError,
  TimeoutError,
  WorkerCrashedError,
  WorkerLostError,
} from "./errors.js";
export { Future, ProcessPoolExecutor, asCompleted, wait } from "./executor.js";
export type { ExecutorOptions, MapResult, ReturnWhen, SubmitOptions } from "./executor.js";
export { registerErrorClass } from "./internal/wire/codec.js";
export type { ClusterOption } from "./internal/cluster/target.js";
export { isMain } from "./internal/runtime.js";
export { nativeAddonStatus } from "./internal/shm/native.js";
export type { NativeAddonStatus } from "./internal/shm/native.js";
export { AsyncResult, Pool } from "./pool.js";
export type { AsyncCallbacks, CallOptions, Input, MapOptions, PoolOptions } from "./pool.js";
export type { PoolStats, WorkerState, WorkerStats } from "./internal/pool/engine.js";
export { Process, activeChildren, currentProcess, parentProcess } from "./process.js";
export type { ProcessInfo, ProcessOptions } from "./process.js";
export { JoinableQueue, Queue, SimpleQueue } from "./queues.js";
export type { QueueWaitOptions } from "./queues.js";
export { cpuCount } from "./util.js";
export type { WaitOptions } from "./util.js";
export { Client, Connection, Listener, Pipe, SocketConnection } from "./connection.js";
export type { SocketOptions } from "./connection.js";
export { BaseManager, Manager } from "./managers.js";
export type { ManagerOptions, ManagerServerHandle, RegisterOptions, SocketAddress } from "./managers.js";
export {
  ArrayProxy,
  BarrierProxy,
  BaseProxy,
  ConditionProxy,
  DictProxy,
  EventProxy,
  JoinableQueueProxy,
  ListProxy,
  LockProxy,
  NamespaceProxy,
  QueueProxy,
  RLockProxy,
  SemaphoreProxy,
  ValueProxy,
} from "./proxies.js";
export type { AutoProxy, ProxyWaitOptions } from "./proxies.js";
export { Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, SemLock, Semaphore } from "./synchronize.js";
export type { AcquireOptions, PrimitiveOptions } from "./synchronize.js";
export { RawArray, RawValue, SharedArray, Value } from "./sharedctypes.js";
export type { Scalar, SharedOptions, Typecode } from "./sharedctypes.js";
export { ShareableList, SharedMemory } from "./shm.js";
export type { Shareable, ShareableListOptions, SharedMemoryOptions } from "./shm.js";
