/** The admin shell: navigation, signed-in user, logout; every page renders inside it. */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { SessionUser } from "../routes/_env.ts";

/** htmx is vendored with its version in the file name, so an upgrade is a visible change. */
export const HTMX_SRC = "/static/vendor/htmx-2.0.11.min.js";

type LayoutProps = {
  title: string;
  user?: SessionUser | null;
  /** Which navigation entry is current. */
  active?: "sources" | "tokens" | "users" | "audit" | "account";
  children: Child;
};

function NavLink(props: { href: string; current: boolean; children: Child }) {
  return (
    <a href={props.href} aria-current={props.current ? "page" : undefined}>
      {props.children}
    </a>
  );
}

export function Layout(props: LayoutProps) {
  const user = props.user;
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          {
            /* defaultSettleDelay 0: what htmx swaps in answers clicks and changes at once. With
              its default 20 ms, a control used right after a swap had no htmx behaviour yet
              (the browser walk hit that window under load); no style here animates settling. */
          }
          <meta
            name="htmx-config"
            content='{"includeIndicatorStyles":false,"defaultSettleDelay":0}'
          />
          <title>{props.title} · Dafel Data Sources</title>
          <link rel="stylesheet" href="/static/app.css" />
          <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
          <script src={HTMX_SRC} defer></script>
          <script src="/static/app.js" defer></script>
        </head>
        <body hx-boost="true">
          <a class="skip-link" href="#main">Skip to content</a>
          <header class="topbar">
            <a class="brand" href="/">
              <img src="/static/favicon.svg" alt="" width="22" height="22" />
              Dafel Data Sources
            </a>
            {user && (
              <nav aria-label="Main">
                <NavLink href="/data-sources" current={props.active === "sources"}>
                  Data sources
                </NavLink>
                <NavLink href="/tokens" current={props.active === "tokens"}>API tokens</NavLink>
                {user.role === "ADMIN" && (
                  <>
                    <NavLink href="/users" current={props.active === "users"}>Users</NavLink>
                    <NavLink href="/audit" current={props.active === "audit"}>Audit log</NavLink>
                  </>
                )}
              </nav>
            )}
            {user && (
              <div class="whoami">
                <span class="who">
                  <a
                    class="user-email"
                    href="/account"
                    title="Your account"
                    aria-current={props.active === "account" ? "page" : undefined}
                  >
                    {user.email}
                  </a>
                  <span class="role">{user.role === "ADMIN" ? "Administrator" : "User"}</span>
                </span>
                <form method="post" action="/logout" hx-boost="false">
                  <button type="submit" class="link">Log out</button>
                </form>
              </div>
            )}
          </header>
          <main id="main" tabindex={-1}>{props.children}</main>
        </body>
      </html>
    </>
  );
}

/** A form's error summary: what the server said, next to what the user typed. */
export function FormError(props: { message?: string | null }) {
  if (!props.message) return null;
  return <p class="alert error" role="alert">{props.message}</p>;
}

/** Page title row with actions on the right. */
export function PageHead(props: { title: Child; actions?: Child; children?: Child }) {
  return (
    <div class="page-head">
      <div>
        <h1>{props.title}</h1>
        {props.children}
      </div>
      {props.actions && <div class="actions">{props.actions}</div>}
    </div>
  );
}
