/**
 * GraphQL APIs, through graphql-request over the guarded HTTP path (every request, redirects
 * included, goes to an address the guard checked).
 *
 * Without a configured query, streams come from introspection: each query field that returns
 * a list of objects, or a Relay connection (edges/nodes with pageInfo), is a stream, and its
 * read query is generated from the object's fields (leaf fields, and the leaf fields of
 * objects one level down). With a configured query, the source has one stream: that query's
 * records, at `recordsPath` or its first root field. Relay connections are read page by page
 * with `first`/`after` variables; a configured query pages the same way when it declares
 * `$after`. A response with `errors` is INVALID_RESPONSE carrying the server's messages.
 */
import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  type GraphQLArgument,
  GraphQLError,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type IntrospectionQuery,
  isEnumType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
} from "graphql";
import { ClientError, GraphQLClient } from "graphql-request";
import { z } from "zod";
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  describeBody,
  describeUrl,
  type FetchTrace,
  guardedFetch,
  redactSecrets,
  secretValues,
  statusError,
} from "./_http.ts";
import { headersField, httpUrlField, secretHeadersField, timeoutField } from "./_fields.ts";
import type { TabularRecord } from "./_tabular.ts";
import {
  authorize,
  checkHttpAuth,
  httpAuthSchema,
  inBatches,
  inferColumns,
  valueAt,
} from "./rest_api.ts";
import type {
  Column,
  Connector,
  ConnectorContext,
  ConnectorError,
  Discovery,
  Preview,
  Result,
  SourceSettings,
  Stage,
  Stream,
  StreamRef,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";

const configSchema = z.strictObject({
  endpoint: httpUrlField("Endpoint", "https://api.example.com/graphql"),
  auth: httpAuthSchema,
  headers: headersField(),
  query: z.string().max(100_000).optional().meta({
    title: "Query",
    description: "Leave empty to read the streams found by introspection. A query that " +
      "declares $after (and $first) is read page by page through its pageInfo",
    placeholder: "query($first: Int, $after: String) { users(first: $first, after: $after) " +
      "{ nodes { id name } pageInfo { hasNextPage endCursor } } }",
  }),
  recordsPath: z.string().trim().max(500).optional().meta({
    title: "Records path",
    description: "Dot path to the records in the query's data, such as data.users.nodes; " +
      "the first field of the query when empty",
    placeholder: "data.users.nodes",
  }),
  pageSize: z.coerce.number().int().min(1).max(10_000).optional().meta({
    title: "Page size",
    description: "Records asked for per page (the `first` argument); 100 when empty",
    placeholder: "100",
  }),
  maxPages: z.coerce.number().int().min(1).max(100_000).optional().meta({
    title: "Page limit",
    description: "Stop after this many pages; 100 when empty",
    placeholder: "100",
  }),
  timeoutMs: timeoutField("Timeout"),
  maxResponseBytes: z.coerce.number().int().min(1024).max(1_073_741_824).optional().meta({
    title: "Response size limit",
    description: "Bytes per response; 10 MiB by default",
    placeholder: "10485760",
  }),
});

const secretsSchema = z.strictObject({
  apiKey: z.string().max(8192).optional().meta({
    title: "API key or token",
    description: "For API key and bearer authentication",
  }),
  password: z.string().max(1024).optional().meta({ title: "Basic auth password" }),
  headers: secretHeadersField(),
});

type Config = z.infer<typeof configSchema>;
type Secrets = z.infer<typeof secretsSchema>;
type Settings = SourceSettings<Config, Secrets>;

const DEFAULT_PAGE_SIZE = 100;
const DEFAULT_MAX_PAGES = 100;
/** Records read to infer the columns of a configured query. */
const SAMPLE_RECORDS = 200;

/** How to read one stream: the query, its paging variables, where the records are. */
type Plan = {
  name: string;
  query: string;
  /** Dot path in `data` to a list, or to a connection (edges/nodes and pageInfo). */
  path?: string;
  /** Variable that takes the page size (or the preview limit). */
  firstVariable?: string;
  /** Variable that takes the previous page's endCursor. */
  afterVariable?: string;
};

type Execution =
  | { ok: true; data: Record<string, unknown>; status: number; stages: Stage[] }
  | { ok: false; error: ConnectorError; stages: Stage[] };

type GraphQLErrorJson = { message?: unknown; extensions?: { code?: unknown } };

function failResponseStage(stages: Stage[]): Stage[] {
  return stages.map((stage) => stage.name === "query" ? { ...stage, ok: false } : stage);
}

/** The server's own errors: AUTH/PERMISSION by their conventional codes, else INVALID_RESPONSE. */
function graphqlErrors(errors: GraphQLErrorJson[], endpoint: string): ConnectorError {
  const messages = errors.map((error) => String(error.message ?? "unnamed error"));
  const codes = errors.map((error) => String(error.extensions?.code ?? ""));
  const summary = messages.slice(0, 5).join("; ") + (messages.length > 5 ? "; ..." : "");
  if (codes.includes("UNAUTHENTICATED")) {
    return {
      code: "AUTH_FAILED",
      message: `${describeUrl(endpoint)} refused the credentials: ${summary}`,
      hint: "Check the authentication type and the API key, token or password",
      field: "auth",
    };
  }
  if (codes.includes("FORBIDDEN")) {
    return {
      code: "PERMISSION_DENIED",
      message: `${describeUrl(endpoint)} refused access: ${summary}`,
      hint: "The credentials were accepted but may not read this; check their scopes",
      field: "auth",
    };
  }
  return {
    code: "INVALID_RESPONSE",
    message: `The GraphQL server answered with errors: ${summary}`,
    hint: "Check the query (and that the fields it asks for exist)",
    field: "query",
  };
}

/** Runs one GraphQL operation through the guarded fetch and classifies what comes back. */
async function execute(
  settings: Settings,
  ctx: ConnectorContext,
  request: { query: string; variables?: Record<string, unknown>; signal?: AbortSignal },
): Promise<Execution> {
  const { config, secrets } = settings;
  const signed = authorize(new URL(config.endpoint), {
    endpoint: config.endpoint,
    auth: config.auth,
    headers: config.headers,
    secrets,
  });
  const trace: FetchTrace = { stages: [] };
  const client = new GraphQLClient(signed.url.href, {
    fetch: guardedFetch({
      network: ctx.network,
      timeoutMs: config.timeoutMs ?? ctx.pool.connectionTimeoutMs,
      maxBytes: config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      sensitiveHeaders: signed.sensitive,
    }, trace),
    headers: signed.headers,
    errorPolicy: "all",
    signal: request.signal,
  });
  const secretList = secretValues(secrets);
  const clean = (error: ConnectorError): ConnectorError => ({
    ...error,
    message: redactSecrets(error.message, secretList),
    hint: redactSecrets(error.hint, secretList),
  });
  const failed = (error: ConnectorError): Execution => ({
    ok: false,
    error: clean(error),
    stages: failResponseStage(trace.stages),
  });
  try {
    const response = await client.rawRequest<Record<string, unknown>>(
      request.query,
      request.variables,
    );
    const errors = (response.errors ?? []) as GraphQLErrorJson[];
    if (errors.length) return failed(graphqlErrors(errors, config.endpoint));
    if (response.data === null || typeof response.data !== "object") {
      return failed({
        code: "INVALID_RESPONSE",
        message: "The GraphQL server answered without data",
        hint: "Check the endpoint: it should be a GraphQL endpoint",
        field: "endpoint",
      });
    }
    return { ok: true, data: response.data, status: response.status, stages: trace.stages };
  } catch (error) {
    if (error instanceof ConnectorFailure) {
      return { ok: false, error: clean(error.error), stages: trace.stages };
    }
    if (error instanceof ClientError) {
      const status = error.response.status;
      const errors = (error.response.errors ?? []) as GraphQLErrorJson[];
      const byStatus = statusError(status, {
        url: config.endpoint,
        authenticated: config.auth.type !== "none",
      });
      if (byStatus && (status === 401 || status === 403 || errors.length === 0)) {
        return failed(byStatus);
      }
      if (errors.length) return failed(graphqlErrors(errors, config.endpoint));
    }
    if (trace.last) {
      // The body was not a GraphQL result (HTML, plain text, another JSON shape).
      return failed({
        code: "INVALID_RESPONSE",
        message: `Expected a GraphQL response from ${describeUrl(config.endpoint)}, found ${
          describeBody(trace.last)
        }`,
        hint: "Check the endpoint: it should be the GraphQL endpoint itself",
        field: "endpoint",
      });
    }
    throw error;
  }
}

/** The column type of a GraphQL output type. */
function columnType(type: GraphQLOutputType): string {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) return "array";
  const named = getNamedType(inner);
  if (isObjectType(named)) return "object";
  if (isEnumType(named)) return "text";
  switch (named.name) {
    case "Int":
      return "integer";
    case "Float":
      return "number";
    case "Boolean":
      return "boolean";
    case "String":
    case "ID":
      return "text";
  }
  // Custom scalars: go by the conventional names.
  const name = named.name.toLowerCase();
  if (/datetime|timestamp|instant/.test(name)) return "timestamp";
  if (/date/.test(name)) return "date";
  if (/json|object|map/.test(name)) return "object";
  if (/^(long|bigint|int\d*)$/.test(name)) return "integer";
  if (/decimal|float|money|bigdecimal/.test(name)) return "number";
  return "text";
}

