/** The referent each of `Manager`'s built-in typeids makes. */
import { ArrayReferent, DictReferent, NamespaceReferent, ValueReferent, ListReferent } from "./referents.js";
import {
  BarrierReferent,
  ConditionReferent,
  EventReferent,
  LockReferent,
  QueueReferent,
  RLockReferent,
  SemaphoreReferent,
} from "./sync-referents.js";

/** What `Manager`'s typeids make, by name. */
export const builtinTypes: Record<string, (...args: any[]) => object> = {
  dict: (init?: unknown) => new DictReferent(init),
  list: (init?: unknown) => new ListReferent(init),
  Namespace: (init?: Record<string, unknown>) => new NamespaceReferent(init),
  Value: (typecode: unknown, value: unknown) => new ValueReferent(typecode, value),
  Array: (typecode: unknown, sizeOrItems: unknown) => new ArrayReferent(typecode, sizeOrItems),
  Queue: (maxsize?: number) => new QueueReferent(maxsize),
  JoinableQueue: (maxsize?: number) => new QueueReferent(maxsize),
  Lock: () => new LockReferent(),
  RLock: () => new RLockReferent(),
  Semaphore: (value?: number) => new SemaphoreReferent(value),
  BoundedSemaphore: (value?: number) => new SemaphoreReferent(value, true),
  Event: () => new EventReferent(),
  Condition: (lock?: unknown) => new ConditionReferent(lock),
  Barrier: (parties: number, options?: { timeout?: number }) => new BarrierReferent(parties, options),
};
