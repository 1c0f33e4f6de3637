/**
 * Files for CSV sources: `POST /api/files` stores an uploaded file in FILES_DIR and answers
 * the relative path a CSV source names; `GET /api/files` lists what is there (for the
 * creation wizard's file picker).
 *
 * Uploads have their own body limit (100 MiB by default) instead of the API's 1 MiB. The
 * name is sanitized to a plain file name (no folders, no hidden files, no control
 * characters) and never replaces an existing file: a taken name gets a -2, -3, ... suffix.
 * The bytes are written to a temporary file first and linked into place, so a half-written
 * upload is never visible under its name and two uploads of one name cannot collide.
 */
import { extname, join } from "node:path";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { isInside } from "../connectors/_files.ts";
import { audit } from "./_audit.ts";
import { requireUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { ApiError, badRequest } from "./_errors.ts";

/** The largest upload accepted unless the route is given another limit. */
export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

/** What a CSV source can read; anything else is refused at upload. */
export const UPLOAD_EXTENSIONS = [".csv", ".tsv", ".txt"];

/** Longest stored name, in characters (file systems allow 255 bytes). */
const MAX_NAME_LENGTH = 120;
/** Entries `GET /api/files` lists at most. */
const MAX_LISTED = 1000;

/**
 * A safe file name from what a browser sent: the last path segment only, letters, digits,
 * spaces, dots, dashes and underscores (anything else becomes `_`), no leading dot or
 * dash, at most 120 characters with the extension kept.
 */
export function sanitizeFileName(raw: string): string {
  const lastSegment = raw.split(/[\\/]/).pop() ?? "";
  let name = lastSegment
    .normalize("NFC")
    .replace(/[\p{Cc}\p{Cf}]/gu, "")
    .replace(/[^\p{L}\p{N} ._-]/gu, "_")
    .replace(/\s+/g, " ")
    .replace(/_+/g, "_")
    .replace(/^[\s.-]+/, "")
    .trim();
  if (name.length > MAX_NAME_LENGTH) {
    const extension = extname(name).slice(0, 10);
    name = name.slice(0, MAX_NAME_LENGTH - extension.length).trimEnd() + extension;
  }
  return name;
}

/** `name-2.csv`, `name-3.csv`, ...: the n-th candidate for a taken name. */
function candidateName(name: string, attempt: number): string {
  if (attempt === 1) return name;
  const extension = extname(name);
  return `${name.slice(0, name.length - extension.length)}-${attempt}${extension}`;
}

/** Links a finished temporary file to the first free name; never replaces a file. */
async function linkToFreeName(
  directory: string,
  temporary: string,
  name: string,
): Promise<string> {
  for (let attempt = 1; attempt <= 1000; attempt++) {
    const candidate = candidateName(name, attempt);
    try {
      await Deno.link(temporary, join(directory, candidate));
      return candidate;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
  throw new ApiError(409, "CONFLICT", `Too many files named like "${name}"`);
}

/** A file in FILES_DIR, by its path relative to it. */
export type ListedFile = { path: string; size: number; modifiedAt: string | null };

/** Regular files under the directory (hidden ones and temporary uploads left out). */
async function listFiles(root: string): Promise<ListedFile[]> {
  const found: ListedFile[] = [];
  async function walk(directory: string, prefix: string) {
    for await (const entry of Deno.readDir(directory)) {
      if (found.length >= MAX_LISTED || entry.name.startsWith(".")) continue;
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        await walk(join(directory, entry.name), path);
      } else if (entry.isFile) {
        const info = await Deno.stat(join(directory, entry.name));
        found.push({ path, size: info.size, modifiedAt: info.mtime?.toISOString() ?? null });
      }
    }
  }
  await walk(root, "");
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/** What `GET /api/files` lists: the files a CSV source can name, by relative path. */
export async function listUploadedFiles(filesDir: string): Promise<ListedFile[]> {
  await Deno.mkdir(filesDir, { recursive: true });
  return await listFiles(await Deno.realPath(filesDir));
}

/** Where an upload was stored: `path` is what a CSV source names. */
export type StoredFile = { path: string; name: string; size: number; renamed: boolean };

/**
 * Stores one uploaded file in FILES_DIR under its sanitized name (never replacing a file)
 * and audits it. Both `POST /api/files` and the wizard's upload without JavaScript call
 * this. A missing file or a name that is not a CSV file name is a 400 (field `file`).
 */
export async function storeUpload(
  c: Context<AppEnv>,
  deps: AppDeps,
  file: unknown,
): Promise<StoredFile> {
  if (!(file instanceof File)) {
    throw badRequest("A file is required", [{ path: "file", message: "Required" }]);
  }
  const name = sanitizeFileName(file.name);
  if (!UPLOAD_EXTENSIONS.includes(extname(name).toLowerCase())) {
    throw badRequest(`Only ${UPLOAD_EXTENSIONS.join(", ")} files can be uploaded`, [
      { path: "file", message: `Not a ${UPLOAD_EXTENSIONS.join(", ")} file name` },
    ]);
  }

  const filesDir = deps.connectorContext.filesDir;
  await Deno.mkdir(filesDir, { recursive: true });
  const root = await Deno.realPath(filesDir);
  const temporary = join(root, `.upload-${crypto.randomUUID()}.part`);
  let stored: string;
  try {
    await Deno.writeFile(temporary, file.stream(), { createNew: true, mode: 0o640 });
    stored = await linkToFreeName(root, temporary, name);
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
  if (!isInside(root, join(root, stored))) throw new Error("upload left the files directory");

  await audit(c, deps, {
    action: "FILE_UPLOAD",
    entityType: "File",
    entityId: stored,
    outcome: "success",
    details: { size: file.size, renamed: stored !== file.name },
  });
  return { path: stored, name: stored, size: file.size, renamed: stored !== file.name };
}

export function filesApi(deps: AppDeps, options: { maxBytes?: number } = {}) {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const filesDir = deps.connectorContext.filesDir;
  const app = new Hono<AppEnv>();
  app.use(requireUser);

  app.get("/", async (c) => {
    return c.json(await listUploadedFiles(filesDir));
  });

  app.post(
    "/",
    bodyLimit({
      maxSize: maxBytes,
      onError: (c) => {
        const limit = `${Math.round((maxBytes / 1024 / 1024) * 10) / 10} MiB`;
        const body = { error: `File is larger than ${limit}`, code: "PAYLOAD_TOO_LARGE" };
        return c.json(body, 413);
      },
    }),
    async (c) => {
      if (!c.req.header("content-type")?.startsWith("multipart/form-data")) {
        throw badRequest("Send the file as multipart/form-data in a field named file", [
          { path: "file", message: "Expected a multipart upload" },
        ]);
      }
      let file: FormDataEntryValue | null;
      try {
        file = (await c.req.formData()).get("file");
      } catch {
        throw badRequest("The multipart body could not be read", [
          { path: "file", message: "Malformed multipart body" },
        ]);
      }
      return c.json(await storeUpload(c, deps, file), 201);
    },
  );

  return app;
}
