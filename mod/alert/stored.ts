/**
 * The configuration as it is in force on an appliance: the config file's, with the alert
 * edits stored in its data directory applied (what `keepwire config show` prints).
 * @module
 */
import { join } from "node:path";
import type { Config } from "../config/mod.ts";
import { Store } from "../store/mod.ts";
import { applyAlertEdits } from "./config.ts";

/**
 * `config` with the alert edits stored in its data directory applied (channels,
 * recipients and rules set on the Alerts page or through the API). Without a store there,
 * `config` itself; when the stored edits no longer fit the file, the file's section and a
 * warning on stderr.
 */
export function configWithAlertEdits(config: Config): Config {
  const path = join(config.dataDir, "keepwire.db");
  try {
    Deno.statSync(path);
  } catch {
    return config;
  }
  const store = new Store({ path });
  try {
    const eff = applyAlertEdits(config.alert, (k) => store.getSetting(k));
    if (eff.problem) console.error(`keepwire: stored alert edits not used: ${eff.problem}`);
    return eff.edited.length ? { ...config, alert: eff.config } : config;
  } finally {
    store.close();
  }
}
