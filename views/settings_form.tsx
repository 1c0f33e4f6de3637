/**
 * Renders a type's settings fields (from views/settings_fields.ts) with the values, errors
 * and test hints of the moment. Secret inputs are password inputs that never carry a value:
 * on edit a stored secret reads "stored — leave blank to keep" with a box to clear it, and
 * `hx-preserve` keeps what the user typed when htmx swaps the form after a validation error.
 */
import type { Child } from "hono/jsx";
import { formatBytes } from "./_format.ts";
import {
  allFields,
  type FormValues,
  headerRowCount,
  pickName,
  type SettingsField,
  type SettingsMode,
  uploadName,
} from "./settings_fields.ts";

/** Messages by field name (`host`, `configuration.headers.0.value`). */
export type FieldMessages = Record<string, string>;

/** What a `file` field offers besides typing a path: an upload and the files already there. */
export type FileChoices = {
  /** Where the form posts a file without JavaScript, to come back with the path filled. */
  action: string;
  /** Where the page's script posts a file and lists the files (POST and GET /api/files). */
  api: string;
  /** File name endings an upload may have: `.csv,.tsv,.txt`. */
  accept: string;
  /** Files in the files directory, by path relative to it. */
  files: { path: string; size: number }[];
  /** What the last upload did ("Uploaded customers.csv (14 B)"). */
  notice?: string;
};

export type SettingsFormState = {
  fields: SettingsField[];
  values: FormValues;
  errors: FieldMessages;
  /** Hints from the last connection test, by the field they name. */
  hints: FieldMessages;
  mode: SettingsMode;
  /** Secret fields stored for the source (`password`, `headers.X-Token`), on edit. */
  storedSecrets: string[];
  /** Help shown under a secret field instead of its own (the demo's password). */
  secretHelp?: FieldMessages;
  /** Where "Add a header" posts to re-render the form with one more row. */
  rerenderAction: string;
  /** Empty header rows to offer for typing (one unless the user asked for more). */
  extraHeaderRows?: number;
  /** For forms with a `file` field. */
  fileChoices?: FileChoices;
};

/** The DOM id of a field's input: `f-configuration-auth-type`. */
export function fieldId(name: string): string {
  return `f-${name.replace(/[^A-Za-z0-9_-]+/g, "-")}`;
}

/** The id of the slot where a connection test's hint for this field appears. */
export function hintId(name: string): string {
  return `hint-${name.replace(/[^A-Za-z0-9_-]+/g, "-")}`;
}

const STORED = "stored — leave blank to keep";

function describedBy(name: string, parts: { help?: unknown; error?: unknown }): string {
  const id = fieldId(name);
  return [
    parts.help ? `${id}-help` : undefined,
    parts.error ? `${id}-error` : undefined,
    hintId(name),
  ].filter(Boolean).join(" ");
}

function Messages(props: { name: string; help?: string; error?: string; hint?: string }) {
  const id = fieldId(props.name);
  return (
    <>
      {props.help && <small id={`${id}-help`} class="help">{props.help}</small>}
      {props.error && <small id={`${id}-error`} class="field-error">{props.error}</small>}
      <small id={hintId(props.name)} class="field-hint" role="status">{props.hint ?? ""}</small>
    </>
  );
}

function Label(props: { field: SettingsField }) {
  return (
    <span class="label-text">
      {props.field.label}
      {props.field.required && <span class="req" aria-hidden="true">*</span>}
      {!props.field.required && props.field.defaultValue === undefined && (
        <span class="optional">optional</span>
      )}
    </span>
  );
}

function SecretInput(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  const stored = state.mode === "update" && state.storedSecrets.includes(field.key);
  const error = state.errors[field.name];
  const help = state.secretHelp?.[field.name] ?? field.help;
  const common = {
    id: fieldId(field.name),
    name: field.name,
    "hx-preserve": "true",
    placeholder: stored ? STORED : field.placeholder,
    "aria-invalid": error ? "true" : undefined,
    "aria-describedby": describedBy(field.name, { help, error }),
    "aria-required": field.required && !stored ? "true" : undefined,
    autocomplete: "new-password",
  };
  return (
    <div class="field">
      <label for={common.id}>
        <Label field={field} />
        {stored && <span class="badge stored">stored</span>}
      </label>
      {field.kind === "textarea"
        ? <textarea {...common} rows={6} class="mono secret-text"></textarea>
        : <input type="password" {...common} maxlength={field.maxLength} />}
      {stored && (
        <label class="inline small">
          <input type="checkbox" name={`clear.${field.name}`} value="true" />
          Clear the stored {field.label.toLowerCase()}
        </label>
      )}
      <Messages name={field.name} help={help} error={error} hint={state.hints[field.name]} />
    </div>
  );
}

