// Listener and Client: connections between processes that share no parent, with the authkey
// handshake (CPython's _TestListenerClient and the authentication parts of _TestConnection).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AuthenticationError,
  Client,
  ClosedError,
  EOFError,
  Listener,
  Process,
  ProcessError,
} from "multiprocessing-ts";
import { doubleOverSocket, sendOverSocket } from "./fixtures/manager-tasks.ts";
import { methods } from "./helpers.ts";

describe("Listener and Client", { timeout: 60_000 }, () => {
  for (const method of methods) {
    test(`a child connects over TCP with the authkey and echoes (${method})`, async () => {
      await using listener = await Listener.listen(["127.0.0.1", 0], { authkey: "secret" });
      const child = new Process({ target: doubleOverSocket, args: [listener.address, "secret"], context: method });
      child.start();
      const conn = await listener.accept();
      for (const x of [1, 2, 3]) {
        conn.send(x);
        assert.equal(await conn.recv(), x * 2);
      }
      conn.close();
      await child.join();
      assert.equal(child.exitcode, 0);
    });
  }

  // test_empty_authkey, OtherTest: what follows the handshake in the same read is the first message
  test("a client that sends as soon as it connects with an authkey: every message arrives, then EOF", async () => {
    for (const authkey of ["secret", ""]) {
      await using listener = await Listener.listen(["127.0.0.1", 0], { authkey });
      for (let round = 0; round < 20; round++) {
        const [client, server] = await Promise.all([
          Client(listener.address, { authkey }).then((c) => {
            c.send(round);
            c.send("second");
            c.close();
            return c;
          }),
          listener.accept(),
        ]);
        assert.equal(await server.recv(), round);
        assert.equal(await server.recv(), "second");
        await assert.rejects(server.recv(), EOFError);
        assert.ok(client.closed);
        server.close();
      }
    }
  });

  for (const method of methods) {
    test(`a child that sends as soon as it connects with an authkey (${method})`, async () => {
      await using listener = await Listener.listen(["127.0.0.1", 0], { authkey: "secret" });
      const child = new Process({
        target: sendOverSocket,
        args: [listener.address, "secret", [1, { two: 2 }]],
        context: method,
      });
      child.start();
      const conn = await listener.accept();
      assert.equal(await conn.recv(), 1);
      assert.deepEqual(await conn.recv(), { two: 2 });
      await assert.rejects(conn.recv(), EOFError);
      conn.close();
      await child.join();
      assert.equal(child.exitcode, 0);
    });
  }

  test("a Unix socket listener by default; poll, bytes, and EOFError after close", async () => {
    await using listener = await Listener.listen();
    assert.equal(typeof listener.address, "string");
    const [client, server] = await Promise.all([Client(listener.address), listener.accept()]);
    assert.equal(await server.poll(), false);
    const t0 = performance.now();
    assert.equal(await server.poll(100), false);
    assert.ok(performance.now() - t0 >= 90, "poll(100) waited");
    const big = new Uint8Array(16 * 1024 * 1024).fill(7);
    client.sendBytes(big);
    client.send({ a: [1, 2], m: new Map([[1, 2]]) });
    assert.equal(await server.poll(5000), true);
    const got = await server.recvBytes();
    assert.equal(got.length, big.length);
    assert.equal(got[got.length - 1], 7);
    assert.deepEqual(await server.recv(), { a: [1, 2], m: new Map([[1, 2]]) });
    client.close();
    await assert.rejects(server.recv(), EOFError);
    assert.throws(() => client.send(1), ProcessError);
    server.close();
  });

  test("a wrong authkey is refused on both sides and the listener keeps listening", async () => {
    await using listener = await Listener.listen(["127.0.0.1", 0], { authkey: "right" });
    const refused = assert.rejects(listener.accept(), AuthenticationError);
    await assert.rejects(Client(listener.address, { authkey: "wrong" }), AuthenticationError);
    await refused;
    const [client, server] = await Promise.all([Client(listener.address, { authkey: "right" }), listener.accept()]);
    client.send("hello");
    assert.equal(await server.recv(), "hello");
    client.close();
    server.close();
  });

  test("nothing listening, a closed listener, bad arguments", async () => {
    const listener = await Listener.listen(["127.0.0.1", 0]);
    const address = listener.address;
    listener.close();
    await assert.rejects(listener.accept(), ClosedError);
    await assert.rejects(Client(address), /cannot connect/);
    await assert.rejects(Client(42 as never), TypeError);
    await assert.rejects(Listener.listen(["127.0.0.1", 70_000]), RangeError);
    await assert.rejects(Client(address, { authkey: 5 as never }), TypeError);
  });
});
