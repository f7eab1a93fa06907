// SharedMemory and ShareableList, in one process and across processes, under every start method.
// Ported from CPython's _TestSharedMemory (test_shared_memory_basics, _pickling, _across_processes,
// _cleaned_after_process_termination) and test_shared_memory_ShareableList_basics / _pickling where
// they apply.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import {
  ClosedError,
  FileExistsError,
  FileNotFoundError,
  ProcessError,
  Queue,
  ShareableList,
  SharedMemory,
  getContext,
} from "multiprocessing-ts";
import { createAndExit, readListByName, tryAttach, updateList, writeByName, writeToShm } from "./fixtures/shm-tasks.ts";
import { methods, runScript } from "./helpers.ts";

const onDisk = (name: string) => existsSync(`/dev/shm/${name}`);

describe("SharedMemory in one process", { timeout: 60_000 }, () => {
  test("create, attach by name, share bytes, unlink", () => {
    const shm = new SharedMemory({ create: true, size: 100 });
    try {
      assert.match(shm.name, /^psm_[0-9a-f]+$/);
      assert.equal(shm.size, 100);
      assert.ok(shm.buf instanceof Uint8Array);
      assert.equal(shm.buf.length, 100);
      assert.ok(shm.buf.every((b) => b === 0));
      assert.ok(onDisk(shm.name));

      const byString = new SharedMemory(shm.name);
      const byOptions = new SharedMemory({ name: shm.name, size: 5 }); // size is ignored when attaching
      assert.equal(byString.size, 100);
      assert.equal(byOptions.size, 100);
      shm.buf[0] = 42;
      byString.buf[99] = 7;
      assert.equal(byOptions.buf[0], 42);
      assert.equal(shm.buf[99], 7);
      assert.equal(new SharedMemory(`/${shm.name}`).buf[0], 42, "a leading slash is accepted");
    } finally {
      shm.unlink();
    }
    assert.equal(onDisk(shm.name), false);
    assert.equal(shm.buf[0], 42, "the mapping outlives the name");
  });

  test("a chosen name", () => {
    const name = `psm_test_${process.pid}_named`;
    const shm = new SharedMemory({ name, create: true, size: 8 });
    try {
      assert.equal(shm.name, name);
      assert.ok(onDisk(name));
    } finally {
      shm.unlink();
    }
  });

  test("creating a name that exists is FileExistsError; attaching a missing one FileNotFoundError", () => {
    const shm = new SharedMemory({ create: true, size: 8 });
    try {
      assert.throws(
        () => new SharedMemory({ name: shm.name, create: true, size: 8 }),
        (e: unknown) =>
          e instanceof FileExistsError &&
          e instanceof ProcessError &&
          e.code === "ERR_MP_FILE_EXISTS" &&
          e.message.includes(shm.name),
      );
    } finally {
      shm.unlink();
    }
    assert.throws(
      () => new SharedMemory(shm.name),
      (e: unknown) => e instanceof FileNotFoundError && e.code === "ERR_MP_FILE_NOT_FOUND",
    );
    assert.throws(() => shm.unlink(), FileNotFoundError, "unlinking twice");
  });

  test("bad sizes are RangeErrors and bad options TypeErrors, each naming the option", () => {
    for (const size of [0, -1, 1.5, Number.NaN, undefined]) {
      assert.throws(() => new SharedMemory({ create: true, size }), { name: "RangeError", message: /size/ });
    }
    assert.throws(() => new SharedMemory({ create: true }), { name: "RangeError", message: /size/ });
    assert.throws(() => new SharedMemory({}), { name: "TypeError", message: /name is required/ });
    assert.throws(() => new SharedMemory(undefined as never), TypeError);
    assert.throws(() => new SharedMemory(null as never), TypeError);
    assert.throws(() => new SharedMemory({ create: "yes" as never, size: 8 }), {
      name: "TypeError",
      message: /create/,
    });
    assert.throws(() => new SharedMemory({ create: true, size: "8" as never }), { name: "TypeError", message: /size/ });
    assert.throws(() => new SharedMemory({ name: 5 as never }), { name: "TypeError", message: /name/ });
    assert.throws(() => new SharedMemory({ name: "a/b" }), { name: "TypeError", message: /name/ });
    assert.throws(() => new SharedMemory({ name: "" }), { name: "TypeError", message: /name/ });
    assert.throws(() => new SharedMemory({ create: true, size: 8, track: 1 as never }), {
      name: "TypeError",
      message: /track/,
    });
  });

  test("after close(), buf throws ClosedError; close is idempotent and unlink still works", () => {
    const shm = new SharedMemory({ create: true, size: 16 });
    shm.buf[0] = 1;
    shm.close();
    shm.close();
    assert.equal(shm.closed, true);
    assert.throws(() => shm.buf, ClosedError);
    assert.equal(new SharedMemory(shm.name).buf[0], 1, "the segment stays until unlinked");
    shm.unlink();
    assert.equal(onDisk(shm.name), false);
  });

  test("using closes it", () => {
    const shm = new SharedMemory({ create: true, size: 8 });
    {
      using attached = new SharedMemory(shm.name);
      attached.buf[0] = 9;
    }
    assert.equal(shm.buf[0], 9);
    shm[Symbol.dispose]();
    assert.throws(() => shm.buf, ClosedError);
    shm.unlink();
  });

  test("it travels by name; rebuilding it after unlink is FileNotFoundError", async () => {
    const shm = new SharedMemory({ create: true, size: 8 });
    const q = new Queue<SharedMemory>();
    await q.put(shm);
    const copy = await q.get();
    assert.ok(copy instanceof SharedMemory);
    assert.notEqual(copy, shm);
    assert.equal(copy.name, shm.name);
    copy.buf[3] = 3;
    assert.equal(shm.buf[3], 3);
    await q.put(shm);
    shm.unlink();
    await assert.rejects(q.get(), FileNotFoundError);
  });

  test("without the native addon, a clear error", () => {
    const script =
      'import("multiprocessing-ts").then(({ SharedMemory }) => { try { new SharedMemory({ create: true, size: 8 }); } catch (e) { console.log(e.name, e.message); } })';
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, MULTIPROCESSING_TS_NO_NATIVE: "1" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.match(
      result.stdout,
      /ProcessError SharedMemory needs the native addon, which is disabled by MULTIPROCESSING_TS_NO_NATIVE=1/,
    );
  });
});

