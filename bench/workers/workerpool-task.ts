// The worker script for workerpool: registers the same functions as ours.
import workerpool from "workerpool";
import { cpuLoop, identity } from "../tasks-min.js";
import { hashAndGzip, parseAndReduce } from "../workload-tasks.js";

workerpool.worker({ identity, cpuLoop, mapChunk: (xs: unknown[]) => xs.map(identity), hashAndGzip, parseAndReduce });
