// The floor under a Manager's sequential round trips: bare ping-pong between two ends, no library,
// for each way two Node.js ends can wake each other, and CPython's blocking socket for comparison.
//
//   node bench/ping-pong.mjs [rounds]        (prints a table: round trips/s, median and range)
//
// Every mode makes 20 000 round trips, one at a time, the caller awaiting each answer: the socket
// modes echo 40 bytes, the shared-memory ones a counter word, the MessagePort one a small object:
//
//   socket, processes     two Node.js processes over a Unix socket (what a spawn Manager uses)
//   socket, threads       two threads of one process over a Unix socket (what a thread Manager uses)
//   shm + waitAsync       two processes, a word in shared memory, the addon's futex wake and its
//                         waitAsync on both ends (the wake comes back through a libuv pool thread)
//   shm, caller blocks    the same, but the caller blocks in the addon's futex wait for each answer
//                         (its event loop runs nothing meanwhile)
//   Atomics.waitAsync     two threads, a SharedArrayBuffer, V8's Atomics.waitAsync on both ends
//   MessagePort           two threads, a MessageChannel
//   CPython socket        two CPython processes over a Unix socket, blocking recv on both ends
//
// The addon's modes need build/Release/mpts_shm.node (npm install builds it); CPython's need python3.
import { execFileSync, fork } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MessageChannel, Worker } from "node:worker_threads";

const N = 20_000;
const SIZE = 40;
const self = fileURLToPath(import.meta.url);
const addonPath = join(self, "../../build/Release/mpts_shm.node");
const addon = () => createRequire(import.meta.url)(addonPath);
const perSecond = (t0) => N / ((performance.now() - t0) / 1000);

/** Echoes every message on the socket at `path`, in this process or thread, until it closes. */
function echoServer(path) {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.on("data", (data) => socket.write(data));
      socket.on("close", () => server.close());
    });
    server.listen(path, () => resolve(server));
  });
}

/** Sends N messages to the echo at `path`, each after the previous answer; round trips/s. */
async function socketCaller(path) {
  const socket = connect(path);
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  const message = Buffer.alloc(SIZE, 1);
  let have = 0;
  let done = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    socket.on("data", (data) => {
      have += data.length;
      while (have >= SIZE) {
        have -= SIZE;
        if (++done === N) return resolve();
        socket.write(message);
      }
    });
    socket.write(message);
  });
  const rate = perSecond(t0);
  socket.destroy();
  return rate;
}