describe("ShareableList in one process", { timeout: 60_000 }, () => {
  const bytes = new Uint8Array([1, 0, 2, 0, 0]);

  test("round trip of mixed types, with a self-describing layout", () => {
    const list = new ShareableList([1, -2.5, "héllo", null, true, 10n, bytes, 2 ** 60, -0]);
    try {
      assert.equal(list.length, 9);
      assert.deepEqual(list.toArray(), [1, -2.5, "héllo", null, true, 10n, bytes, 2 ** 60, -0]);
      assert.equal(list.format, "q d 8s x ? q 8s d d");
      const attached = ShareableList.attach(list.shm.name);
      assert.deepEqual([...attached], list.toArray());
      assert.equal(attached.format, list.format);
      const again = new ShareableList(null, { name: list.shm.name });
      assert.equal(again.length, 9);
      attached.set(0, 99);
      assert.equal(list.get(0), 99);
      assert.equal(again.get(0), 99);
    } finally {
      list.shm.unlink();
    }
  });

  test("negative indexes, out of range, count and index", () => {
    const list = new ShareableList<number | string | null | Uint8Array>([3, "a", 3, null, bytes, 3]);
    try {
      assert.equal(list.get(-1), 3);
      assert.equal(list.get(-5), "a");
      list.set(-2, "b");
      assert.equal(list.get(4), "b");
      assert.throws(() => list.get(6), RangeError);
      assert.throws(() => list.get(-7), RangeError);
      assert.throws(() => list.set(6, 1), RangeError);
      assert.throws(() => list.get(1.5), TypeError);
      assert.equal(list.count(3), 3);
      assert.equal(list.count("3"), 0);
      assert.equal(list.index(null), 3);
      assert.equal(list.index("b"), 4);
      list.set(0, bytes);
      assert.equal(list.index(new Uint8Array([1, 0, 2, 0, 0])), 0);
      assert.throws(() => list.index("zzz"), { name: "RangeError", message: /not in the ShareableList/ });
    } finally {
      list.shm.unlink();
    }
  });

  test("a slot keeps its storage: a longer string or bytes is a RangeError", () => {
    const list = new ShareableList<string | number | Uint8Array>(["hello", 1, "", "nine bytes"]);
    try {
      assert.equal(list.format, "8s q 8s 16s");
      list.set(0, "12345678");
      assert.equal(list.get(0), "12345678");
      assert.throws(() => list.set(0, "123456789"), { name: "RangeError", message: /exceeds available storage/ });
      assert.throws(() => list.set(0, "ééééé"), /exceeds available storage/, "UTF-8 bytes count, not characters");
      assert.equal(list.get(0), "12345678", "a refused value leaves the slot as it was");
      list.set(1, "fits8!!!");
      assert.equal(list.get(1), "fits8!!!");
      assert.equal(list.format, "8s 8s 8s 16s");
      assert.throws(() => list.set(1, new Uint8Array(9)), /exceeds available storage/);
      list.set(3, 4.25);
      assert.equal(list.get(3), 4.25);
      assert.equal(list.format, "8s 8s 8s d");
      list.set(3, "sixteen bytes!!!");
      assert.equal(list.get(3), "sixteen bytes!!!");
    } finally {
      list.shm.unlink();
    }
  });

  test("bad items and names are refused", () => {
    assert.throws(() => new ShareableList([{}] as never), { name: "TypeError", message: /sequence\[0\]/ });
    assert.throws(() => new ShareableList([2n ** 64n]), { name: "RangeError", message: /64 bits/ });
    assert.throws(() => new ShareableList(5 as never), TypeError);
    assert.throws(() => new ShareableList(null), { name: "TypeError", message: /name is required/ });
    assert.throws(() => ShareableList.attach(`psm_missing_${process.pid}`), FileNotFoundError);
    const list = new ShareableList([1]);
    try {
      assert.throws(() => list.set(0, undefined as never), TypeError);
      assert.throws(() => list.set(0, (() => 1) as never), TypeError);
    } finally {
      list.shm.unlink();
    }
    const plain = new SharedMemory({ create: true, size: 64 });
    try {
      assert.throws(() => ShareableList.attach(plain.name), {
        name: "ProcessError",
        message: /not hold a ShareableList/,
      });
    } finally {
      plain.unlink();
    }
  });

  test("an empty list, a chosen name, and a closed segment", () => {
    const name = `psm_test_${process.pid}_list`;
    const list = new ShareableList([], { name });
    assert.equal(list.shm.name, name);
    assert.equal(list.length, 0);
    assert.deepEqual(ShareableList.attach(name).toArray(), []);
    assert.throws(() => new ShareableList([1], { name }), FileExistsError);
    list.shm.close();
    assert.throws(() => list.toArray(), ClosedError);
    list.shm.unlink();
  });
});

