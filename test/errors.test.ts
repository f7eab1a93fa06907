// Errors raised in a child keep their class, message, own fields, cause and the child's stack.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { type Pool, RemoteError, getContext, registerErrorClass } from "multiprocessing-ts";
import { closureOverRenamed } from "./fixtures/renamed.ts";
import { CodedError, throwCustom, throwRich } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  describe(`errors from workers (${method})`, { timeout: 60_000 }, () => {
    const pool: Pool = new (getContext(method).Pool)(1);
    after(() => pool.terminate());

    test("built-in class, message, own fields, cause chain and the worker's stack", async () => {
      const error = (await pool.apply(throwRich, []).catch((e: unknown) => e)) as RangeError & {
        code: string;
        extra: object;
      };
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, "outer");
      assert.equal(error.code, "E_RICH");
      assert.deepEqual(error.extra, { n: 1, list: [1, 2] });
      assert.ok(error.cause instanceof TypeError);
      assert.equal((error.cause as Error).message, "inner");
      assert.match(String(error.stack), /throwRich/);
      assert.match(String(error.stack), /fixtures[/\\]tasks\.ts/);
    });

    test("a closure's error names the variable as written, where the compiler renamed it", async () => {
      const closure = closureOverRenamed();
      assert.match(String(closure), /helper2/, "the compiled closure reads a renamed variable");
      const error = (await pool.map(closure, [1]).catch((e: unknown) => e)) as Error;
      assert.match(error.message, /it uses 'helper' from the surrounding code/);
      assert.doesNotMatch(error.message, /helper2/);
    });

    test("an unregistered class of the user's arrives as RemoteError keeping its name", async () => {
      const error = (await pool.apply(throwCustom, []).catch((e: unknown) => e)) as Error;
      assert.ok(error instanceof RemoteError);
      assert.ok(error instanceof Error);
      assert.equal(error.name, "CodedError");
      assert.equal(error.message, "custom");
      assert.match(String(error.stack), /throwCustom/);
    });
  });
}

// Registration is for the whole program, so this runs after every method's unregistered case.
describe("registerErrorClass", { timeout: 60_000 }, () => {
  for (const method of methods) {
    test(`a registered class is rebuilt as itself (${method})`, async () => {
      registerErrorClass(CodedError);
      await using pool = new (getContext(method).Pool)(1);
      const error = (await pool.apply(throwCustom, []).catch((e: unknown) => e)) as Error;
      assert.ok(error instanceof CodedError);
      assert.equal(error.message, "custom");
    });
  }
});
