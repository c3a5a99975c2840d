import { assertEquals } from "./helpers/assert.ts";

const PROBE = new URL("./fixtures/jitless/probe.ts", import.meta.url).pathname;

Deno.test("config: zod's jitless applies to every schema main.ts loads, section schemas included", async () => {
  // zod decides when an object schema is built whether it compiles a parser with `new Function`
  // on a synchronous parse: the global setting must come before the first schema is built
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PROBE],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, err);
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "0");
});
