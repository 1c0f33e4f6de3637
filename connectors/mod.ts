/** The registry: one connector per data-source type. */
import type { DataSourceType } from "../db/schema.ts";
import { csvFile } from "./csv_file.ts";
import { googleSheets } from "./google_sheets.ts";
import { graphql } from "./graphql.ts";
import { mongodb } from "./mongodb.ts";
import { mysql } from "./mysql.ts";
import { postgres } from "./postgres.ts";
import { restApi } from "./rest_api.ts";
import { s3 } from "./s3.ts";
import type { ConnectorSpec } from "./types.ts";

export const connectors: Record<DataSourceType, ConnectorSpec> = {
  POSTGRESQL: postgres,
  MYSQL: mysql,
  MONGODB: mongodb,
  REST_API: restApi,
  GRAPHQL: graphql,
  S3: s3,
  GOOGLE_SHEETS: googleSheets,
  CSV_FILE: csvFile,
};