function PlainInput(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  const error = state.errors[field.name];
  const id = fieldId(field.name);
  const value = state.values[field.name];
  const common = {
    id,
    name: field.name,
    placeholder: field.placeholder,
    required: field.required,
    "aria-invalid": error ? "true" : undefined,
    "aria-describedby": describedBy(field.name, { help: field.help, error }),
  };
  let control: Child;
  if (field.kind === "select") {
    const selected = typeof value === "string" ? value : String(field.defaultValue ?? "");
    control = (
      <select {...common}>
        {!field.required && field.defaultValue === undefined && <option value="">—</option>}
        {field.options!.map((option) => (
          <option value={option} selected={option === selected}>{option}</option>
        ))}
      </select>
    );
  } else if (field.kind === "textarea") {
    control = (
      <textarea {...common} rows={6} class="mono" maxlength={field.maxLength}>
        {typeof value === "string" ? value : ""}
      </textarea>
    );
  } else if (field.kind === "number") {
    control = (
      <input
        type="number"
        inputmode="numeric"
        {...common}
        value={typeof value === "string" ? value : ""}
        min={field.min}
        max={field.max}
        step="1"
      />
    );
  } else {
    control = (
      <input
        type={field.kind === "url" ? "url" : "text"}
        {...common}
        value={typeof value === "string" ? value : ""}
        maxlength={field.maxLength}
        autocomplete="off"
      />
    );
  }
  return (
    <div class="field">
      <label for={id}>
        <Label field={field} />
      </label>
      {control}
      <Messages name={field.name} help={field.help} error={error} hint={state.hints[field.name]} />
    </div>
  );
}

/**
 * A path in the files directory, typed, uploaded or chosen from the files there. Without
 * JavaScript the Upload and "Use this file" buttons post the form to come back with the path
 * filled; static/app.js instead uploads the chosen file at once (POST /api/files) and copies
 * a chosen path into the field, and the two buttons are hidden.
 */
function FileInput(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  const error = state.errors[field.name];
  const id = fieldId(field.name);
  const raw = state.values[field.name];
  const value = typeof raw === "string" ? raw : "";
  const choices = state.fileChoices;
  const files = choices?.files ?? [];
  const status = `${id}-status`;
  return (
    <div class="field file-field">
      <label for={id}>
        <Label field={field} />
      </label>
      <input
        type="text"
        id={id}
        name={field.name}
        value={value}
        placeholder={field.placeholder}
        required={field.required}
        maxlength={field.maxLength}
        autocomplete="off"
        aria-invalid={error ? "true" : undefined}
        aria-describedby={describedBy(field.name, { help: field.help, error })}
      />
      <Messages name={field.name} help={field.help} error={error} hint={state.hints[field.name]} />
      {choices && (
        <div class="file-choices">
          <div class="file-choice">
            <label for={`${id}-upload`}>Upload a file</label>
            <div class="file-choice-row">
              <input
                type="file"
                id={`${id}-upload`}
                name={uploadName(field.name)}
                accept={choices.accept}
                data-upload={choices.api}
                data-upload-to={id}
                data-upload-status={status}
                data-pick={`${id}-pick`}
                aria-describedby={status}
              />
              <button
                type="submit"
                class="small without-js"
                name="intent"
                value="upload"
                formaction={choices.action}
                formenctype="multipart/form-data"
                formnovalidate
              >
                Upload
              </button>
            </div>
          </div>
          <div class="file-choice">
            <label for={`${id}-pick`}>Or choose an uploaded file</label>
            <div class="file-choice-row">
              <select id={`${id}-pick`} name={pickName(field.name)} data-pick-to={id}>
                <option value="">
                  {files.length === 0 ? "No files uploaded yet" : "Choose a file"}
                </option>
                {files.map((file) => (
                  <option value={file.path} selected={file.path === value}>
                    {file.path} ({formatBytes(file.size)})
                  </option>
                ))}
              </select>
              <button
                type="submit"
                class="small without-js"
                name="intent"
                value="pick"
                formaction={state.rerenderAction}
                formnovalidate
              >
                Use this file
              </button>
            </div>
          </div>
          <small
            id={status}
            class="upload-status"
            role="status"
            data-state={choices.notice ? "done" : undefined}
          >
            {choices.notice ?? ""}
          </small>
        </div>
      )}
    </div>
  );
}

function Checkbox(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  const error = state.errors[field.name];
  const id = fieldId(field.name);
  return (
    <div class="field">
      <label class="inline" for={id}>
        <input
          type="checkbox"
          id={id}
          name={field.name}
          value="true"
          checked={state.values[field.name] === true}
          aria-describedby={describedBy(field.name, { help: field.help, error })}
        />
        {field.label}
      </label>
      <Messages name={field.name} help={field.help} error={error} hint={state.hints[field.name]} />
    </div>
  );
}

