// Leaks: pools created and terminated over and over leave file descriptors, active handles and
// /dev/shm entries where they started. (`npm run soak` runs the long version and watches memory.)
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { Pool } from "multiprocessing-ts";
import { answer } from "./fixtures/chaos-tasks.ts";

const fds = () => readdirSync("/proc/self/fd").length;
// A child's process handle closes in the loop's close phase, just after its exit event: let two turns of
// the loop pass so that a handle already closing is not counted.
const settled = async () => {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  return process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap" && r !== "PipeWrap");
};
const segments = () => readdirSync("/dev/shm").filter((f) => f.startsWith(`mpts-${process.pid}-`)).length;

const cycles = { thread: 100, spawn: 40 } as const;

for (const method of ["thread", "spawn"] as const) {
  test(`${cycles[method]} pool create/terminate cycles leak nothing (${method})`, { timeout: 300_000 }, async () => {
    const cycle = async (i: number) => {
      const pool = new Pool({ processes: 2, context: method });
      assert.equal(await pool.apply(answer), 42, `cycle ${i}`);
      await pool.terminate();
    };
    await cycle(-1); // warm-up: lazily created handles (stdout, timers) are not leaks
    const before = { fds: fds(), handles: await settled(), segments: segments() };
    for (let i = 0; i < cycles[method]; i++) await cycle(i);
    const after = { fds: fds(), handles: await settled(), segments: segments() };
    assert.ok(after.fds <= before.fds + 2, `file descriptors: ${before.fds} before, ${after.fds} after`);
    assert.ok(
      after.handles.length <= before.handles.length,
      `active handles: ${before.handles.join(", ")} before, ${after.handles.join(", ")} after`,
    );
    assert.equal(after.segments, before.segments, "shared memory segments");
  });
}
