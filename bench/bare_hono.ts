/** Baseline for the startup bench: a bare Deno.serve + Hono hello world. */
import { Hono } from "hono";

const app = new Hono();
app.get("/api/health", (c) => c.json({ ok: true }));
app.get("/", (c) => c.text("hello"));
const port = Number(Deno.args[0] ?? 0);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: (a) => console.log(`listening ${a.port}`),
}, app.fetch);
