// A bare forked child: answers every IPC message at once.
process.on("message", (m: { id: number; x: unknown }) => process.send!({ id: m.id, x: m.x }));
