/** Test helper: a real Runtime on a temp data dir, listening on an ephemeral port. */
import { validateConfig } from "../../mod/config/mod.ts";
import type { ConfigInput } from "../../mod/config/mod.ts";
import { Runtime } from "../../mod/runtime.ts";

/** A started runtime and how to reach and remove it. */
export interface TestRuntime {
  /** The runtime. */
  rt: Runtime;
  /** http://127.0.0.1:PORT */
  base: string;
  /** Data directory. */
  dataDir: string;
  /** Headers with an admin API token. */
  auth: Record<string, string>;
  /** fetch with the admin token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Stop and remove the data dir. */
  close(): Promise<void>;
}

/**
 * The governor section of a test runtime: off, so the host's CPU pressure (a busy
 * machine running other tests) cannot change what a test sees — sheddable routes
 * answering 503, a throttled UI refresh. Only the governor's own tests turn it on,
 * by passing a `governor` section.
 */
export function testGovernor(overrides: ConfigInput = {}): ConfigInput["governor"] {
  return overrides.governor ?? { enabled: false };
}

/** Start a runtime with `overrides` merged over a test config (governor off unless given). */
export async function startTestRuntime(overrides: ConfigInput = {}): Promise<TestRuntime> {
  const dataDir = await Deno.makeTempDir({ prefix: "kw-rt-" });
  const rt = new Runtime(
    validateConfig({
      ...overrides,
      governor: testGovernor(overrides),
      dataDir,
      web: { ...(overrides.web ?? {}), listen: "127.0.0.1:0" },
    }),
  );
  try {
    await rt.start();
  } catch (e) {
    await Deno.remove(dataDir, { recursive: true });
    throw e;
  }
  const { Users } = await import("../../mod/web/users.ts");
  const { token } = new Users(rt.store).createToken(
    `test-${crypto.randomUUID().slice(0, 8)}`,
    "admin",
  );
  const auth = { authorization: `Bearer ${token}` };
  const base = `http://${rt.web!.address}`;
  return {
    rt,
    base,
    dataDir,
    auth,
    api: (path, init = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { ...auth, ...(init.headers ?? {}) } }),
    async close() {
      await rt.stop("test done");
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}
