/**
 * The admin console's page: signs in (or sets the first password with the setup token), then shows
 * one section at a time, chosen by the address's #fragment so that links and the back button work:
 * #/overview, #/messages?q=..., #/messages/ID, #/peers, #/peers/DOMAIN, #/keys, #/tools.
 */
import { api, setCsrfToken, whenSignedOut } from "./api.ts";
import { h, replace } from "./dom.ts";
import { showSignIn } from "./sign-in.ts";
import { renderKeys } from "./views/keys.ts";
import { renderMessage } from "./views/message.ts";
import { renderMessages } from "./views/messages.ts";
import { renderOverview } from "./views/overview.ts";
import { renderPeer, renderPeers } from "./views/peers.ts";
import { renderTools } from "./views/tools.ts";

/** A section draws into `main` and may return a function that stops its timers and streams. */
export type View = (main: HTMLElement, params: URLSearchParams, path: string[]) => (() => void) | undefined;

const SECTIONS: readonly { path: string; title: string }[] = [
  { path: "overview", title: "Overview" },
  { path: "messages", title: "Messages" },
  { path: "peers", title: "Peers" },
  { path: "keys", title: "Keys and DNS" },
  { path: "tools", title: "Tools" },
];

const app = document.getElementById("app")!;
let cleanup: (() => void) | undefined;

function route(): { path: string[]; params: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = (q === -1 ? raw : raw.slice(0, q)).split("/").filter(Boolean).map(decodeURIComponent);
  return {
    path: path.length ? path : ["overview"],
    params: new URLSearchParams(q === -1 ? "" : raw.slice(q + 1)),
  };
}

function viewFor(path: string[]): View {
  const [section, id] = path;
  if (section === "messages") return id ? renderMessage : renderMessages;
  if (section === "peers") return id ? renderPeer : renderPeers;
  if (section === "keys") return renderKeys;
  if (section === "tools") return renderTools;
  return renderOverview;
}

function showApp(): void {
  const nav = h(
    "nav",
    { "aria-label": "Sections" },
    SECTIONS.map((s) => h("a", { href: `#/${s.path}`, "data-section": s.path }, s.title)),
  );
  const signOut = h("button", { type: "button", class: "quiet", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      await api.delete("/session");
    } finally {
      cleanup?.();
      start();
    }
  });
  const main = h("main", { id: "main" });
  replace(app, h("header", { class: "top" }, h("span", { class: "brand" }, "isched"), nav, signOut), main);
  const draw = () => {
    cleanup?.();
    cleanup = undefined;
    const { path, params } = route();
    for (const a of nav.querySelectorAll("a")) {
      a.classList.toggle("current", a.getAttribute("data-section") === path[0]);
    }
    replace(main);
    cleanup = viewFor(path)(main, params, path);
  };
  window.onhashchange = draw;
  draw();
}

async function start(): Promise<void> {
  window.onhashchange = null;
  let s: { signedIn: boolean; csrfToken?: string; setupNeeded?: boolean };
  try {
    s = await api.get("/session");
  } catch {
    s = { signedIn: false };
  }
  if (s.signedIn) {
    setCsrfToken(s.csrfToken ?? "");
    showApp();
    return;
  }
  showSignIn(app, s.setupNeeded === true, (csrf) => {
    setCsrfToken(csrf);
    showApp();
  });
}

// Shown inside another site's frame, the console could be clicked through by that site.
if (window.top !== window.self) {
  document.body.textContent = "The isched console cannot be shown inside a frame.";
} else {
  whenSignedOut(() => {
    cleanup?.();
    cleanup = undefined;
    start();
  });
  start();
}
