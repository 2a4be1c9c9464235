/** The sign-in form, or, before any password exists, the form that sets it with the setup token. */
import { ApiError, api } from "./api.ts";
import { errorBox, h, replace } from "./dom.ts";

export function showSignIn(app: HTMLElement, setupNeeded: boolean, done: (csrfToken: string) => void): void {
  const message = h("div", { class: "message" });
  const fail = (e: unknown) => {
    const wait = e instanceof ApiError ? Number(e.body.retryAfterSeconds ?? 0) : 0;
    replace(message, errorBox(e instanceof Error ? e.message : String(e)));
    if (wait > 0) {
      submit.disabled = true;
      setTimeout(() => {
        submit.disabled = false;
      }, wait * 1000);
    }
  };
  let form: HTMLFormElement;
  let submit: HTMLButtonElement;
  if (setupNeeded) {
    const token = h("input", {
      id: "setup-token",
      name: "token",
      autocomplete: "off",
      required: true,
      spellcheck: "false",
    });
    const password = h("input", {
      id: "new-password",
      type: "password",
      autocomplete: "new-password",
      required: true,
      minlength: 10,
    });
    const again = h("input", {
      id: "new-password-again",
      type: "password",
      autocomplete: "new-password",
      required: true,
    });
    submit = h("button", { type: "submit" }, "Set the password");
    form = h(
      "form",
      { class: "card sign-in" },
      h("h1", null, "Set up the isched console"),
      h(
        "p",
        null,
        "Enter the one-time setup token isched printed when it started, and choose the administrator password (at least 10 characters).",
      ),
      h("label", { for: "setup-token" }, "Setup token"),
      token,
      h("label", { for: "new-password" }, "New password"),
      password,
      h("label", { for: "new-password-again" }, "New password again"),
      again,
      submit,
      message,
      h("p", { class: "muted" }, "Or set it on the server: isched admin set-password"),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (password.value !== again.value) return fail(new Error("the two passwords differ"));
      try {
        const r = await api.post<{ csrfToken: string }>("/setup", {
          token: token.value.trim(),
          password: password.value,
        });
        done(r.csrfToken);
      } catch (e) {
        fail(e);
      }
    });
  } else {
    const password = h("input", {
      id: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
      autofocus: true,
    });
    submit = h("button", { type: "submit", id: "sign-in" }, "Sign in");
    form = h(
      "form",
      { class: "card sign-in" },
      h("h1", null, "isched console"),
      h("label", { for: "password" }, "Administrator password"),
      password,
      submit,
      message,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const r = await api.post<{ csrfToken: string }>("/session", { password: password.value });
        done(r.csrfToken);
      } catch (e) {
        password.value = "";
        fail(e);
      }
    });
  }
  // The browser stops a form whose fields break their own rules (a password under minlength) without
  // a submit event: an error from the last attempt would stay up as if it were about this one.
  form.addEventListener("invalid", () => replace(message), true);
  replace(app, h("div", { class: "center" }, form));
}
