/**
 * The system-call layer of the `dev` watchdog driver: open, write, ioctl and close on
 * /dev/watchdog. Deno has no ioctl, so the real calls go to libc through FFI
 * (`--allow-ffi`, included in `-A`); without FFI, {@link denoWatchdogSys} opens the
 * device with Deno.open and ioctl fails with ENOTTY (the driver then falls back to
 * sysfs). Tests pass a fake kernel implementing {@link WatchdogSys}.
 * @module
 */
import { ERRNO_NAMES } from "./ioctl.ts";

/** A failed system call with its errno. */
export class WatchdogSysError extends Error {
  /** errno value. */
  readonly errno: number;
  /** Symbolic name (EBUSY, ...) or `errno N`. */
  readonly code: string;
  /** Build from syscall name and errno. */
  constructor(syscall: string, errno: number, detail?: string) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "WatchdogSysError";
    this.errno = errno;
    this.code = code;
  }
}

/** The few system calls the driver needs; tests pass a fake kernel. */
export interface WatchdogSys {
  /** `ffi` (libc), `deno` (no ioctl) or a test name. */
  readonly kind: string;
  /** Whether ioctl works at all. */
  readonly canIoctl: boolean;
  /** open(path, O_WRONLY|O_CLOEXEC); returns a handle; throws WatchdogSysError. */
  open(path: string): number;
  /** write(fd, data); returns bytes written; throws WatchdogSysError. */
  write(fd: number, data: Uint8Array): number;
  /** ioctl(fd, request, arg) with `arg` as the in/out buffer; throws WatchdogSysError. */
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** close(fd). */
  close(fd: number): void;
}

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
let libc: Libc | null | undefined;
let libcError = "";

const O_WRONLY = 0o1;
const O_CLOEXEC = 0o2000000;
const EINTR = 4;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (Deno.build.os !== "linux") {
    libcError = `not Linux (${Deno.build.os})`;
    return null;
  }
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      libc = Deno.dlopen(name, LIBC_SYMBOLS);
      return libc;
    } catch (e) {
      libcError = (e as Error).message;
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        libcError = "FFI not permitted (run with --allow-ffi or -A)";
        break;
      }
    }
  }
  return null;
}

/** Why FFI is unavailable (after {@link libcWatchdogSys} returned null). */
export function libcUnavailableReason(): string {
  return libcError;
}

/** The real system calls through libc (FFI), or null when FFI is not available. */
export function libcWatchdogSys(): WatchdogSys | null {
  const lib = loadLibc();
  if (!lib) return null;
  const s = lib.symbols;
  const errno = (): number => {
    const p = s.__errno_location();
    return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  };
  return {
    kind: "ffi",
    canIoctl: true,
    open(path: string): number {
      const cpath = new TextEncoder().encode(path + "\0");
      for (;;) {
        const fd = s.open(cpath, O_WRONLY | O_CLOEXEC, 0);
        if (fd >= 0) return fd;
        const e = errno();
        if (e !== EINTR) throw new WatchdogSysError("open", e);
      }
    },
    write(fd: number, data: Uint8Array): number {
      for (;;) {
        const n = Number(s.write(fd, data as Uint8Array<ArrayBuffer>, BigInt(data.length)));
        if (n >= 0) return n;
        const e = errno();
        if (e !== EINTR) throw new WatchdogSysError("write", e);
      }
    },
    ioctl(fd: number, request: number, arg: Uint8Array): number {
      const r = s.ioctl(fd, BigInt(request), arg as Uint8Array<ArrayBuffer>);
      if (r < 0) throw new WatchdogSysError("ioctl", errno());
      return r;
    },
    close(fd: number): void {
      s.close(fd);
    },
  };
}

/** errno from a Deno error ("... (os error 16)"), else EIO. */
function denoErrno(e: unknown): number {
  if (e instanceof Deno.errors.NotFound) return 2;
  if (e instanceof Deno.errors.Busy) return 16;
  if (e instanceof Deno.errors.PermissionDenied) return 13;
  if (e instanceof Deno.errors.IsADirectory) return 21;
  const m = /\(os error (\d+)\)/.exec(String((e as Error)?.message ?? e));
  return m ? Number(m[1]) : 5;
}

/** System calls through Deno.open (no FFI): open, write, close work; ioctl does not. */
export function denoWatchdogSys(): WatchdogSys {
  const files = new Map<number, Deno.FsFile>();
  let next = 1;
  return {
    kind: "deno",
    canIoctl: false,
    open(path: string): number {
      try {
        const f = Deno.openSync(path, { write: true });
        files.set(next, f);
        return next++;
      } catch (e) {
        throw new WatchdogSysError("open", denoErrno(e), (e as Error).message);
      }
    },
    write(fd: number, data: Uint8Array): number {
      const f = files.get(fd);
      if (!f) throw new WatchdogSysError("write", 9);
      try {
        return f.writeSync(data);
      } catch (e) {
        throw new WatchdogSysError("write", denoErrno(e), (e as Error).message);
      }
    },
    ioctl(): number {
      throw new WatchdogSysError("ioctl", 25, `needs FFI: ${libcError || "not loaded"}`);
    },
    close(fd: number): void {
      files.get(fd)?.close();
      files.delete(fd);
    },
  };
}

/** The best available system calls: libc through FFI, else Deno.open. */
export function defaultWatchdogSys(): WatchdogSys {
  return libcWatchdogSys() ?? denoWatchdogSys();
}
