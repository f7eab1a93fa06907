// The spawn start method without the native addon: the same suites as with it, every primitive
// held by a broker. The switch must be set before the library first looks for the addon.
process.env.MULTIPROCESSING_TS_NO_NATIVE = "1";
await import("./synchronize.test.ts");
await import("./queue.test.ts");
await import("./connection.test.ts");
await import("./scheduling.test.ts");
await import("./stats.test.ts");
