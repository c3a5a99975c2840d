/** The embedded default configuration: runs on any Linux box with mock hardware. */
import type { ConfigInput } from "./schema.ts";

/** Embedded default (before schema defaults are applied). */
export const DEFAULT_CONFIG: ConfigInput = {
  identity: { name: "keepwire-dev", vendor: "keepwire", model: "generic" },
  dataDir: "./var",
  web: { listen: "127.0.0.1:8080" },
  // Two example subsystems (examples/, paths relative to the working directory),
  // so `keepwire run` from the repository shows live supervision.
  subsystems: [
    {
      name: "example-worker",
      kind: "worker",
      module: "examples/heartbeat_worker.ts",
      criticality: "optional",
      description: "example worker subsystem (mod/sdk over postMessage)",
    },
    {
      name: "example-notify",
      kind: "process",
      command: "/bin/sh",
      args: ["examples/notify_service.sh"],
      criticality: "optional",
      description: "example process subsystem speaking sd_notify via systemd-notify",
      heartbeat: { intervalMs: 1000, timeoutMs: 5000 },
      after: ["example-worker"],
    },
  ],
};