const socketPath = () => join(tmpdir(), `mpts-ping-pong-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);

const modes = {
  async "socket, processes"() {
    const path = socketPath();
    const child = fork(self, ["--echo-socket", path], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await new Promise((resolve) => child.once("message", resolve));
    try {
      return await socketCaller(path);
    } finally {
      await new Promise((resolve) => (child.exitCode === null ? child.once("exit", resolve) : resolve()));
      rmSync(path, { force: true });
    }
  },
  async "socket, threads"() {
    const path = socketPath();
    const worker = new Worker(new URL(import.meta.url), { argv: ["--echo-socket", path] });
    await new Promise((resolve) => worker.once("message", resolve));
    try {
      return await socketCaller(path);
    } finally {
      await worker.terminate();
      rmSync(path, { force: true });
    }
  },
  async "shm + waitAsync, processes"() {
    return shmCaller(false);
  },
  async "shm, caller blocks, processes"() {
    return shmCaller(true);
  },
  async "Atomics.waitAsync, threads"() {
    const words = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(new URL(import.meta.url), { argv: ["--echo-atomics"], workerData: words });
    await new Promise((resolve) => worker.once("message", resolve));
    const keepAlive = setInterval(() => {}, 1000); // a pending waitAsync does not keep the loop alive
    const t0 = performance.now();
    for (let i = 1; i <= N; i++) {
      Atomics.store(words, 0, i);
      Atomics.notify(words, 0);
      while (Atomics.load(words, 1) !== i) {
        const wait = Atomics.waitAsync(words, 1, i - 1);
        if (wait.async) await wait.value;
      }
    }
    const rate = perSecond(t0);
    clearInterval(keepAlive);
    await worker.terminate();
    return rate;
  },
  async "MessagePort, threads"() {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL(import.meta.url), {
      argv: ["--echo-port"],
      workerData: port2,
      transferList: [port2],
    });
    await new Promise((resolve) => port1.once("message", resolve));
    const message = { q: 0, k: "call", id: "1.1", m: "get", a: ["k"] };
    let done = 0;
    const t0 = performance.now();
    await new Promise((resolve) => {
      port1.on("message", () => (++done === N ? resolve() : port1.postMessage(message)));
      port1.postMessage(message);
    });
    const rate = perSecond(t0);
    port1.close();
    await worker.terminate();
    return rate;
  },
  async "CPython socket, processes"() {
    const out = execFileSync("python3", ["-c", PYTHON, String(N), String(SIZE)], { encoding: "utf8" });
    return Number(out.trim());
  },
};

/** Two processes over a word pair in shared memory: word 0 carries the call, word 1 the answer. */
async function shmCaller(block) {
  const shm = addon();
  const name = `/mpts-ping-pong-${process.pid}`;
  const words = new Int32Array(shm.open(name, 4096, true));
  const child = fork(self, ["--echo-shm", name], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    await new Promise((resolve) => child.once("message", resolve));
    const t0 = performance.now();
    for (let i = 1; i <= N; i++) {
      Atomics.store(words, 0, i);
      shm.wake(words, 0, 1);
      if (block) {
        while (Atomics.load(words, 1) !== i) shm.wait(words, 1, i - 1, 1000);
        await null; // as an awaited call would
      } else {
        while (Atomics.load(words, 1) !== i) await shm.waitAsync(words, 1, i - 1, 1000);
      }
    }
    return perSecond(t0);
  } finally {
    child.kill();
    shm.unlink(name);
  }
}

const PYTHON = `
import os, socket, sys, tempfile, time
n, size = int(sys.argv[1]), int(sys.argv[2])
path = os.path.join(tempfile.mkdtemp(), "s")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
if os.fork() == 0:
    server.close()
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    msg = b"x" * size
    t0 = time.perf_counter()
    for _ in range(n):
        c.sendall(msg)
        got = 0
        while got < size:
            got += len(c.recv(size - got))
    print(n / (time.perf_counter() - t0), flush=True)
    os._exit(0)
conn, _ = server.accept()
while True:
    data = conn.recv(65536)
    if not data:
        break
    conn.sendall(data)
os.wait()
`;

// the far ends
const [role, arg] = process.argv.slice(2);
if (role === "--echo-socket") {
  await echoServer(arg);
  if (process.send) process.send("ready", () => process.disconnect());
  else (await import("node:worker_threads")).parentPort.postMessage("ready");
} else if (role === "--echo-shm") {
  const shm = addon();
  const words = new Int32Array(shm.open(arg, 4096, false));
  process.send("ready");
  for (let i = 1; i <= N; i++) {
    while (Atomics.load(words, 0) !== i) await shm.waitAsync(words, 0, i - 1, 1000);
    Atomics.store(words, 1, i);
    shm.wake(words, 1, 1);
  }
  process.disconnect();
} else if (role === "--echo-atomics") {
  const { parentPort, workerData: words } = await import("node:worker_threads");
  const keepAlive = setInterval(() => {}, 1000);
  parentPort.postMessage("ready");
  for (let i = 1; i <= N; i++) {
    while (Atomics.load(words, 0) !== i) {
      const wait = Atomics.waitAsync(words, 0, i - 1);
      if (wait.async) await wait.value;
    }
    Atomics.store(words, 1, i);
    Atomics.notify(words, 1);
  }
  clearInterval(keepAlive);
} else if (role === "--echo-port") {
  const { workerData: port } = await import("node:worker_threads");
  port.on("message", (message) => port.postMessage(message));
  port.postMessage("ready");
} else {
  const rounds = Number(process.argv[2] ?? 3);
  const results = Object.fromEntries(Object.keys(modes).map((mode) => [mode, []]));
  const skipped = {};
  for (let round = 0; round < rounds; round++) {
    for (const [mode, run] of Object.entries(modes)) {
      if (skipped[mode]) continue;
      if (mode.startsWith("shm") && !existsSync(addonPath)) skipped[mode] = `no addon at ${addonPath}`;
      else {
        try {
          results[mode].push(await run());
        } catch (error) {
          skipped[mode] = error.message.split("\n")[0];
        }
      }
    }
  }
  const k = (x) => `${(x / 1000).toFixed(1)}k`;
  console.log(`| ${N} round trips of ${SIZE} bytes | median | range |\n|---|---|---|`);
  for (const [mode, rates] of Object.entries(results)) {
    if (skipped[mode]) console.log(`| ${mode} | skipped: ${skipped[mode]} | |`);
    else {
      const sorted = [...rates].sort((a, b) => a - b);
      console.log(`| ${mode} | ${k(sorted[sorted.length >> 1])}/s | ${k(sorted[0])}–${k(sorted.at(-1))} |`);
    }
  }
}
