/**
 * Creating and editing a data source: the type cards of the wizard, then one form generated
 * from the type's schemas. The form posts to the server (and works without JavaScript);
 * htmx only adds the connection test as a partial and keeps typed secrets across swaps.
 */
import type { Child } from "hono/jsx";
import { connectors } from "../connectors/mod.ts";
import { DATA_SOURCE_TYPES, type DataSourceType } from "../db/schema.ts";
import type { SessionUser } from "../routes/_env.ts";
import { TypeIcon } from "./icons.tsx";
import { FormError, Layout, PageHead } from "./layout.tsx";
import {
  fieldId,
  type FieldMessages,
  SettingsFields,
  type SettingsFormState,
} from "./settings_form.tsx";
import { type TestOutcome, TestResultPanel } from "./test_result.tsx";

/** Step 1: one card per type. */
export function TypePickerPage(props: { user: SessionUser }) {
  return (
    <Layout title="New data source" user={props.user} active="sources">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/data-sources">Data sources</a> / New
      </nav>
      <PageHead title="New data source">
        <p class="muted">Step 1 of 2: what kind of source is it?</p>
      </PageHead>
      <ul class="type-cards" role="list">
        {DATA_SOURCE_TYPES.map((type) => (
          <li>
            <a class="type-card" href={`/data-sources/new?type=${type}`} data-type={type}>
              <TypeIcon type={type} size={32} />
              <span class="type-name">{connectors[type].label}</span>
              <span class="muted small">{connectors[type].description}</span>
            </a>
          </li>
        ))}
      </ul>
    </Layout>
  );
}

export type SourceFormProps = {
  user: SessionUser;
  type: DataSourceType;
  /** Present when editing. */
  source?: { id: string; name: string };
  name: string;
  description: string;
  settings: SettingsFormState;
  /** Errors of name and description (the settings carry their own). */
  errors: FieldMessages;
  /** Problems that belong to no field. */
  formError?: string;
  test?: TestOutcome;
  /** "Use Demo Database" is offered (PostgreSQL, demo running, new source). */
  demoAvailable: boolean;
  /** The demo settings were filled in: the server supplies the demo's password. */
  demoApplied: boolean;
};

function ErrorSummary(props: { errors: FieldMessages; labels: Record<string, string> }) {
  const entries = Object.entries(props.errors);
  if (entries.length === 0) return null;
  return (
    <div class="alert error" role="alert" id="form-errors">
      <strong>
        {entries.length === 1 ? "One setting needs" : `${entries.length} settings need`} attention:
      </strong>
      <ul>
        {entries.map(([name, message]) => (
          <li>
            <a href={`#${fieldId(name)}`}>{props.labels[name] ?? name}</a>: {message}
          </li>
        ))}
      </ul>
    </div>
  );
}

function TextField(
  props: {
    name: string;
    label: string;
    value: string;
    error?: string;
    required?: boolean;
    multiline?: boolean;
    placeholder?: string;
  },
) {
  const id = fieldId(props.name);
  const common = {
    id,
    name: props.name,
    required: props.required,
    placeholder: props.placeholder,
    "aria-invalid": props.error ? "true" : undefined,
    "aria-describedby": props.error ? `${id}-error` : undefined,
  };
  return (
    <div class="field">
      <label for={id}>
        <span class="label-text">
          {props.label}
          {props.required
            ? <span class="req" aria-hidden="true">*</span>
            : <span class="optional">optional</span>}
        </span>
      </label>
      {props.multiline
        ? <textarea {...common} rows={2}>{props.value}</textarea>
        : <input type="text" {...common} value={props.value} autocomplete="off" />}
      {props.error && <small id={`${id}-error`} class="field-error">{props.error}</small>}
    </div>
  );
}

/** The form of one type, for a new source or an existing one. */
export function SourceFormPage(props: SourceFormProps & { labels: Record<string, string> }) {
  const spec = connectors[props.type];
  const editing = props.source !== undefined;
  const base = editing ? `/data-sources/${props.source!.id}/edit` : "/data-sources/new";
  const action = editing ? base : "/data-sources";
  const allErrors = { ...props.errors, ...props.settings.errors };
  const title = editing ? `Edit ${props.source!.name}` : `New ${spec.label} source`;
  return (
    <Layout title={title} user={props.user} active="sources">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/data-sources">Data sources</a> / {editing
          ? <a href={`/data-sources/${props.source!.id}`}>{props.source!.name}</a>
          : <a href="/data-sources/new">New</a>} / {editing ? "Edit" : spec.label}
      </nav>
      <PageHead
        title={
          <span class="with-icon">
            <TypeIcon type={props.type} size={28} />
            {title}
          </span>
        }
      >
        <p class="muted">
          {editing ? "Secrets are never shown: leave a secret blank to keep the stored value." : (
            <>
              Step 2 of 2: {spec.description}. <a href="/data-sources/new">Change type</a>
            </>
          )}
        </p>
      </PageHead>
      <div class="form-layout">
        <form
          id="source-form"
          method="post"
          action={action}
          class="card stack"
          novalidate
          hx-push-url="false"
        >
          {
            /* Enter in a field saves: the first submit button of a form is the one Enter
              presses, and the form has others before Save (Add a header, Upload). */
          }
          <button type="submit" hidden tabindex={-1} aria-hidden="true">
            {editing ? "Save changes" : "Save"}
          </button>
          <input type="hidden" name="type" value={props.type} />
          {props.demoApplied && <input type="hidden" name="demo" value="1" />}
          <FormError message={props.formError} />
          <ErrorSummary errors={allErrors} labels={props.labels} />
          <TextField
            name="name"
            label="Name"
            value={props.name}
            error={props.errors.name}
            required
            placeholder={`${spec.label} production`}
          />
          <TextField
            name="description"
            label="Description"
            value={props.description}
            error={props.errors.description}
            multiline
          />
          {props.demoAvailable && (
            <div class="demo-offer">
              <button
                type="submit"
                name="intent"
                value="demo"
                formaction={`${base}/form`}
                formnovalidate
              >
                Use Demo Database
              </button>
              <small class="help">
                Fills in the sample store database that runs with this server.
              </small>
            </div>
          )}
          <SettingsFields state={props.settings} />
          <div class="form-actions">
            <button
              type="submit"
              formaction={`${base}/test`}
              formnovalidate
              hx-post={`${base}/test`}
              hx-target="#test-result"
              hx-swap="innerHTML"
              hx-disabled-elt="this"
              hx-indicator="#test-indicator"
            >
              Test connection
            </button>
            <button type="submit" class="primary">{editing ? "Save changes" : "Save"}</button>
            {editing && <a href={`/data-sources/${props.source!.id}`}>Cancel</a>}
            <span id="test-indicator" class="htmx-indicator muted" aria-hidden="true">
              Testing…
            </span>
          </div>
          <TestSlot>
            {props.test && (
              <TestResultPanel
                outcome={props.test}
                labels={props.labels}
              />
            )}
          </TestSlot>
        </form>
      </div>
    </Layout>
  );
}

function TestSlot(props: { children?: Child }) {
  return (
    <div id="test-result" class="test-result" aria-live="polite">
      {props.children}
    </div>
  );
}
