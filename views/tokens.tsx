/** API tokens: create one (its value is shown once), list and revoke. */
import type { SessionUser } from "../routes/_env.ts";
import { DEFAULT_TOKEN_DAYS } from "../routes/tokens.ts";
import { formatDate, isoDate } from "./_format.ts";
import { Layout, PageHead } from "./layout.tsx";

export type TokenRow = {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
};

/** The lifetimes the form offers, in days ("never" for none). */
const LIFETIMES = [
  { value: "7", label: "7 days" },
  { value: "30", label: "30 days" },
  { value: "90", label: "90 days" },
  { value: "365", label: "1 year" },
  { value: "never", label: "Never" },
];

function Expiry(props: { expiresAt: Date | null; now: number }) {
  const { expiresAt, now } = props;
  if (!expiresAt) return <span class="muted">Never</span>;
  const time = <time datetime={isoDate(expiresAt)}>{formatDate(expiresAt)}</time>;
  if (expiresAt.getTime() > now) return time;
  return (
    <>
      <span class="badge status-error">Expired</span> {time}
    </>
  );
}

export function TokenItem(props: { token: TokenRow }) {
  const { token } = props;
  return (
    <tr id={`token-${token.id}`}>
      <td>{token.name}</td>
      <td>
        <time datetime={isoDate(token.createdAt)}>{formatDate(token.createdAt)}</time>
      </td>
      <td>
        <time datetime={isoDate(token.lastUsedAt)}>
          {token.lastUsedAt ? formatDate(token.lastUsedAt) : "Never"}
        </time>
      </td>
      <td>
        <Expiry expiresAt={token.expiresAt} now={Date.now()} />
      </td>
      <td class="actions-cell">
        <form
          method="post"
          action={`/tokens/${token.id}/revoke`}
          hx-post={`/tokens/${token.id}/revoke`}
          hx-target="closest tr"
          hx-swap="outerHTML"
          hx-confirm={`Revoke “${token.name}”? Scripts using it stop working.`}
        >
          <button type="submit" class="danger small">
            Revoke<span class="visually-hidden">{token.name}</span>
          </button>
        </form>
      </td>
    </tr>
  );
}

export function TokensPage(
  props: {
    user: SessionUser;
    tokens: TokenRow[];
    /** A token just created: the only time its value is shown. */
    created?: { name: string; token: string };
    name?: string;
    /** The lifetime chosen in the form ("never" or days). */
    expires?: string;
    error?: string;
  },
) {
  const expires = props.expires ?? String(DEFAULT_TOKEN_DAYS);
  return (
    <Layout title="API tokens" user={props.user} active="tokens">
      <PageHead title="API tokens">
        <p class="muted">
          Scripts authenticate with <code>Authorization: Bearer &lt;token&gt;</code>{" "}
          and act as you. Only a hash of each token is stored.
        </p>
      </PageHead>
      {props.created && (
        // hx-history="false": htmx must not copy this page, token included, to its history cache.
        <section class="card token-once" role="status" hx-history="false">
          <h2>Token “{props.created.name}” created</h2>
          <p>Copy it now: it is not shown again.</p>
          <div class="copy-row">
            <input
              type="text"
              readonly
              value={props.created.token}
              id="new-token"
              class="mono"
              aria-label="New token"
            />
            <button type="button" class="small" data-copy="#new-token">Copy</button>
          </div>
        </section>
      )}
      <section class="card">
        <h2>New token</h2>
        <form method="post" action="/tokens" class="inline-form" novalidate>
          <label for="token-name">
            Name
            <input
              type="text"
              id="token-name"
              name="name"
              value={props.name ?? ""}
              placeholder="nightly export"
              maxlength={100}
              required
              aria-invalid={props.error ? "true" : undefined}
              aria-describedby={props.error ? "token-name-error" : undefined}
            />
          </label>
          <label for="token-expires">
            Expires after
            <select id="token-expires" name="expires">
              {LIFETIMES.map((option) => (
                <option value={option.value} selected={option.value === expires}>
                  {option.label}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" class="primary align-end">Create token</button>
        </form>
        {props.error && <small id="token-name-error" class="field-error">{props.error}</small>}
      </section>
      <section class="card">
        <h2>Your tokens</h2>
        {props.tokens.length === 0
          ? <p class="muted" id="no-tokens">No tokens yet.</p>
          : (
            <div class="table-scroll">
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Created</th>
                    <th scope="col">Last used</th>
                    <th scope="col">Expires</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody id="token-rows">
                  {props.tokens.map((token) => <TokenItem key={token.id} token={token} />)}
                </tbody>
              </table>
            </div>
          )}
      </section>
    </Layout>
  );
}
