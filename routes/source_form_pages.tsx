/**
 * The creation wizard and the edit form. Both post a form generated from the type's schemas;
 * the handlers turn it into the API's input and call the same createSource / updateSource
 * the JSON API calls, mapping their error details back onto the fields. "Test connection"
 * runs the settings as typed, before anything is saved, under the API's rate limit.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { connectors } from "../connectors/mod.ts";
import { releaseSource, testSettings } from "../connectors/operations.ts";
import { resolveSettings, rowToConfig, TOP_LEVEL_FIELDS } from "../connectors/settings.ts";
import { type ConnectorSpec, UnsupportedOperationError } from "../connectors/types.ts";
import { sanitize } from "../db/data_sources.ts";
import { DATA_SOURCE_TYPES, type DataSource, type DataSourceType } from "../db/schema.ts";
import { formatBytes } from "../views/_format.ts";
import type { FieldMessages, FileChoices, SettingsFormState } from "../views/settings_form.tsx";
import {
  allFields,
  blankHeaderRows,
  defaultValues,
  fieldNamed,
  type FormValues,
  pickedFiles,
  postedSecrets,
  postedValues,
  type SettingsField,
  settingsFields,
  settingsInput,
  type SettingsMode,
  storedValues,
  uploadName,
} from "../views/settings_fields.ts";
import { SourceFormPage, type SourceFormProps, TypePickerPage } from "../views/source_form.tsx";
import {
  fieldLabels,
  HintSlots,
  type TestOutcome,
  TestResultPanel,
} from "../views/test_result.tsx";
import { audit } from "./_audit.ts";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError, issuesToDetails } from "./_errors.ts";
import { field, formBody, pageBodyLimit, seeOther, wantsFragment } from "./_pages.ts";
import {
  createSource,
  createSourceSchema,
  loadSource,
  storedSettings,
  updateSource,
  updateSourceSchema,
} from "./data_sources.ts";
import {
  DEFAULT_MAX_UPLOAD_BYTES,
  listUploadedFiles,
  storeUpload,
  UPLOAD_EXTENSIONS,
} from "./files.ts";
import { takeTestToken } from "./source_connections.ts";

const typeSchema = z.enum(DATA_SOURCE_TYPES);

/** What one post of the form holds. */
type Submission = {
  name: string;
  description: string;
  values: FormValues;
  /** Typed secrets, by field name: used for the request, never rendered. */
  secrets: Record<string, string>;
  demo: boolean;
  intent?: string;
  /** Blank header rows the form had. */
  blankHeaders: number;
};

type Body = Record<string, string | File>;

function readSubmission(fields: SettingsField[], body: Body): Submission {
  return {
    name: field(body, "name") ?? "",
    description: field(body, "description") ?? "",
    values: postedValues(fields, body),
    secrets: postedSecrets(fields, body),
    demo: field(body, "demo") === "1",
    intent: field(body, "intent"),
    blankHeaders: blankHeaderRows(fields, body),
  };
}

/** Settings fields of the demo database, as form values. */
function demoValues(deps: AppDeps): FormValues {
  const demo = deps.demo!;
  return {
    host: demo.host,
    port: String(demo.port),
    database: demo.database,
    username: demo.username,
    ssl: demo.ssl,
  };
}

/**
 * The demo's password never goes into the page: a form that still points at the demo
 * database, with the password left blank, gets it here.
 */
function usesDemoPassword(deps: AppDeps, type: DataSourceType, submission: Submission): boolean {
  if (!deps.demo || !submission.demo || type !== "POSTGRESQL" || submission.secrets.password) {
    return false;
  }
  const values = demoValues(deps);
  return ["host", "port", "database", "username"].every((key) =>
    String(submission.values[key] ?? "").trim() === values[key]
  );
}

function apiInput(
  deps: AppDeps,
  type: DataSourceType,
  fields: SettingsField[],
  submission: Submission,
  mode: SettingsMode,
): Record<string, unknown> {
  const secrets = usesDemoPassword(deps, type, submission)
    ? { ...submission.secrets, password: deps.demo!.password }
    : submission.secrets;
  return settingsInput(fields, submission.values, secrets, mode);
}