function isRequired(arg: GraphQLArgument): boolean {
  return isNonNullType(arg.type) && arg.defaultValue === undefined;
}

/** Fields that can be selected without arguments we cannot supply. */
function selectableFields(type: GraphQLObjectType): GraphQLField<unknown, unknown>[] {
  return Object.values(type.getFields()).filter((field) => !field.args.some(isRequired));
}

/** Leaf fields, and leaf fields of objects `depth` levels down. */
function selectionOf(type: GraphQLObjectType, depth: number): string | null {
  const parts: string[] = [];
  for (const field of selectableFields(type)) {
    const named = getNamedType(field.type);
    if (isLeafType(named)) parts.push(field.name);
    else if (depth > 0 && isObjectType(named)) {
      const inner = selectionOf(named, depth - 1);
      if (inner) parts.push(`${field.name} ${inner}`);
    }
  }
  return parts.length ? `{ ${parts.join(" ")} }` : null;
}

function columnsOf(type: GraphQLObjectType): { columns: Column[]; primaryKeys: string[] } {
  const columns: Column[] = [];
  let primaryKeys: string[] = [];
  for (const field of selectableFields(type)) {
    const named = getNamedType(field.type);
    if (!isLeafType(named) && !(isObjectType(named) && selectionOf(named, 0))) continue;
    const column: Column = {
      name: field.name,
      type: columnType(field.type),
      nullable: !isNonNullType(field.type),
    };
    if (field.name === "id" && isNonNullType(field.type) && isLeafType(named)) {
      Object.assign(column, { primaryKey: true, unique: true });
      primaryKeys = ["id"];
    }
    columns.push(column);
  }
  return { columns, primaryKeys };
}

