/**
 * Type icons and status badges. The icons are inline SVG so a page makes no request for
 * them and they take the text colour where they should; each is decorative (the type's
 * name is always written next to it).
 */
import type { Child } from "hono/jsx";
import { connectors } from "../connectors/mod.ts";
import type { DataSourceStatus, DataSourceType } from "../db/schema.ts";

function Svg(props: { color: string; children: Child; size?: number }) {
  const size = props.size ?? 20;
  return (
    <svg
      class="type-icon"
      viewBox="0 0 24 24"
      width={size}
      height={size}
      aria-hidden="true"
      focusable="false"
      fill="none"
      stroke={props.color}
      stroke-width="1.8"
      stroke-linecap="round"
      stroke-linejoin="round"
    >
      {props.children}
    </svg>
  );
}

function Cylinder(props: { color: string; size?: number; mark?: Child }) {
  return (
    <Svg color={props.color} size={props.size}>
      <ellipse cx="12" cy="5.5" rx="7.5" ry="2.8" />
      <path d="M4.5 5.5v13c0 1.5 3.4 2.8 7.5 2.8s7.5-1.3 7.5-2.8v-13" />
      <path d="M4.5 12c0 1.5 3.4 2.8 7.5 2.8s7.5-1.3 7.5-2.8" />
      {props.mark}
    </Svg>
  );
}

const drawings: Record<DataSourceType, (size?: number) => Child> = {
  POSTGRESQL: (size) => <Cylinder color="#336791" size={size} />,
  MYSQL: (size) => (
    <Cylinder
      color="#00758f"
      size={size}
      mark={<path d="M9 18.5l3-2.5 3 2.5" stroke="#f29111" />}
    />
  ),
  MONGODB: (size) => (
    <Svg color="#13aa52" size={size}>
      <path d="M12 2.5c3.5 3.6 5.2 7.2 5 10.6-.2 3.6-2.4 5.9-5 7.4-2.6-1.5-4.8-3.8-5-7.4-.2-3.4 1.5-7 5-10.6z" />
      <path d="M12 6v15.5" />
    </Svg>
  ),
  REST_API: (size) => (
    <Svg color="#7c3aed" size={size}>
      <path d="M8 4c-2 0-2.5 1-2.5 3v2c0 1.5-.8 2.5-2 3 1.2.5 2 1.5 2 3v2c0 2 .5 3 2.5 3" />
      <path d="M16 4c2 0 2.5 1 2.5 3v2c0 1.5.8 2.5 2 3-1.2.5-2 1.5-2 3v2c0 2-.5 3-2.5 3" />
      <circle cx="12" cy="12" r="1" fill="#7c3aed" />
    </Svg>
  ),
  GRAPHQL: (size) => (
    <Svg color="#e10098" size={size}>
      <path d="M12 3l7.8 4.5v9L12 21l-7.8-4.5v-9z" />
      <path d="M12 3L4.2 16.5h15.6z" />
    </Svg>
  ),
  S3: (size) => (
    <Svg color="#e25444" size={size}>
      <path d="M4 6.5h16l-2 13.5H6z" />
      <ellipse cx="12" cy="6.5" rx="8" ry="2.5" />
    </Svg>
  ),
  GOOGLE_SHEETS: (size) => (
    <Svg color="#0f9d58" size={size}>
      <path d="M6 2.5h8l4.5 4.5v14.5H6z" />
      <path d="M14 2.5V7h4.5" />
      <path d="M8.5 11h7.5v7H8.5zM8.5 14.5h7.5M12.2 11v7" />
    </Svg>
  ),
  CSV_FILE: (size) => (
    <Svg color="#64748b" size={size}>
      <path d="M6 2.5h8l4.5 4.5v14.5H6z" />
      <path d="M14 2.5V7h4.5" />
      <path d="M8.5 12h7M8.5 15h7M8.5 18h4" />
    </Svg>
  ),
};

/** The icon of a data-source type. */
export function TypeIcon(props: { type: DataSourceType; size?: number }) {
  return <>{drawings[props.type](props.size)}</>;
}

/** Icon and name of a type, as shown in tables. */
export function TypeLabel(props: { type: DataSourceType }) {
  return (
    <span class="type-label">
      <TypeIcon type={props.type} />
      {connectors[props.type].label}
    </span>
  );
}

const statusText: Record<DataSourceStatus, string> = {
  CONNECTED: "Connected",
  DISCONNECTED: "Disconnected",
  ERROR: "Error",
  TESTING: "Testing",
  CONFIGURING: "Not tested",
};

/** The status of a source as a coloured badge; the words carry the meaning, not the colour. */
export function StatusBadge(props: { status: DataSourceStatus }) {
  return (
    <span
      class={`badge status-${props.status.toLowerCase()}`}
      title={props.status}
    >
      {statusText[props.status]}
    </span>
  );
}
