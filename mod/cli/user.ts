/**
 * `keepwire user` and `keepwire token`: accounts and API tokens, written straight
 * into the store of a data directory (works with or without a running daemon;
 * SQLite in WAL mode lets both write).
 * @module
 */
import type { Command } from "commander";
import { join } from "node:path";
import { z } from "zod";
import { Store } from "../store/mod.ts";
import { EventBus } from "../events/mod.ts";
import {
  parseDuration,
  passwordSchema,
  type Role,
  roleSchema,
  usernameSchema,
  Users,
} from "../web/users.ts";
import type {} from "../web/events.ts";
import { launcherName, shellWord } from "../log/announce.ts";
import { knownDaemons, otherDataDirWarning } from "./daemons.ts";
import {
  CliError,
  commandConfig,
  commandDataDir,
  type CommonOpts,
  EXIT,
  printJson,
} from "./common.ts";

async function withUsers<T>(
  opts: CommonOpts,
  fn: (u: Users, bus: EventBus) => Promise<T> | T,
): Promise<T> {
  const dataDir = await commandDataDir(opts);
  await Deno.mkdir(dataDir, { recursive: true });
  const store = new Store({ path: join(dataDir, "keepwire.db") });
  const bus = new EventBus({ journal: store });
  try {
    return await fn(new Users(store), bus);
  } finally {
    store.close();
  }
}

function check<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    throw new CliError(EXIT.USAGE, `${what}: ${r.error.issues.map((i) => i.message).join("; ")}`);
  }
  return r.data;
}

async function readStdinLine(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) chunks.push(c);
  const text = new TextDecoder().decode(
    chunks.reduce((a, b) => {
      const o = new Uint8Array(a.length + b.length);
      o.set(a);
      o.set(b, a.length);
      return o;
    }, new Uint8Array()),
  );
  return text.replace(/\r?\n$/, "");
}

async function promptHidden(question: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new CliError(EXIT.USAGE, "no terminal to ask for a password: use --password-stdin");
  }
  await Deno.stdout.write(new TextEncoder().encode(question));
  Deno.stdin.setRaw(true);
  const buf = new Uint8Array(1);
  let out = "";
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const ch = buf[0];
      if (ch === 3) throw new CliError(EXIT.FAILURE, "cancelled");
      if (ch === 13 || ch === 10) break;
      if (ch === 127 || ch === 8) out = out.slice(0, -1);
      else out += String.fromCharCode(ch);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(new TextEncoder().encode("\n"));
  }
  return out;
}

/** Register `user` and `token` commands. */
export function registerUserCommands(program: Command): void {
  const user = program.command("user").description("administrator and viewer accounts");
  user.command("passwd")
    .description("set a user's password (creates the user; the first one is admin)")
    .argument("<name>", "user name")
    .option("--password-stdin", "read the password from standard input")
    .option("--role <role>", "admin or viewer (default: admin for a new user, else unchanged)")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (name: string, opts: CommonOpts & { passwordStdin?: boolean; role?: string }) => {
      check(usernameSchema, name, "user name");
      const role = opts.role ? check(roleSchema, opts.role, "--role") as Role : undefined;
      const warning = otherDataDirWarning(
        await commandDataDir(opts),
        (dir) => `${shellWord(launcherName())} user passwd ${name} --data ${shellWord(dir)}`,
        await knownDaemons((await commandConfig({ config: opts.config })).dataDir),
      );
      if (warning) console.error(`keepwire: ${warning}`);
      let pw: string;
      if (opts.passwordStdin) pw = await readStdinLine();
      else {
        pw = await promptHidden(`New password for ${name}: `);
        const again = await promptHidden("Again: ");
        if (again !== pw) throw new CliError(EXIT.USAGE, "the passwords differ");
      }
      check(passwordSchema, pw, "password");
      await withUsers(opts, async (users, bus) => {
        const existed = !!users.get(name);
        const u = await users.setPassword(name, pw, role);
        const payload = { user: u.name, role: u.role, by: "console" };
        if (existed) {
          bus.publish({
            module: "auth",
            kind: "auth.password_changed",
            severity: "notice",
            payload,
          });
        } else {
          bus.publish({ module: "auth", kind: "auth.user_created", severity: "notice", payload });
        }
        console.log(`${existed ? "password changed for" : "created"} ${u.name} (${u.role})`);
      });
    });
  user.command("list")
    .description("list users")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action((opts: CommonOpts & { json?: boolean }) =>
      withUsers(opts, (users) => {
        const list = users.list();
        if (opts.json) return printJson({ users: list });
        for (const u of list) console.log(`${u.name}\t${u.role}`);
      })
    );
  user.command("delete")
    .description("delete a user (never the last admin)")
    .argument("<name>", "user name")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action((name: string, opts: CommonOpts) =>
      withUsers(opts, (users) => {
        try {
          if (!users.delete(name)) throw new CliError(EXIT.FAILURE, `no user ${name}`);
        } catch (e) {
          if (e instanceof CliError) throw e;
          throw new CliError(EXIT.FAILURE, (e as Error).message);
        }
        console.log(`deleted ${name}`);
      })
    );

  const token = program.command("token").description("API tokens (Authorization: Bearer)");
  token.command("create")
    .description("create an API token and print it once (it is stored hashed)")
    .requiredOption("--name <name>", "token name")
    .option("--role <role>", "admin or viewer", "viewer")
    .option("--expires <duration>", "stop working after this long: 30d, 12h, 45m (default: never)")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action((
      opts: CommonOpts & { name: string; role: string; expires?: string; json?: boolean },
    ) => {
      const role = check(roleSchema, opts.role, "--role") as Role;
      let expiresInMs: number | undefined;
      if (opts.expires !== undefined) {
        try {
          expiresInMs = parseDuration(opts.expires);
        } catch (e) {
          throw new CliError(EXIT.USAGE, `--expires: ${(e as Error).message}`);
        }
      }
      return withUsers(opts, (users, bus) => {
        let r;
        try {
          r = users.createToken(opts.name, role, { expiresInMs });
        } catch (e) {
          throw new CliError(EXIT.USAGE, (e as Error).message);
        }
        bus.publish({
          module: "auth",
          kind: "auth.token_created",
          severity: "notice",
          payload: { token: opts.name, role, by: "console", expires: r.info.expires },
        });
        if (opts.json) printJson({ token: r.token, ...r.info });
        else console.log(r.token);
      });
    });
  token.command("list")
    .description("list API tokens (never their secrets)")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action((opts: CommonOpts & { json?: boolean }) =>
      withUsers(opts, (users) => {
        const list = users.tokens();
        if (opts.json) return printJson({ tokens: list });
        for (const t of list) {
          const exp = t.expires === null ? "never" : new Date(t.expires).toISOString();
          console.log(`${t.id}\t${t.name}\t${t.role}\texpires ${exp}`);
        }
      })
    );
  token.command("revoke")
    .description("revoke a token by id or name")
    .argument("<token>", "id or name")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action((id: string, opts: CommonOpts) =>
      withUsers(opts, (users, bus) => {
        if (!users.revokeToken(id)) throw new CliError(EXIT.FAILURE, `no token ${id}`);
        bus.publish({
          module: "auth",
          kind: "auth.token_revoked",
          severity: "notice",
          payload: { token: id, by: "console" },
        });
        console.log(`revoked ${id}`);
      })
    );
}
