// The busy-children orphan tests without the native addon: a watchdog thread in each child instead
// of the kernel's parent-death signal. The switch must be set before the library first looks for it.
process.env.MULTIPROCESSING_TS_NO_NATIVE = "1";
await import("./orphans-busy.test.ts");