for (const method of methods) {
  const ctx = getContext(method);

  describe(`SharedMemory across processes (${method})`, { timeout: 60_000 }, () => {
    test("a child attaches by name and writes bytes the parent reads", async () => {
      const shm = new SharedMemory({ create: true, size: 32 });
      try {
        const p = new ctx.Process({ target: writeByName, args: [shm.name, 4, [10, 20, 30]] }).start();
        await p.join();
        assert.equal(p.exitcode, 0);
        assert.deepEqual([...shm.buf.subarray(3, 8)], [0, 10, 20, 30, 0]);
      } finally {
        shm.unlink();
      }
    });

    test("the SharedMemory itself as a Process argument", async () => {
      const shm = new SharedMemory({ create: true, size: 16 });
      try {
        const out = new Queue<unknown>();
        const p = new ctx.Process({ target: writeToShm, args: [shm, 0, [7, 8, 9], out] }).start();
        assert.deepEqual(await out.get({ timeout: 30_000 }), { name: shm.name, size: 16, isShm: true });
        await p.join();
        assert.equal(p.exitcode, 0);
        assert.deepEqual([...shm.buf.subarray(0, 4)], [7, 8, 9, 0]);
      } finally {
        shm.unlink();
      }
    });

    test("a child attaching after unlink gets FileNotFoundError", async () => {
      const shm = new SharedMemory({ create: true, size: 8 });
      shm.unlink();
      const out = new Queue<unknown>();
      const p = new ctx.Process({ target: tryAttach, args: [shm.name, out] }).start();
      assert.deepEqual(await out.get({ timeout: 30_000 }), {
        name: "FileNotFoundError",
        code: "ERR_MP_FILE_NOT_FOUND",
      });
      await p.join();
    });

    test("a segment made in a child is unlinked when the child exits; the parent's mapping stays valid", async () => {
      const out = new Queue<SharedMemory>();
      const attached = new ctx.Event();
      const p = new ctx.Process({ target: createAndExit, args: [[5, 6, 7], out, attached] }).start();
      const shm = await out.get({ timeout: 30_000 });
      attached.set();
      await p.join();
      assert.equal(p.exitcode, 0);
      assert.equal(onDisk(shm.name), false);
      assert.deepEqual([...shm.buf], [5, 6, 7]);
    });

    test("ShareableList: a child modifies items the parent then reads; another attaches by name", async () => {
      const list = new ShareableList<number | bigint | boolean | string | Uint8Array | null>([
        1,
        2.5,
        "hello",
        null,
        false,
        5n,
        new Uint8Array([1, 2]),
      ]);
      try {
        const p = new ctx.Process({
          target: updateList,
          args: [
            list,
            [
              [0, 100],
              [-1, new Uint8Array([9, 8, 7])],
              [2, "world!"],
              [3, 0.5],
              [4, true],
              [-2, -(2n ** 62n)],
            ],
          ],
        }).start();
        await p.join();
        assert.equal(p.exitcode, 0);
        const expected = [100, 2.5, "world!", 0.5, true, -(2n ** 62n), new Uint8Array([9, 8, 7])];
        assert.deepEqual(list.toArray(), expected);

        const out = new Queue<unknown>();
        const reader = new ctx.Process({ target: readListByName, args: [list.shm.name, out] }).start();
        assert.deepEqual(await out.get({ timeout: 30_000 }), {
          items: expected,
          format: "q d 8s d ? q 8s",
          length: 7,
        });
        await reader.join();
      } finally {
        list.shm.unlink();
      }
    });
  });

  test(`segments left behind are removed when their creators exit (${method})`, { timeout: 60_000 }, async () => {
    const result = await runScript("./fixtures/shm-leak.ts", [method]);
    assert.equal(result.code, 0, result.stderr);
    const { unlinked, kept } = JSON.parse(result.stdout) as { unlinked: string[]; kept: string };
    assert.equal(unlinked.length, 3);
    for (const name of unlinked) assert.equal(onDisk(name), false, `${name} is still in /dev/shm`);
    assert.equal(onDisk(kept), true, "a segment made with track: false outlives its creator");
    new SharedMemory(kept).unlink();
    assert.equal(onDisk(kept), false);
  });
}
