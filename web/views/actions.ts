/**
 * Retry now, cancel, send by iMIP now: on chosen deliveries, a message's deliveries, or every
 * delivery a filter names. The server first counts what the action would change; the user confirms
 * that count; the server refuses if the set changed in between. Each button's tooltip names the
 * `isched queue` command that does the same.
 */
import { shellQuote } from "../../src/text/shell.ts";
import { ApiError, api } from "../api.ts";
import { h } from "../dom.ts";

export type Action = "retry" | "cancel" | "imip";
export type ActionTarget = { ids: number[] } | { messageId: number } | { q: string };

export const ACTION_LABEL: Readonly<Record<Action, string>> = {
  retry: "Retry now",
  cancel: "Cancel",
  imip: "Send by iMIP now",
};

export function cliCommand(action: Action, target: ActionTarget): string {
  if ("ids" in target) return `isched queue ${action} ${target.ids.join(" ")}`;
  if ("messageId" in target) return `isched queue ${action} --message ${target.messageId}`;
  return `isched queue ${action} --filter ${shellQuote(target.q)}`;
}

/** Asks a yes/no question in a modal dialog; resolves true for yes, false for no or leaving the page. */
export function confirmDialog(title: string, ...lines: (string | HTMLElement)[]): Promise<boolean> {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", id: "confirm-yes" }, "Confirm");
    const no = h("button", { type: "button", class: "quiet", id: "confirm-no" }, "Keep as is");
    const dialog = h(
      "dialog",
      { class: "confirm" },
      h("h2", null, title),
      lines.map((l) => h("p", null, l)),
      h("div", { class: "buttons" }, yes, no),
    );
    // Going to another page (back button, a link, an address) answers no: the question was about
    // the page being left, and a Confirm that stayed open would act on a set no longer shown.
    const leave = () => finish(false);
    const finish = (answer: boolean) => {
      window.removeEventListener("hashchange", leave);
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => finish(true));
    no.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", () => finish(false));
    window.addEventListener("hashchange", leave);
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

export function toast(text: string, kind: "ok" | "error" = "ok"): void {
  let box = document.querySelector(".toasts");
  if (!box) {
    box = h("div", { class: "toasts" });
    document.body.appendChild(box);
  }
  const t = h("div", { class: `toast ${kind}`, role: "status" }, text);
  box.appendChild(t);
  setTimeout(() => t.remove(), 4000);
}

/** Runs an action after the user confirmed the count; resolves to the number changed (0 when not run). */
export async function runAction(action: Action, target: ActionTarget, what: string): Promise<number> {
  try {
    const dry = await api.post<{ count: number }>(`/deliveries/${action}`, { ...target, dryRun: true });
    if (dry.count === 0) {
      toast(`${ACTION_LABEL[action]}: no delivery ${what} is in a state this applies to`, "error");
      return 0;
    }
    const ok = await confirmDialog(
      `${ACTION_LABEL[action]}: ${dry.count} ${dry.count === 1 ? "delivery" : "deliveries"}?`,
      `${ACTION_LABEL[action]} for ${dry.count} ${dry.count === 1 ? "delivery" : "deliveries"} ${what}.`,
      h("span", null, "Same on the command line: ", h("code", null, cliCommand(action, target))),
    );
    if (!ok) return 0;
    const done = await api.post<{ changed: number }>(`/deliveries/${action}`, {
      ...target,
      expect: dry.count,
    });
    toast(`${ACTION_LABEL[action]}: ${done.changed} changed`);
    return done.changed;
  } catch (e) {
    const changed =
      e instanceof ApiError && e.status === 409 ? " (the set changed meanwhile: try again)" : "";
    toast(`${ACTION_LABEL[action]} failed: ${(e as Error).message}${changed}`, "error");
    return 0;
  }
}

export function actionButton(
  action: Action,
  target: ActionTarget,
  what: string,
  allowed: boolean,
  after: () => void,
): HTMLButtonElement {
  const b = h(
    "button",
    {
      type: "button",
      class: `action action-${action}`,
      title: cliCommand(action, target),
      disabled: !allowed,
    },
    ACTION_LABEL[action],
  );
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      if ((await runAction(action, target, what)) > 0) after();
    } finally {
      b.disabled = !allowed;
    }
  });
  return b;
}
