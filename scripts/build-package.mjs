#!/usr/bin/env node
// The published package's build (`prepack`): dist/ from scratch, without source maps (they would
// point at sources the package does not ship), and the shared-memory addon built here copied to
// prebuilds/<platform>-<arch>/, which the library loads when the install did not build its own; on
// Linux x64 with Debian's musl-tools, the same addon built for musl libc into prebuilds/linux-x64-musl/.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const run = (file, args) => {
  const result = spawnSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
run(tsc, ["-p", "tsconfig.build.json", "--sourceMap", "false", "--declarationMap", "false"]);
run(join(root, "scripts", "bundle.mjs"), ["--no-sourcemap"]);

const addon = join(root, "build", "Release", "mpts_shm.node");
if (!existsSync(addon)) run(join(root, "scripts", "build-native.mjs"), []);
const prebuilds = join(root, "prebuilds");
rmSync(prebuilds, { recursive: true, force: true });
if (existsSync(addon)) {
  const dir = join(prebuilds, `${process.platform}-${process.arch}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(addon, join(dir, "mpts_shm.node"));
} else console.log("build-package: no shared-memory addon was built here; the package ships no prebuild");

// The addon for musl libc (Alpine), built with musl-gcc. The addon is C++ and there is no libstdc++
// for musl here, so it is compiled with GCC's own libstdc++ headers over musl's C headers, adapted by
// a few lines (glibc-only features off, the string templates instantiated in the addon itself) and
// linked with a tiny runtime (operator new/delete over malloc, aborts instead of C++ exceptions,
// which the addon never throws): the result needs nothing but musl's libc.
const MUSL_CONFIG = `#include_next <bits/c++config.h>
#undef _GLIBCXX_USE_PTHREAD_COND_CLOCKWAIT
#undef _GLIBCXX_USE_PTHREAD_MUTEX_CLOCKLOCK
#undef _GLIBCXX_USE_PTHREAD_RWLOCK_CLOCKLOCK
#undef _GLIBCXX_EXTERN_TEMPLATE
#define _GLIBCXX_EXTERN_TEMPLATE 0
`;
const MUSL_RUNTIME = `#include <cstdlib>
#include <new>
void* operator new(std::size_t n) { void* p = std::malloc(n ? n : 1); if (!p) std::abort(); return p; }
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
namespace std { void __throw_length_error(const char*) { std::abort(); } }
extern "C" void __cxa_pure_virtual() { std::abort(); }
`;
const MUSL_EXPORTS = "{ global: napi_register_module_v1; node_api_module_get_api_version_v1; local: *; };\n";

/** Builds prebuilds/linux-x64-musl/mpts_shm.node; returns why not when it cannot here. */
function buildMusl() {
  if (process.platform !== "linux" || process.arch !== "x64") return `this is ${process.platform}-${process.arch}`;
  const has = (tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).status === 0;
  if (!has("musl-gcc")) return "musl-gcc is not installed (Debian: apt-get install musl-tools)";
  if (!has("g++")) return "g++ is not installed";
  const gxx = (args) => spawnSync("g++", args, { encoding: "utf8" }).stdout.trim();
  const gccVersion = gxx(["-dumpversion"]);
  const triplet = gxx(["-dumpmachine"]);
  const gccInclude = dirname(gxx(["-print-file-name=include/stddef.h"]));
  const nodeInclude = join(dirname(dirname(process.execPath)), "include", "node");
  const dirs = {
    "libstdc++ headers": `/usr/include/c++/${gccVersion}`,
    "libstdc++ config headers": `/usr/include/${triplet}/c++/${gccVersion}`,
    "musl headers": "/usr/include/x86_64-linux-musl",
    "Linux headers": "/usr/include/linux",
    "Linux asm headers": `/usr/include/${triplet}/asm`,
    "Node.js headers": nodeInclude,
  };
  for (const [what, dir] of Object.entries(dirs)) if (!existsSync(dir)) return `${what} are not in ${dir}`;
  const work = mkdtempSync(join(tmpdir(), "mpts-musl-"));
  try {
    // musl ships no Linux headers: the kernel's, which do not depend on the C library, beside its own
    mkdirSync(join(work, "kernel"));
    mkdirSync(join(work, "shim", "bits"), { recursive: true });
    writeFileSync(join(work, "shim", "bits", "c++config.h"), MUSL_CONFIG);
    writeFileSync(join(work, "runtime.cc"), MUSL_RUNTIME);
    writeFileSync(join(work, "exports.map"), MUSL_EXPORTS);
    const kernel = join(work, "kernel");
    for (const [name, dir] of [
      ["linux", "/usr/include/linux"],
      ["asm", `/usr/include/${triplet}/asm`],
      ["asm-generic", "/usr/include/asm-generic"],
    ])
      spawnSync("ln", ["-s", dir, join(kernel, name)]);
    const include = createRequire(import.meta.url)("node-addon-api").include_dir;
    const flags = [
      "-nostdinc",
      ...[
        join(work, "shim"),
        dirs["libstdc++ headers"],
        dirs["libstdc++ config headers"],
        dirs["musl headers"],
        kernel,
        gccInclude,
      ].flatMap((d) => ["-isystem", d]),
      "-D__GLIBC_PREREQ(major,minor)=0",
      "-D__locale_t=locale_t",
      `-I${join(root, include)}`,
      `-I${nodeInclude}`,
      "-DNAPI_VERSION=8",
      "-DNAPI_DISABLE_CPP_EXCEPTIONS",
      "-O2",
      "-std=c++17",
      "-fPIC",
      "-fno-exceptions",
      "-fno-rtti",
      "-fvisibility=hidden",
      "-c",
    ];
    const step = (tool, args) => {
      const result = spawnSync(tool, args, { cwd: work, encoding: "utf8" });
      if (result.status !== 0) throw new Error(`${tool} failed:\n${result.stderr}`);
    };
    step("g++", [...flags, join(root, "native", "shm.cc"), "-o", "shm.o"]);
    step("g++", [...flags, "runtime.cc", "-o", "runtime.o"]);
    const dir = join(prebuilds, "linux-x64-musl");
    mkdirSync(dir, { recursive: true });
    const out = join(dir, "mpts_shm.node");
    step("musl-gcc", [
      "-shared",
      "-s",
      "-Wl,--gc-sections",
      "-Wl,--version-script=exports.map",
      "shm.o",
      "runtime.o",
      "-o",
      out,
    ]);
    return undefined;
  } catch (error) {
    return error.message;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
const musl = buildMusl();
if (musl) console.log(`build-package: no musl prebuild (${musl})`);
