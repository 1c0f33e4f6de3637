/** Sign-in and first-run pages: plain forms that work without JavaScript. */
import { FormError, Layout } from "./layout.tsx";

export function LoginPage(props: { email?: string; error?: string | null; next?: string }) {
  return (
    <Layout title="Sign in">
      <section class="card narrow">
        <h1>Sign in</h1>
        <FormError message={props.error} />
        <form method="post" action="/login" class="stack" hx-boost="false">
          <input type="hidden" name="next" value={props.next ?? ""} />
          <label>
            Email
            <input
              type="email"
              name="email"
              value={props.email ?? ""}
              autocomplete="username"
              required
              autofocus
            />
          </label>
          <label>
            Password
            <input type="password" name="password" autocomplete="current-password" required />
          </label>
          <button type="submit" class="primary">Sign in</button>
        </form>
      </section>
    </Layout>
  );
}

export function SetupPage(
  props: { email?: string; errors?: Record<string, string>; error?: string | null },
) {
  const errors = props.errors ?? {};
  return (
    <Layout title="Set up">
      <section class="card narrow">
        <h1>Welcome</h1>
        <p class="muted">
          Create the first administrator. This page is only available until a user exists.
        </p>
        <FormError message={props.error} />
        <form method="post" action="/setup" class="stack" hx-boost="false">
          <label>
            Email
            <input
              type="email"
              name="email"
              value={props.email ?? ""}
              autocomplete="username"
              required
              autofocus
              aria-invalid={errors.email ? "true" : undefined}
            />
            {errors.email && <small class="field-error">{errors.email}</small>}
          </label>
          <label>
            Password
            <input
              type="password"
              name="password"
              autocomplete="new-password"
              minlength={8}
              required
              aria-invalid={errors.password ? "true" : undefined}
            />
            {errors.password && <small class="field-error">{errors.password}</small>}
            <small class="help">At least 8 characters</small>
          </label>
          <button type="submit" class="primary">Create administrator</button>
        </form>
      </section>
    </Layout>
  );
}
