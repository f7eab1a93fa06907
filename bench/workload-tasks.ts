/**
 * The tasks of the workloads suite (workloads.ts), identical for every Node.js contender; its
 * CPython script does the same with hashlib, zlib and json. Each returns a small result that the
 * suite checks against the sequential run's.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

/**
 * sha256 and gzip (level 6) of one buffer: `[hex digest, CRC-32 of the input from the gzip
 * trailer, gzip length]`. The digest and the CRC-32 are the same in every implementation; the
 * length depends on the zlib build.
 */
export function hashAndGzip(buffer: Uint8Array): [string, number, number] {
  const digest = createHash("sha256").update(buffer).digest("hex");
  const gz = gzipSync(buffer, { level: 6 });
  return [digest, gz.readUInt32LE(gz.length - 8), gz.length];
}

/** One record of a document of the workloads suite. */
export interface WorkloadRecord {
  id: number;
  name: string;
  tags: string[];
  price: number;
  qty: number;
  active: boolean;
}

/**
 * `JSON.parse` of one document (an array of records) and a reduction over it:
 * `[records, Σ price × qty of the active ones, records tagged "urgent", longest name]`. Integers
 * only, so that every implementation gets the same figures.
 */
export function parseAndReduce(text: string): [number, number, number, number] {
  const records = JSON.parse(text) as WorkloadRecord[];
  let total = 0;
  let urgent = 0;
  let longest = 0;
  for (const r of records) {
    if (r.active) total += r.price * r.qty;
    if (r.tags.includes("urgent")) urgent++;
    if (r.name.length > longest) longest = r.name.length;
  }
  return [records.length, total, urgent, longest];
}
