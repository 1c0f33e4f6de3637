/** Users, for administrators: create, change role, set password, remove; refusals on the row. */
import { ROLES } from "../db/schema.ts";
import type { SessionUser } from "../routes/_env.ts";
import { formatDate } from "./_format.ts";
import { Layout, PageHead } from "./layout.tsx";

export type UserRow = { id: string; email: string; role: (typeof ROLES)[number]; createdAt: Date };

/**
 * One user's row; re-rendered alone after a role or password change, with the refusal or
 * the confirmation if there was one.
 */
export function UserItem(
  props: {
    row: UserRow;
    me: SessionUser;
    error?: string;
    notice?: string;
    /** Keep "Set password" open: the error is about the password typed there. */
    passwordOpen?: boolean;
  },
) {
  const { row, me } = props;
  const errorId = `user-${row.id}-error`;
  return (
    <tr id={`user-${row.id}`}>
      <td>
        {row.email}
        {row.id === me.id && <span class="muted small">&nbsp;(you)</span>}
        {props.error && <p class="field-error small" id={errorId} role="alert">{props.error}</p>}
        {props.notice && <p class="muted small" role="status">{props.notice}</p>}
      </td>
      <td>
        <form
          method="post"
          action={`/users/${row.id}/role`}
          class="inline-form"
          hx-post={`/users/${row.id}/role`}
          hx-trigger="change"
          hx-target="closest tr"
          hx-swap="outerHTML"
        >
          <label>
            <span class="visually-hidden">Role of {row.email}</span>
            <select
              name="role"
              aria-invalid={props.error ? "true" : undefined}
              aria-describedby={props.error ? errorId : undefined}
            >
              {ROLES.map((role) => (
                <option key={role} value={role} selected={role === row.role}>{role}</option>
              ))}
            </select>
          </label>
          <noscript>
            <button type="submit" class="small">Change</button>
          </noscript>
        </form>
      </td>
      <td>{formatDate(row.createdAt)}</td>
      <td>
        {row.id === me.id
          ? <a href="/account" class="small">Change on your account page</a>
          : (
            <details class="set-password" open={props.passwordOpen ? true : undefined}>
              <summary class="small">Set password</summary>
              <form
                method="post"
                action={`/users/${row.id}/password`}
                class="inline-form"
                novalidate
                hx-post={`/users/${row.id}/password`}
                hx-target="closest tr"
                hx-swap="outerHTML"
              >
                <label>
                  <span class="visually-hidden">New password for {row.email}</span>
                  <input
                    type="password"
                    name="password"
                    autocomplete="new-password"
                    minlength={8}
                    maxlength={1024}
                    required
                    aria-describedby={props.error ? errorId : undefined}
                  />
                </label>
                <button type="submit" class="small">Set</button>
              </form>
            </details>
          )}
      </td>
      <td class="actions-cell">
        {row.id !== me.id && (
          <form
            method="post"
            action={`/users/${row.id}/delete`}
            hx-post={`/users/${row.id}/delete`}
            hx-target="closest tr"
            hx-swap="outerHTML"
            hx-confirm={`Remove ${row.email}? Their sessions and API tokens stop working.`}
          >
            <button type="submit" class="danger small">
              Remove<span class="visually-hidden">{row.email}</span>
            </button>
          </form>
        )}
      </td>
    </tr>
  );
}

export function UsersPage(
  props: {
    user: SessionUser;
    users: UserRow[];
    /** Values and errors of the "new user" form. */
    form?: { email: string; role: string; errors: Record<string, string> };
    /** A refusal for one row (no-JavaScript path), by user id. */
    rowError?: { id: string; message: string; passwordOpen?: boolean };
    /** A confirmation for one row (no-JavaScript path), by user id. */
    rowNotice?: { id: string; message: string };
    notice?: string;
  },
) {
  const form = props.form ?? { email: "", role: "USER", errors: {} };
  return (
    <Layout title="Users" user={props.user} active="users">
      <PageHead title="Users">
        <p class="muted">Administrators see every data source and manage users; users their own.</p>
      </PageHead>
      {props.notice && <p class="alert ok" role="status">{props.notice}</p>}
      <section class="card">
        <div class="table-scroll">
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Password</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody id="user-rows">
              {props.users.map((row) => (
                <UserItem
                  row={row}
                  me={props.user}
                  error={props.rowError?.id === row.id ? props.rowError.message : undefined}
                  notice={props.rowNotice?.id === row.id ? props.rowNotice.message : undefined}
                  passwordOpen={props.rowError?.id === row.id && props.rowError.passwordOpen}
                />
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="card">
        <h2>New user</h2>
        {form.errors.form && <p class="alert error" role="alert">{form.errors.form}</p>}
        <form method="post" action="/users" class="inline-form" novalidate>
          <label for="new-user-email">
            Email
            <input
              type="email"
              id="new-user-email"
              name="email"
              value={form.email}
              autocomplete="off"
              required
              aria-invalid={form.errors.email ? "true" : undefined}
            />
            {form.errors.email && <small class="field-error">{form.errors.email}</small>}
          </label>
          <label for="new-user-password">
            Initial password
            <input
              type="password"
              id="new-user-password"
              name="password"
              autocomplete="new-password"
              minlength={8}
              required
              aria-invalid={form.errors.password ? "true" : undefined}
            />
            {form.errors.password && <small class="field-error">{form.errors.password}</small>}
          </label>
          <label for="new-user-role">
            Role
            <select id="new-user-role" name="role">
              {ROLES.map((role) => (
                <option value={role} selected={role === form.role}>{role}</option>
              ))}
            </select>
          </label>
          <button type="submit" class="primary align-end">Create user</button>
        </form>
      </section>
    </Layout>
  );
}
