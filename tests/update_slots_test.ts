/** Slots: booted slot from launcher / cmdline / config / boot env; the target is always the other slot. */
import { validateConfig } from "../mod/config/mod.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { bootnames, detectBooted, otherSlot, slotFromCmdline } from "../mod/update/slots.ts";
import { assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";

const ISSUE_CONFIG =
  `{"update":{"compatible":"acme-gw","keyring":"/etc/keepwire/pub.pem","bootedSlot":"A","bootloader":{"backend":"grubenv","file":"/boot/grub/grubenv"},"slots":{"rootfs":{"a":{"device":"/dev/sda2","bootname":"A"},"b":{"device":"/dev/sda3","bootname":"B"}}}}}`;

Deno.test("slots: the issue's config as is; defaults of the new fields", () => {
  const c = validateConfig(JSON.parse(ISSUE_CONFIG)).update;
  assertEquals([c.activation.mode, c.allowDowngrade, c.activation.tries, c.download.retries], [
    "reboot",
    false,
    3,
    10,
  ]);
  assertEquals(otherSlot(c, "A"), "B");
  assertEquals(otherSlot(c, "B"), "A");
});

Deno.test("slots: kernel command line keepwire.slot= wins over rauc.slot=", () => {
  assertEquals(slotFromCmdline("BOOT_IMAGE=/vmlinuz root=/dev/sda2 rauc.slot=A quiet"), "A");
  assertEquals(slotFromCmdline("rauc.slot=A keepwire.slot=B"), "B");
  assertEquals(slotFromCmdline("keepwire.slot=B rauc.slot=A"), "B");
  assertEquals(slotFromCmdline("root=/dev/sda2 quiet"), null);
});

Deno.test("slots: booted from launcher env, cmdline, config, boot env — in that order", async () => {
  const base = JSON.parse(ISSUE_CONFIG).update;
  const c = updateConfigSchema.parse(base);
  const none = () => Promise.resolve(null);
  assertEquals(
    await detectBooted(c, {
      env: { KEEPWIRE_SLOT: "B" },
      readCmdline: () => Promise.resolve("rauc.slot=A"),
    }),
    { bootname: "B", source: "launcher" },
  );
  assertEquals(
    await detectBooted(c, { env: {}, readCmdline: () => Promise.resolve("keepwire.slot=B") }),
    { bootname: "B", source: "cmdline" },
  );
  assertEquals(await detectBooted(c, { env: {}, readCmdline: none }), {
    bootname: "A",
    source: "config",
  });
  const noCfg = updateConfigSchema.parse({ ...base, bootedSlot: undefined });
  assertEquals(
    await detectBooted(noCfg, {
      env: {},
      readCmdline: none,
      bootEnvBooted: () => Promise.resolve("B"),
    }),
    { bootname: "B", source: "bootenv" },
  );
  await assertRejects(
    () => detectBooted(noCfg, { env: {}, readCmdline: none }),
    UpdateError,
    "cannot tell the booted slot",
  );
  await assertRejects(
    () => detectBooted(c, { env: {}, readCmdline: () => Promise.resolve("rauc.slot=C") }),
    UpdateError,
    `"C" (from cmdline) is none of the configured bootnames`,
  );
});

Deno.test("slots: slot classes must agree on the two bootnames (the schema refuses, bootnames() too)", () => {
  const mismatched = {
    rootfs: {
      a: { device: "/dev/sda2", bootname: "A" },
      b: { device: "/dev/sda3", bootname: "B" },
    },
    app: { a: { device: "/dev/sda5", bootname: "A" }, b: { device: "/dev/sda6", bootname: "C" } },
  };
  const same = { rootfs: { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "A" } } };
  assertEquals(updateConfigSchema.safeParse({ slots: mismatched }).success, false);
  assertEquals(updateConfigSchema.safeParse({ slots: same }).success, false);
  // a config built in code (not through the schema) is still refused where it is used
  const base = updateConfigSchema.parse({});
  assertThrows(
    () => bootnames({ ...base, slots: mismatched }),
    UpdateError,
    "update.slots.app: bootnames A/C differ from A/B",
  );
  assertThrows(() => bootnames({ ...base, slots: same }), UpdateError, "same bootname A");
});
