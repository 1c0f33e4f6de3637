/** The signed-in user's account: who they are, and a form to change their password. */
import type { SessionUser } from "../routes/_env.ts";
import { FormError, Layout, PageHead } from "./layout.tsx";

export type PasswordFormState = {
  /** Errors by field (`currentPassword`, `newPassword`, `confirmPassword`) or `form`. */
  errors?: Record<string, string>;
  notice?: string;
};

/**
 * The change-password form; htmx posts it and swaps the answer (this form again, with its
 * errors or the notice) in its place. Passwords are never rendered back into it.
 */
export function PasswordForm(props: PasswordFormState) {
  const errors = props.errors ?? {};
  const described = (name: string) => errors[name] ? `${name}-error` : undefined;
  return (
    <form
      id="password-form"
      method="post"
      action="/account/password"
      class="stack account-form"
      novalidate
      hx-post="/account/password"
      hx-target="this"
      hx-swap="outerHTML"
    >
      {props.notice && <p class="alert ok" role="status">{props.notice}</p>}
      <FormError message={errors.form} />
      {[
        { name: "currentPassword", label: "Current password", autocomplete: "current-password" },
        { name: "newPassword", label: "New password", autocomplete: "new-password" },
        { name: "confirmPassword", label: "New password again", autocomplete: "new-password" },
      ].map((input) => (
        <label for={input.name}>
          {input.label}
          <input
            type="password"
            id={input.name}
            name={input.name}
            autocomplete={input.autocomplete}
            minlength={input.name === "currentPassword" ? undefined : 8}
            maxlength={1024}
            required
            aria-invalid={errors[input.name] ? "true" : undefined}
            aria-describedby={described(input.name)}
          />
          {errors[input.name] && (
            <small class="field-error" id={`${input.name}-error`}>{errors[input.name]}</small>
          )}
        </label>
      ))}
      <p class="help small">
        At least 8 characters. Your other sessions are signed out; this one and your API tokens keep
        working.
      </p>
      <button type="submit" class="primary">Change password</button>
    </form>
  );
}

export function AccountPage(props: { user: SessionUser } & PasswordFormState) {
  return (
    <Layout title="Account" user={props.user} active="account">
      <PageHead title="Account">
        <p class="muted">
          Signed in as <strong>{props.user.email}</strong>{" "}
          ({props.user.role === "ADMIN" ? "Administrator" : "User"}).
        </p>
      </PageHead>
      <section class="card">
        <h2>Change password</h2>
        <PasswordForm errors={props.errors} notice={props.notice} />
      </section>
    </Layout>
  );
}
