/**
 * `--output-dir DIR` (like Ansible's `-t`): one file per node, written the moment the node
 * finishes — `<node>.json` holds the node's result exactly as in the `nodes` array of the
 * `rune-run-result/v1` document, `<node>.stderr.txt` the captured stderr tail when there is one.
 *
 * Node names come from inventories and the command line, and a name is not a path: every file
 * name is derived from the node name by {@link nodeFileStem}, which keeps only characters that
 * cannot form a path (no `/`, no leading `.`, no control characters) and marks every name it had
 * to change with a digest, so two nodes never share a file and no name leaves DIR. DIR is
 * created 0700 (files 0600): results can hold what a plugin found on a node. An existing DIR
 * that others may write to is refused, since they could plant links where RUNE writes; files are
 * opened with O_NOFOLLOW all the same.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { NodeRunResult } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';

/** Longest part of a node name kept in a file name. */
const MAX_STEM = 100;

/**
 * The file name stem for `node`: the name itself when it is made only of `[A-Za-z0-9._@-]`, does
 * not start with `.` and is at most {@link MAX_STEM} long; otherwise those characters (others
 * replaced by `_`), cut, plus `-` and 12 hex digits of the sha256 of the name.
 */
export function nodeFileStem(node: string): string {
  const cleaned = node
    .replace(/[^A-Za-z0-9._@-]/g, '_')
    .replace(/^\./, '_')
    .slice(0, MAX_STEM);
  if (cleaned === node && node !== '') return node;
  return `${cleaned === '' ? 'node' : cleaned}-${sha256Hex(node).slice(0, 12)}`;
}

/** Writes the per-node files of one run. */
export interface NodeOutputWriter {
  /** The directory, absolute. */
  readonly dir: string;
  /** How many nodes were written. */
  readonly written: number;
  /** Writes the files of one finished node; failures go to `onWarning`, never throw. */
  write(result: NodeRunResult): void;
}

const FILE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0);

function writeFile(path: string, text: string): void {
  const fd = openSync(path, FILE_FLAGS, 0o600);
  try {
    // An existing file keeps its mode through O_TRUNC: refuse anything but a regular file.
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

const dirError = (dir: string, why: string, cause?: unknown): RuneError =>
  new RuneError('INVALID_ARGUMENT', `--output-dir ${dir}: ${why}`, {
    source: { component: 'rune-cli' },
    details: { output_dir: dir },
    ...(cause === undefined ? {} : { cause }),
  });

/**
 * Creates (0700) or checks `dir` and returns the writer. Throws INVALID_ARGUMENT when it cannot
 * be created, is not a directory, or is writable by group or others.
 */
export function createNodeOutputWriter(
  dir: string,
  onWarning: (message: string) => void,
): NodeOutputWriter {
  const absolute = resolve(dir);
  try {
    mkdirSync(absolute, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw dirError(dir, `cannot create it (${(error as NodeJS.ErrnoException).code})`, error);
  }
  const stat = lstatSync(absolute);
  if (!stat.isDirectory()) throw dirError(dir, 'is not a directory');
  if ((stat.mode & 0o022) !== 0) {
    throw dirError(
      dir,
      `is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}); use a private directory (chmod 700)`,
    );
  }
  const used = new Map<string, string>();
  let written = 0;
  return {
    dir: absolute,
    get written() {
      return written;
    },
    write(result) {
      let stem = nodeFileStem(result.node);
      // Only a second result for the same name (or a digest collision) gets a counter.
      for (let n = 2; used.has(stem) && used.get(stem) !== result.node; n++) {
        stem = `${nodeFileStem(result.node)}-${n}`;
      }
      used.set(stem, result.node);
      try {
        writeFile(join(absolute, `${stem}.json`), `${JSON.stringify(result, null, 2)}\n`);
        if (result.stderr_tail !== '') {
          writeFile(join(absolute, `${stem}.stderr.txt`), result.stderr_tail);
        }
        written++;
      } catch (error) {
        onWarning(
          `could not write the result of ${result.node} to --output-dir ${dir}: ${(error as Error).message}`,
        );
      }
    },
  };
}

/** The line pretty output ends with: where the per-node files are. */
export function outputDirNotice(writer: NodeOutputWriter): string {
  return `results of ${writer.written} node${writer.written === 1 ? '' : 's'} written to ${writer.dir}`;
}
