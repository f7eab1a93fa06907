// The spawn start method without the native addon: the same suites as with it, every primitive
// held by an agent server. The switch must be set before the library first looks for the addon.
// (Split over two files so that the runner can run them side by side: fallback-io.test.ts.)
process.env.MULTIPROCESSING_TS_NO_NATIVE = "1";
await import("./synchronize.test.ts");
await import("./scheduling.test.ts");
await import("./stats.test.ts");
