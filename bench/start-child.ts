/** The trivial child of the start-up benchmark: prints one line with the time. No imports. */
export function firstLine(): void {
  console.log(`first ${performance.timeOrigin + performance.now()}`);
}

if (process.argv[2] === "--child") firstLine();
