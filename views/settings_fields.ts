/**
 * The settings form of a data-source type, derived from its connector's zod schemas: one
 * walk over the config and secrets schemas gives the fields (labels, help and placeholders
 * from `.meta()`, required from optionality, defaults, enums, nested groups, header rows),
 * and the same fields turn a posted form back into the API's input shape. Field names are
 * the API's error paths (`host`, `configuration.endpoint`, `configuration.headers.0.value`),
 * so an error's `details[].path` lands next to the field it is about.
 */
import type { z } from "zod";
import { TOP_LEVEL_FIELDS } from "../connectors/settings.ts";
import type { ConnectorSpec } from "../connectors/types.ts";

/**
 * How a setting is typed. `file` is a text field naming a file in FILES_DIR, offered with an
 * upload and a choice of the files already there.
 */
export type FieldKind =
  | "text"
  | "url"
  | "number"
  | "textarea"
  | "password"
  | "checkbox"
  | "select"
  | "group"
  | "headers"
  | "file";

export type SettingsField = {
  /** The key in its schema object. */
  key: string;
  /** The form name and the API path: `host`, `configuration.auth.type`. */
  name: string;
  label: string;
  help?: string;
  placeholder?: string;
  kind: FieldKind;
  required: boolean;
  /** Stored encrypted; never rendered back. */
  secret: boolean;
  defaultValue?: unknown;
  options?: readonly string[];
  min?: number;
  max?: number;
  maxLength?: number;
  /** The fields of a group (a nested object). */
  children?: SettingsField[];
};

/** Flat form values by field name; checkboxes are booleans. */
export type FormValues = Record<string, string | boolean>;

type Meta = {
  title?: string;
  description?: string;
  placeholder?: string;
  /** The value names a file in FILES_DIR: the form offers an upload and the files there. */
  upload?: boolean;
};

/** Above this length a text field is a textarea (queries, request bodies, JSON keys). */
const TEXTAREA_FROM = 10_000;

const topLevel: readonly string[] = TOP_LEVEL_FIELDS;

