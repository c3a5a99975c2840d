/** `keepwire bundle` commands: create, info, verify, keygen. */
import type { Command } from "commander";
import { z } from "zod";
import {
  createBundle,
  generateKeyPem,
  loadKeyring,
  loadPrivateKey,
  readBundleInfo,
  STORE_SCHEMA_RE,
  verifyBundleFile,
} from "../update/bundle.ts";
import { UpdateError, type UpdateErrorCode } from "../update/errors.ts";
import { SEMVER_RE } from "../update/semver.ts";
import { SLOT_CLASS_RE, SLOT_CLASS_RULE } from "../update/names.ts";
import { CliError, EXIT, printJson } from "./common.ts";

const USAGE_CODES: UpdateErrorCode[] = ["bad_request", "bad_key"];

/** Turn an UpdateError into a CliError (bad input: exit 2, failed verification: exit 1). */
export function cliErrorOf(e: unknown): unknown {
  if (e instanceof UpdateError) {
    return new CliError(
      USAGE_CODES.includes(e.code) ? EXIT.USAGE : EXIT.FAILURE,
      `${e.message} [${e.code}]`,
    );
  }
  return e;
}

/**
 * One `--image [slotclass=]file` argument: the class (default rootfs) must match
 * the slot class pattern (a `/` before the first `=` makes the whole argument the
 * file) and the file name must be free of control characters;
 * anything else is a usage error naming the argument.
 */
export function parseImageArg(spec: string): { slotClass: string; path: string } {
  const bad = (why: string) => new CliError(EXIT.USAGE, `--image ${JSON.stringify(spec)}: ${why}`);
  let eq = spec.indexOf("=");
  if (eq >= 0 && spec.slice(0, eq).includes("/")) eq = -1; // a path with '=' in it
  const slotClass = eq >= 0 ? spec.slice(0, eq) : "rootfs";
  const path = eq >= 0 ? spec.slice(eq + 1) : spec;
  if (!SLOT_CLASS_RE.test(slotClass)) {
    throw bad(`slot class ${JSON.stringify(slotClass)} is not ${SLOT_CLASS_RULE}`);
  }
  if (path === "") throw bad("no image file after the slot class");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) throw bad("the file name contains a control character");
  return { slotClass, path };
}

