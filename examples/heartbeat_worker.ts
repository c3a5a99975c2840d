/**
 * Example worker subsystem: copy this file to start your own.
 *
 * It "processes" a simulated queue, reports its status and queue to keepwire,
 * pauses optional work while the load governor suspends it, and flushes on stop.
 * keepwire loads it in a Deno Worker; heartbeats are automatic after ready(), so
 * if this code ever blocks its event loop (an endless loop), keepwire notices
 * within one heartbeat timeout, terminates the Worker and starts a fresh one.
 *
 * Config (the embedded default runs it):
 *   { "name": "example-worker", "kind": "worker", "module": "examples/heartbeat_worker.ts" }
 * @module
 */
import {
  onResume,
  onStop,
  onSuspend,
  ready,
  reportQueue,
  status,
  subsystem,
} from "../mod/sdk/mod.ts";

const me = subsystem();
let queue: number[] = []; // arrival times of pending jobs
let done = 0;
let paused = false;

// Simulated arrivals: a few jobs per second.
const arrivals = setInterval(() => {
  for (let i = Math.floor(Math.random() * 4); i > 0; i--) queue.push(Date.now());
}, 250);

// The work loop: handle up to 3 jobs per tick unless suspended.
const work = setInterval(() => {
  if (!paused) {
    const n = Math.min(3, queue.length);
    queue = queue.slice(n);
    done += n;
  }
  const oldest = queue.length ? Date.now() - queue[0] : 0;
  reportQueue(queue.length, oldest);
  status(`${paused ? "suspended" : "working"}: ${done} jobs done, ${queue.length} queued`);
}, 500);

onSuspend(() => {
  paused = true;
});
onResume(() => {
  paused = false;
});
onStop(() => {
  clearInterval(arrivals);
  clearInterval(work);
  status(`stopped after ${done} jobs`);
});

// Start-up done: from here on keepwire expects heartbeats (sent automatically).
ready();
status(`${me?.name ?? "example-worker"} ready`);
