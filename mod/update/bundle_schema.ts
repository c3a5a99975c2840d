/**
 * The store schema of this code, as a bundle declares it (manifest `storeSchema`): every
 * keepwire module that keeps tables in the store, with the number of its migrations
 * (`Store.migrate` leaves a module at exactly that version), in the `module:version,...`
 * form a node reports from its `schema_versions` table. The replication engine digests
 * that table into the schema version its frames carry (`defaultSchemaVersion`, mod/repl/
 * engine.ts), and refuses frames across it: two nodes whose code declares different
 * schemas cannot replicate. Subsystems' SDK table groups (`sdk_*` rows) are declared by
 * the subsystems at run time, not by keepwire's code, and are not part of it.
 *
 * A module that adds a `store.migrate(...)` call adds it here; tests/update_bundle_schema_test.ts
 * fails when one is missing and checks the result against a store the modules migrated.
 * @module
 */
import { CORE_MIGRATIONS } from "../store/mod.ts";
import { AUTH_MIGRATIONS } from "../web/users.ts";
import { THROTTLE_MIGRATIONS } from "../web/login_throttle.ts";
import { ALERT_MIGRATIONS } from "../alert/outbox.ts";
import { UPDATE_MIGRATIONS } from "./records.ts";
import { HISTORY_MIGRATIONS } from "../history/store.ts";
import { BYPASS_MIGRATIONS } from "../bypass/hold_store.ts";
import { SDK_MIGRATIONS } from "../sdk/host.ts";
import { formatStoreSchema } from "./bundle.ts";

/** Each module's migrations, by the name it migrates under. */
export const CODE_MIGRATIONS: Readonly<Record<string, readonly string[]>> = {
  core: CORE_MIGRATIONS,
  auth: AUTH_MIGRATIONS,
  auth_throttle: THROTTLE_MIGRATIONS,
  alert: ALERT_MIGRATIONS,
  update: UPDATE_MIGRATIONS,
  history: HISTORY_MIGRATIONS,
  bypass: BYPASS_MIGRATIONS,
  sdk: SDK_MIGRATIONS,
};

/** This code's store schema (`core:N,alert:N,...` sorted by module). */
export function codeStoreSchema(): string {
  return formatStoreSchema(
    new Map(Object.entries(CODE_MIGRATIONS).map(([k, v]) => [k, v.length])),
  );
}