const createSchema = z.strictObject({
  image: z.array(z.string().min(1)).min(1, "at least one --image"),
  compatible: z.string().min(1),
  version: z.string().regex(SEMVER_RE, "a semantic version like 1.2.3"),
  key: z.array(z.string().min(1)).min(1, "at least one --key"),
  output: z.string().min(1),
  description: z.string().optional(),
  storeSchema: z.union([z.literal("none"), z.string().regex(STORE_SCHEMA_RE, "module:version,...")])
    .optional(),
  json: z.boolean().optional(),
});

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Register `bundle create|info|verify|keygen`. */
export function registerBundleCommands(program: Command): void {
  // `bundle create --version V`: without positional options the program's own
  // -V/--version would swallow the flag wherever it appears on the line.
  program.enablePositionalOptions();
  const b = program.command("bundle").description(
    "create, inspect and verify signed update bundles (.kwb)",
  );

  b.command("create")
    .description("build a signed bundle from one or more images")
    .option(
      "--image <[slotclass=]file>",
      "image file; slot class defaults to rootfs (repeatable)",
      collect,
    )
    .option("--compatible <string>", "compatible string of the target devices")
    .option("--version <semver>", "bundle version (semantic version)")
    .option(
      "--key <key.pem>",
      "Ed25519 private key, PEM PKCS#8 (repeatable: several signatures)",
      collect,
    )
    .option("-o, --output <file.kwb>", "output bundle")
    .option("--description <text>", "free text stored in the manifest")
    .option(
      "--store-schema <module:version,...|none>",
      "store schema of the code in the images (default: this keepwire's own, which is right " +
        "when the bundle is made by the keepwire it ships); none: not declared (a rolling " +
        "upgrade refuses the bundle)",
    )
    .option("--json", "print the manifest as JSON")
    .action(async (raw: Record<string, unknown>) => {
      const r = createSchema.safeParse(raw);
      if (!r.success) {
        throw new CliError(
          EXIT.USAGE,
          `bundle create: ${
            r.error.issues.map((i) =>
              `--${String(i.path[0]).replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}: ${i.message}`
            ).join("; ")
          }`,
        );
      }
      const o = r.data;
      try {
        const keys = [];
        for (const k of o.key) keys.push(await loadPrivateKey(k));
        const images = o.image.map(parseImageArg);
        const storeSchema = o.storeSchema === "none"
          ? undefined
          : o.storeSchema ?? (await import("../update/bundle_schema.ts")).codeStoreSchema();
        const manifest = await createBundle({
          images,
          compatible: o.compatible,
          version: o.version,
          keys,
          out: o.output,
          description: o.description,
          storeSchema,
        });
        if (o.json) return printJson(manifest);
        console.log(
          `${o.output}: ${manifest.compatible} ${manifest.version}, signed by ${
            keys.map((k) => k.keyId).join(", ")
          }`,
        );
        for (const i of manifest.images) {
          console.log(`  ${i.slotClass}: ${i.filename} ${mib(i.size)} sha256 ${i.sha256}`);
        }
        console.log(`  store schema: ${manifest.storeSchema ?? "(not declared)"}`);
      } catch (e) {
        throw cliErrorOf(e);
      }
    });

  b.command("info")
    .description("show a bundle's manifest (NOT verified; use verify)")
    .argument("<file>", "bundle")
    .option("--json", "print JSON")
    .action(async (file: string, opts: { json?: boolean }) => {
      try {
        const i = await readBundleInfo(file);
        const out = {
          file,
          size: i.fileSize,
          signedBy: i.keyIds,
          verified: false,
          manifest: i.manifest,
        };
        if (opts.json) return printJson(out);
        const m = i.manifest;
        console.log(`${file}: keepwire bundle (format ${m.format}), not verified`);
        console.log(`  compatible  ${m.compatible}`);
        console.log(`  version     ${m.version}`);
        console.log(`  built       ${m.buildTime}`);
        if (m.description) console.log(`  description ${m.description}`);
        console.log(`  store schema ${m.storeSchema ?? "(not declared)"}`);
        console.log(`  signed by   ${i.keyIds.length ? i.keyIds.join(", ") : "(unsigned)"}`);
        for (const img of m.images) {
          console.log(
            `  image       ${img.slotClass}: ${img.filename} ${mib(img.size)} sha256 ${img.sha256}`,
          );
        }
        if (m.hooks?.postInstall) {
          console.log(`  hook        post-install: ${m.hooks.postInstall.command.join(" ")}`);
        }
      } catch (e) {
        throw cliErrorOf(e);
      }
    });

  b.command("verify")
    .description("verify signature and every payload against a keyring; exit 1 when it fails")
    .argument("<file>", "bundle")
    .requiredOption("--keyring <pub.pem>", "PEM file with one or more Ed25519 public keys")
    .option("--json", "print JSON")
    .action(async (file: string, opts: { keyring: string; json?: boolean }) => {
      try {
        const ring = await loadKeyring(opts.keyring);
        const r = await verifyBundleFile(file, ring);
        if (opts.json) {
          return printJson({ file, ok: true, keyId: r.keyId, size: r.size, manifest: r.manifest });
        }
        console.log(
          `${file}: OK — ${r.manifest.compatible} ${r.manifest.version}, signed by ${r.keyId}, ${r.manifest.images.length} image(s) verified`,
        );
      } catch (e) {
        throw cliErrorOf(e);
      }
    });

  b.command("keygen")
    .description("generate an Ed25519 key pair (PEM, same as openssl genpkey -algorithm ed25519)")
    .requiredOption("--private <file>", "private key output (mode 0600)")
    .requiredOption("--public <file>", "public key output (for the keyring)")
    .action(async (opts: { private: string; public: string }) => {
      const k = await generateKeyPem();
      await Deno.writeTextFile(opts.private, k.privatePem, { mode: 0o600, createNew: true }).catch(
        (e) => {
          throw new CliError(EXIT.FAILURE, `cannot write ${opts.private}: ${(e as Error).message}`);
        },
      );
      await Deno.writeTextFile(opts.public, k.publicPem);
      const ring = await loadKeyring(opts.public);
      console.log(`key ${ring[0].keyId}: private ${opts.private}, public ${opts.public}`);
    });
}
