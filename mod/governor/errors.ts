/**
 * Errors of the governor: a bad replay trace and an unusable trace file.
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** A trace line that is not valid; `line` is 1-based. */
export class TraceError extends KeepwireError {
  /** 1-based line number. */
  readonly line: number;
  /** Build. */
  constructor(line: number, message: string) {
    super(400, "trace_invalid", `line ${line}: ${message}`);
    this.line = line;
  }
}

/** `governor.traceFile` cannot be opened for appending. */
export class TraceFileError extends KeepwireError {
  /** Build. */
  constructor(path: string, cause: unknown) {
    super(
      500,
      "trace_file_unusable",
      `governor.traceFile: cannot open ${path}: ${cause instanceof Error ? cause.message : cause}`,
      { cause },
    );
  }
}
