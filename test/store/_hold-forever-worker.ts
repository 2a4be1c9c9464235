/**
 * A checkpointer worker that asks the main thread to hold its writes and then never releases them
 * (a worker stuck in a checkpoint): the hold must end by itself (checkpointer.ts maxHoldMs).
 */
export {};

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ type: string }>) => {
  if (event.data.type === "start") {
    self.postMessage({ type: "ready" });
    self.postMessage({ type: "hold" });
  }
  if (event.data.type === "stop") self.postMessage({ type: "stopped" });
};