/** `poolConfig` → "Pool config", for fields without a title. */
function humanize(key: string): string {
  const words = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

type Unwrapped = {
  inner: z.ZodType;
  meta: Meta;
  optional: boolean;
  defaultValue?: unknown;
  hasDefault: boolean;
};

/** Peels optional/default/nullable wrappers, merging their metadata (outer wins). */
function unwrap(schema: z.ZodType): Unwrapped {
  let current = schema;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  const metas: Meta[] = [];
  for (;;) {
    const meta = current.meta() as Meta | undefined;
    if (meta) metas.push(meta);
    const def = current.def as {
      type: string;
      innerType?: z.ZodType;
      in?: z.ZodType;
      defaultValue?: unknown;
    };
    if (def.type === "optional" || def.type === "nullable") {
      optional = true;
    } else if (def.type === "default" || def.type === "prefault") {
      if (!hasDefault) defaultValue = def.defaultValue;
      hasDefault = true;
    } else if (def.type === "pipe") {
      // A transform: the form collects what goes in.
      current = def.in!;
      continue;
    } else if (def.type !== "readonly" && def.type !== "catch") {
      break;
    }
    current = def.innerType!;
  }
  const meta = Object.assign({}, ...metas.reverse()) as Meta;
  return { inner: current, meta, optional, hasDefault, defaultValue };
}

function isHeaderRows(schema: z.ZodType): boolean {
  const def = schema.def as { type: string; element?: z.ZodType };
  if (def.type !== "array" || !def.element) return false;
  const element = def.element as z.ZodObject;
  if ((element.def as { type: string }).type !== "object") return false;
  const keys = Object.keys(element.shape);
  return keys.includes("name") && keys.includes("value") && keys.includes("secret");
}

function fieldOf(key: string, schema: z.ZodType, prefix: string, secret: boolean) {
  const { inner, meta, optional, hasDefault, defaultValue } = unwrap(schema);
  const name = prefix ? `${prefix}.${key}` : topLevel.includes(key) ? key : `configuration.${key}`;
  const base = {
    key,
    name,
    label: meta.title ?? humanize(key),
    help: meta.description,
    placeholder: meta.placeholder,
    required: !optional && !hasDefault,
    secret,
    defaultValue,
  };
  const def = inner.def as { type: string; format?: string };
  const bounds = inner as { minValue?: number | null; maxValue?: number | null };
  const lengths = inner as { maxLength?: number | null };
  switch (def.type) {
    case "boolean":
      return { ...base, kind: "checkbox" as const, required: false };
    case "number":
      return {
        ...base,
        kind: "number" as const,
        min: finite(bounds.minValue),
        max: finite(bounds.maxValue),
      };
    case "enum":
      return {
        ...base,
        kind: "select" as const,
        options: (inner as z.ZodEnum).options as string[],
      };
    case "object":
      return {
        ...base,
        kind: "group" as const,
        children: fieldsOf(inner as z.ZodObject, name, secret),
      };
    case "array":
      return isHeaderRows(inner) ? { ...base, kind: "headers" as const, required: false } : null;
    case "string": {
      const maxLength = lengths.maxLength ?? undefined;
      const long = maxLength !== undefined && maxLength > TEXTAREA_FROM;
      const kind = long
        ? "textarea"
        : secret
        ? "password"
        : meta.upload === true
        ? "file"
        : def.format === "url"
        ? "url"
        : "text";
      return { ...base, kind: kind as FieldKind, maxLength };
    }
    default:
      // Records (secret header values) and other shapes are filled by other fields.
      return null;
  }
}

function finite(value: number | null | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function fieldsOf(schema: z.ZodObject, prefix: string, secret: boolean): SettingsField[] {
  const fields: SettingsField[] = [];
  for (const [key, value] of Object.entries(schema.shape)) {
    const field = fieldOf(key, value as z.ZodType, prefix, secret);
    if (field) fields.push(field);
  }
  return fields;
}

const cache = new Map<ConnectorSpec, SettingsField[]>();

/** The form fields of a type: its config schema, then its secrets schema. Built once a type. */
export function settingsFields(spec: ConnectorSpec): SettingsField[] {
  let fields = cache.get(spec);
  if (!fields) {
    fields = [
      ...fieldsOf(spec.configSchema, "", false),
      ...fieldsOf(spec.secretsSchema, "", true),
    ];
    cache.set(spec, fields);
  }
  return fields;
}

/** Every field, groups flattened (what can carry an error or a value). */
export function allFields(fields: SettingsField[]): SettingsField[] {
  return fields.flatMap((field) =>
    field.children ? [field, ...allFields(field.children)] : [field]
  );
}

/**
 * The form field a connector's `error.field` names. Connectors write the API path
 * (`configuration.recordsPath`) or the bare key (`endpoint`); both find the field.
 */
export function fieldNamed(fields: SettingsField[], name: string | undefined): string | undefined {
  if (!name) return undefined;
  const names = new Set(allFields(fields).map((field) => field.name));
  if (names.has(name)) return name;
  if (names.has(`configuration.${name}`)) return `configuration.${name}`;
  return undefined;
}

/** Form values for a new source: the schemas' defaults. */
export function defaultValues(fields: SettingsField[]): FormValues {
  const values: FormValues = {};
  for (const field of allFields(fields)) {
    if (field.kind === "checkbox") values[field.name] = field.defaultValue === true;
    else if (
      field.kind !== "group" && field.kind !== "headers" && field.defaultValue !== undefined
    ) {
      values[field.name] = String(field.defaultValue);
    }
  }
  return values;
}

/** Form values of stored settings (config only: secrets are never rendered back). */
export function storedValues(
  fields: SettingsField[],
  config: Record<string, unknown>,
): FormValues {
  const values = defaultValues(fields);
  function visit(list: SettingsField[], source: Record<string, unknown>) {
    for (const field of list) {
      if (field.secret) continue;
      const value = source[field.key];
      if (field.kind === "group") {
        visit(field.children!, isRecord(value) ? value : {});
      } else if (field.kind === "headers") {
        (Array.isArray(value) ? value : []).forEach((header, index) => {
          if (!isRecord(header)) return;
          values[`${field.name}.${index}.name`] = String(header.name ?? "");
          values[`${field.name}.${index}.secret`] = header.secret === true;
          if (header.secret !== true && typeof header.value === "string") {
            values[`${field.name}.${index}.value`] = header.value;
          }
        });
      } else if (field.kind === "checkbox") {
        values[field.name] = value === true;
      } else if (value !== undefined && value !== null) {
        values[field.name] = String(value);
      }
    }
  }
  visit(fields, config);
  return values;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Anything a form body can hold under one name. */
type Posted = Record<string, string | File | (string | File)[]>;

function text(body: Posted, name: string): string | undefined {
  const value = body[name];
  const single = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof single === "string" ? single : undefined;
}

/**
 * The values a posted form holds for these fields, as the form would show them again.
 * Checkboxes that were not sent are false (that is how an unticked box arrives). Secret
 * values are read for the request but left out of what is shown again.
 */
export function postedValues(fields: SettingsField[], body: Posted): FormValues {
  const values: FormValues = {};
  for (const field of allFields(fields)) {
    if (field.kind === "group") continue;
    if (field.kind === "checkbox") {
      values[field.name] = text(body, field.name) !== undefined;
    } else if (field.kind === "headers") {
      for (const index of headerIndexes(body, field.name)) {
        const row = `${field.name}.${index}`;
        const secret = text(body, `${row}.secret`) !== undefined;
        values[`${row}.name`] = text(body, `${row}.name`) ?? "";
        values[`${row}.secret`] = secret;
        // A value marked secret is read for the request only (postedSecrets).
        if (!secret) values[`${row}.value`] = text(body, `${row}.value`) ?? "";
      }
    } else {
      const value = text(body, field.name);
      if (value !== undefined) values[field.name] = value;
    }
    if (field.secret && text(body, `clear.${field.name}`) !== undefined) {
      values[`clear.${field.name}`] = true;
    }
  }
  return values;
}

/** The form name of the file input that uploads a file for this field. */
export function uploadName(name: string): string {
  return `upload.${name}`;
}

/** The form name of the list of uploaded files to choose from for this field. */
export function pickName(name: string): string {
  return `pick.${name}`;
}

/** The files chosen in the lists of uploaded files, by the field they fill. */
export function pickedFiles(fields: SettingsField[], body: Posted): FormValues {
  const picked: FormValues = {};
  for (const field of allFields(fields)) {
    if (field.kind !== "file") continue;
    const value = text(body, pickName(field.name));
    if (value) picked[field.name] = value;
  }
  return picked;
}

/** Row indexes of a header list present in a body, in order. */
function headerIndexes(body: Posted, name: string): number[] {
  const indexes = new Set<number>();
  const pattern = new RegExp(`^${name.replaceAll(".", "\\.")}\\.(\\d+)\\.`);
  for (const key of Object.keys(body)) {
    const match = pattern.exec(key);
    if (match) indexes.add(Number(match[1]));
  }
  return [...indexes].sort((a, b) => a - b);
}

/**
 * How many header rows hold something (a name, a value or the secret mark): blank rows at
 * the end are what the form adds for typing, not rows of the setting.
 */
export function headerRowCount(values: FormValues, name: string): number {
  let count = 0;
  const pattern = new RegExp(`^${name.replaceAll(".", "\\.")}\\.(\\d+)\\.(name|value|secret)$`);
  for (const [key, value] of Object.entries(values)) {
    const match = pattern.exec(key);
    if (match && (value === true || (typeof value === "string" && value.trim() !== ""))) {
      count = Math.max(count, Number(match[1]) + 1);
    }
  }
  return count;
}

/** Blank header rows a posted form had (kept when the user asks for one more). */
export function blankHeaderRows(fields: SettingsField[], body: Posted): number {
  const headers = fields.find((field) => field.kind === "headers");
  if (!headers) return 0;
  const values = postedValues([headers], body);
  return headerIndexes(body, headers.name).length - headerRowCount(values, headers.name);
}

export type SettingsMode = "create" | "update";

/**
 * The API input (`host`, ..., `configuration`) a posted form means, for createSource or
 * updateSource. A blank field is left out on create (so defaults apply); on update a blank
 * optional field clears it, a blank secret keeps the stored one, and a ticked "clear" box
 * sends `null`. Required text fields are sent blank so their own messages name them.
 */
export function settingsInput(
  fields: SettingsField[],
  values: FormValues,
  secrets: Record<string, string>,
  mode: SettingsMode,
): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  const configuration: Record<string, unknown> = {};
  for (const field of fields) {
    const value = fieldValue(field, values, secrets, mode);
    if (value === undefined) continue;
    if (topLevel.includes(field.key)) input[field.key] = value;
    else configuration[field.key] = value;
  }
  if (Object.keys(configuration).length) input.configuration = configuration;
  return input;
}

function fieldValue(
  field: SettingsField,
  values: FormValues,
  secrets: Record<string, string>,
  mode: SettingsMode,
): unknown {
  const blank = mode === "update" && !field.required ? null : undefined;
  switch (field.kind) {
    case "checkbox":
      return values[field.name] === true;
    case "group": {
      const group: Record<string, unknown> = {};
      for (const child of field.children!) {
        // Inside a group that is sent whole, a blank child is simply absent.
        const value = fieldValue(child, values, secrets, "create");
        if (value !== undefined) group[child.key] = value;
      }
      if (Object.keys(group).length === 0 && !field.required && field.defaultValue === undefined) {
        return blank;
      }
      return group;
    }
    case "headers": {
      const rows: Record<string, unknown>[] = [];
      for (let index = 0; index < headerRowCount(values, field.name); index++) {
        const row = `${field.name}.${index}`;
        const name = String(values[`${row}.name`] ?? "").trim();
        const value = secrets[`${row}.value`] ?? String(values[`${row}.value`] ?? "");
        const secret = values[`${row}.secret`] === true;
        if (!name && !value) continue;
        rows.push(value ? { name, value, secret } : { name, secret });
      }
      return rows;
    }
    default: {
      if (field.secret) {
        if (values[`clear.${field.name}`] === true) return null;
        const secret = secrets[field.name] ?? "";
        if (secret !== "") return secret;
        return mode === "create" && field.required ? "" : undefined;
      }
      const value = String(values[field.name] ?? "");
      if (value.trim() !== "") return value;
      return field.required ? "" : blank;
    }
  }
}

/**
 * Secret values a form carries, by field name (`password`, `configuration.headers.0.value`
 * for a header marked secret). Kept apart from FormValues so they are never rendered.
 */
export function postedSecrets(fields: SettingsField[], body: Posted): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const field of allFields(fields)) {
    if (field.secret && field.kind !== "group") {
      const value = text(body, field.name);
      if (value) secrets[field.name] = value;
    }
    if (field.kind === "headers") {
      for (const index of headerIndexes(body, field.name)) {
        const row = `${field.name}.${index}`;
        const value = text(body, `${row}.value`);
        if (text(body, `${row}.secret`) !== undefined && value) secrets[`${row}.value`] = value;
      }
    }
  }
  return secrets;
}
