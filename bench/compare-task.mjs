// The task of bench/compare-builds.mjs: plain JavaScript, so that every build's children load it.
export function identity(x) {
  return x;
}