/** The node type of a Relay connection, and whether it lists `edges` or `nodes`. */
function connectionOf(
  type: GraphQLObjectType,
): { node: GraphQLObjectType; via: "edges" | "nodes" } | null {
  const fields = type.getFields();
  const pageInfo = fields.pageInfo && getNamedType(fields.pageInfo.type);
  if (!pageInfo || !isObjectType(pageInfo)) return null;
  const info = pageInfo.getFields();
  if (!info.hasNextPage || !info.endCursor) return null;
  const edges = fields.edges && getNamedType(fields.edges.type);
  if (edges && isObjectType(edges) && fields.edges && isListType(unwrap(fields.edges.type))) {
    const node = edges.getFields().node && getNamedType(edges.getFields().node.type);
    if (node && isObjectType(node)) return { node, via: "edges" };
  }
  const nodes = fields.nodes && getNamedType(fields.nodes.type);
  if (nodes && isObjectType(nodes) && isListType(unwrap(fields.nodes.type))) {
    return { node: nodes, via: "nodes" };
  }
  return null;
}

function unwrap(type: GraphQLOutputType): GraphQLOutputType {
  return isNonNullType(type) ? type.ofType : type;
}

const PAGE_SIZE_ARGS = ["first", "limit", "take", "pageSize", "size"];

