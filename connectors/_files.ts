/**
 * Files under FILES_DIR: the only place CSV sources may read from and uploads land.
 *
 * A source names a path relative to the directory. The name is checked as written (not
 * absolute, no `..`), then its real path (every symlink followed) must still lie inside the
 * real files directory, so a link planted inside that points outside is refused too.
 */
import { isAbsolute, join, relative, sep } from "node:path";
import type { ConnectorError, Result } from "./types.ts";

export type ResolvedFile = {
  /** The real path to open (symlinks resolved, inside the files directory). */
  path: string;
  /** The path as configured, relative to the files directory. */
  relativePath: string;
  size: number;
  modifiedAt: Date | null;
};

const FIELD = "configuration.filePath";

function refused(message: string, hint: string): { ok: false; error: ConnectorError } {
  return { ok: false, error: { code: "INVALID_CONFIG", message, hint, field: FIELD } };
}

function missing(relativePath: string): { ok: false; error: ConnectorError } {
  return {
    ok: false,
    error: {
      code: "RESOURCE_NOT_FOUND",
      message: `No file "${relativePath}" in the files directory`,
      hint: "Check the file path, or upload the file",
      field: FIELD,
    },
  };
}

/** True when `inner` is `root` or lies below it (both real, absolute paths). */
export function isInside(root: string, inner: string): boolean {
  const rel = relative(root, inner);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** Why a relative path as written cannot name a file in the files directory, if it cannot. */
export function pathProblem(relativePath: string): string | null {
  if (relativePath.trim() === "") return "The file path is empty";
  if (relativePath.includes("\0")) return "The file path contains a NUL character";
  if (
    isAbsolute(relativePath) || /^[A-Za-z]:/.test(relativePath) || relativePath.startsWith("\\")
  ) {
    return "The file path must be relative to the files directory, not absolute";
  }
  if (relativePath.split(/[\\/]/).includes("..")) return "The file path must not contain ..";
  return null;
}

/**
 * Resolves a configured path to a regular file inside the files directory, or says why not:
 * INVALID_CONFIG for an escape or a directory, RESOURCE_NOT_FOUND when nothing is there.
 */
export async function resolveInFilesDir(
  filesDir: string,
  relativePath: string,
): Promise<Result<ResolvedFile>> {
  const problem = pathProblem(relativePath);
  if (problem) {
    return refused(problem, "Name a file inside the files directory, such as exports/data.csv");
  }
  let root: string;
  try {
    root = await Deno.realPath(filesDir);
  } catch {
    return {
      ok: false,
      error: {
        code: "RESOURCE_NOT_FOUND",
        message: "The files directory does not exist on the server",
        hint: "Upload a file first, or check FILES_DIR on the server",
        field: FIELD,
      },
    };
  }
  let real: string;
  try {
    real = await Deno.realPath(join(root, relativePath));
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) {
      return {
        ok: false,
        error: {
          code: "PERMISSION_DENIED",
          message: `The server may not read "${relativePath}"`,
          hint: "Check the file's permissions",
          field: FIELD,
        },
      };
    }
    return missing(relativePath);
  }
  if (!isInside(root, real)) {
    return refused(
      `"${relativePath}" leads outside the files directory`,
      "Only files inside the files directory can be read; copy the file there instead of linking",
    );
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(real);
  } catch {
    // Removed between the two calls.
    return missing(relativePath);
  }
  if (!info.isFile) {
    return refused(`"${relativePath}" is not a file`, "Name a file, not a directory");
  }
  return {
    ok: true,
    value: { path: real, relativePath, size: info.size, modifiedAt: info.mtime },
  };
}
