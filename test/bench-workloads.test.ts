// The workloads suite's inputs and its check of a contender's results against the sequential run.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hashAndGzip, parseAndReduce } from "../bench/workload-tasks.ts";
import { difference, makeBuffers, makeDocuments } from "../bench/workloads.ts";

test("the inputs are the same in every run, 64 KiB buffers and 1 MB documents, no two alike", {
  timeout: 60_000,
}, () => {
  const [a, b] = [makeBuffers(4), makeBuffers(4)];
  assert.deepEqual(a, b);
  for (const buffer of a) assert.equal(buffer.byteLength, 64 * 1024);
  assert.equal(new Set(a.map((x) => hashAndGzip(x)[0])).size, 4);
  const gz = hashAndGzip(a[0]!)[2];
  assert.ok(gz < 64 * 1024 * 0.6, `text-like bytes compress (${gz} bytes)`);
  const docs = makeDocuments(2);
  assert.deepEqual(docs, makeDocuments(2));
  assert.notEqual(docs[0], docs[1]);
  for (const doc of docs) {
    assert.ok(doc.length >= 1_000_000 && doc.length < 1_001_000, `${doc.length} chars`);
    const [records, total, urgent, longest] = parseAndReduce(doc);
    assert.ok(records > 1000 && total > 0 && urgent > 0 && longest > 0);
  }
});

test("a wrong result, a missing one or a wrong order is named; the same results pass", { timeout: 10_000 }, () => {
  const expected = [
    ["a", 1],
    ["b", 2],
    ["c", 3],
  ];
  assert.equal(difference(expected, structuredClone(expected), true), undefined);
  assert.equal(difference(expected, [expected[2], expected[0], expected[1]], false), undefined);
  assert.match(
    difference(expected, [expected[2], expected[0], expected[1]], true)!,
    /^result 0 is \["c",3\], the sequential run's \["a",1\]$/,
  );
  assert.match(difference(expected, expected.slice(1), false)!, /^2 results for 3 inputs$/);
  assert.match(
    difference(
      expected,
      [
        ["a", 1],
        ["b", 2],
        ["c", 4],
      ],
      false,
    )!,
    /not the sequential run's/,
  );
  assert.match(difference(expected, undefined, true)!, /returned undefined, not a list/);
  // what must be equal: here the first field only
  const first = (r: unknown) => String((r as unknown[])[0]);
  assert.equal(
    difference(
      expected,
      [
        ["a", 9],
        ["b", 9],
        ["c", 9],
      ],
      true,
      first,
    ),
    undefined,
  );
});
