/** The benchmark tasks, identical for every library: a trivial one and a CPU-bound loop. */
export function identity<T>(x: T): T {
  return x;
}

export function cpuLoop(n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total = (total + ((i % 1000) * (i % 7) + (total >>> 3))) % 1_000_000_007;
  return total;
}
