/**
 * Software bypass for virtual appliances, with ONE atomic switch point per
 * direction (measured lossless and duplicate-free, see the hardware notes §2):
 *
 * ```
 * ports[0] ingress ─┬─ inline: redirect → engine[0] ─(veth)─ inspection engine
 *                   └─ bypass: redirect → ports[1]
 * ports[1] ingress ─┬─ inline: redirect → engine[1] ─(veth)─ inspection engine
 *                   └─ bypass: redirect → ports[0]
 * engine[0] ingress → ports[0], engine[1] ingress → ports[1]   (static)
 * ```
 *
 * A switch is one `tc -batch` with two `filter replace` of the same u32 filter
 * (handle 800::800, match everything, action mirred egress redirect), so each
 * direction flips in one netlink operation and no frame is on two paths.
 * `disconnect` sets both ports down (the peers see no carrier).
 * @module
 */
import { z } from "zod";
import {
  BYPASS_NO_WATCHDOG,
  type BypassCapabilities,
  type BypassDriver,
  BypassDriverError,
  bypassFixedPolicy,
  type BypassMode,
  type BypassOpenReport,
  type BypassPolicies,
  type BypassWatchdogReading,
} from "./types.ts";
import { type BypassToolRunner, runBypassTool } from "./exec.ts";

/** Options of the tc driver. */
export interface TcBypassOptions {
  /** The two ports (wire side). */
  ports: readonly [string, string];
  /** Kernel-side veth ends toward the engine, paired with ports[0] and ports[1]. */
  engine: readonly [string, string];
  /** Network namespace of all four interfaces (default: keepwire's own). */
  netns?: string;
  /** tc executable. */
  tc?: string;
  /** ip executable. */
  ip?: string;
  /** Filter priority (default 1). */
  prio?: number;
  /** Tool runner (tests record calls). */
  run?: BypassToolRunner;
}

/** Handle of the switch-point filter (first node of u32 hash table 800:). */
export const TC_BYPASS_HANDLE = "800::800";

const filterListSchema = z.lazy(() =>
  z.array(z.looseObject({
    pref: z.number().optional(),
    kind: z.string().optional(),
    options: z.looseObject({
      fh: z.string().optional(),
      actions: z.array(z.looseObject({
        kind: z.string(),
        mirred_action: z.string().optional(),
        direction: z.string().optional(),
        to_dev: z.string().optional(),
      })).optional(),
    }).optional(),
  }))
);

const qdiscListSchema = z.lazy(() => z.array(z.looseObject({ kind: z.string() })));

const linkListSchema = z.lazy(() =>
  z.array(z.looseObject({
    ifname: z.string(),
    flags: z.array(z.string()).default([]),
  }))
);

/** The tc software-bypass driver. */
export class TcBypassDriver implements BypassDriver {
  /** Driver kind. */
  readonly kind = "tc" as const;
  /** The two ports. */
  readonly ports: readonly [string, string];
  /** Engine-side interfaces. */
  readonly engine: readonly [string, string];
  #o: TcBypassOptions;
  #run: BypassToolRunner;
  #prio: number;
  #lastMode: BypassMode | "unknown" = "unknown";

  /** Build for a segment. */
  constructor(opts: TcBypassOptions) {
    this.ports = opts.ports;
    this.engine = opts.engine;
    this.#o = opts;
    this.#run = opts.run ?? runBypassTool;
    this.#prio = opts.prio ?? 1;
  }