/** Error details (`host`, `configuration.auth.type`) split into field errors and the rest. */
function placeErrors(
  fields: SettingsField[],
  details: { path: string; message: string }[],
): { fieldErrors: FieldMessages; settingsErrors: FieldMessages; other: string[] } {
  const names = new Set(allFields(fields).map((field) => field.name));
  const headers = fields.find((field) => field.kind === "headers")?.name;
  const fieldErrors: FieldMessages = {};
  const settingsErrors: FieldMessages = {};
  const other: string[] = [];
  for (const detail of details) {
    if (detail.path === "name" || detail.path === "description") {
      fieldErrors[detail.path] ??= detail.message;
    } else if (names.has(detail.path) || (headers && detail.path.startsWith(`${headers}.`))) {
      settingsErrors[detail.path] ??= detail.message;
    } else {
      other.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
    }
  }
  return { fieldErrors, settingsErrors, other };
}

type FormContext = {
  user: SessionUser;
  type: DataSourceType;
  spec: ConnectorSpec;
  fields: SettingsField[];
  source?: DataSource;
};

/** The upload and the files to choose from, for a form with a file field. */
async function fileChoicesFor(
  deps: AppDeps,
  fields: SettingsField[],
  options: { action: string; notice?: string },
): Promise<FileChoices | undefined> {
  if (!allFields(fields).some((field) => field.kind === "file")) return undefined;
  return {
    action: options.action,
    api: "/api/files",
    accept: UPLOAD_EXTENSIONS.join(","),
    files: await listUploadedFiles(deps.connectorContext.filesDir),
    notice: options.notice,
  };
}

async function formPage(
  deps: AppDeps,
  context: FormContext,
  state: {
    name: string;
    description: string;
    values: FormValues;
    errors?: { path: string; message: string }[];
    hints?: FieldMessages;
    test?: TestOutcome;
    demoApplied?: boolean;
    extraHeaderRows?: number;
    /** What the upload of a file without JavaScript did. */
    uploadNotice?: string;
  },
) {
  const { fields, source } = context;
  const placed = placeErrors(fields, state.errors ?? []);
  const mode: SettingsMode = source ? "update" : "create";
  const demoApplied = state.demoApplied ?? false;
  const base = source ? `/data-sources/${source.id}/edit` : "/data-sources/new";
  const settings: SettingsFormState = {
    fields,
    values: state.values,
    errors: placed.settingsErrors,
    hints: state.hints ?? {},
    mode,
    storedSecrets: source ? sanitize(source).secretsSet : [],
    secretHelp: demoApplied
      ? { password: "Leave blank to use the demo database's password" }
      : undefined,
    rerenderAction: `${base}/form`,
    extraHeaderRows: state.extraHeaderRows,
    fileChoices: await fileChoicesFor(deps, fields, {
      action: `${base}/upload`,
      notice: state.uploadNotice,
    }),
  };
  const props: SourceFormProps = {
    user: context.user,
    type: context.type,
    source: source ? { id: source.id, name: source.name } : undefined,
    name: state.name,
    description: state.description,
    settings,
    errors: placed.fieldErrors,
    formError: placed.other.length ? placed.other.join("; ") : undefined,
    test: state.test,
    demoAvailable: !source && context.type === "POSTGRESQL" && deps.demo !== undefined,
    demoApplied,
  };
  return (
    <SourceFormPage
      {...props}
      labels={{ name: "Name", description: "Description", ...fieldLabels(fields) }}
    />
  );
}

function hintsOf(fields: SettingsField[], outcome: TestOutcome): FieldMessages {
  const error = outcome.kind === "result" ? outcome.result.error : undefined;
  const name = fieldNamed(fields, error?.field);
  return name && error ? { [name]: error.hint } : {};
}

/** The settings as typed, checked by the same rules as saving (over the stored ones on edit). */
async function resolveTyped(deps: AppDeps, context: FormContext, input: Record<string, unknown>) {
  const topLevel = Object.fromEntries(TOP_LEVEL_FIELDS.map((key) => [key, input[key]]));
  const previous = context.source ? await storedSettings(deps, context.source) : undefined;
  return resolveSettings(context.spec, {
    configuration: input.configuration as Record<string, unknown> | undefined,
    topLevel,
  }, previous);
}

/**
 * Errors of the name and of the settings together, so one round trip shows every field to
 * fix (saving would stop at the first group).
 */