/** Streams (and how to read them) from an introspected schema. */
export function streamsOfSchema(schema: GraphQLSchema): { stream: Stream; plan: Plan }[] {
  const query = schema.getQueryType();
  if (!query) return [];
  const found: { stream: Stream; plan: Plan }[] = [];
  for (const field of Object.values(query.getFields())) {
    const type = unwrap(field.type);
    const args = new Map(field.args.map((arg) => [arg.name, arg]));
    const connection = isObjectType(type) ? connectionOf(type) : null;
    const item = isListType(type) ? getNamedType(type) : null;
    const node = connection?.node ?? (item && isObjectType(item) ? item : null);
    if (!node) continue;
    const first = connection
      ? args.get("first")
      : PAGE_SIZE_ARGS.map((name) => args.get(name)).find((arg) =>
        arg && getNamedType(arg.type).name === "Int"
      );
    const after = connection ? args.get("after") : undefined;
    const handled = new Set([first?.name, after?.name]);
    if (field.args.some((arg) => isRequired(arg) && !handled.has(arg.name))) continue;
    const selection = selectionOf(node, 1);
    if (!selection) continue;

    const variables = [first, after].filter((arg): arg is GraphQLArgument => arg !== undefined);
    const declared = variables.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(", ");
    const passed = variables.map((arg) => `${arg.name}: $${arg.name}`).join(", ");
    const body = connection
      ? connection.via === "edges"
        ? `{ edges { node ${selection} } pageInfo { hasNextPage endCursor } }`
        : `{ nodes ${selection} pageInfo { hasNextPage endCursor } }`
      : selection;
    const { columns, primaryKeys } = columnsOf(node);
    found.push({
      stream: {
        name: field.name,
        kind: "endpoint",
        columns,
        rowCount: null,
        rowCountExact: false,
        constraints: { primaryKeys, foreignKeys: [], uniqueKeys: primaryKeys },
      },
      plan: {
        name: field.name,
        query: `query DafelRead${declared ? `(${declared})` : ""} { ${field.name}${
          passed ? `(${passed})` : ""
        } ${body} }`,
        path: field.name,
        firstVariable: first?.name,
        afterVariable: after?.name,
      },
    });
  }
  return found;
}

/** The plan of a configured query, or INVALID_CONFIG when it does not parse. */
function configuredPlan(config: Config): Result<Plan> {
  let document;
  try {
    document = parse(config.query ?? "");
  } catch (error) {
    return {
      ok: false,
      error: {
        code: "INVALID_CONFIG",
        message: `The query does not parse: ${
          error instanceof GraphQLError ? error.message : "syntax error"
        }`,
        hint: "Check the query's syntax",
        field: "query",
      },
    };
  }
  const operation = document.definitions.find((definition) =>
    definition.kind === Kind.OPERATION_DEFINITION
  );
  const root = operation?.selectionSet.selections.find((selection) =>
    selection.kind === Kind.FIELD
  );
  if (!operation || !root || root.kind !== Kind.FIELD) {
    return {
      ok: false,
      error: {
        code: "INVALID_CONFIG",
        message: "The query has no operation with a field to read",
        hint: "Write a query such as { users { id name } }",
        field: "query",
      },
    };
  }
  const variables = new Set(
    (operation.variableDefinitions ?? []).map((definition) => definition.variable.name.value),
  );
  const rootKey = root.alias?.value ?? root.name.value;
  const path = config.recordsPath?.replace(/^data(\.|$)/, "") || rootKey;
  return {
    ok: true,
    value: {
      name: path.split(".")[0],
      query: config.query ?? "",
      path,
      firstVariable: ["first", "limit", "pageSize"].find((name) => variables.has(name)),
      afterVariable: ["after", "cursor"].find((name) => variables.has(name)),
    },
  };
}

type PageInfo = { hasNextPage?: unknown; endCursor?: unknown };

