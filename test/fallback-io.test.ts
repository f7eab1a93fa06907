// The spawn start method without the native addon, second half: queues and pipes held by a broker
// (see fallback.test.ts). The switch must be set before the library first looks for the addon.
process.env.MULTIPROCESSING_TS_NO_NATIVE = "1";
await import("./queue.test.ts");
await import("./connection.test.ts");