function HeaderRows(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  // Always an empty row to type into; "Add a header" asks the server for another.
  const rows = headerRowCount(state.values, field.name) + Math.max(1, state.extraHeaderRows ?? 1);
  const error = state.errors[field.name];
  return (
    <fieldset class="field headers" id={fieldId(field.name)}>
      <legend>
        {field.label} <span class="optional">optional</span>
      </legend>
      {field.help && <small class="help">{field.help}</small>}
      {error && <small class="field-error">{error}</small>}
      <div class="header-rows">
        {Array.from({ length: rows }, (_, index) => {
          const row = `${field.name}.${index}`;
          const name = state.values[`${row}.name`];
          const secret = state.values[`${row}.secret`] === true;
          const stored = state.mode === "update" && secret && typeof name === "string" &&
            state.storedSecrets.includes(`headers.${name}`);
          const rowErrors = [`${row}.name`, `${row}.value`, row].map((key) => state.errors[key])
            .filter(Boolean);
          const value = state.values[`${row}.value`];
          return (
            <div class="header-row">
              <label>
                <span class="visually-hidden">Header {index + 1} name</span>
                <input
                  type="text"
                  id={fieldId(`${row}.name`)}
                  name={`${row}.name`}
                  value={typeof name === "string" ? name : ""}
                  placeholder="Header name"
                  autocomplete="off"
                  aria-invalid={state.errors[`${row}.name`] ? "true" : undefined}
                />
              </label>
              <label>
                <span class="visually-hidden">Header {index + 1} value</span>
                <input
                  type={secret ? "password" : "text"}
                  id={fieldId(`${row}.value`)}
                  name={`${row}.value`}
                  value={secret || typeof value !== "string" ? undefined : value}
                  hx-preserve={secret ? "true" : undefined}
                  placeholder={stored ? STORED : "Value"}
                  autocomplete={secret ? "new-password" : "off"}
                  aria-invalid={state.errors[`${row}.value`] ? "true" : undefined}
                />
              </label>
              <label class="inline small">
                <input type="checkbox" name={`${row}.secret`} value="true" checked={secret} />
                Secret
              </label>
              {rowErrors.length > 0 && <small class="field-error">{rowErrors.join("; ")}</small>}
            </div>
          );
        })}
      </div>
      <button
        type="submit"
        class="small"
        name="intent"
        value="add-header"
        formaction={state.rerenderAction}
        formnovalidate
      >
        Add a header
      </button>
    </fieldset>
  );
}

function Group(props: { field: SettingsField; state: SettingsFormState }) {
  const { field, state } = props;
  return (
    <fieldset class="field group" id={fieldId(field.name)}>
      <legend>{field.label}</legend>
      {field.help && <small class="help">{field.help}</small>}
      {state.errors[field.name] && <small class="field-error">{state.errors[field.name]}</small>}
      <small id={hintId(field.name)} class="field-hint" role="status">
        {state.hints[field.name] ?? ""}
      </small>
      <div class="group-fields">
        {field.children!.map((child) => <Field key={child.name} field={child} state={state} />)}
      </div>
    </fieldset>
  );
}

function Field(props: { field: SettingsField; state: SettingsFormState }) {
  const { field } = props;
  if (field.kind === "group") return <Group {...props} />;
  if (field.kind === "headers") return <HeaderRows {...props} />;
  if (field.kind === "checkbox") return <Checkbox {...props} />;
  if (field.kind === "file") return <FileInput {...props} />;
  if (field.secret) return <SecretInput {...props} />;
  return <PlainInput {...props} />;
}

/**
 * Fields in reading order: a secret sits right after the field it goes with (the password
 * after the username, the API key after the authentication method), or else after the last
 * required setting (the secret key after the access key, the service-account JSON after the
 * spreadsheet), not at the end behind the optional ones.
 */
function readingOrder(fields: SettingsField[]): SettingsField[] {
  const plain = fields.filter((field) => !field.secret);
  const secrets = fields.filter((field) => field.secret);
  const named = ["username", "auth"].map((key) => plain.findIndex((field) => field.key === key))
    .find((index) => index >= 0);
  const anchor = named ?? plain.findLastIndex((field) => field.required);
  if (anchor < 0) return [...plain, ...secrets];
  return [...plain.slice(0, anchor + 1), ...secrets, ...plain.slice(anchor + 1)];
}

/** Optional settings at the end (timeouts, pool sizes) fold away unless in use. */
function isTrailingOptional(field: SettingsField): boolean {
  return !field.required && !field.secret && field.defaultValue === undefined;
}

function hasContent(field: SettingsField, state: SettingsFormState): boolean {
  return allFields([field]).some((inner) =>
    state.errors[inner.name] !== undefined || state.hints[inner.name] !== undefined ||
    (typeof state.values[inner.name] === "string" && state.values[inner.name] !== "")
  );
}

/** The generated fields of a type's form. */
export function SettingsFields(props: { state: SettingsFormState }) {
  const ordered = readingOrder(props.state.fields);
  let split = ordered.length;
  while (split > 0 && isTrailingOptional(ordered[split - 1])) split--;
  const main = ordered.slice(0, split);
  const more = ordered.slice(split);
  const open = more.some((field) => hasContent(field, props.state));
  return (
    <div class="settings-fields">
      {main.map((field) => <Field key={field.name} field={field} state={props.state} />)}
      {more.length > 0 && (
        <details class="more-settings" open={open}>
          <summary>More settings</summary>
          {more.map((field) => <Field key={field.name} field={field} state={props.state} />)}
        </details>
      )}
    </div>
  );
}