  #ns(): string[] {
    return this.#o.netns ? ["-n", this.#o.netns] : [];
  }

  #err(code: "tool" | "parse" | "io" | "unsupported" | "inconsistent", m: string) {
    return new BypassDriverError("tc", code, m);
  }

  async #tool(which: "tc" | "ip", args: string[], stdin?: string): Promise<string> {
    const cmd = which === "tc" ? this.#o.tc ?? "tc" : this.#o.ip ?? "ip";
    const full = [...this.#ns(), ...args];
    const r = await this.#run(cmd, full, stdin !== undefined ? { stdin } : {});
    if (r.code !== 0) {
      const what = stdin !== undefined
        ? `${full.join(" ")} <<${stdin.trim().replace(/\n/g, "; ")}`
        : full.join(" ");
      throw this.#err("tool", `${cmd} ${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  /** The batch line that points `dev`'s ingress at `to`. */
  filterLine(verb: "add" | "replace", dev: string, to: string): string {
    return `filter ${verb} dev ${dev} ingress prio ${this.#prio} handle ${TC_BYPASS_HANDLE} protocol all u32 match u32 0 0 action mirred egress redirect dev ${to}`;
  }

  /** The whole switch batch for inline or bypass (exactly two filter replaces). */
  switchBatch(mode: "inline" | "bypass"): string {
    const [a, b] = this.ports;
    const [ea, eb] = this.engine;
    return mode === "inline"
      ? `${this.filterLine("replace", a, ea)}\n${this.filterLine("replace", b, eb)}\n`
      : `${this.filterLine("replace", a, b)}\n${this.filterLine("replace", b, a)}\n`;
  }

  async #jsonLines<T>(
    which: "tc" | "ip",
    cmds: string[],
    schema: z.ZodType<T>,
  ): Promise<T[]> {
    const out = await this.#tool(which, ["-j", "-batch", "-"], cmds.join("\n") + "\n");
    const lines = out.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
    if (lines.length !== cmds.length) {
      throw this.#err(
        "parse",
        `${which} -j -batch: expected ${cmds.length} JSON lines, got ${lines.length}`,
      );
    }
    return lines.map((l, i) => {
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch {
        throw this.#err("parse", `${which} "${cmds[i]}": output is not JSON: ${l.slice(0, 80)}`);
      }
      const r = schema.safeParse(v);
      if (!r.success) {
        throw this.#err("parse", `${which} "${cmds[i]}": unexpected JSON: ${r.error.message}`);
      }
      return r.data;
    });
  }

  /** Redirect target of the switch-point filter of each device (null when absent). */
  async redirects(devs: readonly string[]): Promise<Map<string, string | null>> {
    const lists = await this.#jsonLines(
      "tc",
      devs.map((d) => `filter show dev ${d} ingress`),
      filterListSchema,
    );
    const out = new Map<string, string | null>();
    devs.forEach((d, i) => {
      const f = lists[i].find((e) =>
        e.options?.fh === TC_BYPASS_HANDLE && (e.pref === undefined || e.pref === this.#prio)
      );
      const act = f?.options?.actions?.find((a) =>
        a.kind === "mirred" && a.mirred_action === "redirect"
      );
      out.set(d, act?.to_dev ?? null);
    });
    return out;
  }

  async #links(): Promise<Map<string, boolean>> {
    const raw = await this.#tool("ip", ["-j", "link", "show"]);
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw this.#err("parse", `ip -j link show: output is not JSON`);
    }
    const r = linkListSchema.safeParse(v);
    if (!r.success) throw this.#err("parse", `ip -j link show: ${r.error.message}`);
    return new Map(r.data.map((l) => [l.ifname, l.flags.includes("UP")]));
  }

  /**
   * Check the interfaces, add missing ingress qdiscs and filters. Missing switch
   * filters are installed as bypass (the power-up state); existing ones are left
   * alone, so a restart of keepwire never moves traffic.
   */
  async open(): Promise<BypassOpenReport> {
    const all = [...this.ports, ...this.engine];
    const links = await this.#links();
    const missing = all.filter((d) => !links.has(d));
    if (missing.length) {
      throw this.#err(
        "io",
        `interface(s) ${missing.join(", ")} not found${
          this.#o.netns ? ` in netns ${this.#o.netns}` : ""
        }`,
      );
    }
    const qd = await this.#jsonLines("tc", all.map((d) => `qdisc show dev ${d}`), qdiscListSchema);
    const batch: string[] = [];
    const warnings: string[] = [];
    all.forEach((d, i) => {
      if (!qd[i].some((q) => q.kind === "ingress")) batch.push(`qdisc add dev ${d} ingress`);
    });
    const red = batch.length ? new Map<string, string | null>() : await this.redirects(all);
    const [a, b] = this.ports;
    const [ea, eb] = this.engine;
    const verb = (d: string) => red.get(d) == null ? "add" : "replace";
    if (red.get(a) == null || red.get(b) == null) {
      batch.push(this.filterLine(verb(a), a, b), this.filterLine(verb(b), b, a));
      warnings.push(`installed the switch filters on ${a}/${b} in bypass (power-up state)`);
    }
    if (red.get(ea) !== a) batch.push(this.filterLine(verb(ea), ea, a));
    if (red.get(eb) !== b) batch.push(this.filterLine(verb(eb), eb, b));
    if (batch.length) await this.#tool("tc", ["-batch", "-"], batch.join("\n") + "\n");
    return { warnings };
  }

  /** inline, bypass, disconnect; nothing to provision; no card watchdog. */
  capabilities(): Promise<BypassCapabilities> {
    return Promise.resolve({
      modes: ["inline", "bypass", "disconnect"],
      policies: {
        powerOff: bypassFixedPolicy(null),
        powerUp: bypassFixedPolicy("bypass"),
        watchdogExpiry: bypassFixedPolicy(null),
      },
      watchdog: false,
      readBack: "kernel",
    });
  }

  /** From link state and the two switch-point filters. */
  async readMode(): Promise<BypassMode> {
    const [a, b] = this.ports;
    // Both reads at once: the switch's read-back latency is one exec, not two.
    const [links, red] = await Promise.all([this.#links(), this.redirects(this.ports)]);
    for (const p of this.ports) {
      if (!links.has(p)) throw this.#err("io", `interface ${p} not found`);
    }
    const up = [links.get(a), links.get(b)];
    if (!up[0] && !up[1]) return this.#lastMode = "disconnect";
    if (!up[0] || !up[1]) {
      this.#lastMode = "unknown";
      throw this.#err("inconsistent", `only one port is up (${a}: ${up[0]}, ${b}: ${up[1]})`);
    }
    const ta = red.get(a), tb = red.get(b);
    if (ta === b && tb === a) return this.#lastMode = "bypass";
    if (ta === this.engine[0] && tb === this.engine[1]) return this.#lastMode = "inline";
    this.#lastMode = "unknown";
    throw this.#err(
      "inconsistent",
      `switch filters point ${a}→${ta ?? "nothing"}, ${b}→${tb ?? "nothing"}`,
    );
  }

  /** One `tc -batch` (two filter replaces); ports brought up again after a disconnect. */
  async setMode(mode: BypassMode): Promise<void> {
    const [a, b] = this.ports;
    if (mode === "tap") throw this.#err("unsupported", "tap is not supported by the tc driver");
    if (mode === "disconnect") {
      await this.#tool("ip", ["-batch", "-"], `link set ${a} down\nlink set ${b} down\n`);
      this.#lastMode = "disconnect";
      return;
    }
    await this.#tool("tc", ["-batch", "-"], this.switchBatch(mode));
    if (this.#lastMode === "disconnect" || this.#lastMode === "unknown") {
      await this.#tool("ip", ["-batch", "-"], `link set ${a} up\nlink set ${b} up\n`);
    }
    this.#lastMode = mode;
  }

  /** Fixed: a fresh setup is bypass. */
  readPolicies(): Promise<Partial<BypassPolicies>> {
    return Promise.resolve({ powerUp: "bypass" });
  }

  /** Nothing to write; anything but bypass is refused. */
  writePolicies(p: Partial<BypassPolicies>): Promise<void> {
    for (const [k, v] of Object.entries(p)) {
      if (v !== "bypass") {
        return Promise.reject(this.#err("unsupported", `${k} is not settable for tc`));
      }
    }
    return Promise.resolve();
  }

  /** No card watchdog. */
  readWatchdog(): Promise<BypassWatchdogReading> {
    return Promise.resolve(BYPASS_NO_WATCHDOG);
  }

  /** No card watchdog. */
  armWatchdog(): Promise<number> {
    return Promise.reject(this.#err("unsupported", "the tc software bypass has no card watchdog"));
  }

  /** No card watchdog. */
  petWatchdog(): Promise<void> {
    return Promise.reject(this.#err("unsupported", "the tc software bypass has no card watchdog"));
  }

  /** No card watchdog: nothing to disarm. */
  disarmWatchdog(): Promise<void> {
    return Promise.resolve();
  }

  /** Filters stay in the kernel: the segment keeps its mode after keepwire exits. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
