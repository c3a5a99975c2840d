/**
 * mdstat parse throughput on a 64-array /proc/mdstat (every level, flags, progress,
 * queued syncs, bitmaps, containers), next to two baselines measured in the same run:
 * a naive line split + regex scan that extracts only name/state/[n/m]/pattern, and
 * JSON.parse of the same data already serialised as JSON.
 *
 * Run standalone: `tools/deno run -A bench/mdstat.ts`.
 * @module
 */
import { parseMdstat } from "../hw/raid/mdstat.ts";
import { type BenchRow, printTable } from "./types.ts";

/** A 64-array mdstat covering the grammar (deterministic). */
export function sampleMdstat(arrays = 64): string {
  let out =
    "Personalities : [linear] [multipath] [raid0] [raid1] [raid6] [raid5] [raid4] [raid10] \n";
  for (let i = 0; i < arrays; i++) {
    const d = (k: number) => `sd${String.fromCharCode(97 + ((i + k) % 26))}${(i % 9) + 1}`;
    const name = `md${i}`;
    switch (i % 8) {
      case 0:
        out += `${name} : active raid1 ${d(0)}[0] ${d(1)}[1] ${d(2)}[2](S)\n` +
          `      976630464 blocks super 1.2 [2/2] [UU]\n` +
          `      bitmap: 2/8 pages [8KB], 65536KB chunk\n\n`;
        break;
      case 1:
        out += `${name} : active raid5 ${d(0)}[0] ${d(1)}[1] ${d(2)}[2](F) ${d(3)}[3]\n` +
          `      1953260928 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]\n` +
          `      [====>................]  recovery = 23.4% (228550144/976630464) finish=72.1min speed=172890K/sec\n` +
          `      bitmap: 4/8 pages [16KB], 65536KB chunk\n\n`;
        break;
      case 2:
        out +=
          `${name} : active raid6 ${d(0)}[0] ${d(1)}[1] ${d(2)}[2] ${d(3)}[3] ${d(4)}[4](W)\n` +
          `      2929891392 blocks super 1.2 level 6, 512k chunk, algorithm 2 [5/5] [UUUUU]\n` +
          `      [=============>.......]  check = 66.6% (650436864/976630464) finish=31.0min speed=175000K/sec\n\n`;
        break;
      case 3:
        out += `${name} : active raid10 ${d(0)}[0] ${d(1)}[1] ${d(2)}[2] ${d(3)}[3]\n` +
          `      1953260928 blocks super 1.2 512K chunks 2 near-copies [4/4] [UUUU]\n` +
          `\tresync=DELAYED\n\n`;
        break;
      case 4:
        out += `${name} : active raid0 ${d(0)}[0] ${d(1)}[1]\n` +
          `      1953260928 blocks super 1.2 512k chunks\n\n`;
        break;
      case 5:
        out += `${name} : active (auto-read-only) raid1 ${d(0)}[0] ${d(1)}[1](R) ${d(2)}[2]\n` +
          `      976630464 blocks super 1.2 [2/2] [UU]\n\tresync=PENDING\n\n`;
        break;
      case 6:
        out += `${name} : inactive ${d(0)}[0](S) ${d(1)}[1](S)\n` +
          `      10576 blocks super external:imsm\n\n`;
        break;
      default:
        out += `${name} : active linear ${d(0)}[0] ${d(1)}[1]\n` +
          `      1953260928 blocks super 1.2 64k rounding\n\n`;
    }
  }
  return out + "unused devices: <none>\n";
}

/** The naive baseline: split lines, regex out name/state and [n/m] [pattern] only. */
export function naiveScan(
  text: string,
): { name: string; state: string; n: number; m: number; pattern: string }[] {
  const out: { name: string; state: string; n: number; m: number; pattern: string }[] = [];
  for (const line of text.split("\n")) {
    const h = /^(md\S*) : (\w+)/.exec(line);
    if (h) {
      out.push({ name: h[1], state: h[2], n: 0, m: 0, pattern: "" });
      continue;
    }
    const s = /\[(\d+)\/(\d+)\] \[([U_]+)\]/.exec(line);
    if (s && out.length) {
      const a = out[out.length - 1];
      a.n = Number(s[1]);
      a.m = Number(s[2]);
      a.pattern = s[3];
    }
  }
  return out;
}

/** Runs/second of `fn` over about `budgetMs` (median of 5 rounds after a warm-up). */
function rate(fn: () => unknown, budgetMs = 250): number {
  for (let i = 0; i < 50; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < budgetMs / 5) {
      for (let i = 0; i < 20; i++) fn();
      n += 20;
      t = performance.now();
    }
    rounds.push(n / ((t - t0) / 1000));
  }
  rounds.sort((a, b) => a - b);
  return rounds[2];
}

const fmt = (x: number): string =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(1);

/** Measure. */
export function bench(): Promise<BenchRow[]> {
  const text = sampleMdstat(64);
  const parsed = parseMdstat(text);
  if (parsed.arrays.length !== 64 || parsed.unknown.length) {
    throw new Error("bench input did not parse into 64 arrays");
  }
  const json = JSON.stringify(parsed);
  const mb = new TextEncoder().encode(text).length / 1e6;
  const mbJson = new TextEncoder().encode(json).length / 1e6;
  const ours = rate(() => parseMdstat(text));
  const naive = rate(() => naiveScan(text));
  const viaJson = rate(() => JSON.parse(json));
  return Promise.resolve([
    {
      name: "mdstat parse, 64 arrays: arrays/s (baseline: naive line split + regex scan)",
      ours: fmt(ours * 64),
      baseline: fmt(naive * 64),
      ratio: (ours / naive).toFixed(2),
      target: "≥ 64k arrays/s (a 64-array poll in ≤ 1 ms)",
    },
    {
      name: "mdstat parse, 64 arrays: MB/s of mdstat text (baseline: naive scan)",
      ours: (ours * mb).toFixed(1),
      baseline: (naive * mb).toFixed(1),
      ratio: (ours / naive).toFixed(2),
    },
    {
      name: "mdstat parse, 64 arrays: arrays/s (baseline: JSON.parse of the same data)",
      ours: fmt(ours * 64),
      baseline: fmt(viaJson * 64),
      ratio: (ours / viaJson).toFixed(2),
      target: `JSON is ${(mbJson / mb).toFixed(1)}x the bytes of mdstat`,
    },
  ]);
}

if (import.meta.main) {
  printTable("mdstat", await bench());
}