async function allProblems(
  deps: AppDeps,
  context: FormContext,
  input: Record<string, unknown>,
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
) {
  const resolved = await resolveTyped(deps, context, input);
  return [...issuesToDetails(issues), ...(resolved.ok ? [] : resolved.issues)];
}

/** Tests settings as typed (merged over the stored ones when editing), before saving. */
async function testTyped(
  c: Parameters<typeof audit>[0],
  deps: AppDeps,
  context: FormContext,
  input: Record<string, unknown>,
): Promise<{ outcome: TestOutcome; status: 200 | 400 | 429 }> {
  const resolved = await resolveTyped(deps, context, input);
  if (!resolved.ok) return { outcome: { kind: "invalid", issues: resolved.issues }, status: 400 };
  try {
    await takeTestToken(deps, context.user);
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      for (const [name, value] of Object.entries(error.headers ?? {})) c.header(name, value);
      const seconds = Number(error.headers?.["Retry-After"] ?? 60);
      return { outcome: { kind: "rate-limited", retryAfterSeconds: seconds }, status: 429 };
    }
    throw error;
  }
  let outcome: TestOutcome;
  try {
    const result = await testSettings(deps, context.type, resolved.settings);
    outcome = { kind: "result", result };
  } catch (error) {
    if (!(error instanceof UnsupportedOperationError)) throw error;
    return { outcome: { kind: "unavailable", message: error.message }, status: 200 };
  }
  await audit(c, deps, {
    action: "DATA_SOURCE_CONNECTION_TEST",
    entityType: "DataSource",
    entityId: context.source?.id ?? null,
    outcome: outcome.result.success ? "success" : "failure",
    details: {
      type: context.type,
      unsaved: true,
      responseTime: outcome.result.responseTime,
      ...(outcome.result.error ? { errorCode: outcome.result.error.code } : {}),
    },
  });
  return { outcome, status: 200 };
}

function contextFor(user: SessionUser, type: DataSourceType, source?: DataSource): FormContext {
  const spec = connectors[type];
  return { user, type, spec, fields: settingsFields(spec), source };
}

/** The upload pages, which take a file and so the upload limit instead of the form limit. */
const UPLOAD_PATH = /^\/data-sources\/(new|[^/]+\/edit)\/upload$/;

const uploadBodyLimit = bodyLimit({
  maxSize: DEFAULT_MAX_UPLOAD_BYTES,
  onError: () => {
    const limit = `${Math.round(DEFAULT_MAX_UPLOAD_BYTES / 1024 / 1024)} MiB`;
    throw new ApiError(413, "PAYLOAD_TOO_LARGE", `The file is larger than ${limit}`);
  },
});

/**
 * A form posted with a file and no JavaScript: the file is stored (uploadFiles) and the same
 * form comes back, as posted, with the stored path in its field or the refusal next to it.
 */
async function uploadAndRender(
  c: Context<AppEnv>,
  deps: AppDeps,
  context: FormContext,
  body: Body,
): Promise<Response> {
  const submission = readSubmission(context.fields, body);
  const uploaded = await uploadFiles(c, deps, context, body);
  c.header("HX-Push-Url", "false");
  return c.html(
    await formPage(deps, context, {
      name: submission.name,
      description: submission.description,
      values: { ...submission.values, ...uploaded.values },
      errors: uploaded.errors,
      // Only the new-source form offers the demo; an edit form never sets it.
      demoApplied: submission.demo,
      uploadNotice: uploaded.notice,
    }),
    uploaded.errors.length ? 400 : 200,
  );
}

/**
 * The upload of a form without JavaScript (the script posts to /api/files instead): each file
 * field's file is stored by the same function as POST /api/files, and the form comes back as
 * posted with the stored path in the field, or the refusal next to it.
 */
