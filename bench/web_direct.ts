/**
 * Child process of the web bench: a keepwire runtime (embedded defaults) whose app is
 * also served straight by `Deno.serve` on a second port, without the front
 * (mod/web/front.ts), so the bench can tell the front's cost from the middleware
 * chain's. Bench only: the front's header/idle timeouts and connection caps are what an
 * appliance must not go without.
 *
 * Usage: deno run -A bench/web_direct.ts DATA_DIR FRONT_PORT DIRECT_PORT
 * @module
 */
import { loadConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";

if (import.meta.main) {
  const [data, frontPort, directPort] = Deno.args;
  const config = await loadConfig({ dataDir: data, listen: `127.0.0.1:${frontPort}` });
  const rt = new Runtime(config);
  await rt.start();
  const app = rt.web!.app!;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: Number(directPort), onListen: () => {} },
    (req, info) => app.fetch(req, { trusted: false, remote: info.remoteAddr }),
  );
  const stop = async () => {
    await server.shutdown();
    await rt.stop("bench done");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
}
