/** Thread identity, re-exported so that code outside backends/ never imports worker_threads itself. */
export { isMainThread, threadId } from "node:worker_threads";
