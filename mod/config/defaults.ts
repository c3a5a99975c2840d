/** The embedded default configuration: runs on any Linux box with mock hardware. */
import type { ConfigInput } from "./schema.ts";

/** Embedded default (before schema defaults are applied). */
export const DEFAULT_CONFIG: ConfigInput = {
  identity: { name: "keepwire-dev", vendor: "keepwire", model: "generic" },
  dataDir: "./var",
  web: { listen: "127.0.0.1:8080" },
};