/** The records (and Relay page info) at a plan's path in one response's data. */
function recordsOfPage(data: unknown, path: string | undefined): Result<{
  records: TabularRecord[];
  pageInfo?: PageInfo;
}> {
  const value = valueAt(data, path);
  const asRecords = (list: unknown[]) =>
    list.map((item) =>
      item !== null && typeof item === "object" && !Array.isArray(item)
        ? item as TabularRecord
        : { value: item }
    );
  if (Array.isArray(value)) {
    const segments = (path ?? "").split(".");
    const last = segments.at(-1);
    const parent = valueAt(data, segments.slice(0, -1).join(".")) as { pageInfo?: PageInfo };
    const pageInfo = last === "edges" || last === "nodes" ? parent?.pageInfo : undefined;
    const list = last === "edges" ? value.map((edge) => (edge as { node?: unknown })?.node) : value;
    return { ok: true, value: { records: asRecords(list), pageInfo } };
  }
  if (value && typeof value === "object") {
    const connection = value as { edges?: unknown; nodes?: unknown; pageInfo?: PageInfo };
    if (Array.isArray(connection.edges)) {
      return {
        ok: true,
        value: {
          records: asRecords(connection.edges.map((edge) => (edge as { node?: unknown })?.node)),
          pageInfo: connection.pageInfo,
        },
      };
    }
    if (Array.isArray(connection.nodes)) {
      return {
        ok: true,
        value: { records: asRecords(connection.nodes), pageInfo: connection.pageInfo },
      };
    }
  }
  const found = value === undefined
    ? "nothing"
    : value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "object"
    ? `an object with keys ${Object.keys(value).slice(0, 8).join(", ")}`
    : `a ${typeof value}`;
  return {
    ok: false,
    error: {
      code: "INVALID_RESPONSE",
      message: `Expected a list or a connection at data.${path ?? ""}, found ${found}`,
      hint: "Set the records path to the list of records in the query's data",
      field: "recordsPath",
    },
  };
}

/**
 * The records of a plan, page by page: Relay pages follow pageInfo.endCursor while
 * hasNextPage holds, up to the page limit; `limit` stops early (and sizes the first page).
 */
async function* pagesOf(
  settings: Settings,
  ctx: ConnectorContext,
  plan: Plan,
  options: { limit?: number; signal?: AbortSignal } = {},
): AsyncGenerator<TabularRecord[]> {
  const pageSize = settings.config.pageSize ?? DEFAULT_PAGE_SIZE;
  const maxPages = settings.config.maxPages ?? DEFAULT_MAX_PAGES;
  let remaining = options.limit ?? Infinity;
  let after: string | null = null;
  for (let count = 0; count < maxPages && remaining > 0; count++) {
    options.signal?.throwIfAborted();
    const variables: Record<string, unknown> = {};
    if (plan.firstVariable) variables[plan.firstVariable] = Math.min(pageSize, remaining);
    if (plan.afterVariable) variables[plan.afterVariable] = after;
    const executed = await execute(settings, ctx, {
      query: plan.query,
      variables,
      signal: options.signal,
    });
    if (!executed.ok) throw new ConnectorFailure(executed.error);
    const page = recordsOfPage(executed.data, plan.path);
    if (!page.ok) throw new ConnectorFailure(page.error);
    const records = page.value.records.slice(0, remaining);
    remaining -= records.length;
    yield records;
    const next = page.value.pageInfo?.endCursor;
    if (
      !plan.afterVariable || page.value.pageInfo?.hasNextPage !== true ||
      typeof next !== "string" || next === after || page.value.records.length === 0
    ) return;
    after = next;
  }
}

/** Introspects the server: its streams and their plans. */
async function introspect(
  settings: Settings,
  ctx: ConnectorContext,
): Promise<Result<{ stream: Stream; plan: Plan }[]>> {
  const executed = await execute(settings, ctx, {
    query: getIntrospectionQuery({ descriptions: false }),
  });
  if (!executed.ok) {
    const error = executed.error.code === "INVALID_RESPONSE" && executed.error.field === "query"
      ? {
        ...executed.error,
        hint: "The server may have introspection turned off: set a query to read instead",
      }
      : executed.error;
    return { ok: false, error };
  }
  try {
    const schema = buildClientSchema(executed.data as unknown as IntrospectionQuery);
    return { ok: true, value: streamsOfSchema(schema) };
  } catch (error) {
    return {
      ok: false,
      error: {
        code: "INVALID_RESPONSE",
        message: `The introspection result is not a usable schema: ${
          error instanceof Error ? error.message : String(error)
        }`,
        hint: "Check that the endpoint is a GraphQL server, or set a query",
        field: "endpoint",
      },
    };
  }
}

