/** `/account`: the signed-in user's account page, where they change their own password. */
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AccountPage, PasswordForm, type PasswordFormState } from "../views/account.tsx";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { field, formBody, pageBodyLimit, wantsFragment } from "./_pages.ts";
import { changePassword, changePasswordSchema } from "./auth.ts";

export function accountPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/account", pageBodyLimit);
  app.use("/account/*", pageBodyLimit);

  app.get("/account", (c) => c.html(<AccountPage user={currentUser(c)} />));

  app.post("/account/password", async (c) => {
    const body = await formBody(c);
    const input = {
      currentPassword: field(body, "currentPassword"),
      newPassword: field(body, "newPassword"),
    };
    const errors: Record<string, string> = {};
    let status: ContentfulStatusCode = 400;
    let notice: string | undefined;
    const parsed = changePasswordSchema.safeParse(input);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        errors[String(issue.path[0] ?? "form")] ??= issue.message;
      }
    }
    if (input.newPassword !== field(body, "confirmPassword")) {
      errors.confirmPassword ??= "The two new passwords differ";
    }
    if (parsed.success && Object.keys(errors).length === 0) {
      const outcome = await changePassword(c, deps, parsed.data);
      if (outcome.ok) {
        status = 200;
        notice = `Password changed. Other sessions signed out: ${outcome.sessionsEnded}.`;
      } else {
        // Wrong current password: next to its field; rate limited: for the whole form.
        status = outcome.error.status;
        errors[outcome.error.details?.[0]?.path ?? "form"] = outcome.error.message;
        for (const [name, value] of Object.entries(outcome.error.headers ?? {})) {
          c.header(name, value);
        }
      }
    }
    const state: PasswordFormState = { errors, notice };
    if (wantsFragment(c, "password-form")) return c.html(<PasswordForm {...state} />, status);
    return c.html(<AccountPage user={currentUser(c)} {...state} />, status);
  });

  return app;
}
