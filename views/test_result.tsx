/**
 * The outcome of a connection test as a fragment: each stage with its time, the server's
 * details, or the classified error with its hint. The wizard, the edit form and the detail
 * page all show this same panel; in a form the hint also appears next to the field it names.
 */
import type { Stage, StageName, TestResult } from "../connectors/types.ts";

/** A stage as connectors report it; a pooled connection may have done it earlier. */
type ShownStage = Stage & { reused?: boolean; detail?: string };
import { formatMs } from "./_format.ts";
import { fieldId, hintId } from "./settings_form.tsx";
import { allFields, fieldNamed, type SettingsField } from "./settings_fields.ts";

export type TestOutcome =
  | { kind: "result"; result: TestResult }
  | { kind: "rate-limited"; retryAfterSeconds: number }
  | { kind: "invalid"; issues: { path: string; message: string }[] }
  | { kind: "unavailable"; message: string };

const stageLabels: Record<StageName, string> = {
  resolve: "Resolve host",
  connect: "Connect",
  tls: "TLS handshake",
  authenticate: "Authenticate",
  query: "Query",
};

function Stages(props: { result: TestResult }) {
  if (props.result.stages.length === 0) return null;
  return (
    <ol class="stages" aria-label="Stages">
      {(props.result.stages as ShownStage[]).map((stage) => (
        <li class={stage.ok ? "ok" : "failed"} data-stage={stage.name} title={stage.detail}>
          <span class="mark" aria-hidden="true">{stage.ok ? "✓" : "✗"}</span>
          <span class="stage-name">{stageLabels[stage.name] ?? stage.name}</span>
          <span class="visually-hidden">{stage.ok ? "passed" : "failed"}</span>
          <span class="stage-ms">{stage.reused ? "reused" : formatMs(stage.ms)}</span>
        </li>
      ))}
    </ol>
  );
}

/** Server details (version, name, ...) as a definition list. */
export function ServerInfo(props: { info?: TestResult["serverInfo"]; id?: string }) {
  const entries = Object.entries(props.info ?? {});
  if (entries.length === 0) return null;
  return (
    <dl class="facts server-info" id={props.id}>
      {entries.map(([key, value]) => (
        <>
          <dt>{key}</dt>
          <dd>{value === null ? "—" : String(value)}</dd>
        </>
      ))}
    </dl>
  );
}

type PanelProps = {
  outcome: TestOutcome;
  /** Field labels by name, to say which setting a hint is about. */
  labels?: Record<string, string>;
  /** Where that setting can be changed when the panel is not inside the form (detail page). */
  editHref?: string;
};

function FieldPointer(
  props: { field?: string; labels?: Record<string, string>; editHref?: string },
) {
  if (!props.field) return null;
  const labels = props.labels ?? {};
  const name = props.field in labels
    ? props.field
    : `configuration.${props.field}` in labels
    ? `configuration.${props.field}`
    : props.field;
  const label = labels[name] ?? name;
  const href = `${props.editHref ?? ""}#${fieldId(name)}`;
  return (
    <p class="small">
      Setting to check: <a href={href}>{label}</a>
    </p>
  );
}

/** The panel for one test outcome. */
export function TestResultPanel(props: PanelProps) {
  const { outcome } = props;
  if (outcome.kind === "rate-limited") {
    return (
      <div class="result warn" role="alert" data-outcome="rate-limited">
        <strong>Too many connection tests.</strong> You can test 10 times a minute; try again in
        {" "}
        {outcome.retryAfterSeconds} s.
      </div>
    );
  }
  if (outcome.kind === "invalid") {
    return (
      <div class="result error" role="alert" data-outcome="invalid">
        <strong>Fix these settings before testing:</strong>
        <ul>
          {outcome.issues.map((issue) => (
            <li>
              <a href={`#${fieldId(issue.path)}`}>{props.labels?.[issue.path] ?? issue.path}</a>:
              {" "}
              {issue.message}
            </li>
          ))}
        </ul>
      </div>
    );
  }
  if (outcome.kind === "unavailable") {
    return <div class="result warn" role="alert" data-outcome="unavailable">{outcome.message}</div>;
  }
  const { result } = outcome;
  if (result.success) {
    return (
      <div class="result ok" role="status" data-outcome="success">
        <p class="result-title">
          <span aria-hidden="true">✓</span> <strong>Connected</strong> in{" "}
          {formatMs(result.responseTime)}
          <span class="muted">— {result.message}</span>
        </p>
        <Stages result={result} />
        <ServerInfo info={result.serverInfo} />
      </div>
    );
  }
  const error = result.error;
  return (
    <div class="result error" role="alert" data-outcome="failure">
      <p class="result-title">
        <span aria-hidden="true">✗</span> <strong>Connection failed</strong>
        {error && <code class="error-code">{error.code}</code>}
        <span class="muted">after {formatMs(result.responseTime)}</span>
      </p>
      <p>{error?.message ?? result.message}</p>
      {error?.hint && <p class="hint">{error.hint}</p>}
      <FieldPointer field={error?.field} labels={props.labels} editHref={props.editHref} />
      <Stages result={result} />
    </div>
  );
}

/**
 * Out-of-band updates of every hint slot of a form: the named field gets the hint, the
 * others are emptied (a hint from an earlier test must not linger).
 */
export function HintSlots(props: { fields: SettingsField[]; outcome: TestOutcome }) {
  const error = props.outcome.kind === "result" ? props.outcome.result.error : undefined;
  const named = fieldNamed(props.fields, error?.field);
  return (
    <>
      {allFields(props.fields).filter((field) => field.kind !== "headers").map((field) => (
        <small id={hintId(field.name)} class="field-hint" role="status" hx-swap-oob="true">
          {named === field.name ? error?.hint : ""}
        </small>
      ))}
    </>
  );
}

/** Field labels by name, for pointing at a setting. */
export function fieldLabels(fields: SettingsField[]): Record<string, string> {
  return Object.fromEntries(allFields(fields).map((field) => [field.name, field.label]));
}
