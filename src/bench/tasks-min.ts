/** Trivial task for quick throughput checks. */
export function identity<T>(x: T): T {
  return x;
}
