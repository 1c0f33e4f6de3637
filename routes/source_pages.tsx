/** Data-source pages. */
import { Hono } from "hono";
import { SourceListPage, SourceRows } from "../views/data_sources.tsx";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { listQuerySchema, listSources } from "./data_sources.ts";

export function sourcePages(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/data-sources", async (c) => {
    const user = currentUser(c);
    const parsed = listQuerySchema.safeParse(c.req.query());
    const query = parsed.success ? parsed.data : { offset: 0 };
    const { rows, total } = await listSources(deps, user, query);
    if (c.req.header("hx-request") === "true" && c.req.header("hx-target") === "source-rows") {
      return c.html(<SourceRows sources={rows} />);
    }
    return c.html(
      <SourceListPage user={user} sources={rows} total={total} search={query.search} />,
    );
  });

  return app;
}
