/** The page shown for an error on a page route (the API answers JSON instead). */
import type { SessionUser } from "../routes/_env.ts";
import { Layout } from "./layout.tsx";

const titles: Record<number, string> = {
  400: "Bad request",
  403: "Not allowed",
  404: "Not found",
  413: "Too large",
  429: "Slow down",
  503: "Temporarily unavailable",
};

export function ErrorPage(props: { status: number; message: string; user?: SessionUser | null }) {
  const title = titles[props.status] ?? "Something went wrong";
  return (
    <Layout title={title} user={props.user}>
      <section class="card narrow">
        <h1>{title}</h1>
        <p>{props.message}</p>
        <p>
          <a href="/data-sources">Back to data sources</a>
        </p>
      </section>
    </Layout>
  );
}