async function uploadFiles(
  c: Context<AppEnv>,
  deps: AppDeps,
  context: FormContext,
  body: Body,
): Promise<{ values: FormValues; errors: { path: string; message: string }[]; notice?: string }> {
  const values: FormValues = {};
  const errors: { path: string; message: string }[] = [];
  const notices: string[] = [];
  for (const field of allFields(context.fields)) {
    if (field.kind !== "file") continue;
    const file = body[uploadName(field.name)];
    // An empty file input still sends a part, with no file name.
    if (!(file instanceof File) || file.name === "") {
      errors.push({ path: field.name, message: "Choose a file to upload first" });
      continue;
    }
    try {
      const stored = await storeUpload(c, deps, file);
      values[field.name] = stored.path;
      notices.push(
        stored.renamed
          ? `Uploaded as ${stored.path} (${formatBytes(stored.size)}): the name was taken or ` +
            "not allowed as it was"
          : `Uploaded ${stored.path} (${formatBytes(stored.size)})`,
      );
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) throw error;
      errors.push({ path: field.name, message: error.message });
    }
  }
  return { values, errors, notice: notices.join("; ") || undefined };
}

export function sourceFormPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/data-sources", pageBodyLimit);
  app.use(
    "/data-sources/*",
    (c, next) => UPLOAD_PATH.test(c.req.path) ? next() : pageBodyLimit(c, next),
  );

  app.get("/data-sources/new", async (c) => {
    const user = currentUser(c);
    const type = typeSchema.safeParse(c.req.query("type"));
    if (!type.success) return c.html(<TypePickerPage user={user} />);
    const context = contextFor(user, type.data);
    return c.html(
      await formPage(deps, context, {
        name: "",
        description: "",
        values: defaultValues(context.fields),
      }),
    );
  });

  /** Re-renders the form as posted, with the demo settings or one more header row. */
  app.post("/data-sources/new/form", async (c) => {
    const body = await formBody(c);
    const type = typeSchema.safeParse(field(body, "type"));
    if (!type.success) return seeOther(c, "/data-sources/new");
    const context = contextFor(currentUser(c), type.data);
    const submission = readSubmission(context.fields, body);
    const demo = submission.intent === "demo" && deps.demo !== undefined &&
      type.data === "POSTGRESQL";
    const picked = submission.intent === "pick" ? pickedFiles(context.fields, body) : {};
    c.header("HX-Push-Url", "false");
    return c.html(
      await formPage(deps, context, {
        name: demo && !submission.name ? "Demo store" : submission.name,
        description: submission.description,
        values: demo
          ? { ...submission.values, ...demoValues(deps) }
          : { ...submission.values, ...picked },
        demoApplied: demo || submission.demo,
        extraHeaderRows: submission.intent === "add-header" ? submission.blankHeaders + 1 : 1,
      }),
    );
  });

  app.post("/data-sources/new/upload", uploadBodyLimit, async (c) => {
    const body = await formBody(c);
    const type = typeSchema.safeParse(field(body, "type"));
    if (!type.success) return seeOther(c, "/data-sources/new");
    return await uploadAndRender(c, deps, contextFor(currentUser(c), type.data), body);
  });

  app.post("/data-sources/new/test", async (c) => {
    const body = await formBody(c);
    const type = typeSchema.safeParse(field(body, "type"));
    if (!type.success) return seeOther(c, "/data-sources/new");
    const context = contextFor(currentUser(c), type.data);
    const submission = readSubmission(context.fields, body);
    const input = apiInput(deps, type.data, context.fields, submission, "create");
    const { outcome, status } = await testTyped(c, deps, context, input);
    if (wantsFragment(c, "test-result")) {
      return c.html(
        <>
          <TestResultPanel outcome={outcome} labels={fieldLabels(context.fields)} />
          <HintSlots fields={context.fields} outcome={outcome} />
        </>,
        status === 400 ? 200 : status,
      );
    }
    return c.html(
      await formPage(deps, context, {
        name: submission.name,
        description: submission.description,
        values: submission.values,
        test: outcome,
        hints: hintsOf(context.fields, outcome),
        demoApplied: submission.demo,
        errors: outcome.kind === "invalid" ? outcome.issues : undefined,
      }),
      status,
    );
  });

  app.post("/data-sources", async (c) => {
    const user = currentUser(c);
    const body = await formBody(c);
    const type = typeSchema.safeParse(field(body, "type"));
    if (!type.success) return seeOther(c, "/data-sources/new");
    const context = contextFor(user, type.data);
    const submission = readSubmission(context.fields, body);
    const input = {
      name: submission.name,
      description: submission.description.trim() || null,
      type: type.data,
      ...apiInput(deps, type.data, context.fields, submission, "create"),
    };
    const rerender = async (errors: { path: string; message: string }[]) => {
      c.header("HX-Push-Url", "false");
      return c.html(
        await formPage(deps, context, {
          name: submission.name,
          description: submission.description,
          values: submission.values,
          errors,
          demoApplied: submission.demo,
        }),
        400,
      );
    };
    const parsed = createSourceSchema.safeParse(input);
    if (!parsed.success) {
      return rerender(await allProblems(deps, context, input, parsed.error.issues));
    }
    let row: DataSource;
    try {
      row = await createSource(deps, user, parsed.data);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        return rerender(error.details ?? [{ path: "", message: error.message }]);
      }
      throw error;
    }
    await audit(c, deps, {
      action: "DATA_SOURCE_CREATE",
      entityType: "DataSource",
      entityId: row.id,
      outcome: "success",
      details: { name: row.name, type: row.type },
    });
    return seeOther(c, `/data-sources/${row.id}`);
  });

  app.get("/data-sources/:id/edit", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const context = contextFor(user, source.type, source);
    return c.html(
      await formPage(deps, context, {
        name: source.name,
        description: source.description ?? "",
        values: storedValues(context.fields, rowToConfig(context.spec, source)),
      }),
    );
  });

  app.post("/data-sources/:id/edit/form", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const context = contextFor(user, source.type, source);
    const body = await formBody(c);
    const submission = readSubmission(context.fields, body);
    const picked = submission.intent === "pick" ? pickedFiles(context.fields, body) : {};
    c.header("HX-Push-Url", "false");
    return c.html(
      await formPage(deps, context, {
        name: submission.name,
        description: submission.description,
        values: { ...submission.values, ...picked },
        extraHeaderRows: submission.intent === "add-header" ? submission.blankHeaders + 1 : 1,
      }),
    );
  });

  app.post("/data-sources/:id/edit/upload", uploadBodyLimit, async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const body = await formBody(c);
    return await uploadAndRender(c, deps, contextFor(user, source.type, source), body);
  });

  app.post("/data-sources/:id/edit/test", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const context = contextFor(user, source.type, source);
    const submission = readSubmission(context.fields, await formBody(c));
    const input = apiInput(deps, source.type, context.fields, submission, "update");
    const { outcome, status } = await testTyped(c, deps, context, input);
    if (wantsFragment(c, "test-result")) {
      return c.html(
        <>
          <TestResultPanel outcome={outcome} labels={fieldLabels(context.fields)} />
          <HintSlots fields={context.fields} outcome={outcome} />
        </>,
        status === 400 ? 200 : status,
      );
    }
    return c.html(
      await formPage(deps, context, {
        name: submission.name,
        description: submission.description,
        values: submission.values,
        test: outcome,
        hints: hintsOf(context.fields, outcome),
        errors: outcome.kind === "invalid" ? outcome.issues : undefined,
      }),
      status,
    );
  });

  app.post("/data-sources/:id/edit", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const context = contextFor(user, source.type, source);
    const submission = readSubmission(context.fields, await formBody(c));
    const input = {
      name: submission.name,
      description: submission.description.trim() || null,
      ...apiInput(deps, source.type, context.fields, submission, "update"),
    };
    const rerender = async (errors: { path: string; message: string }[]) => {
      c.header("HX-Push-Url", "false");
      return c.html(
        await formPage(deps, context, {
          name: submission.name,
          description: submission.description,
          values: submission.values,
          errors,
        }),
        400,
      );
    };
    const parsed = updateSourceSchema.safeParse(input);
    if (!parsed.success) {
      return rerender(await allProblems(deps, context, input, parsed.error.issues));
    }
    let outcome: Awaited<ReturnType<typeof updateSource>>;
    try {
      outcome = await updateSource(deps, source, parsed.data);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        return rerender(error.details ?? [{ path: "", message: error.message }]);
      }
      throw error;
    }
    // The same follow-up as PUT /api/data-sources/:id.
    if (outcome.changed.includes("settings")) await releaseSource(source.type, source.id);
    await audit(c, deps, {
      action: "DATA_SOURCE_UPDATE",
      entityType: "DataSource",
      entityId: source.id,
      outcome: "success",
      details: { changed: outcome.changed },
    });
    return seeOther(c, `/data-sources/${source.id}`);
  });

  return app;
}