/** The plan for a stream the source has, by name. */
async function planFor(
  settings: Settings,
  ctx: ConnectorContext,
  stream: StreamRef,
): Promise<Result<Plan>> {
  const notFound = (names: string[]): Result<Plan> => ({
    ok: false,
    error: {
      code: "RESOURCE_NOT_FOUND",
      message: `No stream "${stream.name}" on this source` +
        (names.length ? ` (it has ${names.slice(0, 10).join(", ")})` : ""),
      hint: "Discover the source again",
    },
  });
  if (stream.schema !== undefined) return notFound([]);
  if (settings.config.query) {
    const plan = configuredPlan(settings.config);
    if (!plan.ok) return plan;
    return plan.value.name === stream.name ? plan : notFound([plan.value.name]);
  }
  const found = await introspect(settings, ctx);
  if (!found.ok) return found;
  const match = found.value.find((entry) => entry.plan.name === stream.name);
  return match ? { ok: true, value: match.plan } : notFound(found.value.map((e) => e.plan.name));
}

function failureOf(error: unknown): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  throw error;
}

export const graphql = {
  type: "GRAPHQL",
  label: "GraphQL API",
  description: "Any GraphQL endpoint; streams found by introspection",
  configSchema,
  secretsSchema,
  check(config, secrets) {
    const issues = checkHttpAuth(config, secrets);
    if (config.query) {
      const plan = configuredPlan(config);
      if (!plan.ok) issues.push({ path: "query", message: plan.error.message });
    }
    return issues;
  },
  capabilities: { pooled: false, incremental: true },

  async test(settings, ctx) {
    const started = performance.now();
    const executed = await execute(settings, ctx, { query: "{ __typename }" });
    const responseTime = Math.round(performance.now() - started);
    if (!executed.ok) {
      return {
        success: false,
        message: executed.error.message,
        responseTime,
        stages: executed.stages,
        error: executed.error,
      };
    }
    const typename = executed.data.__typename;
    return {
      success: true,
      message: `Connected: the GraphQL server answered (root type ${String(typename)})`,
      responseTime,
      stages: executed.stages,
      serverInfo: {
        status: executed.status,
        queryType: typeof typename === "string" ? typename : null,
      },
    };
  },

  async discover(settings, ctx): Promise<Result<Discovery>> {
    if (!settings.config.query) {
      const found = await introspect(settings, ctx);
      if (!found.ok) return found;
      return { ok: true, value: { streams: found.value.map((entry) => entry.stream) } };
    }
    const plan = configuredPlan(settings.config);
    if (!plan.ok) return plan;
    try {
      const records: TabularRecord[] = [];
      for await (const page of pagesOf(settings, ctx, plan.value, { limit: SAMPLE_RECORDS })) {
        records.push(...page);
      }
      const { columns, primaryKeys } = inferColumns(records);
      return {
        ok: true,
        value: {
          streams: [{
            name: plan.value.name,
            kind: "endpoint",
            columns,
            rowCount: null,
            rowCountExact: false,
            constraints: { primaryKeys, foreignKeys: [], uniqueKeys: primaryKeys },
          }],
        },
      };
    } catch (error) {
      return { ok: false, error: failureOf(error) };
    }
  },

  async preview(settings, request, ctx): Promise<Result<Preview>> {
    const plan = await planFor(settings, ctx, request.stream);
    if (!plan.ok) return plan;
    try {
      const rows: TabularRecord[] = [];
      for await (const page of pagesOf(settings, ctx, plan.value, { limit: request.limit })) {
        rows.push(...page);
      }
      const { columns } = inferColumns(rows);
      return {
        ok: true,
        value: { columns: columns.map(({ name, type }) => ({ name, type })), rows },
      };
    } catch (error) {
      return { ok: false, error: failureOf(error) };
    }
  },

  async *read(settings, request, ctx) {
    const plan = await planFor(settings, ctx, request.stream);
    if (!plan.ok) throw new ConnectorFailure(plan.error);
    yield* inBatches(pagesOf(settings, ctx, plan.value, { signal: request.signal }), request);
  },
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
