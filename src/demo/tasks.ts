/** The CPU-bound function the demo runs: a pure-JavaScript loop, the same in every run. */
export function crunch(n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total = (total + ((i % 1000) * (i % 7) + (total >>> 3))) % 1_000_000_007;
  return total;
}
