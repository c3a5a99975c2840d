/**
 * GPIO driver with fake libgpiod tools on PATH, one set with v1 syntax and one
 * with v2 syntax. Each fake rejects the other version's options, keeps a driven
 * line only while its process lives (like the GPIO character device) and logs
 * its arguments. A status line can mirror the relay line or be stuck.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { GpioBypassDriver } from "../hw/bypass/gpio.ts";
import { BypassDriverError } from "../hw/bypass/types.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { createBypassModule } from "../mod/bypass/mod.ts";

const COMMON_HOLD = `
chipdir="$FAKE_GPIO_DIR/$chip"
[ -d "$chipdir" ] || { echo "gpioset: cannot find GPIO chip $chip" >&2; exit 1; }
for kv in "$@"; do
  off="\${kv%%=*}"
  if [ -e "$chipdir/$off.busy" ] || [ -e "$chipdir/$off.held" ]; then
    echo "gpioset: unable to request lines on chip $chip: Device or resource busy" >&2; exit 1
  fi
done
for kv in "$@"; do
  off="\${kv%%=*}"; val="\${kv#*=}"
  echo "$val" > "$chipdir/$off"; echo $$ > "$chipdir/$off.held"
done
sp=""
release() {
  for kv in "$@"; do off="\${kv%%=*}"; rm -f "$chipdir/$off" "$chipdir/$off.held"; done
  [ -n "$sp" ] && kill $sp 2>/dev/null
  exit 0
}
trap 'release "$@"' TERM INT
[ "$hold" = 1 ] || release "$@"
sleep 100000 & sp=$!
wait $sp
`;

const GPIOSET_V1 = `#!/bin/sh
echo "gpioset $*" >> "$FAKE_GPIO_DIR/calls"
case "$1" in -v|--version) echo "gpioset (libgpiod) v1.6.3"; echo "Copyright (C) 2017-2018 Bartosz Golaszewski"; exit 0;; esac
hold=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mode=signal) hold=1; shift;;
    --mode=*) shift;;
    -l|--active-low) shift;;
    -*) echo "gpioset: invalid option -- '$1'" >&2; exit 1;;
    *) break;;
  esac
done
chip="$1"; shift
${COMMON_HOLD}`;

const GPIOSET_V2 = `#!/bin/sh
echo "gpioset $*" >> "$FAKE_GPIO_DIR/calls"
case "$1" in -v|--version) echo "gpioset (libgpiod) v2.1.1"; exit 0;; esac
hold=1; chip=""
while [ $# -gt 0 ]; do
  case "$1" in
    -c|--chip) chip="$2"; shift 2;;
    -C|--consumer) shift 2;;
    -l|--active-low) shift;;
    -*) echo "gpioset: unrecognized option '$1'" >&2; exit 1;;
    *) break;;
  esac
done
[ -n "$chip" ] || chip=gpiochip0
${COMMON_HOLD}`;

const READ_LINE = `
chipdir="$FAKE_GPIO_DIR/$chip"
[ -d "$chipdir" ] || { echo "gpioget: cannot find GPIO chip $chip" >&2; exit 1; }
if [ -f "$chipdir/$line.stuck" ]; then v=$(cat "$chipdir/$line.stuck")
elif [ -f "$chipdir/$line.mirror" ]; then m=$(cat "$chipdir/$line.mirror"); v=$(cat "$chipdir/$m" 2>/dev/null || echo 0)
else v=0; fi
`;

const GPIOGET_V1 = `#!/bin/sh
echo "gpioget $*" >> "$FAKE_GPIO_DIR/calls"
case "$1" in -v|--version) echo "gpioget (libgpiod) v1.6.3"; exit 0;; esac
while [ $# -gt 0 ]; do case "$1" in -l|--active-low) shift;; -*) echo "gpioget: invalid option -- '$1'" >&2; exit 1;; *) break;; esac; done
chip="$1"; line="$2"
${READ_LINE}
echo "$v"
`;

const GPIOGET_V2 = `#!/bin/sh
echo "gpioget $*" >> "$FAKE_GPIO_DIR/calls"
case "$1" in -v|--version) echo "gpioget (libgpiod) v2.1.1"; exit 0;; esac
numeric=0; chip=gpiochip0
while [ $# -gt 0 ]; do
  case "$1" in
    -c|--chip) chip="$2"; shift 2;;
    --numeric) numeric=1; shift;;
    -l|--active-low|-a|--as-is) shift;;
    -*) echo "gpioget: unrecognized option '$1'" >&2; exit 1;;
    *) break;;
  esac
done
line="$1"
${READ_LINE}
if [ $numeric = 1 ]; then echo "$v"; else [ "$v" = 1 ] && echo "\\"$line\\"=active" || echo "\\"$line\\"=inactive"; fi
`;

interface FakeGpio {
  dir: string;
  env: Record<string, string>;
  chip: string;
  calls(): Promise<string[]>;
  exists(f: string): Promise<boolean>;
  write(f: string, v: string): Promise<void>;
  close(): Promise<void>;
}

async function fakeGpio(version: 1 | 2): Promise<FakeGpio> {
  const dir = await Deno.makeTempDir({ prefix: `kw-gpio-v${version}-` });
  const bin = join(dir, "bin");
  const chipdir = join(dir, "gpiochip0");
  await Deno.mkdir(bin);
  await Deno.mkdir(chipdir);
  await Deno.writeTextFile(join(bin, "gpioset"), version === 1 ? GPIOSET_V1 : GPIOSET_V2, {
    mode: 0o755,
  });
  await Deno.writeTextFile(join(bin, "gpioget"), version === 1 ? GPIOGET_V1 : GPIOGET_V2, {
    mode: 0o755,
  });
  await Deno.writeTextFile(join(dir, "calls"), "");
  return {
    dir,
    chip: "gpiochip0",
    env: { PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`, FAKE_GPIO_DIR: dir },
    calls: async () =>
      (await Deno.readTextFile(join(dir, "calls"))).split("\n").filter((l) => l.length > 0),
    exists: async (f) => {
      try {
        await Deno.stat(join(chipdir, f));
        return true;
      } catch {
        return false;
      }
    },
    write: (f, v) => Deno.writeTextFile(join(chipdir, f), v),
    close: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("gpio v1: detected; inline = a gpioset --mode=signal holder; bypass = released line", async () => {
  const g = await fakeGpio(1);
  const d = new GpioBypassDriver({
    ports: ["eth2", "eth3"],
    chip: "gpiochip0",
    line: 17,
    env: g.env,
  });
  try {
    const rep = await d.open();
    assertEquals(d.version, 1);
    assertStringIncludes(rep.warnings[0], "no statusLine");
    assertEquals(await d.readMode(), "bypass", "nothing held = released = bypass");
    await d.setMode("inline");
    assert(d.holderPid !== null);
    assert(await g.exists("17.held"));
    assertEquals(await d.readMode(), "inline");
    await d.setMode("inline"); // no second holder
    await d.setMode("bypass");
    assertEquals(d.holderPid, null);
    assertEquals(await g.exists("17"), false, "line released");
    assertEquals(await d.readMode(), "bypass");
    const calls = await g.calls();
    assertEquals(calls, [
      "gpioset --version",
      "gpioset --mode=signal gpiochip0 17=1",
    ]);
    await assertRejects(() => d.setMode("disconnect"), BypassDriverError, "gpio.disconnectLine");
  } finally {
    await d.close();
    await g.close();
  }
});

Deno.test("gpio v2: -c/-C syntax, status line read with --numeric, disconnect line", async () => {
  const g = await fakeGpio(2);
  await g.write("20.mirror", "17");
  const d = new GpioBypassDriver({
    ports: ["eth2", "eth3"],
    chip: "gpiochip0",
    line: 17,
    disconnectLine: 18,
    statusLine: 20,
    activeLow: true,
    env: g.env,
  });
  try {
    const rep = await d.open();
    assertEquals(d.version, 2);
    assertEquals(rep.warnings, []);
    assertEquals((await d.capabilities()).modes, ["inline", "bypass", "disconnect"]);
    assertEquals((await d.capabilities()).readBack, "hardware");
    assertEquals(await d.readMode(), "bypass");
    await d.setMode("inline");
    assertEquals(await d.readMode(), "inline", "status line follows the relay");
    await d.setMode("disconnect");
    assertEquals(await g.exists("17"), false);
    assert(await g.exists("18.held"));
    assertEquals(await d.readMode(), "disconnect");
    await d.close();
    assertEquals(await g.exists("18"), false, "close releases every line");
    const calls = await g.calls();
    assertEquals(calls.filter((c) => c.startsWith("gpioset -c")), [
      "gpioset -c gpiochip0 -C keepwire --active-low 17=1",
      "gpioset -c gpiochip0 -C keepwire --active-low 18=1",
    ]);
    assert(calls.includes("gpioget -c gpiochip0 --numeric 20"));
  } finally {
    await d.close();
    await g.close();
  }
});

Deno.test("gpio: a busy line, a name on v1 and a missing tool are clear errors", async () => {
  const g = await fakeGpio(1);
  try {
    await g.write("17.busy", "");
    const d = new GpioBypassDriver({ ports: ["a", "b"], chip: "gpiochip0", line: 17, env: g.env });
    const e = await assertRejects(() => d.setMode("inline"), BypassDriverError, "exited at once");
    assertStringIncludes(e.message, "Device or resource busy");
    assertEquals(await d.readMode(), "bypass");
    const named = new GpioBypassDriver({
      ports: ["a", "b"],
      chip: "gpiochip0",
      line: "RELAY",
      env: g.env,
    });
    await assertRejects(() => named.open(), BypassDriverError, "libgpiod v1 needs line offsets");
    const none = new GpioBypassDriver({
      ports: ["a", "b"],
      chip: "gpiochip0",
      line: 17,
      gpioset: "/nonexistent/gpioset",
      env: g.env,
    });
    await assertRejects(() => none.open(), BypassDriverError, "/nonexistent/gpioset --version");
  } finally {
    await g.close();
  }
});

Deno.test("gpio: the module sees a dead holder as bypass and a stuck relay as unknown", async () => {
  const g = await fakeGpio(2);
  await g.write("20.mirror", "17");
  const store = new Store({ path: ":memory:" });
  const bus = new EventBus({ journal: store });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { module: "bypass" });
  const config = validateConfig({
    hardware: {
      bypass: {
        segments: [{
          name: "lan",
          ports: ["eth2", "eth3"],
          driver: "gpio",
          gpio: { chip: "gpiochip0", line: 17, statusLine: 20, settleMs: 50 },
        }],
        pollMs: 600_000,
        retry: { initialMs: 600_000, maxMs: 600_000 },
      },
    },
  });
  const mod = createBypassModule({ config, store, bus, clock: systemClock }, {
    driverDeps: { env: g.env },
  });
  try {
    await mod.start();
    assertEquals(mod.segments()[0].mode, "inline");
    // The holder dies (operator, OOM killer): the line is released → bypass.
    const pid = Number((await Deno.readTextFile(join(g.dir, "gpiochip0", "17.held"))).trim());
    Deno.kill(pid, "SIGTERM");
    for (let i = 0; i < 250 && await g.exists("17.held"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(await g.exists("17"), false, "released");
    await new Promise((r) => setTimeout(r, 50));
    await mod.pollNow();
    assertEquals(events.filter((e) => e.kind === "bypass.mode_drift").length, 1);
    assertEquals(mod.segments()[0].mode, "inline", "a new holder was started");
    // A welded relay: the status line stays at bypass whatever we drive.
    await g.write("20.stuck", "0");
    await mod.pollNow();
    const s = mod.segments()[0];
    assertEquals(s.mode, "unknown");
    assertEquals(s.readBack, "bypass");
    const failed = events.filter((e) => e.kind === "bypass.switch_failed");
    assertEquals(failed.length, 1);
    assertEquals(failed[0].payload.wanted, "inline");
  } finally {
    await mod.stop();
    store.close();
    await g.close();
  }
});
