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
  /** Stop and remove the data dir. */
  close(): Promise<void>;
}

/** Start a runtime with `overrides` merged over a test config. */
export async function startTestRuntime(overrides: ConfigInput = {}): Promise<TestRuntime> {
  const dataDir = await Deno.makeTempDir({ prefix: "kw-rt-" });
  const rt = new Runtime(
    validateConfig({
      ...overrides,
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
  return {
    rt,
    base: `http://${rt.web!.address}`,
    dataDir,
    async close() {
      await rt.stop("test done");
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}
