/**
 * Python's typecodes for shared values and arrays: which typed array holds each, and the checks of a
 * typecode and of a value for it. Shared by sharedctypes.ts and the manager's Value and Array
 * referents.
 */
/** Python's typecodes: b B h H i I (8–32-bit), l L q Q (64-bit, as bigint), f d (floats). */
export type Typecode = "b" | "B" | "h" | "H" | "i" | "I" | "l" | "L" | "q" | "Q" | "f" | "d";

/** The JavaScript type of a typecode's values: bigint for the 64-bit integers, else number. */
export type Scalar<T extends Typecode> = T extends "l" | "L" | "q" | "Q" ? bigint : number;

/** The typed arrays behind the typecodes. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A typed array class: a view over shared bytes. */
export type TypedArrayClass = {
  new (buffer: ArrayBufferLike, offset: number, length: number): TypedArray;
  BYTES_PER_ELEMENT: number;
};

/** The typed array class behind each typecode. */
export const classes: Record<Typecode, TypedArrayClass> = {
  b: Int8Array,
  B: Uint8Array,
  h: Int16Array,
  H: Uint16Array,
  i: Int32Array,
  I: Uint32Array,
  l: BigInt64Array,
  L: BigUint64Array,
  q: BigInt64Array,
  Q: BigUint64Array,
  f: Float32Array,
  d: Float64Array,
} as never;

/** Throws TypeError for a typecode that is not one of Python's. */
export function checkTypecode(typecode: unknown): asserts typecode is Typecode {
  if (typeof typecode !== "string" || !(typecode in classes)) {
    throw new TypeError(
      `bad typecode ${JSON.stringify(typecode)}: use one of ${Object.keys(classes).join(" ")} (64-bit ones hold bigints)`,
    );
  }
}

/** Throws TypeError for a value of the wrong type for `typecode`. */
export function checkScalar(typecode: Typecode, value: unknown, name: string): void {
  const big = typecode === "l" || typecode === "L" || typecode === "q" || typecode === "Q";
  if (big ? typeof value !== "bigint" : typeof value !== "number") {
    throw new TypeError(
      `${name} for typecode "${typecode}" must be a ${big ? "bigint" : "number"} (got ${typeof value})`,
    );
  }
}
